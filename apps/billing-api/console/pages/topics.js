// Topics: the account's topics (list, search, create) and one topic (attributes, publish,
// subscriptions with their attributes, subscribe, unsubscribe, delete). Every call is a CMQ
// action made as the signed-in key through ctx.cmq(); lists go as JS arrays (the server sends
// them as name.n).
import { button, confirmed, flash, form, h, kv, messageOf, mount, table, when } from '../ui.js';

/** Topic and subscription names follow the queue rule (spec §7). */
const NAME_PATTERN = '[A-Za-z][A-Za-z0-9_\\-]{0,63}';
const PAGE_SIZE = 50;
const SUBSCRIPTION_PAGE = 100;
const MAX_MSG_SIZE = { min: 1024, max: 1048576, default: 65536 };
/** msgTag / filterTag / bindingKey: at most 5, tags ≤ 16 characters, keys ≤ 64 bytes and 15 dots (spec §10) */
const MAX_TAGS = 5;
const FILTER_TYPES = { 1: 'Tags (msgTag / filterTag)', 2: 'Routing keys (routingKey / bindingKey)' };
const STRATEGIES = [
  ['BACKOFF_RETRY', 'BACKOFF_RETRY'],
  ['EXPONENTIAL_DECAY_RETRY', 'EXPONENTIAL_DECAY_RETRY'],
];
const STRATEGY_HELP = 'HTTP pushes: BACKOFF_RETRY retries 3 times, 19–29 s apart; EXPONENTIAL_DECAY_RETRY after 1 s, 2 s, 4 s… for a day.';
const FORMATS = [
  ['JSON', 'JSON'],
  ['SIMPLIFIED', 'SIMPLIFIED'],
];
const FORMAT_HELP = 'JSON wraps the body with the topic, subscription and msgId; SIMPLIFIED is the raw body (always, for a queue).';

export async function render(root, ctx) {
  const name = ctx.rest[0];
  if (name) return renderTopic(root, ctx, name);
  return renderList(root, ctx);
}

// ---------------------------------------------------------------------------------------------
// helpers

function fieldError(field, words) {
  return Object.assign(new Error(words), { field });
}

function intOf(v) {
  const s = String(v ?? '').trim();
  return s === '' ? undefined : Number(s);
}

function bytes(b) {
  if (b === undefined || b === null) return '—';
  const n = Number(b);
  if (n >= 1048576 && n % 1048576 === 0) return `${n} bytes (${n / 1048576} MiB)`;
  if (n >= 1024 && n % 1024 === 0) return `${n} bytes (${n / 1024} KiB)`;
  return `${n} bytes`;
}

function seconds(s) {
  const n = Number(s);
  if (n >= 86400 && n % 86400 === 0) return `${n} s (${n / 86400} day${n === 86400 ? '' : 's'})`;
  return `${n} s`;
}

/** "a, b , c" → ['a', 'b', 'c'] (blanks and repeats dropped). */
function listOf(text) {
  return [...new Set(String(text ?? '').split(',').map((s) => s.trim()).filter(Boolean))];
}

/** Checks a comma list of tags (kind 'tag') or routing/binding keys (kind 'key') for `field`. */
function checkList(field, items, kind) {
  if (items.length > MAX_TAGS) throw fieldError(field, `At most ${MAX_TAGS} ${kind === 'tag' ? 'tags' : 'keys'}.`);
  for (const it of items) checkOne(field, it, kind);
  return items;
}

function checkOne(field, it, kind) {
  if (kind === 'tag' && [...it].length > 16) throw fieldError(field, `The tag “${it}” is longer than 16 characters.`);
  if (kind === 'key') {
    if (new TextEncoder().encode(it).length > 64) throw fieldError(field, `The key “${it}” is longer than 64 bytes.`);
    if ((it.match(/\./g) ?? []).length > 15) throw fieldError(field, `The key “${it}” has more than 15 dots.`);
  }
}

function listText(a) {
  return Array.isArray(a) && a.length ? a.join(', ') : '—';
}

