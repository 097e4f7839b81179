// Account page: balance and bills. `#/billing` shows the balance and where the account stands on
// the arrears ladder (active → overdue → suspended → released), the low-balance alert threshold,
// the ledger (newest first, paged, CSV of the last 30 days) and the monthly bills with their lines
// and CSV downloads. Money is shown exactly as the API writes it (decimal strings), never
// computed in the browser.
import { button, flash, form, h, kv, messageOf, mount, saveText, table, when } from '../ui.js';



const AMOUNT_PATTERN = '\\d{1,18}(\\.\\d{1,9})?';

const money = (amount, currency) => (amount === null || amount === undefined ? '—' : currency ? `${amount} ${currency}` : amount);

const pad = (n) => String(n).padStart(2, '0');

/** "2026-12" → "2027-01" (calendar arithmetic on the month's text, not on money). */
function nextMonth(month) {
  const [y, m] = month.split('-').map(Number);
  return m === 12 ? `${y + 1}-01` : `${y}-${pad(m + 1)}`;
}

/** A UTC date, YYYY-MM-DD (the exports read a date as its midnight UTC). */
const utcDate = (ms) => new Date(ms).toISOString().slice(0, 10);

/** A section with an h2 whose body loads on its own: a failure shows its words in that section only. */
function section(title, id, ...intro) {
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const el = h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id }, title), ...intro, body);
  const load = async (fill) => {
    try {
      await fill(body);
    } catch (err) {
      mount(body, h('p', { class: 'error', role: 'alert' }, messageOf(err)));
    }
  };
  return { el, body, load };
}

/** The steps of the arrears ladder, in words. */
const LADDER = [
  {
    status: 'active',
    title: 'Active',
    text: 'Your cash balance is zero or more. Everything works as usual; usage is charged from vouchers first, then from cash.',
  },
  {
    status: 'overdue',
    title: 'Overdue',
    text: 'Your cash balance went below zero. Your queues and topics are still served (and billed) for a grace period, so you have time to top up.',
  },
  {
    status: 'suspended',
    title: 'Suspended',
    text: 'The grace period ended without a top-up. Sending, receiving and other data-plane calls are refused with CMQ error 4300; reading your queues’ and topics’ settings and this console still work. A release notice is sent before the next step.',
  },
  {
    status: 'released',
    title: 'Released',
    text: 'The account stayed suspended too long: its queues, topics and their messages were deleted. The account, its keys, ledger and bills remain.',
  },
];

/** The ladder as an ordered list, the account's step marked (aria-current and a visible "You are here"). */
function ladder(balance) {
  const currentIndex = LADDER.findIndex((s) => s.status === balance.status);
  const dates = {
    overdue: balance.overdueSince ? `Since ${when(balance.overdueSince)}.` : null,
    suspended: balance.suspendedAt ? `Since ${when(balance.suspendedAt)}.` : null,
    released: balance.releaseNoticeAt ? `Release notice sent ${when(balance.releaseNoticeAt)}.` : null,
  };
  return h(
    'ol',
    { style: 'display:grid; gap:8px; padding-left:1.4em; margin:8px 0' },
    LADDER.map((s, i) => {
      const current = i === currentIndex;
      const passed = currentIndex >= 0 && i < currentIndex;
      return h(
        'li',
        {
          'aria-current': current ? 'step' : undefined,
          style: current
            ? `padding:8px 10px; border-radius:6px; border:2px solid ${s.status === 'active' ? 'var(--ok)' : 'var(--bad)'}; background:${s.status === 'active' ? '#ebf9f1' : '#fdeceb'}`
            : `padding:8px 10px; border-radius:6px; border:1px solid var(--line)${passed ? '' : '; color:var(--muted)'}`,
        },
        h('strong', {}, s.title),
        current ? h('span', { class: s.status === 'active' ? 'ok' : 'error' }, ' — you are here') : null,
        h('br'),
        s.text,
        current && dates[s.status] ? h('span', {}, ' ', dates[s.status]) : null,
        s.status === 'suspended' && current && balance.releaseNoticeAt ? h('span', {}, ` Release notice sent ${when(balance.releaseNoticeAt)}: your queues will be deleted unless you top up.`) : null,
      );
    }),
  );
}

