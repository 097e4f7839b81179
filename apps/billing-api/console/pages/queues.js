// Queues: the account's queues (list, search, create) and one queue (attributes, edit, send,
// receive and delete messages, rewind, dead-letter binding, delete). Every call is a CMQ action
// made as the signed-in key through ctx.cmq(); nothing here builds another account's ids.
import { button, confirmed, flash, form, h, kv, messageOf, mount, table, when } from '../ui.js';

/** Queue names (spec §7): a letter, then letters, digits, `_` and `-`; 1–64 characters. */
const NAME_PATTERN = '[A-Za-z][A-Za-z0-9_\\-]{0,63}';
const NAME_RE = new RegExp(`^${NAME_PATTERN}$`);
const PAGE_SIZE = 50;

/** The protocol's ranges and defaults of the queue attributes (spec §7, CreateQueue). */
const ATTRIBUTES = [
  { name: 'visibilityTimeout', label: 'Visibility timeout (seconds)', min: 1, max: 43200, value: 30, help: 'How long a received message stays hidden: 1–43200.' },
  { name: 'pollingWaitSeconds', label: 'Long-polling wait (seconds)', min: 0, max: 30, value: 0, help: 'Default wait of a receive: 0–30.' },
  { name: 'maxMsgSize', label: 'Maximum message size (bytes)', min: 1024, max: 1048576, value: 65536, help: '1024–1048576 (1 MiB).' },
  { name: 'msgRetentionSeconds', label: 'Message retention (seconds)', min: 60, max: 1296000, value: 345600, help: '60 (1 minute) – 1296000 (15 days).' },
  { name: 'rewindSeconds', label: 'Rewind window (seconds)', min: 0, max: 1296000, value: 0, help: '0 turns rewind off; at most the retention.' },
  { name: 'maxMsgHeapNum', label: 'Maximum messages held', min: 1000000, max: 1000000000, value: 10000000, help: '1,000,000–1,000,000,000.' },
];

const DEAD_LETTER = {
  maxReceiveCount: { min: 1, max: 1000 },
  maxTimeToLive: { min: 300, max: 43200 },
};

export async function render(root, ctx) {
  const name = ctx.rest[0];
  if (name) return renderQueue(root, ctx, name);
  return renderList(root, ctx);
}

// ---------------------------------------------------------------------------------------------
// helpers

/** An error with words for the form (and the field it names, shown next to it). */
function fieldError(field, words) {
  return Object.assign(new Error(words), { field });
}

/** A form value as an integer, or undefined when left empty. */
function intOf(v) {
  const s = String(v ?? '').trim();
  return s === '' ? undefined : Number(s);
}

/** Seconds for people: `345600 s (4 days)`. */
function seconds(s) {
  if (s === undefined || s === null) return '—';
  const n = Number(s);
  for (const [size, unit] of [[86400, 'day'], [3600, 'hour'], [60, 'minute']]) {
    if (n >= size && n % size === 0) return `${n} s (${n / size} ${unit}${n / size === 1 ? '' : 's'})`;
  }
  return `${n} s`;
}

/** Bytes for people: `65536 bytes (64 KiB)`. */
function bytes(b) {
  if (b === undefined || b === null) return '—';
  const n = Number(b);
  if (n >= 1048576 && n % 1048576 === 0) return `${n} bytes (${n / 1048576} MiB)`;
  if (n >= 1024 && n % 1024 === 0) return `${n} bytes (${n / 1024} KiB)`;
  return `${n} bytes`;
}

function count(n) {
  return n === undefined || n === null ? '—' : Number(n).toLocaleString();
}

/** The dead-letter policy GetQueueAttributes echoes (a JSON string, or an object), decoded. */
function deadLetterOf(attrs) {
  const raw = attrs?.deadLetterPolicy;
  if (!raw) return null;
  if (typeof raw === 'object') return raw;
  try {
    return JSON.parse(raw);
  } catch {
    return null;
  }
}

function describeDeadLetter(dl) {
  if (!dl) return 'None';
  const rule = Number(dl.policy) === 0 ? `after ${dl.maxReceiveCount} receives without delete` : `after ${seconds(dl.maxTimeToLive)} in the queue`;
  return `${dl.deadLetterQueue}, ${rule}`;
}

