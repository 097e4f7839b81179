// Operator page: accounts. `#/ops/accounts` finds accounts (by name, id or appId) and creates
// them; `#/ops/accounts/<id>` shows one account: its balance and standing, keys, top-ups and
// adjustments (idempotent), ledger, notifications, bills, plans and SLA months.
import { button, confirmed, flash, form, h, kv, messageOf, mount, saveText, table, when } from '../ui.js';

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const AMOUNT_PATTERN = '\\d{1,18}(\\.\\d{1,9})?';
const SIGNED_AMOUNT_PATTERN = '-?\\d{1,18}(\\.\\d{1,9})?';

/** May this operator role change money and keys (ops and admin)? */
const canOperate = (who) => who.role === 'admin' || who.role === 'ops';

/** A note in place of a form the signed-in role may not use. */
function roleNote(who, what, roles, hidden = 'The form is hidden.') {
  return h('p', { class: 'muted', role: 'note' }, `Your role (${who.role}) may not ${what}: that needs ${roles}. ${hidden}`);
}

/** The current month (local time), YYYY-MM. */
function thisMonth() {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}`;
}

/** A money amount with its currency, for people. */
const money = (amount, currency) => (amount === null || amount === undefined ? '—' : currency ? `${amount} ${currency}` : amount);

/** A section with an h2 whose body loads on its own: a failure shows its words in that section only. */
function section(title, id) {
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const el = h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id, style: 'margin-top:0' }, title), body);
  const load = async (fill) => {
    try {
      await fill(body);
    } catch (err) {
      mount(body, h('p', { class: 'error', role: 'alert' }, messageOf(err)));
    }
  };
  return { el, body, load };
}

/**
 * A table paged by the API's cursors: `fetchPage(cursor)` answers { rows, nextCursor }; "More"
 * appends the next page under the rows already shown.
 */
async function pagedTable(container, columns, fetchPage, { empty, moreLabel = 'More' } = {}) {
  const rows = [];
  let cursor = null;
  const render = () => {
    const more = cursor ? button(moreLabel, loadMore, { kind: 'secondary' }) : null;
    mount(container, table(columns, rows, { empty }), more ? h('p', {}, more) : null);
    return more;
  };
  const loadMore = async () => {
    const page = await fetchPage(cursor);
    rows.push(...page.rows);
    cursor = page.nextCursor;
    const more = render();
    if (more) more.focus();
  };
  const first = await fetchPage(null);
  rows.push(...first.rows);
  cursor = first.nextCursor;
  render();
}

export async function render(root, ctx) {
  const id = ctx.rest[0];
  if (id) return renderAccount(root, ctx, id);
  return renderList(root, ctx);
}

// ---------------------------------------------------------------- the list

async function renderList(root, ctx) {
  const { api, who } = ctx;
  const results = h('div', { 'aria-live': 'polite' });
  const initial = ctx.query.get('search') ?? '';

  const columns = [
    { key: 'name', label: 'Name', render: (a) => h('a', { href: `#/ops/accounts/${encodeURIComponent(a.id)}` }, a.name) },
    { key: 'appId', label: 'App ID' },
    { key: 'id', label: 'Account id', render: (a) => h('code', {}, a.id) },
    { key: 'region', label: 'Region' },
    { key: 'status', label: 'Standing', render: (a) => standingText(a.status) },
    { key: 'createdAt', label: 'Created', render: (a) => when(a.createdAt) },
  ];

  const search = async (text) => {
    const q = text.trim();
    // keep the search in the address (reload and back keep it) without rendering again
    history.replaceState(null, '', `#/ops/accounts${q ? `?search=${encodeURIComponent(q)}` : ''}`);
    await pagedTable(
      results,
      columns,
      async (cursor) => {
        const params = new URLSearchParams({ limit: '20' });
        if (q) params.set('search', q);
        if (cursor) params.set('cursor', cursor);
        const page = await api('GET', `/v1/accounts?${params}`);
        return { rows: page.accounts, nextCursor: page.nextCursor };
      },
      { empty: q ? `No account matches “${q}”.` : 'No accounts yet.' },
    );
  };

  const searchForm = form({
    inline: true,
    submit: 'Search',
    fields: [{ name: 'search', label: 'Search accounts', type: 'search', value: initial, placeholder: 'name, account id or appId' }],
    onSubmit: (v) => search(v.search),
  });
  searchForm.inputs.search.maxLength = 128;

  let createPart;
  if (who.role === 'admin') {
    createPart = form({
      submit: 'Create account',
      fields: [
        { name: 'name', label: 'Account name', required: true, placeholder: 'Acme Ltd' },
        {
          name: 'region',
          label: 'Home region (optional)',
          pattern: '[a-z][a-z0-9\\-]{1,15}',
          placeholder: 'gz',
          help: 'A region code such as gz; blank: the deployment’s default region.',
        },
      ],
      onSubmit: async (v) => {
        const body = { name: v.name.trim() };
        if (!body.name) throw new Error('Give the account a name.');
        if (v.region.trim()) body.region = v.region.trim();
        const a = await api('POST', '/v1/accounts', { body });
        flash(`Account “${a.name}” created (appId ${a.appId}).`);
        ctx.navigate(`ops/accounts/${a.id}`);
      },
    });
    createPart.inputs.name.maxLength = 128;
    createPart.inputs.region.title = 'A region code: a lower-case letter, then 1-15 lower-case letters, digits or hyphens.';
  } else {
    createPart = roleNote(who, 'create accounts', 'the admin token');
  }

  mount(
    root,
    h('h1', {}, 'Accounts'),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'acc-find' },
      h('h2', { id: 'acc-find', style: 'margin-top:0' }, 'Find an account'),
      h('p', { class: 'muted' }, 'Part of the name (any case), or the exact account id or appId. Blank lists every account, oldest first.'),
      searchForm,
      results,
    ),
    h('section', { class: 'card', 'aria-labelledby': 'acc-create' }, h('h2', { id: 'acc-create', style: 'margin-top:0' }, 'Create account'), createPart),
  );
  try {
    await search(initial);
  } catch (err) {
    mount(results, h('p', { class: 'error', role: 'alert' }, messageOf(err)));
  }
}