function pager(total, offset, limit, go) {
  if (total <= limit && offset === 0) return h('p', { class: 'muted' }, `${total} in all.`);
  const last = Math.min(offset + limit, total);
  const prev = button('Previous page', () => go(Math.max(0, offset - limit)), { kind: 'secondary' });
  const next = button('Next page', () => go(offset + limit), { kind: 'secondary' });
  prev.disabled = offset === 0;
  next.disabled = last >= total;
  return h('div', { style: 'display:flex;gap:8px;align-items:center;flex-wrap:wrap;margin-top:8px' }, prev, next, h('span', { class: 'muted' }, total ? `${offset + 1}–${last} of ${total}` : `0 of ${total}`));
}

function section(id, title, ...body) {
  return h('section', { class: 'card', 'aria-labelledby': `${id}-h`, id }, h('h2', { id: `${id}-h`, style: 'margin-top:0' }, title), ...body);
}

// ---------------------------------------------------------------------------------------------
// the list

async function renderList(root, ctx) {
  const searchWord = (ctx.query.get('q') ?? '').trim();
  const offset = Math.max(0, Number.parseInt(ctx.query.get('offset') ?? '0', 10) || 0);
  const go = (q, off) => {
    const qs = new URLSearchParams();
    if (q) qs.set('q', q);
    if (off) qs.set('offset', String(off));
    const s = qs.toString();
    ctx.navigate(s ? `topics?${s}` : 'topics');
  };

  const params = { offset, limit: PAGE_SIZE };
  if (searchWord) params.searchWord = searchWord;
  const list = await ctx.cmq('ListTopic', params);
  const rows = list.topicList ?? [];
  const total = Number(list.totalCount ?? rows.length);

  const search = form({
    inline: true,
    submit: 'Search',
    fields: [{ name: 'q', label: 'Search by name', value: searchWord, placeholder: 'part of a name' }],
    onSubmit: async (v) => go(v.q.trim(), 0),
  });
  search.inputs.q.maxLength = 64;

  const create = form({
    submit: 'Create topic',
    fields: [
      { name: 'topicName', label: 'Topic name', required: true, pattern: NAME_PATTERN, placeholder: 'events', help: 'A letter, then letters, digits, _ or -; up to 64 characters.' },
      { name: 'maxMsgSize', label: 'Maximum message size (bytes)', type: 'number', required: true, min: MAX_MSG_SIZE.min, max: MAX_MSG_SIZE.max, value: MAX_MSG_SIZE.default, help: '1024–1048576 (1 MiB).' },
      {
        name: 'filterType',
        label: 'Filter type',
        type: 'select',
        value: '1',
        options: Object.entries(FILTER_TYPES),
        help: 'How subscriptions choose messages. It cannot be changed later.',
      },
    ],
    onSubmit: async (v) => {
      const topicName = v.topicName.trim();
      await ctx.cmq('CreateTopic', { topicName, maxMsgSize: intOf(v.maxMsgSize), filterType: Number(v.filterType) });
      flash(`Topic ${topicName} created.`);
      ctx.navigate(`topics/${encodeURIComponent(topicName)}`);
    },
  });
  create.id = 'topic-create-form';

  mount(
    root,
    h('h1', {}, 'Topics'),
    section(
      'topics-list',
      searchWord ? `Your topics matching “${searchWord}”` : 'Your topics',
      search,
      table(
        [
          { key: 'topicName', label: 'Name', render: (r) => h('a', { href: `#/topics/${encodeURIComponent(r.topicName)}` }, r.topicName) },
          { key: 'topicId', label: 'Topic id' },
        ],
        rows,
        { empty: searchWord ? 'No topic matches.' : 'No topics yet. Create one below.' },
      ),
      pager(total, offset, PAGE_SIZE, (off) => go(searchWord, off)),
    ),
    section('topic-create', 'Create a topic', create),
  );
}

// ---------------------------------------------------------------------------------------------
// one topic

