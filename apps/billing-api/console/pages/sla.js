// Account page: SLA. `#/sla?month=YYYY-MM` (default: this month) shows the account's month from
// GET /v1/sla/accounts/{id}/months/{month}: availability against the target, downtime, coverage,
// the credit, whether the month is closed (and its revision), an outage timeline over the
// month's days (counted, partly excluded and not counted outages in different colours), the
// outages with their exclusions, the maintenance windows that applied or came too late, and the
// printable report (fetched with the bearer token, opened from a Blob URL).
import { button, chart, form, h, kv, messageOf, mount, table, when } from '../ui.js';



const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;
const pad = (n) => String(n).padStart(2, '0');
const DAY = 86_400_000;

function thisMonth() {
  const d = new Date();
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}`;
}

/** "2026-12" moved by `delta` months. */
function shiftMonth(month, delta) {
  const [y, m] = month.split('-').map(Number);
  const i = y * 12 + (m - 1) + delta;
  return `${Math.floor(i / 12)}-${pad((i % 12) + 1)}`;
}

const daysIn = (month) => {
  const [y, m] = month.split('-').map(Number);
  return new Date(Date.UTC(y, m, 0)).getUTCDate();
};

/** The offset of a local ISO time: "2026-12-01T14:10:00+08:00" → "+08:00". */
const offsetOf = (iso) => /([+-]\d\d:\d\d|Z)$/.exec(iso ?? '')?.[1] ?? null;

/** Local ISO time for people: "2026-12-01T14:10:00+08:00" → "2026-12-01 14:10 (+08:00)". */
const local = (iso) => (iso ? `${iso.slice(0, 10)} ${iso.slice(11, 16)} (${offsetOf(iso) ?? ''})` : '—');

/** An instant as wall time of the IANA zone `timeZone`: "2026-12-01 14:30"; the browser's own time if the zone is unknown to it. */
function zoned(iso, timeZone) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  try {
    const parts = Object.fromEntries(
      new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
        .formatToParts(d)
        .map((p) => [p.type, p.value]),
    );
    return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}`;
  } catch {
    return when(iso);
  }
}

/** Minutes as words. */
function minutes(n) {
  if (n === null || n === undefined) return '—';
  if (n < 60) return `${n} min`;
  const hrs = Math.floor(n / 60);
  const rest = n % 60;
  return `${n} min (${hrs} h${rest ? ` ${rest} min` : ''})`;
}

const CAUSES = {
  maintenance: 'announced maintenance',
  user: 'caused by the user',
  third_party: 'a third party',
  force_majeure: 'force majeure',
};

/** What became of an outage, in a word and a colour. */
function outageKind(o) {
  if (!o.counted) return { key: 'short', label: 'Not counted (shorter than the minimum outage)', color: '#868e96' };
  if (o.countedMinutes === 0) return { key: 'excluded', label: 'Excluded (maintenance or attribution)', color: '#1098ad' };
  if (o.countedMinutes < o.monthMinutes) return { key: 'partly', label: 'Counted in part (some minutes excluded)', color: '#f59f00' };
  return { key: 'counted', label: 'Counted as downtime', color: '#c92a2a' };
}

/** The outage timeline: a floating horizontal bar per outage over the month's days (1 … n+1). */
function timeline(report) {
  const n = daysIn(report.month);
  const offset = offsetOf(report.outages[0]?.startLocal) ?? '+08:00';
  const monthStart = Date.parse(`${report.month}-01T00:00:00${offset === 'Z' ? 'Z' : offset}`);
  const dayOf = (iso) => 1 + (Date.parse(iso) - monthStart) / DAY;
  const clamp = (x) => Math.min(n + 1, Math.max(1, x));
  const kinds = ['counted', 'partly', 'excluded', 'short'];
  const labels = report.outages.map((o, i) => `#${i + 1} ${o.startLocal.slice(5, 10)} ${o.startLocal.slice(11, 16)}`);
  const byKind = new Map();
  report.outages.forEach((o, i) => {
    const k = outageKind(o);
    if (!byKind.has(k.key)) byKind.set(k.key, { label: k.label, color: k.color, data: new Array(report.outages.length).fill(null) });
    const s = clamp(dayOf(o.startUtc));
    const e = Math.max(clamp(dayOf(o.endUtc)), s);
    byKind.get(k.key).data[i] = [s, e];
  });
  const datasets = kinds
    .filter((k) => byKind.has(k))
    .map((k) => {
      const d = byKind.get(k);
      return { label: d.label, data: d.data, backgroundColor: d.color, borderColor: d.color, borderWidth: 1, borderSkipped: false, minBarLength: 5, barPercentage: 0.9, categoryPercentage: 0.9 };
    });
  const narrow = window.matchMedia('(max-width: 720px)').matches;
  const rows = Math.max(report.outages.length, 1);
  const fig = chart('Outages this month', {
    type: 'bar',
    data: { labels: labels.length ? labels : ['No outages'], datasets },
    options: {
      indexAxis: 'y',
      aspectRatio: Math.max(narrow ? 0.9 : 1.6, (narrow ? 2.2 : 5) - rows * 0.25),
      scales: {
        x: {
          type: 'linear',
          min: 1,
          max: n + 1,
          ticks: { stepSize: narrow ? 5 : 1, callback: (v) => (Number.isInteger(v) && v <= n ? String(v) : '') },
          title: { display: true, text: `day of ${report.month} (${report.timeZone})` },
        },
        y: { stacked: true },
      },
      plugins: {
        legend: { display: datasets.length > 0, position: 'bottom' },
        tooltip: {
          callbacks: {
            label: (c) => {
              const o = report.outages[c.dataIndex];
              if (!o) return '';
              return `${local(o.startLocal)} – ${local(o.endLocal)}: ${o.monthMinutes} min this month, ${o.countedMinutes} counted`;
            },
          },
        },
      },
    },
  });
  fig.style.margin = '0 0 16px';
  return fig;
}

