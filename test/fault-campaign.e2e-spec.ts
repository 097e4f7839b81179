/**
 * The fault campaign's short run (test/chaos/fault-campaign-lib.js; the full one is
 * `npm run chaos:faults`): the cluster topology on a Postgres and a Redis of its own, under a
 * recorded CMQ load, through every fault in turn, then every check of the campaign.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { runCampaign } = require('./chaos/fault-campaign-lib');

interface CampaignResult {
  ok: boolean;
  checks: Array<{ name: string; ok: boolean; detail: string }>;
  faults: Array<{ name: string; recoveryMs: number | null }>;
}

describe('fault campaign (short)', () => {
  it('survives every fault with nothing lost, nothing doubled, the ledger reconciled and honest SLA minutes', async () => {
    const lines: string[] = [];
    const result: CampaignResult = await runCampaign({
      warmup: 4000,
      gap: 5000,
      hold: 5000,
      visibility: 8,
      producers: 2,
      consumers: 2,
      paceMs: 15,
      log: (line: string) => lines.push(line),
    });
    const failed = result.checks.filter((c) => !c.ok);
    if (failed.length) console.error(lines.join('\n'));
    expect(failed).toEqual([]);
    expect(result.faults.map((f) => f.name)).toEqual([
      'kill-queue-api',
      'kill-worker',
      'postgres-restart',
      'postgres-terminate',
      'redis-flushall',
      'redis-restart',
      'worker-clock-jump',
    ]);
    expect(result.checks.map((c) => c.name)).toEqual(
      expect.arrayContaining([
        'no acknowledged message lost',
        'no message delivered twice within its visibility timeout',
        'usage applied exactly once',
        'ledger, aggregates and balances reconcile',
        'the service recovers by itself after every fault',
        'no process crashed',
        "a worker's clock jump moves no probe into another minute",
        'no down minute where the service did not fail',
      ]),
    );
    expect(result.ok).toBe(true);
  }, 300_000);
});