async function renderTopic(root, ctx, name) {
  const t = { topicName: name };
  let attrs;
  try {
    attrs = await ctx.cmq('GetTopicAttributes', t);
  } catch (err) {
    mount(
      root,
      h('h1', {}, `Topic ${name}`),
      h('p', { class: 'error', role: 'alert' }, err?.cmq?.code === 4440 ? 'There is no such topic (it may have been deleted).' : messageOf(err)),
      h('p', {}, h('a', { href: '#/topics' }, '← All topics')),
    );
    return;
  }
  const filterType = Number(attrs.filterType) === 2 ? 2 : 1;
  const byTags = filterType === 1;
  const subsOffset = Math.max(0, Number.parseInt(ctx.query.get('subs') ?? '0', 10) || 0);

  const attrBox = h('div', { id: 'topic-attributes' });
  const publishResult = h('p', { id: 'publish-result', role: 'status', 'aria-live': 'polite' });
  const subsBox = h('div', { id: 'topic-subscriptions' });
  let subsCount = 0;
  /** the subscriptions whose panel is open (kept open across re-renders) */
  const openPanels = new Set();

  const showAttributes = () => {
    mount(
      attrBox,
      kv([
        ['Topic id', attrs.topicId ?? '—'],
        ['Filter type', `${filterType}: ${FILTER_TYPES[filterType]}`],
        ['Maximum message size', bytes(attrs.maxMsgSize)],
        ['Waiting to be pushed', Number(attrs.msgCount ?? 0).toLocaleString()],
        ['Kept unpushed for', seconds(attrs.msgRetentionSeconds)],
        ['Requests per second', attrs.qps !== undefined ? Number(attrs.qps).toLocaleString() : '—'],
        ['Created', when(attrs.createTime)],
        ['Last modified', when(attrs.lastModifyTime)],
      ]),
      h('p', { class: 'muted' }, `Read at ${new Date().toLocaleTimeString()}.`),
    );
  };
  const reload = async () => {
    attrs = await ctx.cmq('GetTopicAttributes', t);
    showAttributes();
  };
  const after = async () => {
    try {
      await reload();
      await showSubscriptions();
    } catch (err) {
      flash(messageOf(err), 'error');
    }
  };

  // --- attributes form
  const edit = form({
    inline: true,
    submit: 'Save',
    fields: [{ name: 'maxMsgSize', label: 'Maximum message size (bytes)', type: 'number', required: true, min: MAX_MSG_SIZE.min, max: MAX_MSG_SIZE.max, value: attrs.maxMsgSize ?? MAX_MSG_SIZE.default }],
    onSubmit: async (v) => {
      await ctx.cmq('SetTopicAttributes', { ...t, maxMsgSize: intOf(v.maxMsgSize) });
      flash(`Maximum message size of ${name} saved.`);
      await after();
    },
  });
  edit.id = 'topic-edit-form';

  // --- publish
  const publish = form({
    submit: 'Publish message',
    fields: [
      { name: 'msgBody', label: 'Message body', type: 'textarea', required: true, rows: 4, placeholder: 'Any text' },
      byTags
        ? { name: 'msgTag', label: 'Tags (comma-separated, optional)', placeholder: 'red, large', help: 'At most 5 tags of up to 16 characters. Subscriptions with filter tags get a message only if a tag matches.' }
        : { name: 'routingKey', label: 'Routing key', required: true, placeholder: 'order.created.eu', help: 'Dot-separated words, up to 64 bytes and 15 dots; matched against binding keys.' },
    ],
    onSubmit: async (v) => {
      mount(publishResult);
      const p = { ...t, msgBody: v.msgBody };
      if (new TextEncoder().encode(v.msgBody).length > Number(attrs.maxMsgSize)) throw fieldError('msgBody', `The body is longer than this topic’s maximum message size (${bytes(attrs.maxMsgSize)}).`);
      if (byTags) {
        const tags = checkList('msgTag', listOf(v.msgTag), 'tag');
        if (tags.length) p.msgTag = tags;
      } else {
        const key = v.routingKey.trim();
        checkOne('routingKey', key, 'key');
        p.routingKey = key;
      }
      const r = await ctx.cmq('PublishMessage', p);
      mount(publishResult, h('span', { class: 'ok' }, `Published. msgId: ${r.msgId}`));
      await after();
    },
  });
  publish.id = 'topic-publish-form';

  // --- subscriptions
  const showSubscriptions = async () => {
    const list = await ctx.cmq('ListSubscriptionByTopic', { ...t, offset: subsOffset, limit: SUBSCRIPTION_PAGE });
    const subs = list.subscriptionList ?? [];
    subsCount = Number(list.totalCount ?? subs.length);
    // each subscription's attributes (a failure shows in its row, not for the whole list)
    const details = await Promise.all(
      subs.map((s) =>
        ctx.cmq('GetSubscriptionAttributes', { ...t, subscriptionName: s.subscriptionName }).then(
          (a) => ({ ...s, ...a, ok: true }),
          (err) => ({ ...s, ok: false, error: messageOf(err) }),
        ),
      ),
    );
    const filterColumn = byTags
      ? { key: 'filterTag', label: 'Filter tags', render: (s) => (s.ok ? listText(s.filterTag ?? s.filterTags) : '—') }
      : { key: 'bindingKey', label: 'Binding keys', render: (s) => (s.ok ? listText(s.bindingKey) : '—') };
    mount(
      subsBox,
      table(
        [
          { key: 'subscriptionName', label: 'Name' },
          { key: 'protocol', label: 'Protocol' },
          { key: 'endpoint', label: 'Endpoint', render: (s) => h('span', { style: 'word-break:break-all' }, s.endpoint) },
          { key: 'notifyStrategy', label: 'Retry strategy', render: (s) => (s.ok ? s.notifyStrategy : h('span', { class: 'error' }, s.error)) },
          { key: 'notifyContentFormat', label: 'Format', render: (s) => (s.ok ? s.notifyContentFormat : '—') },
          filterColumn,
          { key: 'msgCount', label: 'Waiting', num: true, render: (s) => (s.ok ? Number(s.msgCount ?? 0).toLocaleString() : '—') },
        ],
        details,
        { empty: 'No subscriptions yet. Messages published now are refused until one exists.' },
      ),
      subsCount > SUBSCRIPTION_PAGE || subsOffset > 0
        ? pager(subsCount, subsOffset, SUBSCRIPTION_PAGE, (off) => ctx.navigate(`topics/${encodeURIComponent(name)}${off ? `?subs=${off}` : ''}`))
        : null,
      details.map((s) => manageSubscription(s)),
    );
  };

  /** A folded panel per subscription: its attributes, an edit form, clear tags, unsubscribe. */
  const manageSubscription = (s) => {
    const sub = { ...t, subscriptionName: s.subscriptionName };
    const body = [];
    if (!s.ok) {
      body.push(h('p', { class: 'error' }, s.error));
    } else {
      const isQueue = String(s.protocol).toLowerCase() === 'queue';
      const tags = s.filterTag ?? s.filterTags ?? [];
      body.push(
        kv([
          ['Subscription id', s.subscriptionId ?? '—'],
          ['Protocol', s.protocol],
          ['Endpoint', s.endpoint],
          ['Retry strategy', s.notifyStrategy],
          ['Content format', s.notifyContentFormat],
          ['Filter tags', listText(tags)],
          ['Binding keys', listText(s.bindingKey)],
          ['Messages waiting', Number(s.msgCount ?? 0).toLocaleString()],
          ['Created', when(s.createTime)],
          ['Last modified', when(s.lastModifyTime)],
        ]),
      );
      const f = form({
        submit: 'Save subscription',
        fields: [
          { name: 'notifyStrategy', label: 'Retry strategy', type: 'select', value: s.notifyStrategy, options: STRATEGIES, help: isQueue ? undefined : STRATEGY_HELP },
          { name: 'notifyContentFormat', label: 'Content format', type: 'select', value: s.notifyContentFormat, options: isQueue ? FORMATS.filter(([v]) => v === 'SIMPLIFIED') : FORMATS, help: isQueue ? 'A queue subscription gets the raw body (SIMPLIFIED).' : FORMAT_HELP },
          byTags
            ? { name: 'filterTag', label: 'Filter tags (comma-separated)', value: tags.join(', '), help: 'At most 5, each up to 16 characters. Empty: receive every message.' }
            : { name: 'bindingKey', label: 'Binding keys (comma-separated)', value: (s.bindingKey ?? []).join(', '), help: 'At most 5; * matches one word, # any number. Binding keys can be replaced but not removed.' },
        ],
        onSubmit: async (v) => {
          const p = { ...sub, notifyStrategy: v.notifyStrategy, notifyContentFormat: v.notifyContentFormat };
          let clear = false;
          if (byTags) {
            const list = checkList('filterTag', listOf(v.filterTag), 'tag');
            if (list.length) p.filterTag = list;
            else clear = tags.length > 0;
          } else {
            const list = checkList('bindingKey', listOf(v.bindingKey), 'key');
            if (list.length) p.bindingKey = list;
          }
          await ctx.cmq('SetSubscriptionAttributes', p);
          if (clear) await ctx.cmq('ClearSubscriptionFilterTags', sub);
          flash(`Subscription ${s.subscriptionName} saved.`);
          await after();
        },
      });
      body.push(f);
      if (tags.length) {
        body.push(
          h(
            'p',
            {},
            button(
              'Clear filter tags',
              async () => {
                await ctx.cmq('ClearSubscriptionFilterTags', sub);
                flash(`Filter tags of ${s.subscriptionName} cleared: it now receives every message.`);
                await after();
              },
              { kind: 'secondary', title: `Clear the filter tags of ${s.subscriptionName}` },
            ),
          ),
        );
      }
    }
    body.push(
      h(
        'p',
        {},
        button(
          'Unsubscribe',
          async () => {
            if (!confirmed(`Remove the subscription ${s.subscriptionName} from ${name}? Its undelivered messages are dropped.`)) return;
            await ctx.cmq('Unsubscribe', sub);
            flash(`Subscription ${s.subscriptionName} removed.`);
            await after();
          },
          { kind: 'danger', title: `Unsubscribe ${s.subscriptionName}` },
        ),
      ),
    );
    const panel = h(
      'details',
      { class: 'card', style: 'margin:12px 0 0', open: openPanels.has(s.subscriptionName) },
      h('summary', { style: 'cursor:pointer;font-weight:600' }, `Manage subscription ${s.subscriptionName}`),
      h('div', { style: 'margin-top:12px' }, body),
    );
    panel.addEventListener('toggle', () => (panel.open ? openPanels.add(s.subscriptionName) : openPanels.delete(s.subscriptionName)));
    return panel;
  };

  // --- subscribe
  const subscribe = form({
    submit: 'Subscribe',
    fields: [
      { name: 'subscriptionName', label: 'Subscription name', required: true, pattern: NAME_PATTERN, placeholder: 'to-orders' },
      { name: 'protocol', label: 'Protocol', type: 'select', value: 'queue', options: [['queue', 'queue'], ['http', 'http']], help: 'queue copies each message into one of your queues; http pushes it to a URL.' },
      { name: 'endpoint', label: 'Endpoint', required: true, placeholder: 'a queue name', help: 'A queue name of yours for queue; an http:// or https:// URL (up to 500 characters) for http.' },
      { name: 'notifyStrategy', label: 'Retry strategy', type: 'select', value: 'EXPONENTIAL_DECAY_RETRY', options: STRATEGIES, help: STRATEGY_HELP },
      { name: 'notifyContentFormat', label: 'Content format', type: 'select', value: 'SIMPLIFIED', options: FORMATS, help: FORMAT_HELP },
      byTags
        ? { name: 'filterTag', label: 'Filter tags (comma-separated, optional)', placeholder: 'red, large', help: 'At most 5, each up to 16 characters. Empty: every message.' }
        : { name: 'bindingKey', label: 'Binding keys (comma-separated)', required: true, placeholder: 'order.*.eu, invoice.#', help: 'At most 5; * matches one word, # any number.' },
    ],
    onSubmit: async (v) => {
      const protocol = v.protocol;
      const endpoint = v.endpoint.trim();
      if (protocol === 'queue' && !new RegExp(`^${NAME_PATTERN}$`).test(endpoint)) throw fieldError('endpoint', 'For protocol queue, the endpoint is the name of one of your queues.');
      if (protocol === 'http') {
        if (!/^https?:\/\/\S+$/i.test(endpoint)) throw fieldError('endpoint', 'For protocol http, the endpoint is an http:// or https:// URL without spaces.');
        if (endpoint.length > 500) throw fieldError('endpoint', 'The URL is longer than 500 characters.');
      }
      const p = {
        ...t,
        subscriptionName: v.subscriptionName.trim(),
        protocol,
        endpoint,
        notifyStrategy: v.notifyStrategy,
        notifyContentFormat: protocol === 'queue' ? 'SIMPLIFIED' : v.notifyContentFormat,
      };
      if (byTags) {
        const tags = checkList('filterTag', listOf(v.filterTag), 'tag');
        if (tags.length) p.filterTag = tags;
      } else {
        const keys = checkList('bindingKey', listOf(v.bindingKey), 'key');
        if (!keys.length) throw fieldError('bindingKey', 'Give at least one binding key.');
        p.bindingKey = keys;
      }
      await ctx.cmq('Subscribe', p);
      flash(`Subscribed ${p.subscriptionName} to ${name}.`);
      subscribe.inputs.subscriptionName.value = '';
      await after();
    },
  });
  subscribe.id = 'topic-subscribe-form';
  // a queue subscription must be SIMPLIFIED; suggest the account's queues as endpoints
  {
    const { protocol, endpoint, notifyContentFormat } = subscribe.inputs;
    const jsonOption = [...notifyContentFormat.options].find((o) => o.value === 'JSON');
    const sync = () => {
      const isQueue = protocol.value === 'queue';
      jsonOption.disabled = isQueue;
      if (isQueue) notifyContentFormat.value = 'SIMPLIFIED';
      endpoint.placeholder = isQueue ? 'a queue name' : 'https://example.com/hook';
      if (isQueue) endpoint.setAttribute('list', 'topic-queue-names');
      else endpoint.removeAttribute('list');
    };
    protocol.addEventListener('change', sync);
    sync();
  }
  const queueNames = h('datalist', { id: 'topic-queue-names' });
  ctx.cmq('ListQueue', { offset: 0, limit: 50 }).then(
    (r) => mount(queueNames, (r.queueList ?? []).map((q) => h('option', { value: q.queueName }))),
    () => {},
  );

  // --- delete
  const del = button(
    'Delete topic',
    async () => {
      if (!confirmed(`Delete the topic ${name}? It must have no subscriptions left.`)) return;
      await ctx.cmq('DeleteTopic', t);
      flash(`Topic ${name} deleted.`);
      ctx.navigate('topics');
    },
    { kind: 'danger' },
  );

  mount(
    root,
    h('p', { style: 'margin:0' }, h('a', { href: '#/topics' }, '← All topics')),
    h('h1', {}, `Topic ${name}`),
    h('div', { class: 'row' },
      section('topic-attributes-card', 'Attributes', attrBox, h('h3', { style: 'font-size:1em;margin:16px 0 8px' }, 'Edit attributes'), edit, h('div', { style: 'margin-top:8px' }, button('Refresh', () => after(), { kind: 'secondary' }))),
      section('topic-publish', 'Publish a message', publish, publishResult),
    ),
    section('topic-subscriptions-card', 'Subscriptions', subsBox),
    section('topic-subscribe', 'Subscribe', subscribe, queueNames),
    section('topic-delete', 'Delete topic', h('p', { class: 'muted' }, 'A topic with subscriptions cannot be deleted: unsubscribe them first.'), del),
  );
  showAttributes();
  await showSubscriptions();
}
