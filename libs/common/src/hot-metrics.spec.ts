import { Counter, Histogram, Registry } from 'prom-client';
import { HotCounter, HotHistogram } from './hot-metrics';

/** The exposition with each sample's labels in one order: the same series and values compare equal. */
function normalized(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((line) => {
      const m = /^([^{ ]+)\{(.*)\} (.*)$/.exec(line);
      if (!m) return line;
      const labels = m[2].match(/[a-zA-Z_]+="(?:[^"\\]|\\.)*"/g) ?? [];
      return `${m[1]}{${[...labels].sort().join(',')}} ${m[3]}`;
    });
}

/** Registries with the same default label, one per implementation. */
function pair(): [Registry, Registry] {
  const a = new Registry();
  const b = new Registry();
  a.setDefaultLabels({ app: 'queue-api' });
  b.setDefaultLabels({ app: 'queue-api' });
  return [a, b];
}

describe('hot counters and histograms render as prom-client renders its own', () => {
  it('a labelled counter: the same series and values', async () => {
    const [ours, theirs] = pair();
    const hot = new HotCounter({ name: 'x_requests_total', help: 'Requests "quoted" \\ and more', labelNames: ['action', 'code'] }, ours);
    const ref = new Counter({ name: 'x_requests_total', help: 'Requests "quoted" \\ and more', labelNames: ['action', 'code'], registers: [theirs] });
    const send = hot.labels('SendMessage', '0');
    expect(hot.labels('SendMessage', '0')).toBe(send);
    for (let i = 0; i < 5; i++) send.inc();
    hot.labels('ReceiveMessage', '7000').inc(3);
    hot.labels('odd"value\\', '1');
    ref.labels('SendMessage', '0').inc(5);
    ref.labels('ReceiveMessage', '7000').inc(3);
    ref.labels('odd"value\\', '1').inc(0);
    expect(normalized(await ours.metrics())).toEqual(normalized(await theirs.metrics()));
    expect(await ours.metrics()).toContain('x_requests_total{action="SendMessage",code="0",app="queue-api"} 5');
  });

  it('a labelled histogram: the same buckets (edges inclusive), sum and count; non-finite values left out', async () => {
    const [ours, theirs] = pair();
    const buckets = [0.001, 0.01, 0.1, 1];
    const hot = new HotHistogram({ name: 'x_seconds', help: 'Time', labelNames: ['action'], buckets }, ours);
    const ref = new Histogram({ name: 'x_seconds', help: 'Time', labelNames: ['action'], buckets, registers: [theirs] });
    const values = [0, 0.0005, 0.001, 0.0010001, 0.01, 0.05, 0.1, 0.75, 1, 1.5, 30];
    for (const v of values) {
      hot.labels('SendMessage').observe(v);
      ref.labels('SendMessage').observe(v);
    }
    hot.labels('ReceiveMessage').observe(2);
    ref.labels('ReceiveMessage').observe(2);
    hot.labels('SendMessage').observe(NaN);
    hot.labels('SendMessage').observe(Infinity);
    const text = await ours.metrics();
    expect(normalized(text)).toEqual(normalized(await theirs.metrics()));
    expect(text).toContain('x_seconds_bucket{le="0.001",action="SendMessage",app="queue-api"} 3');
    expect(text).toContain('x_seconds_bucket{le="+Inf",action="SendMessage",app="queue-api"} 11');
    expect(text).toContain('x_seconds_count{action="SendMessage",app="queue-api"} 11');
  });

  it('without labels; reset brings every child back to zero', async () => {
    const [ours, theirs] = pair();
    const hot = new HotHistogram({ name: 'x_ops', help: 'Ops per commit', buckets: [1, 2, 4] }, ours);
    const ref = new Histogram({ name: 'x_ops', help: 'Ops per commit', buckets: [1, 2, 4], registers: [theirs] });
    const child = hot.labels();
    for (const v of [1, 3, 9]) {
      child.observe(v);
      ref.observe(v);
    }
    expect(normalized(await ours.metrics())).toEqual(normalized(await theirs.metrics()));
    ours.resetMetrics();
    expect(await ours.metrics()).toContain('x_ops_count{app="queue-api"} 0');
    expect(() => hot.labels('extra')).toThrow('0 label values expected, got 1');
  });
});