/** What to do now, in one sentence. */
function advice(balance) {
  switch (balance.status) {
    case 'active':
      return null;
    case 'overdue':
      return 'Top up so that your cash balance is zero or more to stay active; otherwise the account is suspended when the grace period ends.';
    case 'suspended':
      return 'Top up so that your cash balance is zero or more: the account becomes active again at once.';
    case 'released':
      return 'A top-up restores the account to active; the deleted queues and messages do not come back and must be created again.';
    default:
      return null;
  }
}

export async function render(root, ctx) {
  const { api, who } = ctx;
  const accountId = who.accountId;
  const base = `/v1/accounts/${encodeURIComponent(accountId)}`;

  const balanceSec = section('Balance', 'billing-balance');
  const alertSec = section(
    'Low-balance alert',
    'billing-alert',
    h('p', { class: 'muted' }, 'A notification (and a webhook call, if one is set) when cash plus vouchers fall below this amount: once each time they cross it.'),
  );
  const ledgerSec = section('Ledger', 'billing-ledger', h('p', { class: 'muted' }, 'Every movement of your money, newest first: amounts moved and the balances after each.'));
  const billsSec = section('Bills', 'billing-bills', h('p', { class: 'muted' }, 'One bill per month of the billing time zone, made when the month closes.'));
  const linesBox = h('div', { 'aria-live': 'polite' });

  mount(root, h('h1', {}, 'Balance & bills'), balanceSec.el, alertSec.el, ledgerSec.el, billsSec.el);

  let balance = null;

  const loadBalance = async () => {
    balance = null;
    await balanceSec.load(async (body) => {
      balance = await api('GET', `${base}/balance`);
      const say = advice(balance);
      mount(
        body,
        kv([
          ['Cash', money(balance.cash, balance.currency)],
          ['Vouchers', money(balance.vouchers, balance.currency)],
          ['Currency', balance.currency],
          ['Standing', h('strong', { class: balance.status === 'active' ? 'ok' : 'error' }, balance.status)],
          ['Overdue since', when(balance.overdueSince)],
          ['Suspended at', when(balance.suspendedAt)],
          ['Release notice', when(balance.releaseNoticeAt)],
          ['Alert threshold', balance.alertThreshold === null ? 'off' : money(balance.alertThreshold, balance.currency)],
          ['Usage last applied', when(balance.lastUsageAppliedAt)],
        ]),
        h('h3', { id: 'billing-ladder' }, 'Where you stand'),
        h('p', { class: 'muted' }, 'When cash runs out, an account moves down these steps; a top-up that brings cash back to zero or more returns it to Active from any step.'),
        ladder(balance),
        say ? h('p', { role: 'note' }, h('strong', {}, 'What to do: '), say) : null,
      );
    });
    await fillAlert();
  };

  const fillAlert = () =>
    alertSec.load(async (body) => {
      if (!balance) throw new Error('The balance could not be read, so the threshold cannot be shown (see above).');
      const current = balance?.alertThreshold ?? null;
      mount(
        body,
        h('p', {}, current === null ? 'The alert is off.' : `The alert is on: below ${money(current, balance.currency)}.`),
        form({
          inline: true,
          submit: current === null ? 'Turn alert on' : 'Change threshold',
          fields: [
            {
              name: 'amount',
              label: `Threshold (${balance?.currency ?? 'currency'})`,
              required: true,
              pattern: AMOUNT_PATTERN,
              value: current ?? '',
              placeholder: '50.00',
              help: 'A decimal amount more than 0, e.g. 50.00',
            },
          ],
          onSubmit: async (v) => {
            const amount = v.amount.trim();
            if (/^0+(\.0+)?$/.test(amount)) throw Object.assign(new Error('The threshold must be more than 0 (use “Turn alert off” instead).'), { field: 'amount' });
            await api('PUT', `${base}/alert-threshold`, { body: { amount } });
            flash(`Alert threshold set to ${amount}.`);
            await loadBalance();
          },
        }),
        current !== null
          ? h(
              'p',
              {},
              button(
                'Turn alert off',
                async () => {
                  await api('PUT', `${base}/alert-threshold`, { body: { amount: null } });
                  flash('Low-balance alert turned off.');
                  await loadBalance();
                },
                { kind: 'secondary' },
              ),
            )
          : null,
      );
    });

  const loadLedger = () =>
    ledgerSec.load(async (body) => {
      const rows = [];
      let cursor = null;
      const tableBox = h('div', {});
      const moreBox = h('p', {});
      const csv = button(
        'Download ledger CSV',
        async () => {
          const now = Date.now();
          const from = utcDate(now - 30 * 86_400_000);
          const to = utcDate(now + 86_400_000);
          const q = new URLSearchParams({ from, to, accountId });
          const text = await api('GET', `/v1/exports/ledger.csv?${q}`, { raw: true });
          saveText(text, `ledger-${from}-to-${to}.csv`);
          flash(`Ledger CSV of ${from} to ${to} (UTC dates, the last 30 days) downloaded.`);
        },
        { kind: 'secondary', title: 'The ledger entries of the last 30 days as a CSV file' },
      );
      const draw = () => {
        const cur = balance?.currency;
        mount(
          tableBox,
          table(
            [
              { key: 'createdAt', label: 'Time', render: (e) => when(e.createdAt) },
              { key: 'kind', label: 'Kind' },
              { key: 'amount', label: 'Amount', num: true },
              { key: 'voucherAmount', label: 'Voucher amount', num: true },
              { key: 'cash', label: 'Cash after', num: true },
              { key: 'vouchers', label: 'Vouchers after', num: true },
              { key: 'reason', label: 'Reason', render: (e) => e.reason ?? '—' },
            ],
            rows,
            { empty: 'No ledger entries yet.', caption: cur ? `Amounts in ${cur}.` : undefined },
          ),
        );
        mount(moreBox, cursor ? button('More', more, { kind: 'secondary', title: 'Older ledger entries' }) : null);
      };
      const more = async () => {
        const q = new URLSearchParams({ limit: '50' });
        if (cursor) q.set('cursor', cursor);
        const page = await api('GET', `${base}/ledger?${q}`);
        const first = rows.length;
        rows.push(...page.entries);
        cursor = page.nextCursor;
        draw();
        // keep the keyboard where the new rows are
        const tr = tableBox.querySelectorAll('tbody tr')[first];
        if (first > 0 && tr) {
          tr.tabIndex = -1;
          tr.focus();
        }
      };
      mount(body, h('p', {}, csv), tableBox, moreBox);
      await more();
    });

  const showLines = async (month) => {
    mount(linesBox, h('p', { class: 'muted' }, `Loading the lines of ${month}…`));
    try {
      const bill = await api('GET', `${base}/bills/${encodeURIComponent(month)}`);
      const heading = h('h3', { id: 'billing-lines', tabIndex: -1 }, `Bill for ${bill.month}`);
      mount(
        linesBox,
        heading,
        kv([
          ['Opening balance', money(bill.openingBalance, bill.currency)],
          ['Top-ups', money(bill.topups, bill.currency)],
          ['Usage', money(bill.usageTotal, bill.currency)],
          ['Paid from vouchers', money(bill.vouchersUsed, bill.currency)],
          ['Paid in cash', money(bill.cashCharged, bill.currency)],
          ['SLA credits', money(bill.slaCredits, bill.currency)],
          ['Other vouchers', money(bill.otherVouchers, bill.currency)],
          ['Adjustments', money(bill.adjustments, bill.currency)],
          ['Refunds', money(bill.refunds, bill.currency)],
          ['Rounding', money(bill.rounding, bill.currency)],
          ['Closing balance', money(bill.closingBalance, bill.currency)],
          ['Total (exact)', money(bill.total, bill.currency)],
          ['Amount due', money(bill.amountDue, bill.currency)],
          ['Late usage', money(bill.lateUsage, bill.currency)],
          ['Made', when(bill.createdAt)],
        ]),
        table(
          [
            { key: 'usageMonth', label: 'Usage month' },
            { key: 'region', label: 'Region', render: (l) => l.region || '—' },
            { key: 'actionClass', label: 'Action class' },
            { key: 'calls', label: 'Calls', num: true },
            { key: 'billableCalls', label: 'Billable calls', num: true },
            { key: 'amount', label: `Amount (${bill.currency})`, num: true },
            { key: 'late', label: 'Late', render: (l) => (l.late ? 'late usage of a closed month' : 'no') },
          ],
          bill.lines ?? [],
          { empty: 'This bill has no lines.', caption: `Lines of the bill for ${bill.month}, by region and action class.` },
        ),
        h('p', {}, button('Hide lines', async () => mount(linesBox), { kind: 'secondary' })),
      );
      heading.focus();
    } catch (err) {
      mount(linesBox, h('p', { class: 'error', role: 'alert' }, messageOf(err)));
    }
  };

  const downloadBill = async (month, kind) => {
    const q = new URLSearchParams({ from: month, to: nextMonth(month), accountId });
    if (kind === 'lines') {
      const text = await api('GET', `/v1/exports/bill-lines.csv?${q}`, { raw: true });
      saveText(text, `bill-lines-${month}.csv`);
    } else {
      const text = await api('GET', `/v1/exports/bills.csv?${q}`, { raw: true });
      saveText(text, `bill-${month}.csv`);
    }
  };

  const loadBills = () =>
    billsSec.load(async (body) => {
      const rows = [];
      let cursor = null;
      const tableBox = h('div', {});
      const moreBox = h('p', {});
      const draw = () => {
        mount(
          tableBox,
          table(
            [
              { key: 'month', label: 'Month' },
              { key: 'total', label: 'Total', num: true },
              { key: 'amountDue', label: 'Amount due', num: true },
              { key: 'currency', label: 'Currency' },
              {
                key: 'actions',
                label: 'Actions',
                render: (b) =>
                  h(
                    'div',
                    { style: 'display:flex; flex-wrap:wrap; gap:6px' },
                    button('Show lines', () => showLines(b.month), { kind: 'secondary', title: `The lines of the bill for ${b.month}` }),
                    button('Download CSV', () => downloadBill(b.month, 'bill'), { kind: 'secondary', title: `The bill for ${b.month} as CSV` }),
                    button('Download lines CSV', () => downloadBill(b.month, 'lines'), { kind: 'secondary', title: `The lines of the bill for ${b.month} as CSV` }),
                  ),
              },
            ],
            rows,
            { empty: 'No bills yet: the first one is made when your first month closes.', caption: '“Total” is exact; “Amount due” is it rounded half-up to 0.01.' },
          ),
        );
        mount(moreBox, cursor ? button('More bills', more, { kind: 'secondary', title: 'Older bills' }) : null);
      };
      const more = async () => {
        const q = new URLSearchParams({ limit: '12' });
        if (cursor) q.set('cursor', cursor);
        const page = await api('GET', `${base}/bills?${q}`);
        rows.push(...page.bills);
        cursor = page.nextCursor;
        draw();
      };
      mount(body, tableBox, moreBox, linesBox);
      await more();
    });

  await Promise.all([loadBalance(), loadLedger(), loadBills()]);
}