/** `YYYY-MM-DDTHH:MM:SS` in local time, for a datetime-local input. */
function localInput(ms) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** The dead-letter fields of the create and edit forms (policy select, queue, count, TTL). */
function deadLetterFields(current) {
  const policy = current ? String(current.policy) : '';
  return [
    {
      name: 'dlPolicy',
      label: 'Dead-letter policy',
      type: 'select',
      value: policy,
      options: [
        ['', 'None'],
        ['0', 'Move after too many receives (policy 0)'],
        ['1', 'Move after a time to live (policy 1)'],
      ],
    },
    { name: 'dlQueue', label: 'Dead-letter queue', pattern: NAME_PATTERN, value: current?.deadLetterQueue ?? '', help: 'An existing queue of yours without a dead-letter queue of its own.' },
    { name: 'dlMaxReceiveCount', label: 'Maximum receives', type: 'number', ...DEAD_LETTER.maxReceiveCount, value: current?.maxReceiveCount ?? 3, help: 'Policy 0: 1–1000.' },
    { name: 'dlMaxTimeToLive', label: 'Time to live (seconds)', type: 'number', ...DEAD_LETTER.maxTimeToLive, value: current?.maxTimeToLive ?? 3600, help: 'Policy 1: 300–43200, below the retention.' },
  ];
}

/** Shows only the dead-letter fields the chosen policy needs (hidden ones are disabled, so not checked). */
function wireDeadLetter(f) {
  const { dlPolicy, dlQueue, dlMaxReceiveCount, dlMaxTimeToLive } = f.inputs;
  const show = (input, on) => {
    // `hidden` loses to the stylesheet's `label { display: grid }`, so hide by style
    input.closest('label').style.display = on ? '' : 'none';
    input.disabled = !on;
    input.required = on;
  };
  const sync = () => {
    const p = dlPolicy.value;
    show(dlQueue, p !== '');
    show(dlMaxReceiveCount, p === '0');
    show(dlMaxTimeToLive, p === '1');
  };
  dlPolicy.addEventListener('change', sync);
  sync();
}

/** The deadLetterPolicy JSON string of the form's values, or undefined for none. */
function deadLetterParam(v) {
  if (v.dlPolicy === '') return undefined;
  const queue = v.dlQueue.trim();
  if (!NAME_RE.test(queue)) throw fieldError('dlQueue', 'Give the dead-letter queue’s name.');
  const policy = Number(v.dlPolicy);
  const body = { deadLetterQueue: queue, policy };
  if (policy === 0) body.maxReceiveCount = intOf(v.dlMaxReceiveCount);
  else body.maxTimeToLive = intOf(v.dlMaxTimeToLive);
  return JSON.stringify(body);
}