// ---------------------------------------------------------------- one account

function standingText(status) {
  return (
    {
      active: 'Active',
      overdue: 'Overdue',
      suspended: 'Suspended',
      released: 'Released',
    }[status] ?? status
  );
}

/** The arrears standing in words, loud when the account is suspended or released. */
function standingBanner(b) {
  const since = (label, t) => (t ? `${label} ${when(t)}` : null);
  switch (b.status) {
    case 'active':
      return h('p', { class: 'ok' }, '✓ Active: in good standing.');
    case 'overdue':
      return h('p', { class: 'error', role: 'status' }, `⚠ Overdue: the cash has been below zero since ${when(b.overdueSince)}. Service goes on for the grace period, then the account is suspended unless a top-up brings the cash to zero or above.`);
    case 'suspended':
      return h(
        'div',
        { class: 'msg error', role: 'status', style: 'border:2px solid var(--bad);border-radius:6px;padding:8px 12px;margin:8px 0' },
        h('strong', {}, '⚠ Suspended'),
        ` since ${when(b.suspendedAt)}`,
        b.overdueSince ? ` (overdue since ${when(b.overdueSince)})` : '',
        '. Its data-plane CMQ requests are refused (code 4300, charge overdue) until a top-up brings the cash to zero or above; management reads still work.',
        b.releaseNoticeAt ? ` Release notice sent ${when(b.releaseNoticeAt)}.` : '',
      );
    case 'released':
      return h(
        'div',
        { class: 'msg error', role: 'status', style: 'border:2px solid var(--bad);border-radius:6px;padding:8px 12px;margin:8px 0' },
        h('strong', {}, '⚠ Released'),
        `: ${[since('overdue since', b.overdueSince), since('suspended', b.suspendedAt), since('release notice', b.releaseNoticeAt)].filter(Boolean).join(', ')}. Its queues and messages were deleted; a top-up to zero or above lets it use the service again.`,
      );
    default:
      return h('p', {}, `Standing: ${b.status}`);
  }
}

