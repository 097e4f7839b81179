// Operator page: the fleet's SLA month. Per region availability (with a chart), probes and
// outages; once closed, the accounts' results and credits. Closes the SLA month and the
// billing month, and downloads the month's SLA results CSV.
import { button, chart, confirmed, form, h, kv, messageOf, mount, saveText, table } from '../ui.js';

const canOperate = (who) => who.role === 'admin' || who.role === 'ops';
const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;

/** The month now in `timeZone` (the browser's when not given or unknown), YYYY-MM. */
function monthNow(timeZone) {
  try {
    const parts = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: '2-digit' }).formatToParts(new Date());
    const y = parts.find((p) => p.type === 'year').value;
    const m = parts.find((p) => p.type === 'month').value;
    return `${y}-${m}`;
  } catch {
    const d = new Date();
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}`;
  }
}

/** A chart's figure without the browser's side margins (it would squeeze the chart on a phone). */
function flush(fig) {
  fig.style.margin = '0 0 16px';
  return fig;
}

const outageColumns = (withRegion) => [
  ...(withRegion ? [{ key: 'region', label: 'Region' }] : []),
  { key: 'startLocal', label: 'Start' },
  { key: 'endLocal', label: 'End' },
  { key: 'minutes', label: 'Minutes', num: true },
  { key: 'monthMinutes', label: 'In the month', num: true },
  { key: 'countedMinutes', label: 'Counted', num: true, render: (o) => (o.counted ? o.countedMinutes : 'too short') },
  {
    key: 'exclusions',
    label: 'Excluded',
    render: (o) => (o.exclusions.length ? o.exclusions.map((x) => `${x.minutes} min ${x.cause.replace('_', ' ')} (#${x.id}: ${x.reason})`).join('; ') : ''),
  },
];