/** Previous / next buttons and "51–100 of 120". */
function pager(total, offset, limit, go) {
  if (total <= limit && offset === 0) return h('p', { class: 'muted' }, `${total} in all.`);
  const last = Math.min(offset + limit, total);
  const prev = button('Previous page', () => go(Math.max(0, offset - limit)), { kind: 'secondary' });
  const next = button('Next page', () => go(offset + limit), { kind: 'secondary' });
  prev.disabled = offset === 0;
  next.disabled = last >= total;
  return h('div', { class: 'inline', style: 'display:flex;gap:8px;align-items:center;flex-wrap:wrap;margin-top:8px' }, prev, next, h('span', { class: 'muted' }, total ? `${offset + 1}–${last} of ${total}` : `0 of ${total}`));
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
    ctx.navigate(s ? `queues?${s}` : 'queues');
  };

  const params = { offset, limit: PAGE_SIZE };
  if (searchWord) params.searchWord = searchWord;
  const list = await ctx.cmq('ListQueue', params);
  const rows = list.queueList ?? [];
  const total = Number(list.totalCount ?? rows.length);

  const search = form({
    inline: true,
    submit: 'Search',
    fields: [{ name: 'q', label: 'Search by name', value: searchWord, placeholder: 'part of a name' }],
    onSubmit: async (v) => go(v.q.trim(), 0),
  });
  search.inputs.q.maxLength = 64;

  const create = form({
    submit: 'Create queue',
    fields: [
      { name: 'queueName', label: 'Queue name', required: true, pattern: NAME_PATTERN, placeholder: 'orders', help: 'A letter, then letters, digits, _ or -; up to 64 characters.' },
      ...ATTRIBUTES.map((a) => ({ ...a, type: 'number', required: true })),
      ...deadLetterFields(null),
    ],
    onSubmit: async (v) => {
      const queueName = v.queueName.trim();
      const p = { queueName };
      for (const a of ATTRIBUTES) {
        const n = intOf(v[a.name]);
        if (n !== undefined) p[a.name] = n;
      }
      if (p.rewindSeconds > p.msgRetentionSeconds) throw fieldError('rewindSeconds', 'The rewind window cannot be longer than the retention.');
      const dl = deadLetterParam(v);
      if (dl) p.deadLetterPolicy = dl;
      await ctx.cmq('CreateQueue', p);
      flash(`Queue ${queueName} created.`);
      ctx.navigate(`queues/${encodeURIComponent(queueName)}`);
    },
  });
  create.id = 'queue-create-form';
  wireDeadLetter(create);

  mount(
    root,
    h('h1', {}, 'Queues'),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'queues-list-h' },
      h('h2', { id: 'queues-list-h', style: 'margin-top:0' }, searchWord ? `Your queues matching “${searchWord}”` : 'Your queues'),
      search,
      table(
        [
          { key: 'queueName', label: 'Name', render: (r) => h('a', { href: `#/queues/${encodeURIComponent(r.queueName)}` }, r.queueName) },
          { key: 'queueId', label: 'Queue id' },
        ],
        rows,
        { empty: searchWord ? 'No queue matches.' : 'No queues yet. Create one below.' },
      ),
      pager(total, offset, PAGE_SIZE, (off) => go(searchWord, off)),
    ),
    h('section', { class: 'card', 'aria-labelledby': 'queues-create-h', id: 'queue-create' }, h('h2', { id: 'queues-create-h', style: 'margin-top:0' }, 'Create a queue'), create),
  );
}

// ---------------------------------------------------------------------------------------------
// one queue