/** Fetches the printable report with the bearer token and opens it from a Blob URL. */
async function openReport(api, path, win, fallbackBox) {
  const html = await api('GET', path, { raw: true });
  const url = URL.createObjectURL(new Blob([html], { type: 'text/html' }));
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  if (win && !win.closed) {
    win.location.href = url;
    return;
  }
  // pop-ups blocked: show it on this page instead
  mount(
    fallbackBox,
    h('p', { class: 'muted' }, 'Your browser did not open a new window, so the report is shown here; use your browser’s print command inside it.'),
    h('iframe', { title: 'Printable SLA report', srcdoc: html, style: 'width:100%; min-height:70vh; border:1px solid var(--line); background:#fff' }),
  );
}

export async function render(root, ctx) {
  const { api, who, query, navigate } = ctx;
  const accountId = who.accountId;
  const asked = query.get('month');
  const month = asked && MONTH.test(asked) ? asked : thisMonth();
  const go = (m) => navigate(`sla?month=${m}`);
  const path = `/v1/sla/accounts/${encodeURIComponent(accountId)}/months/${month}`;

  const picker = h(
    'div',
    { class: 'row', style: 'align-items:end' },
    h(
      'div',
      { style: 'display:flex; gap:8px; align-items:end; flex:0 1 auto' },
      button(`← ${shiftMonth(month, -1)}`, async () => go(shiftMonth(month, -1)), { kind: 'secondary', title: 'The month before' }),
      button(`${shiftMonth(month, 1)} →`, async () => go(shiftMonth(month, 1)), { kind: 'secondary', title: 'The month after' }),
    ),
    form({
      inline: true,
      submit: 'Show month',
      fields: [{ name: 'month', label: 'Month (YYYY-MM)', type: 'month', value: month, required: true, pattern: '\\d{4}-(0[1-9]|1[0-2])', placeholder: '2026-11' }],
      onSubmit: async (v) => {
        if (!MONTH.test(v.month)) throw Object.assign(new Error('Give the month as YYYY-MM, e.g. 2026-11.'), { field: 'month' });
        go(v.month);
      },
    }),
  );

  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  mount(root, h('h1', {}, 'SLA'), h('section', { class: 'card', 'aria-label': 'Which month' }, picker), body);

  let report;
  try {
    report = await api('GET', path);
  } catch (err) {
    mount(body, h('p', { class: 'error', role: 'alert' }, messageOf(err)));
    return;
  }

  const future = month > thisMonth();
  const reportBox = h('div', {});
  const reportLink = h('a', { href: `#/sla?month=${month}` }, 'Printable report');
  reportLink.addEventListener('click', async (ev) => {
    ev.preventDefault();
    // the window opens now, while the click counts as the user's; the report goes into it when fetched
    const win = window.open('', '_blank');
    if (win) win.document.write('<!doctype html><title>SLA report</title><p style="font-family:system-ui">Loading the report…</p>');
    try {
      await openReport(api, `${path}/report.html`, win, reportBox);
    } catch (err) {
      if (win) win.close();
      mount(reportBox, h('p', { class: 'error', role: 'alert' }, messageOf(err)));
    }
  });

  const standing = report.closed
    ? `Closed: revision ${report.revision}${report.reason ? ` (recomputed: ${report.reason})` : ''}. These are the final figures.`
    : future
      ? 'This month has not begun: nothing is measured yet.'
      : 'Open: the figures so far. The month is judged when it closes, shortly after it ends.';

  const headline = h(
    'p',
    { style: 'font-size:1.1em' },
    h('strong', { class: report.meetsTarget ? 'ok' : 'error' }, `${report.availability}% available`),
    ` against a target of ${report.target}% — `,
    report.meetsTarget ? 'the target is met.' : 'below the target.',
  );

  const creditText = !report.servicePeriod
    ? `No credit: the account did not hold service for the whole month, so the figures are for information only${report.creditPercent > 0 ? ` (a whole month would have earned ${report.creditPercent}% of the cash fee ${report.feeBase})` : ''}.`
    : report.creditPercent > 0
      ? `${report.credit} as a voucher: ${report.creditPercent}% of the month’s cash fee ${report.feeBase}${report.closed ? '' : ' (so far; granted when the month closes)'}.`
      : `None: ${report.creditPercent}% (the month’s cash fee so far is ${report.feeBase}).`;

  mount(
    body,
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'sla-summary' },
      h('h2', { id: 'sla-summary' }, `Summary for ${report.month}`),
      headline,
      h('p', {}, standing),
      kv([
        ['Availability', `${report.availability}%`],
        ['Target', `${report.target}%`],
        ['Downtime counted', minutes(report.downtimeMinutes)],
        ['Minutes in the month', String(report.totalMinutes)],
        ['Minutes without a signal', minutes(report.unknownMinutes)],
        ['Coverage', h('span', { class: report.coverageAlert ? 'error' : undefined }, `${report.coverage}%${report.coverageAlert ? ' — under the alert line in some window' : ''}`)],
        ['Service period', report.servicePeriod ? 'Whole month: a credit is granted if availability is below the target' : 'Partial month: no credit'],
        ['Credit percent', `${report.creditPercent}%`],
        ['Credit', creditText],
        ['Month closed', report.closed ? `Yes, revision ${report.revision}` : 'No (open)'],
        ['Policy', `Version ${report.policyVersion}; month in ${report.timeZone}`],
        [
          'Persistence',
          report.persistence?.persistence === null || report.persistence?.persistence === undefined
            ? 'No canary sends this month'
            : `${report.persistence.persistence}% (${report.persistence.lost} lost of ${report.persistence.acknowledged} acknowledged canary sends)`,
        ],
        ['Computed', when(report.computedAt)],
      ]),
      h('p', {}, reportLink, h('span', { class: 'muted' }, ' — opens the same figures as a page to print or save as PDF.')),
      reportBox,
    ),
    h(
      'section',
      { 'aria-labelledby': 'sla-outages' },
      h('h2', { id: 'sla-outages' }, 'Outages'),
      timeline(report),
      report.outages.length === 0 ? h('p', { class: 'muted' }, 'No outages this month.') : null,
      table(
        [
          { key: 'start', label: 'Start', render: (o) => local(o.startLocal) },
          { key: 'end', label: 'End', render: (o) => local(o.endLocal) },
          { key: 'minutes', label: 'Length', num: true, render: (o) => (o.minutes === o.monthMinutes ? `${o.minutes} min` : `${o.minutes} min (${o.monthMinutes} in this month)`) },
          { key: 'countedMinutes', label: 'Counted', num: true, render: (o) => `${o.countedMinutes} min` },
          { key: 'kind', label: 'Outcome', render: (o) => outageKind(o).label },
          {
            key: 'exclusions',
            label: 'Exclusions',
            render: (o) =>
              o.exclusions.length
                ? h(
                    'ul',
                    { style: 'margin:0; padding-left:1.1em' },
                    o.exclusions.map((x) => h('li', {}, `${x.minutes} min: ${CAUSES[x.cause] ?? x.cause} #${x.id} — ${x.reason}`)),
                  )
                : o.counted
                  ? 'none'
                  : 'shorter than the policy’s minimum outage',
          },
        ],
        report.outages,
        { empty: 'No outages.', caption: `Times in ${report.timeZone}. An outage counts only when it lasts at least the policy’s minimum; excluded minutes are not downtime.` },
      ),
    ),
    h(
      'section',
      { 'aria-labelledby': 'sla-maintenance' },
      h('h2', { id: 'sla-maintenance' }, 'Maintenance windows'),
      table(
        [
          { key: 'id', label: 'Window', render: (m) => `#${m.id}` },
          { key: 'region', label: 'Region', render: (m) => m.region ?? 'All regions' },
          { key: 'startsAt', label: 'Starts', render: (m) => zoned(m.startsAt, report.timeZone) },
          { key: 'endsAt', label: 'Ends', render: (m) => zoned(m.endsAt, report.timeZone) },
          { key: 'announcedAt', label: 'Announced', render: (m) => zoned(m.announcedAt, report.timeZone) },
          { key: 'reason', label: 'Reason' },
          {
            key: 'effect',
            label: 'Effect',
            render: (m) =>
              m.applied ? 'Applied: excluded minutes of your outages' : m.inTime ? 'In time, but no outage of yours fell in it' : 'Announced too late: excludes nothing',
          },
        ],
        report.maintenance,
        { empty: 'No maintenance window applied to this month.', caption: `Windows that excluded minutes of your outages, or that were announced too late to. Times in ${report.timeZone}.` },
      ),
    ),
  );
}
