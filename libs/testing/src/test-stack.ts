import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { AddressInfo } from 'node:net';
import { Pool } from 'pg';
import { AppConfig, loadConfigWith } from '@app/config';
import { CmqClient, CmqClientOptions } from '@app/cmq';
import type { Clock } from '@app/common';
import { createQueueApi } from '../../../apps/queue-api/src/queue-api.app';
import { createBillingApi } from '../../../apps/billing-api/src/billing-api.app';

export interface TestTenant {
  accountId: string;
  secretId: string;
  secretKey: string;
}

function port(app: NestFastifyApplication): number {
  return (app.getHttpServer().address() as AddressInfo).port;
}

/**
 * The queue-api and billing-api of the real modules, on ephemeral ports, against the run's
 * database and Redis prefix (made by test/global-setup.ts). Mirrors production start-up.
 */
export class TestStack {
  queueApi!: NestFastifyApplication;
  billingApi!: NestFastifyApplication;
  config!: AppConfig;
  db!: Pool;
  private clients: CmqClient[] = [];

  /** `clock`: one clock for both apps (see ClockModule); the system clock unless given. */
  static async start(overrides: Record<string, string> = {}, opts: { clock?: Clock } = {}): Promise<TestStack> {
    const stack = new TestStack();
    stack.config = loadConfigWith(overrides);
    stack.db = new Pool({ connectionString: stack.config.database.url, max: 4 });
    // an idle client closed by the server (a scratch database dropped WITH (FORCE)) is no failure
    stack.db.on('error', () => undefined);
    stack.queueApi = await createQueueApi(stack.config, opts);
    await stack.queueApi.listen(0, '127.0.0.1');
    // the console's CMQ calls go to this stack's queue-api
    if (!overrides.CONSOLE_CMQ_ENDPOINT) stack.config = loadConfigWith({ ...overrides, CONSOLE_CMQ_ENDPOINT: stack.cmqEndpoint });
    stack.billingApi = await createBillingApi(stack.config, opts);
    await stack.billingApi.listen(0, '127.0.0.1');
    return stack;
  }

  get cmqEndpoint(): string {
    return `http://127.0.0.1:${port(this.queueApi)}`;
  }

  get cmqPort(): number {
    return port(this.queueApi);
  }

  get billingUrl(): string {
    return `http://127.0.0.1:${port(this.billingApi)}`;
  }

  /** Calls the internal API with the admin token; returns status and parsed body. */
  async admin(method: string, path: string, body?: unknown, token = this.config.adminToken) {
    const res = await fetch(this.billingUrl + path, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = text;
    }
    return { status: res.status, body: json };
  }

  /** A fresh account with one enabled key, through the public internal API. */
  async tenant(name = 'tenant'): Promise<TestTenant> {
    const acc = await this.admin('POST', '/v1/accounts', { name });
    if (acc.status !== 201) throw new Error(`create account: ${acc.status} ${JSON.stringify(acc.body)}`);
    const key = await this.admin('POST', `/v1/accounts/${acc.body.id}/keys`);
    if (key.status !== 201) throw new Error(`create key: ${key.status} ${JSON.stringify(key.body)}`);
    return { accountId: acc.body.id, secretId: key.body.secretId, secretKey: key.body.secretKey };
  }

  client(t: Pick<TestTenant, 'secretId' | 'secretKey'>, opts: Partial<CmqClientOptions> = {}): CmqClient {
    const c = new CmqClient({ endpoint: this.cmqEndpoint, secretId: t.secretId, secretKey: t.secretKey, ...opts });
    this.clients.push(c);
    return c;
  }

  /** What an account has stored: live queues and their messages. */
  async stored(accountId: string): Promise<{ queues: number; messages: number }> {
    const { rows } = await this.db.query(
      `SELECT (SELECT count(*) FROM queues WHERE account_id = $1 AND deleted_at IS NULL)::int AS queues,
              (SELECT count(*) FROM messages m JOIN queues q ON q.id = m.queue_id WHERE q.account_id = $1)::int AS messages`,
      [accountId],
    );
    return rows[0];
  }

  async stop(): Promise<void> {
    this.clients.forEach((c) => c.close());
    await Promise.allSettled([this.queueApi?.close(), this.billingApi?.close()]);
    await this.db?.end();
  }
}
