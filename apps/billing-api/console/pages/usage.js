// Account page: usage. `#/usage?range=7|30&granularity=hour|day&view=action|resource` charts
// the account's billable calls per period (stacked by CMQ action or by queue) from
// GET /v1/accounts/{id}/usage, every page of it (nextCursor, 1000 rows a page), with a table of
// the totals per action or queue. Counts are integer strings (summed as BigInt) and amounts exact
// decimal strings (summed as scaled BigInt): no float arithmetic on money.
import { chart, form, h, messageOf, mount, table } from '../ui.js';

const HOUR = 3_600_000;
const DAY = 86_400_000;

// Day buckets are days of the deployment's BILLING_TIME_ZONE. Its default is Asia/Shanghai
// (UTC+08:00, no daylight saving time), so day ranges are sent as midnights at +08:00. Should the
// deployment use another zone, the API answers 400 naming a midnight of its zone ("such as
// 2026-11-08T00:00:00+09:00"); the page then takes that offset and asks once more.
const DEFAULT_BILLING_OFFSET = '+08:00';

const RANGES = [
  ['7', 'Last 7 days'],
  ['30', 'Last 30 days'],
];
const GRANULARITIES = [
  ['hour', 'Per hour (UTC hours)'],
  ['day', 'Per day (billing days)'],
];
const VIEWS = [
  ['action', 'By action'],
  ['resource', 'By queue'],
];

const PALETTE = ['#0b62d6', '#e8590c', '#2b8a3e', '#ae3ec9', '#c92a2a', '#1098ad', '#f59f00', '#5c7cfa', '#868e96', '#d6336c', '#37b24d', '#7048e8'];

const pad = (n) => String(n).padStart(2, '0');

/** "+08:00" → minutes east of UTC (480); "Z" → 0. */
function offsetMinutes(offset) {
  if (offset === 'Z') return 0;
  const m = /^([+-])(\d\d):(\d\d)$/.exec(offset);
  if (!m) return 0;
  return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
}

/** The instant `ms` written as wall time of a fixed offset: 2026-11-08T00:00:00+08:00. */
function isoAtOffset(ms, offset) {
  const d = new Date(ms + offsetMinutes(offset) * 60_000);
  const wall = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  return wall + (offset === 'Z' ? 'Z' : offset);
}

/**
 * [from, to) of the query. Hours: from = now floored to the UTC hour minus the days, to = the
 * next whole hour. Days: to = the next midnight of the billing zone (so today is included), from
 * = `days` midnights before it.
 */
function rangeOf(days, granularity, offset) {
  const now = Date.now();
  if (granularity === 'hour') {
    const hour = Math.floor(now / HOUR) * HOUR;
    return { from: isoAtOffset(hour - days * DAY, 'Z'), to: isoAtOffset(hour + HOUR, 'Z') };
  }
  const shift = offsetMinutes(offset) * 60_000;
  const todayMidnight = Math.floor((now + shift) / DAY) * DAY - shift; // a fixed offset: every day is 24 hours
  const to = todayMidnight + DAY;
  return { from: isoAtOffset(to - days * DAY, offset), to: isoAtOffset(to, offset) };
}

// ---- exact decimal strings (money) and integer strings (counts) ----

const SCALE = 9;
const TEN_SCALE = 10n ** BigInt(SCALE);

/** "-12.5" → -12500000000n (nanos). */
function toNanos(text) {
  const m = /^(-?)(\d+)(?:\.(\d{1,9}))?$/.exec(String(text ?? '0').trim());
  if (!m) return 0n;
  const v = BigInt(m[2]) * TEN_SCALE + BigInt((m[3] ?? '').padEnd(SCALE, '0'));
  return m[1] === '-' ? -v : v;
}

/** Nanos → a decimal string with at least two decimals and no trailing zeros beyond them. */
function fromNanos(n) {
  const neg = n < 0n;
  const a = neg ? -n : n;
  let frac = (a % TEN_SCALE).toString().padStart(SCALE, '0').replace(/0+$/, '');
  if (frac.length < 2) frac = frac.padEnd(2, '0');
  return `${neg ? '-' : ''}${a / TEN_SCALE}.${frac}`;
}

const big = (s) => {
  try {
    return BigInt(s ?? 0);
  } catch {
    return 0n;
  }
};

/** 1234567n → "1,234,567" (grouping for people; the attribute keeps the plain digits). */
const grouped = (n) => n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');

