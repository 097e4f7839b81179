import { CmqClient } from '@app/cmq';
import { freePort } from './free-port';
import { SpawnedApp, spawnApp, waitForHttp } from './spawn-app';
import type { TestTenant } from './test-stack';

/** queue-api processes of their own on one database and Redis, as a load balancer would run them. */
export class QueueApiProcesses {
  readonly apps: SpawnedApp[] = [];
  readonly clients: CmqClient[] = [];

  /** Starts `count` processes with some variables replaced; one client of `tenant` per process. */
  static async start(tenant: TestTenant, count: number, env: Record<string, string> = {}): Promise<QueueApiProcesses> {
    const p = new QueueApiProcesses();
    for (let i = 0; i < count; i++) {
      const port = await freePort();
      p.apps.push(spawnApp('queue-api', { CMQ_PORT: String(port), HOST: '127.0.0.1', ...env }));
      await waitForHttp(`http://127.0.0.1:${port}/health`);
      p.clients.push(new CmqClient({ endpoint: `http://127.0.0.1:${port}`, secretId: tenant.secretId, secretKey: tenant.secretKey }));
    }
    return p;
  }

  async stop(): Promise<void> {
    this.clients.forEach((c) => c.close());
    await Promise.all(this.apps.map((a) => a.stop()));
  }
}
