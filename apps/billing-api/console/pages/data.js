// Account page: your data. `#/data` says where the account's data is stored
// (GET /v1/accounts/{id}/data-rights): per region, its location, what it holds and how much,
// and how many copies of every record exist (live replicas and backups), in plain words.
import { h, kv, messageOf, mount } from '../ui.js';

const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** The copies, in a sentence. */
function copiesText(d) {
  const live = d.replicas === 1 ? 'one live copy (the database)' : `${d.replicas} live copies (the database and its synchronous replicas)`;
  const backups =
    d.backupCopies === 0
      ? 'no backup copies are kept'
      : `${plural(d.backupCopies, 'backup copy', 'backup copies')} ${d.backupCopies === 1 ? 'is' : 'are'} kept${d.backupRetentionDays ? ` for ${plural(d.backupRetentionDays, 'day')}` : ''}`;
  return `Every record of your account exists in ${live}, and ${backups}: ${plural(d.copies, 'copy', 'copies')} in all.`;
}

export async function render(root, ctx) {
  const { api, who } = ctx;
  // the heading at once; the rest into a box of this render (left alone if you have moved on)
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  mount(root, h('h1', {}, 'Your data'), body);
  let d;
  try {
    d = await api('GET', `/v1/accounts/${encodeURIComponent(who.accountId)}/data-rights`);
  } catch (err) {
    mount(body, h('p', { class: 'error', role: 'alert' }, messageOf(err)));
    return;
  }
  const home = d.stores.find((s) => s.region === d.homeRegion);
  const where = (s) => s.location ?? 'location not stated by the operator';

  mount(
    body,
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'data-summary' },
      h('h2', { id: 'data-summary' }, 'In short'),
      h(
        'p',
        {},
        `Your account’s home region is ${d.homeRegion}${home ? ` (${where(home)})` : ''}: your account, access keys, usage, ledger, bills, SLA results and audit records are kept there. `,
        d.stores.length > 1
          ? `Queues and topics live in the region they were created in: you have data in ${plural(d.stores.length, 'region')} (${d.stores.map((s) => s.region).join(', ')}).`
          : 'All of your data is in that one region.',
      ),
      h('p', {}, copiesText(d)),
      kv([
        ['Home region', d.homeRegion],
        ['Live copies (replicas)', String(d.replicas)],
        ['Backup copies', String(d.backupCopies)],
        ['Backups kept for', d.backupCopies ? plural(d.backupRetentionDays, 'day') : '—'],
        ['Copies in all', String(d.copies)],
      ]),
    ),
    h(
      'section',
      { 'aria-labelledby': 'data-regions' },
      h('h2', { id: 'data-regions' }, 'Where it is stored'),
      h('p', { class: 'muted' }, 'Per region: where it is, what of yours it holds, and how much. Counts are of live queues and topics now; deleted ones and their messages are gone.'),
      h(
        'div',
        { class: 'row' },
        d.stores.map((s) =>
          h(
            'article',
            { class: 'card', 'aria-labelledby': `data-region-${s.region}` },
            h('h3', { id: `data-region-${s.region}`, style: 'margin-top:0' }, `Region ${s.region}`, s.region === d.homeRegion ? ' (home region)' : ''),
            h('p', {}, s.location ? `Stored in ${s.location}.` : h('span', { class: 'muted' }, 'The operator has not stated where this region is located.')),
            h('p', { style: 'margin-bottom:4px' }, s.holds.length ? 'It holds your:' : 'It holds nothing of yours at the moment.'),
            s.holds.length ? h('ul', { style: 'margin-top:0' }, s.holds.map((x) => h('li', {}, x))) : null,
            kv([
              ['Queues', String(s.liveQueues)],
              ['Messages in them', String(s.messages)],
              ['Topics', String(s.liveTopics)],
              ['Messages waiting to be pushed', String(s.pendingPushes)],
            ]),
          ),
        ),
      ),
    ),
  );
}