/** A period for a chart label: the UTC hour in the browser's time, or the billing day's date. */
function periodLabel(period, granularity) {
  if (granularity === 'day') return period.slice(0, 10);
  const d = new Date(period);
  return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:00`;
}

/** The name of a row's action or queue. */
function keyOf(row, view) {
  if (view === 'action') return row.action === '' ? '(action not recorded)' : row.action ?? '(all)';
  return row.resource === '' ? '(account-level, no queue)' : row.resource ?? '(all)';
}

/** Every page of the usage query; `onPage(rowsSoFar)` after each. */
async function fetchAll(api, accountId, params, onPage) {
  const rows = [];
  let cursor = null;
  for (let pages = 0; pages < 1000; pages++) {
    const q = new URLSearchParams(params);
    q.set('limit', '1000');
    if (cursor) q.set('cursor', cursor);
    const page = await api('GET', `/v1/accounts/${encodeURIComponent(accountId)}/usage?${q}`);
    rows.push(...page.usage);
    onPage?.(rows.length);
    cursor = page.nextCursor;
    if (!cursor) break;
  }
  return rows;
}

export async function render(root, ctx) {
  const { api, who, query } = ctx;
  const accountId = who.accountId;
  const pick = (name, options, fallback) => (options.some(([v]) => v === query.get(name)) ? query.get(name) : fallback);
  const state = {
    range: pick('range', RANGES, '7'),
    granularity: pick('granularity', GRANULARITIES, 'hour'),
    view: pick('view', VIEWS, 'action'),
  };
  let billingOffset = DEFAULT_BILLING_OFFSET;

  const status = h('p', { class: 'muted', role: 'status', 'aria-live': 'polite' });
  const results = h('div', {});
  let currentFigure = null;
  let seq = 0;

  const controls = form({
    inline: true,
    submit: 'Show',
    fields: [
      { name: 'range', label: 'Range', type: 'select', options: RANGES, value: state.range, required: true },
      { name: 'granularity', label: 'Granularity', type: 'select', options: GRANULARITIES, value: state.granularity, required: true },
      { name: 'view', label: 'View', type: 'select', options: VIEWS, value: state.view, required: true },
    ],
    onSubmit: async (v) => {
      state.range = v.range;
      state.granularity = v.granularity;
      state.view = v.view;
      // keep the choice in the address (without rendering the page again)
      history.replaceState(null, '', `#/usage?${new URLSearchParams(state)}`);
      await load();
    },
  });
  // a change of any select shows the new figures at once
  for (const input of Object.values(controls.inputs)) input.addEventListener('change', () => controls.requestSubmit());

  const load = async () => {
    const mine = ++seq;
    const days = Number(state.range);
    const params = {
      granularity: state.granularity,
      groupBy: state.view,
      ...rangeOf(days, state.granularity, billingOffset),
    };
    status.textContent = 'Loading usage…';
    let rows;
    try {
      try {
        rows = await fetchAll(api, accountId, params, (n) => {
          if (mine === seq) status.textContent = `Loading usage… ${n} rows so far`;
        });
      } catch (err) {
        // another billing zone than the default: take the offset the API names, ask once more
        const m = state.granularity === 'day' && err?.status === 400 ? /such as \d{4}-\d\d-\d\dT00:00:00(Z|[+-]\d\d:\d\d)/.exec(messageOf(err)) : null;
        if (!m || m[1] === billingOffset) throw err;
        billingOffset = m[1];
        Object.assign(params, rangeOf(days, state.granularity, billingOffset));
        rows = await fetchAll(api, accountId, params);
      }
    } catch (err) {
      if (mine !== seq) return;
      status.textContent = '';
      mount(results, h('p', { class: 'error', role: 'alert' }, messageOf(err)));
      return;
    }
    if (mine !== seq) return;
    status.textContent = `${rows.length} rows for ${params.from} to ${params.to} (${state.granularity === 'hour' ? 'UTC hours' : `billing days at ${billingOffset}`}).`;
    show(rows, params);
  };

  const show = (rows, params) => {
    const view = state.view;
    const granularity = state.granularity;

    // every period of the range, so quiet periods show as gaps
    const periods = [];
    const seen = new Set(rows.map((r) => r.period));
    if (granularity === 'hour') {
      for (let t = Date.parse(params.from); t < Date.parse(params.to); t += HOUR) periods.push(isoAtOffset(t, 'Z'));
    } else {
      for (let t = Date.parse(params.from); t < Date.parse(params.to); t += DAY) periods.push(isoAtOffset(t, billingOffset));
    }
    // periods the API wrote otherwise (another shape of its text) are kept too
    const known = new Set(periods.map((p) => Date.parse(p)));
    for (const p of seen) if (!known.has(Date.parse(p))) periods.push(p);
    periods.sort((a, b) => Date.parse(a) - Date.parse(b));
    const index = new Map(periods.map((p, i) => [Date.parse(p), i]));

    // totals and per-period billable calls per action or queue
    const totals = new Map();
    for (const r of rows) {
      const k = keyOf(r, view);
      let t = totals.get(k);
      if (!t) {
        t = { key: k, calls: 0n, billableCalls: 0n, messages: 0n, amount: 0n, series: new Array(periods.length).fill(0) };
        totals.set(k, t);
      }
      t.calls += big(r.calls);
      t.billableCalls += big(r.billableCalls);
      t.messages += big(r.messages);
      t.amount += toNanos(r.amount);
      t.series[index.get(Date.parse(r.period))] += Number(r.billableCalls);
    }
    const list = [...totals.values()].sort((a, b) => (b.billableCalls > a.billableCalls ? 1 : b.billableCalls < a.billableCalls ? -1 : a.key.localeCompare(b.key)));
    const sum = list.reduce(
      (s, t) => ({ calls: s.calls + t.calls, billableCalls: s.billableCalls + t.billableCalls, messages: s.messages + t.messages, amount: s.amount + t.amount }),
      { calls: 0n, billableCalls: 0n, messages: 0n, amount: 0n },
    );

    const what = view === 'action' ? 'action' : 'queue';
    const label = view === 'action' ? 'Billable calls by action' : 'Billable calls by queue';
    if (currentFigure?.chart) currentFigure.chart.destroy();
    const narrow = window.matchMedia('(max-width: 720px)').matches;
    const figure = chart(label, {
      type: 'bar',
      data: {
        labels: periods.map((p) => periodLabel(p, granularity)),
        datasets: list.map((t, i) => ({ label: t.key, data: t.series, backgroundColor: PALETTE[i % PALETTE.length], stack: 'calls' })),
      },
      options: {
        aspectRatio: narrow ? 0.8 : 2.6,
        interaction: { mode: 'index', intersect: false },
        scales: {
          x: { stacked: true, ticks: { autoSkip: true, maxRotation: 60 } },
          y: { stacked: true, beginAtZero: true, title: { display: true, text: 'billable calls' } },
        },
        plugins: { legend: { display: true, position: 'bottom', labels: { boxWidth: narrow ? 12 : 40 } } },
      },
    });
    figure.style.margin = '0 0 16px';
    currentFigure = figure;
    const canvas = figure.querySelector('canvas');
    canvas.dataset.totalCalls = sum.calls.toString();
    canvas.setAttribute('aria-describedby', 'usage-total-calls');

    const totalRow = { key: 'Total', calls: sum.calls, billableCalls: sum.billableCalls, messages: sum.messages, amount: sum.amount, total: true };
    const cell = (r, text) => (r.total ? h('strong', {}, text) : text);
    mount(
      results,
      h('p', { id: 'usage-total-calls' }, h('strong', {}, `Total calls: ${sum.calls.toString()}`), ` · billable calls: ${sum.billableCalls.toString()} · amount charged: ${fromNanos(sum.amount)} · ${list.length} ${what === 'action' ? 'actions' : 'queues'} (the table below has the figures)`),
      figure,
      h('h2', { id: 'usage-totals' }, view === 'action' ? 'Totals by action' : 'Totals by queue'),
      h('p', { class: 'muted' }, `${RANGES.find(([v]) => v === state.range)[1]}, from ${params.from} to ${params.to} (exclusive). Amounts are what the usage was charged, exactly.`),
      table(
        [
          { key: 'key', label: view === 'action' ? 'Action' : 'Queue', render: (r) => cell(r, r.key) },
          { key: 'calls', label: 'Calls', num: true, render: (r) => cell(r, grouped(r.calls)) },
          { key: 'billableCalls', label: 'Billable calls', num: true, render: (r) => cell(r, grouped(r.billableCalls)) },
          { key: 'messages', label: 'Messages', num: true, render: (r) => cell(r, grouped(r.messages)) },
          { key: 'amount', label: 'Amount', num: true, render: (r) => cell(r, fromNanos(r.amount)) },
        ],
        list.length ? [...list, totalRow] : [],
        { empty: 'No usage in this range.' },
      ),
    );
  };

  mount(
    root,
    h('h1', {}, 'Usage'),
    h(
      'p',
      { class: 'muted' },
      'Calls to your queues and topics, per hour (UTC) or per day of the billing time zone. Billable calls are what the price plan charges: a large message counts as several.',
    ),
    h('section', { class: 'card', 'aria-label': 'What to show' }, controls),
    status,
    results,
  );
  await load();
}