async function renderAccount(root, ctx, id) {
  const { api, who } = ctx;
  const back = h('p', {}, h('a', { href: '#/ops/accounts' }, '← All accounts'));
  if (!UUID.test(id)) {
    mount(root, back, h('h1', {}, 'Account'), h('p', { class: 'error', role: 'alert' }, `“${id}” is not an account id.`));
    return;
  }
  const base = `/v1/accounts/${encodeURIComponent(id)}`;
  const account = await api('GET', base);
  const operate = canOperate(who);

  const balance = section('Balance and standing', 'acc-balance');
  const money1 = section('Top up', 'acc-topup');
  const adjust = section('Adjust', 'acc-adjust');
  const keys = section('Access keys', 'acc-keys');
  const ledger = section('Recent ledger entries', 'acc-ledger');
  const notes = section('Notifications', 'acc-notes');
  const bills = section('Bills', 'acc-bills');
  const plans = section('Price plans', 'acc-plans');
  const sla = section('SLA month', 'acc-sla');

  mount(
    root,
    back,
    h('h1', {}, `Account: ${account.name}`),
    kv([
      ['Account id', h('code', {}, account.id)],
      ['App ID', account.appId],
      ['Home region', account.region],
      ['Standing', standingText(account.status)],
      ['Created', when(account.createdAt)],
    ]),
    balance.el,
    h('div', { class: 'row' }, money1.el, adjust.el),
    keys.el,
    ledger.el,
    notes.el,
    bills.el,
    plans.el,
    sla.el,
  );

  let currency = '';
  const loadBalance = () =>
    balance.load(async (body) => {
      const b = await api('GET', `${base}/balance`);
      currency = b.currency;
      mount(
        body,
        standingBanner(b),
        kv([
          ['Cash', h('strong', { 'data-balance': 'cash' }, money(b.cash, b.currency))],
          ['Vouchers', money(b.vouchers, b.currency)],
          ['Standing', standingText(b.status)],
          ['Overdue since', when(b.overdueSince)],
          ['Suspended at', when(b.suspendedAt)],
          ['Release notice at', when(b.releaseNoticeAt)],
          ['Low-balance alert below', b.alertThreshold === null ? 'off' : money(b.alertThreshold, b.currency)],
          ['Usage last applied', when(b.lastUsageAppliedAt)],
        ]),
      );
    });

  const loadLedger = () =>
    ledger.load((body) =>
      pagedTable(
        body,
        [
          { key: 'createdAt', label: 'When', render: (e) => when(e.createdAt) },
          { key: 'kind', label: 'Kind' },
          { key: 'amount', label: 'Cash moved', num: true },
          { key: 'voucherAmount', label: 'Vouchers moved', num: true },
          { key: 'cash', label: 'Cash after', num: true },
          { key: 'vouchers', label: 'Vouchers after', num: true },
          { key: 'reason', label: 'Reason', render: (e) => e.reason ?? '' },
        ],
        async (cursor) => {
          const p = await api('GET', `${base}/ledger?limit=10${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
          return { rows: p.entries, nextCursor: p.nextCursor };
        },
        { empty: 'No ledger entries yet.', moreLabel: 'More ledger entries' },
      ),
    );

  /** A posting form (top-up or adjustment) with its idempotency key, made fresh each time the form is drawn. */
  const postingForm = (part, spec) => {
    const draw = (result) => {
      const key = crypto.randomUUID();
      const f = form({
        submit: spec.submit,
        fields: spec.fields,
        onSubmit: async (v) => {
          const body = spec.body(v);
          if (spec.confirm && !spec.confirm(body)) return;
          const entry = await api('POST', `${base}/${spec.path}`, { body, headers: { 'idempotency-key': key } });
          // a new key for the next posting; the answer stays on show
          draw(
            h(
              'p',
              { class: 'ok', role: 'status' },
              `${spec.done(entry)} New balance: cash ${money(entry.cash, currency)}, vouchers ${money(entry.vouchers, currency)}.`,
            ),
          );
          loadBalance();
          loadLedger();
        },
      });
      f.inputs.amount.title = spec.amountTitle;
      mount(part.body, spec.intro ? h('p', { class: 'muted' }, spec.intro) : null, f, result ?? null);
      return f;
    };
    part.load(async () => {
      draw();
    });
  };

  if (operate) {
    postingForm(money1, {
      path: 'topups',
      amountTitle: 'A decimal amount such as 100.00 (at most 9 decimals).',
      submit: 'Top up',
      intro: 'Adds cash. Submitting again after an error or a lost answer is the same top-up (one idempotency key per form); after a success the form starts a new one.',
      fields: [{ name: 'amount', label: 'Top-up amount', required: true, pattern: AMOUNT_PATTERN, placeholder: '100.00', help: 'More than 0, at most 9 decimals.' }],
      body: (v) => {
        if (!/[1-9]/.test(v.amount)) throw Object.assign(new Error('amount must be more than 0'), { field: 'amount' });
        return { amount: v.amount.trim() };
      },
      done: (e) => `Topped up ${e.amount}.`,
    });
    postingForm(adjust, {
      path: 'adjustments',
      amountTitle: 'A decimal amount such as -5.25 or 10.00 (at most 9 decimals).',
      submit: 'Adjust balance',
      intro: 'An operator correction of the cash: negative takes money away. Audited with its reason; idempotent like a top-up.',
      fields: [
        { name: 'amount', label: 'Adjustment amount', required: true, pattern: SIGNED_AMOUNT_PATTERN, placeholder: '-5.25', help: 'Not 0; negative takes money away.' },
        { name: 'reason', label: 'Adjustment reason', type: 'textarea', required: true, rows: 2, placeholder: 'goodwill credit for ticket 1234' },
      ],
      body: (v) => {
        if (!/[1-9]/.test(v.amount)) throw Object.assign(new Error('amount must not be 0'), { field: 'amount' });
        if (!v.reason.trim()) throw Object.assign(new Error('reason is required'), { field: 'reason' });
        return { amount: v.amount.trim(), reason: v.reason.trim() };
      },
      confirm: (b) => !b.amount.startsWith('-') || confirmed(`Take ${b.amount.slice(1)} away from ${account.name}'s cash?`),
      done: (e) => `Adjusted by ${e.amount}.`,
    });
  } else {
    money1.load(async (body) => mount(body, roleNote(who, 'top accounts up', 'an ops or admin token')));
    adjust.load(async (body) => mount(body, roleNote(who, 'adjust balances', 'an ops or admin token')));
  }

  const loadKeys = () =>
    keys.load(async (body) => {
      const list = await api('GET', `${base}/keys`);
      const action = (k) => {
        if (!operate) return h('span', { class: 'muted' }, '—');
        const disable = k.status === 'enabled';
        return button(
          disable ? 'Disable' : 'Enable',
          async () => {
            if (disable && !confirmed(`Disable key ${k.secretId}? Every call signed with it is refused at once.`)) return;
            await api('POST', `${base}/keys/${encodeURIComponent(k.secretId)}/${disable ? 'disable' : 'enable'}`);
            flash(`Key ${k.secretId} ${disable ? 'disabled' : 'enabled'}.`);
            await loadKeys();
          },
          { kind: disable ? 'danger' : undefined, title: `${disable ? 'Disable' : 'Enable'} key ${k.secretId}` },
        );
      };
      mount(
        body,
        operate ? null : roleNote(who, 'disable or enable keys', 'an ops or admin token', 'The buttons are hidden.'),
        table(
          [
            { key: 'secretId', label: 'SecretId', render: (k) => h('code', {}, k.secretId) },
            { key: 'status', label: 'Status', render: (k) => (k.status === 'enabled' ? 'Enabled' : h('strong', { class: 'error' }, 'Disabled')) },
            { key: 'createdAt', label: 'Created', render: (k) => when(k.createdAt) },
            { key: 'action', label: 'Action', render: action },
          ],
          list,
          { empty: 'The account has no keys.' },
        ),
      );
    });

  const loadNotes = () =>
    notes.load((body) =>
      pagedTable(
        body,
        [
          { key: 'createdAt', label: 'When', render: (n) => when(n.createdAt) },
          { key: 'kind', label: 'Kind' },
          { key: 'delivery', label: 'Delivery', render: (n) => (n.deliveredAt ? `${n.delivery} ${when(n.deliveredAt)}` : n.delivery) },
          { key: 'attempts', label: 'Attempts', num: true },
          { key: 'lastError', label: 'Last error', render: (n) => n.lastError ?? '' },
        ],
        async (cursor) => {
          const p = await api('GET', `${base}/notifications?limit=10${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
          return { rows: p.notifications, nextCursor: p.nextCursor };
        },
        { empty: 'No notifications yet.', moreLabel: 'More notifications' },
      ),
    );

  const loadBills = () =>
    bills.load(async (body) => {
      const lines = h('div', { 'aria-live': 'polite' });
      const showLines = async (month) => {
        const bill = await api('GET', `${base}/bills/${month}`);
        const close = h('button', { type: 'button', class: 'secondary', onclick: () => mount(lines) }, 'Hide lines');
        mount(
          lines,
          h('h3', { tabindex: '-1' }, `Lines of the ${month} bill`),
          table(
            [
              { key: 'usageMonth', label: 'Usage month' },
              { key: 'region', label: 'Region' },
              { key: 'actionClass', label: 'Action class' },
              { key: 'calls', label: 'Calls', num: true },
              { key: 'billableCalls', label: 'Billable calls', num: true },
              { key: 'amount', label: 'Amount', num: true },
              { key: 'late', label: 'Late', render: (l) => (l.late ? 'yes' : '') },
            ],
            bill.lines ?? [],
            { empty: 'The bill has no lines.' },
          ),
          h('p', {}, close),
        );
        lines.querySelector('h3').focus();
      };
      await pagedTable(
        body,
        [
          { key: 'month', label: 'Month' },
          { key: 'openingBalance', label: 'Opening', num: true },
          { key: 'topups', label: 'Top-ups', num: true },
          { key: 'usageTotal', label: 'Usage', num: true },
          { key: 'slaCredits', label: 'SLA credits', num: true },
          { key: 'adjustments', label: 'Adjustments', num: true },
          { key: 'closingBalance', label: 'Closing', num: true },
          { key: 'amountDue', label: 'Amount due', num: true, render: (b) => money(b.amountDue, b.currency) },
          { key: 'lines', label: 'Lines', render: (b) => button('Show lines', () => showLines(b.month), { kind: 'secondary', title: `Lines of the ${b.month} bill` }) },
        ],
        async (cursor) => {
          const p = await api('GET', `${base}/bills?limit=12${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
          return { rows: p.bills, nextCursor: p.nextCursor };
        },
        { empty: 'No bills yet (a month’s bill is made when the month closes).', moreLabel: 'More bills' },
      );
      body.append(lines);
    });

  const loadPlans = () =>
    plans.load(async (body) => {
      const list = await api('GET', `${base}/plans`);
      mount(
        body,
        table(
          [
            { key: 'region', label: 'Region' },
            { key: 'plan', label: 'Plan' },
            { key: 'effectiveFrom', label: 'Effective from', render: (p) => when(p.effectiveFrom) },
            { key: 'reason', label: 'Reason', render: (p) => p.reason ?? '' },
            { key: 'assignedAt', label: 'Assigned', render: (p) => when(p.assignedAt) },
          ],
          list,
          { empty: 'No plan assigned: every region uses the default plan.' },
        ),
      );
    });

  const loadSla = () =>
    sla.load(async (body) => {
      const result = h('div', { 'aria-live': 'polite' });
      const show = async (month) => {
        mount(result, h('p', { class: 'muted' }, 'Loading…'));
        try {
          const r = await api('GET', `/v1/sla/accounts/${encodeURIComponent(id)}/months/${month}`);
          mount(result, slaMonth(r, () => downloadReport(month)));
        } catch (err) {
          mount(result, h('p', { class: 'error', role: 'alert' }, messageOf(err)));
        }
      };
      const downloadReport = async (month) => {
        const html = await api('GET', `/v1/sla/accounts/${encodeURIComponent(id)}/months/${month}/report.html`, { raw: true });
        saveText(html, `sla-report-${account.appId}-${month}.html`, 'text/html');
      };
      const picker = form({
        inline: true,
        submit: 'Show SLA month',
        fields: [{ name: 'month', label: 'SLA month', type: 'month', value: thisMonth(), required: true, pattern: '\\d{4}-(0[1-9]|1[0-2])', placeholder: 'YYYY-MM' }],
        onSubmit: (v) => show(v.month),
      });
      mount(body, picker, result);
      await show(thisMonth());
    });

  await Promise.all([loadBalance(), loadKeys(), loadLedger(), loadNotes(), loadBills(), loadPlans(), loadSla()]);
}

/** One SLA month of the account: the figures, its outages and the maintenance that applied. */
function slaMonth(r, download) {
  const outageRows = r.outages.map((o) => ({ ...o }));
  return h(
    'div',
    {},
    h(
      'p',
      { class: r.meetsTarget ? 'ok' : 'error' },
      r.closed ? `Closed (revision ${r.revision}). ` : 'Open: the month so far. ',
      r.meetsTarget ? `Meets the ${r.target}% target.` : `Below the ${r.target}% target.`,
    ),
    kv([
      ['Month', `${r.month} (${r.timeZone})`],
      ['Policy version', r.policyVersion],
      ['Availability', `${r.availability}%`],
      ['Target', `${r.target}%`],
      ['Minutes in the period (T)', r.totalMinutes],
      ['Downtime', `${r.downtimeMinutes} min`],
      ['Without a signal', `${r.unknownMinutes} min`],
      ['Coverage', `${r.coverage}%${r.coverageAlert ? ' (below the alert line)' : ''}`],
      ['Whole service period', r.servicePeriod ? 'yes' : 'no: no credit is granted'],
      ['Credit', `${r.creditPercent}% of ${r.feeBase} = ${r.credit}`],
      ['Persistence', r.persistence.persistence === null ? 'no canary sends' : `${r.persistence.persistence}% (${r.persistence.lost} lost of ${r.persistence.acknowledged})`],
      ['Computed', when(r.computedAt)],
      ['Recompute reason', r.reason ?? '—'],
    ]),
    h('h3', {}, 'Outages'),
    table(
      [
        { key: 'startLocal', label: 'Start', render: (o) => o.startLocal },
        { key: 'endLocal', label: 'End', render: (o) => o.endLocal },
        { key: 'minutes', label: 'Minutes', num: true },
        { key: 'monthMinutes', label: 'In the month', num: true },
        { key: 'countedMinutes', label: 'Counted', num: true, render: (o) => (o.counted ? o.countedMinutes : 'too short') },
        { key: 'exclusions', label: 'Excluded', render: (o) => o.exclusions.map((x) => `${x.minutes} min ${x.cause.replace('_', ' ')} (#${x.id}: ${x.reason})`).join('; ') },
      ],
      outageRows,
      { empty: 'No outages.' },
    ),
    h('h3', {}, 'Maintenance windows'),
    table(
      [
        { key: 'startsAt', label: 'Starts', render: (m) => when(m.startsAt) },
        { key: 'endsAt', label: 'Ends', render: (m) => when(m.endsAt) },
        { key: 'region', label: 'Region', render: (m) => m.region ?? 'all' },
        { key: 'reason', label: 'Reason' },
        { key: 'inTime', label: 'Announced in time', render: (m) => (m.inTime ? 'yes' : 'no: too late to exclude') },
        { key: 'applied', label: 'Excluded minutes', render: (m) => (m.applied ? 'yes' : 'no') },
      ],
      r.maintenance,
      { empty: 'No maintenance windows applied.' },
    ),
    h('p', {}, button('Download printable report', download, { kind: 'secondary' })),
  );
}
