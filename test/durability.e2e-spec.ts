import { randomBytes } from 'node:crypto';
import { CmqClient, CmqReply } from '@app/cmq';
import { freePort, sleep, SpawnedApp, spawnApp, TestStack, TestTenant, waitForHttp } from '@app/testing';

const SENDERS = 32;
const MAX_BATCH = 16;
/** the kill comes once this many messages are acknowledged (or after KILL_AFTER_MS at the latest) */
const KILL_AT_ACKED = 2000;
const KILL_AFTER_MS = 3000;

/** A request that did not come back with a reply: it may or may not have been stored. */
interface Unanswered {
  bodies: string[];
  error: string;
}

/**
 * The durability promise of SendMessage and BatchSendMessage: a send answered with code 0 is
 * committed. A queue-api process is killed with SIGKILL (no shutdown hook runs) while it is
 * under load from many senders; a new process on the same database must then deliver every
 * acknowledged message, once, with its body. Messages of requests the kill left unanswered may
 * or may not be there (delivery is at-least-once), but nothing else may be.
 */
describe('durability: queue-api killed with SIGKILL under load', () => {
  let stack: TestStack;
  let tenant: TestTenant;
  const apps: SpawnedApp[] = [];
  const clients: CmqClient[] = [];

  async function startQueueApi(): Promise<{ app: SpawnedApp; client: CmqClient }> {
    const port = await freePort();
    const app = spawnApp('queue-api', { CMQ_PORT: String(port), HOST: '127.0.0.1' });
    apps.push(app);
    await waitForHttp(`http://127.0.0.1:${port}/health`);
    // a client of its own: its keep-alive sockets belong to this process only
    const client = new CmqClient({ endpoint: `http://127.0.0.1:${port}`, secretId: tenant.secretId, secretKey: tenant.secretKey });
    clients.push(client);
    return { app, client };
  }

  beforeAll(async () => {
    stack = await TestStack.start();
    tenant = await stack.tenant('durability');
    // received messages stay invisible for the rest of the test, so the drain sees each once
    const created = await stack.client(tenant).call('CreateQueue', { queueName: 'durable', visibilityTimeout: 3600 });
    expect(created.code).toBe(0);
  }, 60_000);

  afterAll(async () => {
    clients.forEach((c) => c.close());
    await Promise.all(apps.map((a) => a.stop('SIGKILL')));
    await stack?.stop();
  });

  it('every acknowledged send survives a SIGKILL mid-load and is received exactly once after restart', async () => {
    const first = await startQueueApi();

    // --- load: SENDERS loops of SendMessage and BatchSendMessage, until told to stop ---
    const acked = new Map<string, string>(); // msgId -> body
    const unanswered: Unanswered[] = [];
    const refused: CmqReply[] = [];
    let inFlight = 0;
    let stopping = false;
    let inFlightAtKill = 0;
    let ackedAtKill = 0;
    const loadStarted = Date.now();

    // The kill, with requests in flight; no sender starts another request after it. It comes
    // right as a reply is taken in, when a server that answered before committing would still
    // hold that reply's messages uncommitted.
    const kill = () => {
      if (stopping) return;
      stopping = true;
      inFlightAtKill = inFlight;
      ackedAtKill = acked.size;
      first.app.child.kill('SIGKILL');
    };

    const sender = async (loop: number) => {
      for (let seq = 0; !stopping; seq++) {
        const n = seq % 3 === 0 ? 1 : 1 + ((loop + seq) % MAX_BATCH);
        // unique bodies of varied length, so a body can be traced to the one request that sent it
        const bodies = Array.from({ length: n }, (_, j) => `${loop}.${seq}.${j}:${randomBytes(4 + ((seq * 7 + j) % 60)).toString('hex')}`);
        const single = n === 1 && seq % 2 === 0;
        let reply: CmqReply;
        inFlight++;
        try {
          reply = single
            ? await first.client.call('SendMessage', { queueName: 'durable', msgBody: bodies[0] })
            : await first.client.call('BatchSendMessage', { queueName: 'durable', msgBody: bodies });
        } catch (err) {
          unanswered.push({ bodies, error: (err as NodeJS.ErrnoException).code ?? (err as Error).message });
          continue;
        } finally {
          inFlight--;
        }
        if (reply.code !== 0) {
          refused.push(reply);
          continue;
        }
        const ids = single ? [reply.msgId as string] : (reply.msgList as Array<{ msgId: string }>).map((m) => m.msgId);
        expect(ids).toHaveLength(n);
        ids.forEach((id, j) => acked.set(id, bodies[j]));
        if (acked.size >= KILL_AT_ACKED) kill();
      }
    };

    const senders = Array.from({ length: SENDERS }, (_, i) => sender(i));
    while (!stopping && Date.now() - loadStarted < KILL_AFTER_MS) await sleep(5);
    kill();
    await first.app.exited;
    expect(first.app.child.signalCode).toBe('SIGKILL');
    // a request to the dead process must fail, not hang
    let timer: NodeJS.Timeout | undefined;
    const settled = await Promise.race([
      Promise.all(senders).then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 10_000))),
    ]);
    clearTimeout(timer);
    expect(settled).toBe(true);
    first.client.close();

    expect(refused).toEqual([]);
    expect(ackedAtKill).toBeGreaterThan(0);
    // the kill really was mid-load: requests were in flight (their replies may still have made it
    // out, so how many go unanswered varies from run to run, zero included)
    expect(inFlightAtKill).toBeGreaterThan(0);
    expect(unanswered.length).toBeLessThanOrEqual(inFlightAtKill);
    unanswered.forEach((u) => expect(u.error).toMatch(/ECONNRESET|socket hang up|EPIPE|aborted/));

    // --- restart on the same database and drain the queue ---
    const second = await startQueueApi();
    const received: Array<{ msgId: string; msgBody: string }> = [];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (;;) {
          const r = await second.client.call('BatchReceiveMessage', { queueName: 'durable', numOfMsg: MAX_BATCH, pollingWaitSeconds: 0 });
          if (r.code === 7000) return;
          expect(r.code).toBe(0);
          for (const m of r.msgInfoList as Array<{ msgId: string; msgBody: string }>) received.push({ msgId: m.msgId, msgBody: m.msgBody });
        }
      }),
    );

    // every message stored was drained
    expect((await stack.stored(tenant.accountId)).messages).toBe(received.length);

    // received exactly once: no id twice, and no body twice (bodies are unique per send)
    const byId = new Map(received.map((m) => [m.msgId, m.msgBody]));
    expect(byId.size).toBe(received.length);
    expect(new Set(received.map((m) => m.msgBody)).size).toBe(received.length);

    // every acknowledged message is there, with the body that was sent
    const missing = [...acked.keys()].filter((id) => !byId.has(id));
    const wrongBody = [...acked].filter(([id, body]) => byId.has(id) && byId.get(id) !== body).map(([id]) => id);
    const lost = { missing: missing.length, wrongBody: wrongBody.length, examples: [...missing, ...wrongBody].slice(0, 5) };
    expect(lost).toEqual({ missing: 0, wrongBody: 0, examples: [] });

    // anything else comes from a request the kill left unanswered, and such a request's
    // messages (one statement, one commit) are stored all together or not at all
    const unansweredBodies = new Set(unanswered.flatMap((u) => u.bodies));
    const extras = received.filter((m) => !acked.has(m.msgId));
    expect(extras.filter((m) => !unansweredBodies.has(m.msgBody))).toEqual([]);
    expect(extras.length).toBeLessThanOrEqual(inFlightAtKill * MAX_BATCH);
    const receivedBodies = new Set(received.map((m) => m.msgBody));
    const partial = unanswered.filter((u) => {
      const stored = u.bodies.filter((b) => receivedBodies.has(b)).length;
      return stored !== 0 && stored !== u.bodies.length;
    });
    expect(partial).toEqual([]);
  }, 60_000);
});
