// Account page: audit. `#/audit` lists the account's own entries of the audit trail
// (GET /v1/accounts/{id}/audit-records), newest first, a page at a time ("More"): when, what,
// who and through what, on which subject, why, and the details as recorded (compact JSON).
import { button, h, mount, table, when } from '../ui.js';



const ACTOR_KINDS = { user: 'you (an access key)', operator: 'an operator', component: 'the system' };

/** Details as compact JSON, for reading in a cell. */
function details(value) {
  if (value === null || value === undefined) return '—';
  let text;
  try {
    text = JSON.stringify(value);
  } catch {
    text = String(value);
  }
  if (text === '{}' || text === '[]') return '—';
  return h('code', { style: 'display:block; min-width:16em; max-width:36em; white-space:pre-wrap; overflow-wrap:anywhere; font-size:0.85em' }, text);
}

export async function render(root, ctx) {
  const { api, who } = ctx;
  const path = `/v1/accounts/${encodeURIComponent(who.accountId)}/audit-records`;
  const rows = [];
  let cursor = null;
  const tableBox = h('div', {});
  const moreBox = h('p', {});
  const count = h('p', { class: 'muted', role: 'status', 'aria-live': 'polite' });

  const draw = () => {
    mount(
      tableBox,
      table(
        [
          { key: 'at', label: 'Time', render: (e) => when(e.at) },
          { key: 'action', label: 'Action', render: (e) => h('code', {}, e.action) },
          { key: 'actor', label: 'Actor', render: (e) => h('span', { style: 'display:block; min-width:10em; overflow-wrap:anywhere' }, e.actor, h('br'), h('span', { class: 'muted' }, ACTOR_KINDS[e.actorKind] ?? e.actorKind)) },
          { key: 'via', label: 'Via', render: (e) => e.via ?? '—' },
          { key: 'subject', label: 'Subject', render: (e) => h('code', { style: 'display:block; min-width:10em; overflow-wrap:anywhere' }, e.subject) },
          { key: 'reason', label: 'Reason', render: (e) => e.reason ?? '—' },
          { key: 'details', label: 'Details', render: (e) => details(e.details) },
        ],
        rows,
        { empty: 'No audit records yet.', caption: 'Newest first. “Via” is the channel: cmq (your SDK requests), console (this console), api:<token> (an operator through the API), worker (the system).' },
      ),
    );
    count.textContent = `${rows.length} record${rows.length === 1 ? '' : 's'} shown${cursor ? '; more are older' : ''}.`;
    mount(moreBox, cursor ? button('More', more, { kind: 'secondary', title: 'Older audit records' }) : null);
  };

  const more = async () => {
    const q = new URLSearchParams({ limit: '50' });
    if (cursor) q.set('cursor', cursor);
    const page = await api('GET', `${path}?${q}`);
    const first = rows.length;
    rows.push(...page.entries);
    cursor = page.nextCursor;
    draw();
    const tr = tableBox.querySelectorAll('tbody tr')[first];
    if (first > 0 && tr) {
      tr.tabIndex = -1;
      tr.focus();
    }
  };

  mount(
    root,
    h('h1', {}, 'Audit'),
    h('p', { class: 'muted' }, 'What was done to your account and its resources, by whom and through what: your queue changes through CMQ, operator actions, standing changes and releases. The trail is append-only and hash-chained.'),
    count,
    tableBox,
    moreBox,
  );
  await more();
}
