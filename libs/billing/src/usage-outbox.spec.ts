import { decodeUsage, encodeUsage } from './usage-outbox';
import { RequestMeter } from './request-meter';
import type { UsageRecord } from './usage-applier';

const MINUTE = 60_000;

function meter(action: string, resource: string, bytes: number[], at: number, outcome: UsageRecord['outcome'] = 'ok'): UsageRecord {
  const m = new RequestMeter('acct-1', 'ap-guangzhou', action, at);
  m.resource = resource;
  m.messageBytes = bytes;
  return m.settle(outcome).record();
}

describe('encodeUsage', () => {
  it('sums records per key, whatever their order, and decodes back to the sums', () => {
    const t0 = 1_764_000_000_000;
    const records = [
      meter('SendMessage', 'a', [100], t0),
      meter('SendMessage', 'b', [3000], t0 + 1),
      meter('SendMessage', 'a', [70_000], t0 + 2),
      meter('SendMessage', 'a', [10], t0 + MINUTE), // the next minute
      meter('SendMessage', 'b', [5000], t0 + 3),
      meter('SendMessage', 'a', [1], t0 + 4, 'client_error'),
      meter('BatchSendMessage', 'a', [1, 2], t0 + 5),
    ];
    const rows = decodeUsage(JSON.parse(JSON.stringify(encodeUsage(records))));
    const at = Math.floor(t0 / MINUTE) * MINUTE;
    const pick = (r: UsageRecord) => [r.resource, r.action, r.outcome, r.at, r.calls, r.messages, r.bytesIn, r.billable.size_bands, r.billable.per_64k];
    expect(rows.map(pick)).toEqual([
      ['a', 'SendMessage', 'ok', at, 2, 2, 70_100, 1 + 16, 1 + 2],
      ['b', 'SendMessage', 'ok', at, 2, 2, 8000, 2 + 4, 1 + 1],
      ['a', 'SendMessage', 'ok', at + MINUTE, 1, 1, 10, 1, 1],
      ['a', 'SendMessage', 'client_error', at, 1, 0, 0, 0, 0],
      ['a', 'BatchSendMessage', 'ok', at, 1, 2, 3, 2, 1],
    ]);
  });
});