export async function render(root, ctx) {
  const { api, who } = ctx;
  const operate = canOperate(who);
  const policies = await api('GET', '/v1/sla/policies').catch(() => []);
  const today = new Date().toISOString().slice(0, 10);
  const current = [...policies].sort((a, b) => b.version - a.version).find((p) => p.effectiveFrom <= today) ?? null;
  const zone = current?.timeZone;
  const given = ctx.query.get('month');
  const month = given && MONTH.test(given) ? given : monthNow(zone);

  let fleet = null;
  let fleetError = null;
  const loadFleet = async () => {
    try {
      fleet = await api('GET', `/v1/sla/months/${month}`);
      fleetError = null;
    } catch (err) {
      fleet = null;
      fleetError = messageOf(err);
    }
  };
  await loadFleet();

  // answers of the closes, kept across redraws
  let slaNotice = null;
  let billNotice = null;

  const picker = form({
    inline: true,
    submit: 'Show month',
    fields: [{ name: 'month', label: 'Month', type: 'month', value: month, required: true, max: monthNow(zone), placeholder: 'YYYY-MM' }],
    onSubmit: async (v) => {
      if (!MONTH.test(v.month)) throw Object.assign(new Error('month must be YYYY-MM'), { field: 'month' });
      if (v.month === month) await ctx.refresh();
      else ctx.navigate(`ops/sla?month=${v.month}`);
    },
  });

  const content = h('div', {});
  mount(root, h('h1', {}, 'Fleet SLA'), picker, content);

  const draw = () => {
    if (!fleet) {
      mount(content, h('p', { class: 'error', role: 'alert' }, fleetError ?? 'The month could not be read.'), closeSection(null));
      return;
    }
    const target = current ? current.targetPpm / 10000 : null;
    mount(
      content,
      summarySection(fleet, target),
      regionsSection(fleet, target),
      outagesSection(fleet),
      accountsSection(fleet),
      closeSection(fleet),
    );
  };

  const summarySection = (f, target) =>
    h(
      'section',
      { 'aria-labelledby': 'sla-summary' },
      h('h2', { id: 'sla-summary' }, `Month ${f.month}`),
      kv([
        ['Month', `${f.month} (${f.timeZone})`],
        ['Policy version', f.policyVersion],
        ['Target', target === null ? '—' : `${target.toFixed(4)}%`],
        ['State', f.closed ? `Closed (revision ${f.revision})` : 'Open: the month so far'],
        [
          'Persistence',
          f.persistence.persistence === null ? 'no canary sends' : `${f.persistence.persistence}% (${f.persistence.lost} lost of ${f.persistence.acknowledged} acknowledged)`,
        ],
      ]),
    );

  const regionsSection = (f, target) => {
    const labels = f.regions.map((r) => r.region);
    const values = f.regions.map((r) => Number(r.availability));
    const low = Math.min(...values, target ?? 100);
    const min = low >= 99 ? 99 : low >= 95 ? 95 : low >= 90 ? 90 : 0;
    const datasets = [
      {
        type: 'bar',
        label: 'Availability, %',
        data: values,
        backgroundColor: values.map((v) => (target !== null && v < target ? '#b42318' : '#0b62d6')),
      },
    ];
    if (target !== null) {
      datasets.push({ type: 'line', label: `Target ${target.toFixed(4)}%`, data: labels.map(() => target), borderColor: '#067647', borderDash: [6, 4], pointRadius: 0, fill: false });
    }
    return h(
      'section',
      { 'aria-labelledby': 'sla-regions' },
      h('h2', { id: 'sla-regions' }, 'Regions'),
      f.regions.length
        ? flush(chart(`Availability per region in ${f.month}, percent (the table below has the figures)`, {
            type: 'bar',
            data: { labels, datasets },
            options: {
              aspectRatio: window.matchMedia('(max-width: 720px)').matches ? 1.6 : 3,
              scales: { y: { min, max: 100, title: { display: true, text: '%' } } },
              plugins: { legend: { display: true, position: 'bottom' } },
            },
          }))
        : null,
      table(
        [
          { key: 'region', label: 'Region' },
          {
            key: 'availability',
            label: 'Availability',
            num: true,
            render: (r) => h('span', { class: target !== null && Number(r.availability) < target ? 'error' : undefined }, `${r.availability}%`),
          },
          { key: 'downtimeMinutes', label: 'Downtime (min)', num: true },
          { key: 'unknownMinutes', label: 'No signal (min)', num: true },
          { key: 'coverage', label: 'Coverage', num: true, render: (r) => (r.coverageAlert ? h('span', { class: 'error' }, `${r.coverage}% (below the alert line)`) : `${r.coverage}%`) },
          { key: 'probes', label: 'Probes', num: true },
          { key: 'failedProbes', label: 'Failed probes', num: true },
          { key: 'outages', label: 'Outages', num: true, render: (r) => r.outages.length },
        ],
        f.regions,
        { empty: 'No regions.' },
      ),
    );
  };

  const outagesSection = (f) => {
    const rows = f.regions.flatMap((r) => r.outages.map((o) => ({ ...o, region: r.region })));
    return h('section', { 'aria-labelledby': 'sla-outages' }, h('h2', { id: 'sla-outages' }, 'Outages'), table(outageColumns(true), rows, { empty: 'No outages in the month.' }));
  };

  const accountsSection = (f) =>
    h(
      'section',
      { 'aria-labelledby': 'sla-accounts' },
      h('h2', { id: 'sla-accounts' }, 'Accounts'),
      f.closed && f.accounts
        ? kv([
            ['Evaluated', f.accounts.evaluated],
            ['Affected (with downtime)', f.accounts.affected],
            ['Below target', f.accounts.belowTarget],
            ['Credited', f.accounts.credited],
            ['Credits total', f.creditsTotal],
          ])
        : h('p', { class: 'muted' }, 'The accounts’ results and credits come when the month closes.'),
    );

  const closeSection = (f) => {
    const zoneNow = monthNow(f?.timeZone ?? zone);
    const ended = month < zoneNow;
    const slaBody = h('div', {});
    const bom = h('input', { type: 'checkbox', id: 'sla-csv-bom' });
    if (!f) {
      slaBody.append(h('p', { class: 'muted' }, 'Unknown: the month could not be read.'));
    } else if (f.closed) {
      slaBody.append(
        h('p', { class: 'ok' }, `Closed (revision ${f.revision}).`),
        h('label', { class: 'check', for: 'sla-csv-bom' }, bom, 'With a byte-order mark (spreadsheets)'),
        h(
          'p',
          {},
          button('Download results CSV', async () => {
            const text = await api('GET', `/v1/sla/months/${month}/results.csv${bom.checked ? '?bom=true' : ''}`, { raw: true });
            // the browser's text decoding drops a byte-order mark: put it back when asked
            saveText(bom.checked && !text.startsWith('\uFEFF') ? `\uFEFF${text}` : text, `sla-results-${month}.csv`);
          }),
        ),
      );
    } else if (!ended) {
      slaBody.append(h('p', {}, `Open: ${month} has not ended yet (${f.timeZone}). It can be closed once it has; the worker closes it on its own shortly after.`));
    } else {
      slaBody.append(h('p', { class: 'error' }, `Open: ${month} has ended but is not closed yet (the worker closes it on its own shortly after the end).`));
      if (operate) {
        slaBody.append(
          h(
            'p',
            {},
            button('Close month', async () => {
              if (!confirmed(`Close the SLA month ${month} now? Every account's result and credit is computed and granted.`)) return;
              try {
                const r = await api('POST', `/v1/sla/months/${month}/close`, { headers: { 'x-operator': who.name } });
                slaNotice = r.closed
                  ? h(
                      'p',
                      { class: 'ok', role: 'status' },
                      `Closed ${r.month}: revision ${r.revision}, ${r.accounts} accounts evaluated, ${r.belowTarget} below target, credits ${r.credits} (took ${r.ms} ms).`,
                    )
                  : h('p', { class: 'muted', role: 'status' }, `${r.month} was closed before (or is being closed): nothing changed.`);
              } catch (err) {
                slaNotice = h('p', { class: 'error', role: 'alert' }, messageOf(err));
              }
              await loadFleet();
              draw();
            }),
          ),
        );
      }
    }
    if (f && !f.closed && !operate) slaBody.append(h('p', { class: 'muted', role: 'note' }, `Your role (${who.role}) may not close months: that needs an ops or admin token.`));
    if (slaNotice) slaBody.append(slaNotice);

    const billBody = h('div', {});
    billBody.append(
      h(
        'p',
        { class: 'muted' },
        `Closes the billing month ${month} now (the worker does it on its own after the month ends in the billing zone). Months close in order; a month closed before answers “nothing changed”.`,
      ),
    );
    if (operate) {
      billBody.append(
        h(
          'p',
          {},
          button('Close bills', async () => {
            if (!confirmed(`Close the bills of ${month} now?`)) return;
            try {
              const r = await api('POST', `/v1/bills/${month}/close`, { headers: { 'x-operator': who.name } });
              billNotice = r.closed
                ? h('p', { class: 'ok', role: 'status' }, `Bills of ${r.month} closed: ${r.accounts} accounts, total ${r.total}.`)
                : h('p', { class: 'muted', role: 'status' }, `The bills of ${r.month} were closed before: nothing changed (${r.accounts} accounts, total ${r.total}).`);
            } catch (err) {
              billNotice = h('p', { class: 'error', role: 'alert' }, `Not closed: ${messageOf(err)}`);
            }
            draw();
          }),
        ),
      );
    } else {
      billBody.append(h('p', { class: 'muted', role: 'note' }, `Your role (${who.role}) may not close billing months: that needs an ops or admin token.`));
    }
    if (billNotice) billBody.append(billNotice);

    return h(
      'section',
      { 'aria-labelledby': 'sla-close' },
      h('h2', { id: 'sla-close' }, 'Month close'),
      h(
        'div',
        { class: 'row' },
        h('div', { class: 'card', role: 'group', 'aria-labelledby': 'sla-close-sla' }, h('h3', { id: 'sla-close-sla', style: 'margin-top:0' }, `SLA of ${month}`), slaBody),
        h('div', { class: 'card', role: 'group', 'aria-labelledby': 'sla-close-bills' }, h('h3', { id: 'sla-close-bills', style: 'margin-top:0' }, `Bills of ${month}`), billBody),
      ),
    );
  };

  draw();
}
