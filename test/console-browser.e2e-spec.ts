import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Browser, BrowserContext, chromium, Page } from 'playwright-core';
import { loadConfigWith } from '@app/config';
import { runMigrations } from '@app/db';
import { MINUTE_MS, monthBounds, monthOf } from '@app/common';
import { expectEventually, parseCsv, scratchDatabase, TestStack, TestTenant } from '@app/testing';
import { createWorker } from '../apps/worker/src/worker.app';

/** Debian's Chromium (.ci/run installs it when missing); CHROMIUM_PATH points elsewhere. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Screenshots of the main pages, kept after the run (test-artifacts/ is not committed). */
const ARTIFACTS = join(__dirname, '..', 'test-artifacts', 'console');
const TZ = 'Asia/Shanghai';

/**
 * The web console in real headless Chromium against the real apps (queue-api, billing-api and a
 * worker, on a database and Redis prefix of their own): an account signs in with its key pair,
 * creates a queue, sends and receives a message, sees its usage chart count the calls, downloads
 * a bill CSV whose total is the API's; an operator announces maintenance and tops an account up;
 * and the console's token reaches no other account's data, whatever the request says.
 */
describe('web console in Chromium', () => {
  let db: { url: string; drop: () => Promise<void> };
  let stack: TestStack;
  let worker: NestFastifyApplication;
  let browser: Browser;
  let tenant: TestTenant;
  let other: TestTenant;
  /** the clock of the apps: the system's until the spec moves it past the month */
  let offset = 0;
  const clock = { now: () => Date.now() + offset };
  const month = monthOf(Date.now(), TZ);

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`);
    mkdirSync(ARTIFACTS, { recursive: true });
    db = await scratchDatabase();
    const overrides = {
      DATABASE_URL: db.url,
      REDIS_PREFIX: `${process.env.REDIS_PREFIX}:console`,
      BILLING_TIME_ZONE: TZ,
      USAGE_RELAY_INTERVAL_MS: '50',
      SWEEP_INTERVAL_MS: '600000',
    };
    await runMigrations(loadConfigWith(overrides));
    stack = await TestStack.start(overrides, { clock });
    worker = await createWorker(stack.config, { clock });
    await worker.listen(0, '127.0.0.1');
    tenant = await stack.tenant('console user');
    other = await stack.tenant('someone else');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await worker?.close();
    await stack?.stop();
    await db?.drop();
  });

  /** A page whose console errors fail the spec (a broken script must not pass unnoticed). */
  async function newPage(context: BrowserContext): Promise<{ page: Page; errors: string[] }> {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !/status of 4\d\d/.test(msg.text())) errors.push(msg.text());
    });
    return { page, errors };
  }

  const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

  async function signInWithKey(page: Page, t: TestTenant): Promise<void> {
    await page.goto(`${stack.billingUrl}/console/`);
    await page.getByLabel('SecretId').fill(t.secretId);
    await page.getByLabel('SecretKey').fill(t.secretKey);
    await page.getByRole('button', { name: 'Sign in' }).first().click();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Queues' }).waitFor();
  }

  /** Billable calls of the account in the usage API (every hour of the last day). */
  async function apiCalls(accountId: string): Promise<number> {
    const to = new Date(Math.ceil((clock.now() + 1) / 3_600_000) * 3_600_000);
    const from = new Date(to.getTime() - 2 * 86_400_000);
    const r = await stack.admin('GET', `/v1/accounts/${accountId}/usage?from=${from.toISOString()}&to=${to.toISOString()}&groupBy=none&limit=1000`);
    return (r.body.usage as Array<{ calls: string }>).reduce((n, u) => n + Number(u.calls), 0);
  }

  it('an account signs in, makes a queue, sends and receives, and sees the usage chart count its calls', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    const { page, errors } = await newPage(context);
    await signInWithKey(page, tenant);
    await shot(page, 'queues-empty');

    await page.getByLabel('Queue name').fill('orders');
    await page.getByRole('button', { name: 'Create queue' }).click();
    await page.getByRole('heading', { name: /orders/ }).waitFor();
    await page.getByLabel('Message body').fill('hello from the console');
    await page.getByRole('button', { name: 'Send message' }).click();
    await page.getByText(/msgId/i).first().waitFor();
    await page.getByRole('button', { name: 'Receive messages' }).click();
    await page.getByText('hello from the console').first().waitFor();
    await shot(page, 'queue');
    // the console's calls are the account's own CMQ calls
    expect((await stack.client(tenant).call('ListQueue', {})).queueList).toEqual([expect.objectContaining({ queueName: 'orders' })]);

    // the usage chart shows what the API counts, and follows new calls
    await expectEventually(async () => expect(await apiCalls(tenant.accountId)).toBeGreaterThan(0), 10_000);
    const before = await apiCalls(tenant.accountId);
    await page.goto(`${stack.billingUrl}/console/#/usage`);
    const totalOf = async () => Number((await page.locator('canvas[data-total-calls]').first().getAttribute('data-total-calls')) ?? 'NaN');
    const chartMatchesApi = () =>
      expectEventually(
        async () => {
          await page.reload();
          await page.locator('canvas[data-total-calls]').first().waitFor();
          expect(await totalOf()).toBe(await apiCalls(tenant.accountId));
        },
        15_000,
        500,
      );
    await chartMatchesApi();
    expect(await totalOf()).toBeGreaterThanOrEqual(before);
    const sdk = stack.client(tenant);
    for (let i = 0; i < 5; i++) expect((await sdk.call('SendMessage', { queueName: 'orders', msgBody: `m${i}` })).code).toBe(0);
    await expectEventually(async () => expect(await apiCalls(tenant.accountId)).toBeGreaterThanOrEqual(before + 5), 10_000);
    await chartMatchesApi();
    expect(await totalOf()).toBeGreaterThanOrEqual(before + 5);
    await page.getByText(`Total calls: ${await totalOf()}`).first().waitFor();
    await shot(page, 'usage');

    for (const [route, name] of [['keys', 'keys'], ['sla', 'sla'], ['data', 'data'], ['audit', 'audit'], ['topics', 'topics']] as const) {
      await page.goto(`${stack.billingUrl}/console/#/${route}`);
      await page.getByRole('heading', { level: 1 }).waitFor();
      await page.waitForLoadState('networkidle');
      await shot(page, name);
    }
    // at phone width the navigation folds into a menu and the page still works
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${stack.billingUrl}/console/#/queues/orders`);
    await page.getByRole('button', { name: 'Menu' }).waitFor();
    await page.getByRole('heading', { name: /orders/ }).waitFor();
    await shot(page, 'queue-phone');
    expect(errors).toEqual([]);
    await context.close();
  });

  it("the console's token reaches no other account's data, whatever URL or request is made with it", async () => {
    const context = await browser.newContext();
    const { page } = await newPage(context);
    await signInWithKey(page, tenant);
    const statuses = await page.evaluate(async (otherId: string) => {
      const token = (globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }).sessionStorage.getItem('cmq-console-token');
      const get = async (path: string, init: RequestInit = {}) =>
        (await fetch(path, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers ?? {}) } })).status;
      return {
        account: await get(`/v1/accounts/${otherId}`),
        balance: await get(`/v1/accounts/${otherId}/balance`),
        ledger: await get(`/v1/accounts/${otherId}/ledger`),
        keys: await get(`/v1/accounts/${otherId}/keys`, { method: 'POST', body: '{}' }),
        bills: await get(`/v1/exports/bills.csv?from=2026-01&to=2026-02&accountId=${otherId}`),
        everyone: await get('/v1/exports/bills.csv?from=2026-01&to=2026-02'),
        topup: await get(`/v1/accounts/${otherId}/topups`, { method: 'POST', body: JSON.stringify({ amount: '1.00' }), headers: { 'idempotency-key': 'x' } }),
        accounts: await get('/v1/accounts'),
      };
    }, other.accountId);
    expect(statuses).toEqual({ account: 404, balance: 404, ledger: 404, keys: 404, bills: 404, everyone: 404, topup: 403, accounts: 403 });
    // a hand-made CMQ call names the signed-in key's account whatever it says
    const reply = await page.evaluate(async () => {
      const token = (globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }).sessionStorage.getItem('cmq-console-token');
      const r = await fetch('/console/api/cmq', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ action: 'ListQueue', params: {} }),
      });
      return r.json() as Promise<{ queueList: Array<{ queueName: string }> }>;
    });
    expect(reply.queueList.map((q: { queueName: string }) => q.queueName)).toEqual(['orders']);
    // the account pages use the signed-in account, not one in the URL
    await page.goto(`${stack.billingUrl}/console/#/billing?account=${other.accountId}`);
    await page.getByRole('heading', { level: 1 }).waitFor();
    expect(await page.content()).not.toContain(other.accountId);
    await context.close();
  });

  it("downloads a closed month's bill as CSV whose total is the API's", async () => {
    const top = await fetch(`${stack.billingUrl}/v1/accounts/${tenant.accountId}/topups`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.config.adminToken}`, 'content-type': 'application/json', 'idempotency-key': 'console-bill' },
      body: JSON.stringify({ amount: '10.00' }),
    });
    expect(top.status).toBe(201);
    // usage applied, then the apps' clock past the month's end, and the month's bills closed
    await expectEventually(async () => {
      const { rows } = await stack.db.query(`SELECT count(*)::int AS n FROM usage_outbox`);
      expect(rows[0].n).toBe(0);
    }, 10_000);
    offset = monthBounds(month, TZ).end * MINUTE_MS + 3_600_000 - Date.now();
    const closed = await fetch(`${stack.billingUrl}/v1/bills/${month}/close`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.config.adminToken}`, 'x-operator': 'console-spec' },
    });
    expect(closed.status).toBe(200);
    const bill = (await stack.admin('GET', `/v1/accounts/${tenant.accountId}/bills/${month}`)).body;
    expect(bill.month).toBe(month);

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    const { page, errors } = await newPage(context);
    await signInWithKey(page, tenant);
    await page.goto(`${stack.billingUrl}/console/#/billing`);
    const row = page.getByRole('row', { name: new RegExp(`^${month} `) });
    await row.waitFor();
    await shot(page, 'billing');
    const [download] = await Promise.all([page.waitForEvent('download'), row.getByRole('button', { name: 'Download CSV' }).click()]);
    const file = await download.path();
    const rows = parseCsv(readFileSync(file!, 'utf8').replace(/^\uFEFF/, ''));
    const header = rows[0];
    const data = rows.slice(1).map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]])));
    expect(data).toHaveLength(1);
    expect(data[0]).toMatchObject({ account_id: tenant.accountId, month });
    expect(data[0].total).toBe(bill.total);
    expect(data[0].amount_due).toBe(bill.amountDue);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('an operator announces maintenance and tops an account up', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const { page, errors } = await newPage(context);
    await page.goto(`${stack.billingUrl}/console/`);
    await page.getByLabel('Operator token').fill(stack.config.adminToken);
    await page.getByRole('button', { name: 'Sign in' }).nth(1).click();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Maintenance' }).click();
    // a window starting in two days (app time), two hours long, in local time as the form takes it
    const start = new Date(clock.now() + 2 * 86_400_000);
    start.setMinutes(0, 0, 0);
    const end = new Date(start.getTime() + 2 * 3_600_000);
    const local = (d: Date) => new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
    await page.getByLabel('Starts at').fill(local(start));
    await page.getByLabel('Ends at').fill(local(end));
    await page.getByLabel('Reason').first().fill('database upgrade');
    await page.getByRole('button', { name: 'Announce maintenance' }).click();
    await page.getByText('database upgrade').first().waitFor();
    const windows = (await stack.admin('GET', '/v1/sla/maintenance')).body;
    expect(windows).toEqual(expect.arrayContaining([expect.objectContaining({ reason: 'database upgrade', startsAt: start.toISOString(), endsAt: end.toISOString() })]));
    await shot(page, 'ops-maintenance');

    expect((await stack.admin('GET', `/v1/accounts/${other.accountId}/balance`)).body.cash).toBe('0.00');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Accounts' }).click();
    await page.getByLabel('Search accounts').fill('someone else');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByRole('link', { name: /someone else/ }).first().click();
    await page.getByLabel('Top-up amount').fill('25.50');
    await page.getByRole('button', { name: 'Top up' }).click();
    await expectEventually(async () => {
      const after = (await stack.admin('GET', `/v1/accounts/${other.accountId}/balance`)).body.cash;
      expect(after).toBe('25.50');
    }, 5000);
    await page.getByText('25.50').first().waitFor();
    await shot(page, 'ops-account');
    for (const [route, name] of [['ops/sla', 'ops-sla'], ['ops/exports', 'ops-exports'], ['ops/incidents', 'ops-incidents']] as const) {
      await page.goto(`${stack.billingUrl}/console/#/${route}`);
      await page.getByRole('heading', { level: 1 }).waitFor();
      await page.waitForLoadState('networkidle');
      await shot(page, name);
    }
    expect(errors).toEqual([]);
    await context.close();
  });
});
