// Operator page: SLA incident attributions. Outage time attributed to the user, a third party
// or force majeure is not the service's fault and is excluded from downtime. Lists a month's
// attributions (withdrawn ones too), attributes an outage, withdraws one with a reason.
import { flash, form, h, isoWithOffset, kv, localInputToIso, mount, table, when } from '../ui.js';

const canOperate = (who) => who.role === 'admin' || who.role === 'ops';

const pad = (n) => String(n).padStart(2, '0');

const UUID_PATTERN = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';

const CAUSES = [
  ['third_party', 'A third party (carrier, cloud provider…)'],
  ['user', 'The user (the account’s own doing)'],
  ['force_majeure', 'Force majeure'],
];
const causeText = (c) => ({ user: 'The user', third_party: 'A third party', force_majeure: 'Force majeure' })[c] ?? c;




const monthText = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}`;

export async function render(root, ctx) {
  const { api, who } = ctx;
  const operate = canOperate(who);
  const month = /^\d{4}-(0[1-9]|1[0-2])$/.test(ctx.query.get('month') ?? '') ? ctx.query.get('month') : monthText(new Date());
  const [y, m] = month.split('-').map(Number);
  const from = new Date(y, m - 1, 1);
  const to = new Date(y, m, 1);

  const [fleet, list] = await Promise.all([
    api('GET', `/v1/sla/months/${monthText(new Date())}`).catch(() => null),
    api('GET', `/v1/sla/attributions?${new URLSearchParams({ from: isoWithOffset(from), to: isoWithOffset(to), includeWithdrawn: 'true' })}`),
  ]);
  const regions = new Set((fleet?.regions ?? []).map((r) => r.region));
  for (const a of list) if (a.region) regions.add(a.region);

  const withdrawBox = h('div', {});

  const openWithdraw = (a) => {
    const f = form({
      submit: 'Withdraw attribution',
      danger: true,
      fields: [{ name: 'reason', label: 'Reason for withdrawing', type: 'textarea', rows: 2, required: true, placeholder: 'the carrier’s report puts the fault on our side' }],
      onSubmit: async (v) => {
        if (!v.reason.trim()) throw Object.assign(new Error('reason is required'), { field: 'reason' });
        const after = await api('POST', `/v1/sla/attributions/${encodeURIComponent(a.id)}/withdraw`, {
          body: { reason: v.reason.trim() },
          headers: { 'x-operator': who.name },
        });
        flash(`Attribution ${after.id} withdrawn: it excludes nothing from now on.`);
        await ctx.refresh();
      },
    });
    const keep = h('button', { type: 'button', class: 'secondary', onclick: () => mount(withdrawBox) }, 'Keep it');
    mount(
      withdrawBox,
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'inc-withdraw' },
        h('h2', { id: 'inc-withdraw', style: 'margin-top:0' }, `Withdraw attribution ${a.id}`),
        kv([
          ['Region', a.region ?? 'All regions'],
          ['Account', a.accountId ?? 'All accounts'],
          ['From', when(a.startsAt)],
          ['To', when(a.endsAt)],
          ['Cause', causeText(a.cause)],
          ['Reason', a.reason],
        ]),
        f,
        h('p', {}, keep),
      ),
    );
    f.inputs.reason.focus();
  };

  let attributePart;
  if (operate) {
    attributePart = form({
      submit: 'Attribute outage',
      fields: [
        { name: 'region', label: 'Region', type: 'select', options: [['', 'All regions'], ...[...regions].sort().map((r) => [r, r])], value: '' },
        { name: 'accountId', label: 'Account id (optional)', pattern: UUID_PATTERN, placeholder: 'blank: every account', help: 'Only this account’s outage time; blank: every account.' },
        { name: 'startsAt', label: 'Starts at', type: 'datetime-local', required: true, help: 'Your local time.' },
        { name: 'endsAt', label: 'Ends at', type: 'datetime-local', required: true, help: 'Your local time; after the start.' },
        { name: 'cause', label: 'Cause', type: 'select', options: CAUSES, value: 'third_party', required: true },
        { name: 'reason', label: 'Reason', type: 'textarea', rows: 2, required: true, placeholder: 'carrier fibre cut between gz and sh, ticket INC-4411' },
      ],
      onSubmit: async (v) => {
        const startsAt = localInputToIso(v.startsAt);
        const endsAt = localInputToIso(v.endsAt);
        if (!startsAt) throw Object.assign(new Error('startsAt must be a date and time'), { field: 'startsAt' });
        if (!endsAt) throw Object.assign(new Error('endsAt must be a date and time'), { field: 'endsAt' });
        if (Date.parse(endsAt) <= Date.parse(startsAt)) throw Object.assign(new Error('endsAt must be after startsAt'), { field: 'endsAt' });
        if (!v.reason.trim()) throw Object.assign(new Error('reason is required'), { field: 'reason' });
        const a = await api('POST', '/v1/sla/attributions', {
          body: {
            region: v.region || null,
            accountId: v.accountId.trim() ? v.accountId.trim().toLowerCase() : null,
            startsAt,
            endsAt,
            cause: v.cause,
            reason: v.reason.trim(),
          },
          headers: { 'x-operator': who.name },
        });
        flash(
          `Attribution ${a.id} recorded: ${when(a.startsAt)} – ${when(a.endsAt)} (${a.region ?? 'all regions'}, ${a.accountId ?? 'all accounts'}) attributed to ${causeText(a.cause).toLowerCase()}.`,
        );
        const started = new Date(a.startsAt);
        const shown = monthText(started);
        if (shown !== month) ctx.navigate(`ops/incidents?month=${shown}`);
        else await ctx.refresh();
      },
    });
    attributePart.inputs.accountId.title = 'An account id: a UUID such as 0b5e3a52-8a4f-4c53-9d0e-6a1f3f2a7c10.';
  } else {
    attributePart = h('p', { class: 'muted', role: 'note' }, `Your role (${who.role}) may not attribute or withdraw outages: that needs an ops or admin token. The form is hidden.`);
  }

  const picker = form({
    inline: true,
    submit: 'Show month',
    fields: [{ name: 'month', label: 'Month', type: 'month', value: month, required: true, placeholder: 'YYYY-MM' }],
    onSubmit: async (v) => {
      if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(v.month)) throw Object.assign(new Error('month must be YYYY-MM'), { field: 'month' });
      if (v.month === month) await ctx.refresh();
      else ctx.navigate(`ops/incidents?month=${v.month}`);
    },
  });

  const nowMs = Date.now();
  mount(
    root,
    h('h1', {}, 'Incidents'),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'inc-attribute' },
      h('h2', { id: 'inc-attribute', style: 'margin-top:0' }, 'Attribute an outage'),
      h(
        'p',
        { class: 'muted' },
        'Outage time in the span that is not the service’s fault: it is excluded from downtime of the region (or every region) and the account (or every account). A closed month is recomputed only on request.',
      ),
      attributePart,
    ),
    withdrawBox,
    h(
      'section',
      { 'aria-labelledby': 'inc-list' },
      h('h2', { id: 'inc-list' }, `Attributions of ${month}`),
      picker,
      (table(
        [
          { key: 'id', label: 'Id', num: true },
          { key: 'region', label: 'Region', render: (a) => a.region ?? 'All regions' },
          { key: 'accountId', label: 'Account', render: (a) => (a.accountId ? h('a', { href: `#/ops/accounts/${encodeURIComponent(a.accountId)}` }, h('code', {}, a.accountId)) : 'All accounts') },
          { key: 'startsAt', label: 'From', render: (a) => when(a.startsAt) },
          { key: 'endsAt', label: 'To', render: (a) => when(a.endsAt) },
          { key: 'cause', label: 'Cause', render: (a) => causeText(a.cause) },
          { key: 'reason', label: 'Reason' },
          { key: 'createdAt', label: 'Recorded', render: (a) => `${when(a.createdAt)} by ${a.createdBy}` },
          {
            key: 'state',
            label: 'State',
            render: (a) =>
              a.withdrawnAt
                ? h('span', { class: 'muted' }, `Withdrawn ${when(a.withdrawnAt)} by ${a.withdrawnBy ?? '—'}`)
                : h('span', { class: 'ok' }, Date.parse(a.startsAt) > nowMs ? 'In force (ahead)' : 'In force'),
          },
          {
            key: 'action',
            label: 'Action',
            render: (a) =>
              a.withdrawnAt || !operate
                ? h('span', { class: 'muted' }, '—')
                : h('button', { type: 'button', class: 'danger', onclick: () => openWithdraw(a), 'aria-label': `Withdraw attribution ${a.id}` }, 'Withdraw'),
          },
        ],
        list,
        { empty: `No attributions overlap ${month}.`, caption: `Attributions overlapping ${from.toLocaleDateString()} – ${to.toLocaleDateString()} (your local time), withdrawn ones included.` },
      )),
    ),
  );
}