async function renderQueue(root, ctx, name) {
  const q = { queueName: name };
  let attrs;
  try {
    attrs = await ctx.cmq('GetQueueAttributes', q);
  } catch (err) {
    mount(
      root,
      h('h1', {}, `Queue ${name}`),
      h('p', { class: 'error', role: 'alert' }, err?.cmq?.code === 4440 ? 'There is no such queue (it may have been deleted).' : messageOf(err)),
      h('p', {}, h('a', { href: '#/queues' }, '← All queues')),
    );
    return;
  }

  // containers the actions re-render
  const attrBox = h('div', { id: 'queue-attributes' });
  const dlBox = h('div', { id: 'queue-dead-letter' });
  const editBox = h('div', { id: 'queue-edit' });
  const rewindBox = h('div', { id: 'queue-rewind' });
  const sendResult = h('p', { id: 'send-result', role: 'status', 'aria-live': 'polite' });
  const receiveStatus = h('div', { id: 'receive-status', role: 'status', 'aria-live': 'polite' });
  const receivedBox = h('div', { id: 'received-messages' });
  /** messages received in this visit, by msgId (a newer receive replaces the receipt handle) */
  const received = new Map();

  /** GetQueueAttributes again; `forms` also re-renders the forms made from them. */
  const reload = async ({ forms = false } = {}) => {
    attrs = await ctx.cmq('GetQueueAttributes', q);
    showAttributes();
    if (forms) {
      showEdit();
      showRewind();
      await showDeadLetter();
    }
  };
  /** After an action: refresh the attributes, its own errors flashed rather than thrown. */
  const after = async (opts) => {
    try {
      await reload(opts);
    } catch (err) {
      flash(messageOf(err), 'error');
    }
  };

  const showAttributes = () => {
    mount(
      attrBox,
      h('h3', { class: 'muted', style: 'margin:0 0 8px;font-size:1em' }, 'Messages'),
      kv([
        ['Active (visible)', count(attrs.activeMsgNum)],
        ['Inactive (in flight)', count(attrs.inactiveMsgNum)],
        ['Delayed', count(attrs.delayMsgNum)],
        ['Rewindable (deleted)', count(attrs.rewindMsgNum ?? attrs.rewindmsgNum)],
        ['Oldest message', attrs.minMsgTime ? when(attrs.minMsgTime) : '—'],
      ]),
      h('h3', { class: 'muted', style: 'margin:16px 0 8px;font-size:1em' }, 'Settings'),
      kv([
        ['Queue id', attrs.queueId ?? '—'],
        ['Visibility timeout', seconds(attrs.visibilityTimeout)],
        ['Long-polling wait', seconds(attrs.pollingWaitSeconds)],
        ['Maximum message size', bytes(attrs.maxMsgSize)],
        ['Message retention', seconds(attrs.msgRetentionSeconds)],
        ['Rewind window', Number(attrs.rewindSeconds) > 0 ? seconds(attrs.rewindSeconds) : 'Off (0)'],
        ['Maximum messages held', count(attrs.maxMsgHeapNum)],
        ['Requests per second', attrs.qps !== undefined ? count(attrs.qps) : '—'],
        ['Dead-letter queue', describeDeadLetter(deadLetterOf(attrs))],
        ['Created', when(attrs.createTime)],
        ['Last modified', when(attrs.lastModifyTime)],
      ]),
      h('p', { class: 'muted' }, `Counts are approximate. Read at ${new Date().toLocaleTimeString()}.`),
    );
  };

  const showDeadLetter = async () => {
    const dl = deadLetterOf(attrs);
    const parts = [];
    if (dl) {
      parts.push(
        h('p', {}, 'Dead-lettered messages go to ', h('a', { href: `#/queues/${encodeURIComponent(dl.deadLetterQueue)}` }, dl.deadLetterQueue), ` (${describeDeadLetter(dl).split(', ').slice(1).join(', ')}).`),
        button(
          'Unbind dead-letter queue',
          async () => {
            if (!confirmed(`Unbind the dead-letter queue ${dl.deadLetterQueue} from ${name}? Failing messages then stay in ${name}.`)) return;
            await ctx.cmq('UnbindDeadLetterQueue', q);
            flash(`The dead-letter queue of ${name} is unbound.`);
            await after({ forms: true });
          },
          { kind: 'secondary' },
        ),
      );
    } else {
      parts.push(h('p', { class: 'muted' }, 'This queue has no dead-letter queue. Set one in “Edit attributes”.'));
    }
    // queues that use this one as their dead-letter queue
    try {
      const sources = await ctx.cmq('ListDeadLetterSourceQueues', { deadLetterQueueName: name, limit: 50 });
      const list = sources.queueList ?? [];
      if (list.length) {
        parts.push(
          h('p', {}, `This queue is the dead-letter queue of ${sources.totalCount ?? list.length} queue(s): `, list.flatMap((s, i) => [i ? ', ' : '', h('a', { href: `#/queues/${encodeURIComponent(s.queueName)}` }, s.queueName)]), '.'),
        );
      }
    } catch {
      // an optional extra: the binding above is what matters
    }
    mount(dlBox, parts);
  };

  const showEdit = () => {
    const dl = deadLetterOf(attrs);
    const edit = form({
      submit: 'Save attributes',
      fields: [...ATTRIBUTES.map((a) => ({ ...a, type: 'number', required: true, value: attrs[a.name] ?? a.value })), ...deadLetterFields(dl)],
      onSubmit: async (v) => {
        const p = { ...q };
        for (const a of ATTRIBUTES) {
          const n = intOf(v[a.name]);
          if (n !== undefined) p[a.name] = n;
        }
        if (p.rewindSeconds > p.msgRetentionSeconds) throw fieldError('rewindSeconds', 'The rewind window cannot be longer than the retention.');
        const policy = deadLetterParam(v);
        if (policy) p.deadLetterPolicy = policy;
        await ctx.cmq('SetQueueAttributes', p);
        // "No dead-letter queue" chosen for a bound queue: unbind it
        if (!policy && dl) await ctx.cmq('UnbindDeadLetterQueue', q);
        flash(`Attributes of ${name} saved.`);
        await after({ forms: true });
      },
    });
    edit.id = 'queue-edit-form';
    wireDeadLetter(edit);
    mount(editBox, edit);
  };

  const showRewind = () => {
    const span = Number(attrs.rewindSeconds) || 0;
    if (span <= 0) {
      mount(rewindBox, h('p', { class: 'muted' }, 'Rewind is off for this queue (its rewind window is 0). Set a rewind window in “Edit attributes” to turn it on.'));
      return;
    }
    const now = Date.now();
    const start = Math.ceil((now - span * 1000) / 1000) * 1000;
    const rewind = form({
      inline: true,
      submit: 'Rewind queue',
      fields: [
        {
          name: 'start',
          label: 'Consume again from',
          type: 'datetime-local',
          required: true,
          step: 1,
          min: localInput(start),
          value: localInput(Math.min(now, start + Math.min(60_000, span * 500))),
          help: `Within the last ${seconds(span)} (your local time).`,
        },
      ],
      onSubmit: async (v) => {
        const ms = new Date(v.start).getTime();
        if (Number.isNaN(ms)) throw fieldError('start', 'Choose a date and time.');
        if (ms > Date.now()) throw fieldError('start', 'The start cannot be in the future.');
        const startConsumeTime = Math.floor(ms / 1000);
        await ctx.cmq('RewindQueue', { ...q, startConsumeTime });
        flash(`${name} rewound: messages from ${when(startConsumeTime)} are delivered again.`);
        await after();
      },
    });
    rewind.id = 'queue-rewind-form';
    mount(rewindBox, h('p', { class: 'muted' }, 'Receives then deliver the messages produced since that time again, in order, including deleted ones still inside the window.'), rewind);
  };

  const send = form({
    submit: 'Send message',
    fields: [
      { name: 'msgBody', label: 'Message body', type: 'textarea', required: true, rows: 4, placeholder: 'Any text' },
      { name: 'delaySeconds', label: 'Delay (seconds)', type: 'number', min: 0, max: 6048000, value: 0, help: 'Visible only after this delay: 0–6048000.' },
    ],
    onSubmit: async (v) => {
      mount(sendResult);
      const p = { ...q, msgBody: v.msgBody };
      const delay = intOf(v.delaySeconds);
      if (delay) p.delaySeconds = delay;
      if (new TextEncoder().encode(v.msgBody).length > Number(attrs.maxMsgSize)) throw fieldError('msgBody', `The body is longer than this queue’s maximum message size (${bytes(attrs.maxMsgSize)}).`);
      const r = await ctx.cmq('SendMessage', p);
      mount(sendResult, h('span', { class: 'ok' }, `Sent. msgId: ${r.msgId}`), delay ? ` (visible in ${seconds(delay)})` : '');
      await after();
    },
  });
  send.id = 'queue-send-form';

  const removeFromList = (ids) => {
    for (const id of ids) received.delete(id);
    showReceived();
  };

  const showReceived = () => {
    const msgs = [...received.values()];
    receivedCard.hidden = !msgs.length;
    if (!msgs.length) {
      mount(receivedBox);
      return;
    }
    mount(
      receivedBox,
      h('p', { class: 'muted' }, 'Delete a message before its visibility timeout ends, or it becomes visible again.'),
      table(
        [
          { key: 'msgBody', label: 'Body', render: (m) => bodyCell(m.msgBody) },
          { key: 'msgId', label: 'msgId' },
          { key: 'dequeueCount', label: 'Receives', num: true },
          { key: 'enqueueTime', label: 'Sent', render: (m) => when(m.enqueueTime) },
          { key: 'nextVisibleTime', label: 'Visible again', render: (m) => when(m.nextVisibleTime) },
          {
            key: 'actions',
            label: 'Actions',
            render: (m) =>
              button(
                'Delete',
                async () => {
                  await ctx.cmq('DeleteMessage', { ...q, receiptHandle: m.receiptHandle });
                  flash(`Message ${m.msgId} deleted.`);
                  removeFromList([m.msgId]);
                  await after();
                },
                { kind: 'danger', title: `Delete message ${m.msgId}` },
              ),
          },
        ],
        msgs,
      ),
      h(
        'div',
        { style: 'margin-top:8px' },
        button(
          'Delete all received',
          async () => {
            const all = [...received.values()];
            const failed = [];
            for (let i = 0; i < all.length; i += 16) {
              const chunk = all.slice(i, i + 16);
              const r = await ctx.cmq('BatchDeleteMessage', { ...q, receiptHandle: chunk.map((m) => m.receiptHandle) }, { allow: [6010, 6020] });
              if (r.code !== 0) {
                const bad = new Set((r.errorList ?? []).map((e) => e.receiptHandle));
                failed.push(...chunk.filter((m) => bad.has(m.receiptHandle) || (bad.size === 0 && r.code === 6020)));
              }
            }
            const failedIds = new Set(failed.map((m) => m.msgId));
            removeFromList(all.filter((m) => !failedIds.has(m.msgId)).map((m) => m.msgId));
            if (failed.length) {
              flash(`${all.length - failed.length} deleted; ${failed.length} could not be (their receipt handles expired or were replaced by a newer receive).`, 'error');
            } else {
              flash(`${all.length} message(s) deleted.`);
            }
            await after();
          },
          { kind: 'danger' },
        ),
      ),
    );
  };

  const receive = form({
    inline: true,
    submit: 'Receive messages',
    fields: [
      { name: 'numOfMsg', label: 'How many (1–16)', type: 'number', required: true, min: 1, max: 16, value: 1 },
      { name: 'pollingWaitSeconds', label: 'Wait up to (seconds, 0–30)', type: 'number', required: true, min: 0, max: 30, value: 0 },
    ],
    onSubmit: async (v) => {
      const wait = intOf(v.pollingWaitSeconds) ?? 0;
      const numOfMsg = intOf(v.numOfMsg) ?? 1;
      mount(receiveStatus, h('p', { class: 'muted' }, wait ? `Waiting up to ${wait} s for messages… ` : 'Receiving… ', h('progress', { class: 'progress', 'aria-label': 'Receiving' })));
      let r;
      try {
        r = await ctx.cmq('BatchReceiveMessage', { ...q, numOfMsg, pollingWaitSeconds: wait }, { allow: [7000] });
      } catch (err) {
        mount(receiveStatus);
        throw err;
      }
      if (r.code === 7000) {
        mount(receiveStatus, h('p', { class: 'muted' }, `No message${wait ? ` within ${wait} s` : ''} (${new Date().toLocaleTimeString()}).`));
      } else {
        const list = r.msgInfoList ?? [];
        for (const m of list) {
          received.delete(m.msgId);
          received.set(m.msgId, m);
        }
        mount(receiveStatus, h('p', { class: 'ok' }, `Received ${list.length} message(s).`));
        showReceived();
      }
      await after();
    },
  });
  receive.id = 'queue-receive-form';

  const del = button(
    'Delete queue',
    async () => {
      if (!confirmed(`Delete the queue ${name} and every message in it? This cannot be undone.`)) return;
      await ctx.cmq('DeleteQueue', q);
      flash(`Queue ${name} deleted.`);
      ctx.navigate('queues');
    },
    { kind: 'danger' },
  );

  const section = (id, title, ...body) => h('section', { class: 'card', 'aria-labelledby': `${id}-h`, id }, h('h2', { id: `${id}-h`, style: 'margin-top:0' }, title), ...body);

  const receivedCard = section('queue-received', 'Received messages', receivedBox);

  mount(
    root,
    h('p', { style: 'margin:0' }, h('a', { href: '#/queues' }, '← All queues')),
    h('h1', {}, `Queue ${name}`),
    h('div', { class: 'row' },
      section('queue-attributes-card', 'Attributes', attrBox, h('div', { style: 'margin-top:8px' }, button('Refresh attributes', () => reload(), { kind: 'secondary' }))),
      h(
        'div',
        {},
        section('queue-send', 'Send a test message', send, sendResult),
        section('queue-receive', 'Receive messages', receive, receiveStatus),
      ),
    ),
    receivedCard,
    section('queue-edit-card', 'Edit attributes', editBox),
    section('queue-dead-letter-card', 'Dead-letter queue', dlBox),
    section('queue-rewind-card', 'Rewind', rewindBox),
    section('queue-delete', 'Delete queue', h('p', { class: 'muted' }, 'Deletes the queue and its messages. A queue that is another queue’s dead-letter queue cannot be deleted.'), del),
  );
  showAttributes();
  showEdit();
  showRewind();
  showReceived();
  await showDeadLetter();
}

/** A message body: short ones whole, long ones folded. */
function bodyCell(body) {
  const text = String(body ?? '');
  const style = 'white-space:pre-wrap;word-break:break-word';
  if (text.length <= 300) return h('span', { style }, text);
  return h('details', {}, h('summary', {}, `${text.slice(0, 120)}… (${text.length} characters)`), h('span', { style }, text));
}
