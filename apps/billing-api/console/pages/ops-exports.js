// Operator page: export jobs. Starts a finance CSV export (the worker writes the file), lists
// the jobs started in this browser session with their progress, polled every second while
// they run, and downloads a finished file.
import { button, flash, form, h, isoWithOffset, messageOf, mount, saveText, table, toLocalInput, when } from '../ui.js';

const JOBS_KEY = 'cmq-console-export-jobs';
const KINDS = [
  ['ledger', 'Ledger entries'],
  ['usage_hourly', 'Hourly usage'],
  ['bills', 'Monthly bills'],
  ['bill_lines', 'Bill lines'],
  ['sla_results', 'SLA results'],
  ['audit', 'Audit trail'],
];
const MONTH_KINDS = new Set(['bills', 'bill_lines', 'sla_results']);
const FILE_NAMES = { ledger: 'ledger', usage_hourly: 'usage-hourly', bills: 'bills', bill_lines: 'bill-lines', sla_results: 'sla-results', audit: 'audit' };
const UUID_PATTERN = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';
const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;

const pad = (n) => String(n).padStart(2, '0');
const kindText = (k) => KINDS.find(([v]) => v === k)?.[1] ?? k;

/** The job ids of this browser session, newest first. */
function storedIds() {
  try {
    const ids = JSON.parse(sessionStorage.getItem(JOBS_KEY) ?? '[]');
    return Array.isArray(ids) ? ids.filter((x) => typeof x === 'string') : [];
  } catch {
    return [];
  }
}
const storeIds = (ids) => sessionStorage.setItem(JOBS_KEY, JSON.stringify(ids.slice(0, 50)));

const monthInput = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}`;

/** Bytes for people. */
function size(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

const statusText = { pending: 'Waiting for the worker', running: 'Running', done: 'Done', failed: 'Failed' };

export async function render(root, ctx) {
  const { api } = ctx;
  const formBox = h('div', {});
  const jobsBox = h('div', { 'aria-live': 'off' });

  mount(
    root,
    h('h1', {}, 'Exports'),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'exp-new' },
      h('h2', { id: 'exp-new', style: 'margin-top:0' }, 'New export'),
      h(
        'p',
        { class: 'muted' },
        'The worker writes the CSV file (RFC 4180, UTF-8); its progress shows below. Bills, bill lines and SLA results are chosen by billing month, the others by time ([from, to), your local time). Every export is recorded in the audit trail as yours.',
      ),
      formBox,
    ),
    h('section', { 'aria-labelledby': 'exp-jobs' }, h('h2', { id: 'exp-jobs' }, 'Your export jobs (this browser session)'), jobsBox),
  );

  // ---- the jobs, updated in place so focus and the Download buttons stay put while polling
  const rows = new Map(); // id → { job, cells }
  let timer = null;

  const cellsOf = (id) => {
    const progress = h('progress', { max: 1, 'aria-label': 'Export progress' });
    return {
      status: h('span', {}),
      progress,
      count: h('span', { class: 'muted' }),
      action: h('span', {}),
      what: h('span', {}),
      created: h('span', {}),
      id,
    };
  };

  const download = async (job) => {
    const text = await api('GET', `/v1/exports/${encodeURIComponent(job.id)}/file`, { raw: true });
    const n = MONTH_KINDS.has(job.kind) ? 7 : 10;
    // the browser's text decoding drops a byte-order mark: put it back for a job that asked for one
    saveText(job.bom && !text.startsWith('\uFEFF') ? `\uFEFF${text}` : text, `${FILE_NAMES[job.kind] ?? job.kind}-${job.from.slice(0, n)}-${job.to.slice(0, n)}.csv`);
  };

  const update = (entry) => {
    const { job, cells, error } = entry;
    if (error) {
      cells.status.textContent = 'Unknown';
      cells.status.className = 'error';
      cells.progress.value = 0;
      cells.count.textContent = error;
      if (!cells.action.childElementCount) mount(cells.action, forget(entry.id));
      return;
    }
    cells.what.textContent = `${kindText(job.kind)}: ${MONTH_KINDS.has(job.kind) ? job.from : when(job.from)} – ${MONTH_KINDS.has(job.kind) ? job.to : when(job.to)}${job.accountId ? `, account ${job.accountId}` : ', every account'}${job.bom ? ', with BOM' : ''}`;
    cells.created.textContent = when(job.createdAt);
    cells.status.textContent = statusText[job.status] ?? job.status;
    cells.status.className = job.status === 'failed' ? 'error' : job.status === 'done' ? 'ok' : '';
    if (job.status === 'done') {
      cells.progress.value = 1;
    } else if (job.status === 'failed') {
      cells.progress.value = 0;
    } else {
      cells.progress.removeAttribute('value'); // indeterminate: rows grow, the total is unknown
    }
    cells.progress.setAttribute('aria-label', `Progress of the ${kindText(job.kind).toLowerCase()} export`);
    cells.count.textContent = `${job.rows.toLocaleString()} rows, ${size(job.bytes)}${job.status === 'failed' && job.error ? ` — ${job.error}` : ''}${job.finishedAt ? ` (finished ${when(job.finishedAt)})` : ''}`;
    if (job.status === 'done' && !cells.action.dataset.done) {
      cells.action.dataset.done = '1';
      mount(cells.action, button('Download', () => download(job)), ' ', forget(job.id));
    } else if (job.status !== 'done' && !cells.action.childElementCount) {
      mount(cells.action, forget(job.id));
    }
  };

  const forget = (id) =>
    h(
      'button',
      {
        type: 'button',
        class: 'secondary',
        'aria-label': `Remove job ${id} from this list`,
        onclick: () => {
          storeIds(storedIds().filter((x) => x !== id));
          rows.delete(id);
          drawJobs();
        },
      },
      'Remove',
    );

  const drawJobs = () => {
    const ids = storedIds();
    const list = ids.map((id) => {
      if (!rows.has(id)) rows.set(id, { id, job: null, cells: cellsOf(id), error: null });
      return rows.get(id);
    });
    mount(
      jobsBox,
      table(
        [
          { key: 'created', label: 'Started', render: (e) => e.cells.created },
          { key: 'what', label: 'Export', render: (e) => e.cells.what },
          { key: 'status', label: 'Status', render: (e) => e.cells.status },
          { key: 'progress', label: 'Progress', render: (e) => h('div', {}, e.cells.progress, h('br'), e.cells.count) },
          { key: 'action', label: 'File', render: (e) => e.cells.action },
        ],
        list,
        { empty: 'No export jobs started in this browser session yet.' },
      ),
    );
    for (const e of list) if (e.job || e.error) update(e);
  };

  const poll = async (all = false) => {
    if (!jobsBox.isConnected) return stop();
    const due = [...rows.values()].filter((e) => all || (!e.error && (!e.job || e.job.status === 'pending' || e.job.status === 'running')));
    await Promise.all(
      due.map(async (e) => {
        try {
          e.job = await api('GET', `/v1/exports/${encodeURIComponent(e.id)}`);
          e.error = null;
        } catch (err) {
          e.error = messageOf(err);
        }
        update(e);
      }),
    );
    const active = [...rows.values()].some((e) => !e.error && (!e.job || e.job.status === 'pending' || e.job.status === 'running'));
    if (!active) stop();
  };
  const stop = () => {
    if (timer) clearInterval(timer);
    timer = null;
  };
  const start = () => {
    if (timer) return;
    let busy = false;
    timer = setInterval(async () => {
      if (busy) return;
      busy = true;
      try {
        await poll();
      } finally {
        busy = false;
      }
    }, 1000);
  };

  // ---- the form, drawn again when the kind changes (months or times)
  const now = new Date();
  const drawForm = (kind, keep = {}) => {
    const monthKind = MONTH_KINDS.has(kind);
    const fields = [{ name: 'kind', label: 'Kind', type: 'select', options: KINDS, value: kind, required: true }];
    if (monthKind) {
      // last month by default: the latest whose bills and SLA results are closed
      fields.push(
        { name: 'from', label: 'From month', type: 'month', required: true, value: monthInput(new Date(now.getFullYear(), now.getMonth() - 1, 1)), placeholder: 'YYYY-MM', help: 'The first billing month (inclusive).' },
        { name: 'to', label: 'To month', type: 'month', required: true, value: monthInput(new Date(now.getFullYear(), now.getMonth(), 1)), placeholder: 'YYYY-MM', help: 'The month after the last (exclusive).' },
      );
    } else {
      fields.push(
        { name: 'from', label: 'From', type: 'datetime-local', required: true, value: toLocalInput(new Date(now.getFullYear(), now.getMonth(), 1)), help: 'Inclusive, your local time.' },
        { name: 'to', label: 'To', type: 'datetime-local', required: true, value: toLocalInput(new Date(now.getFullYear(), now.getMonth() + 1, 1)), help: 'Exclusive, your local time.' },
      );
    }
    fields.push(
      { name: 'accountId', label: 'Account id (optional)', pattern: UUID_PATTERN, value: keep.accountId ?? '', placeholder: 'blank: every account' },
      { name: 'bom', label: 'A byte-order mark first (for spreadsheets)', type: 'checkbox', value: keep.bom ?? false },
    );
    const f = form({
      submit: 'Start export',
      fields,
      onSubmit: async (v) => {
        let from;
        let to;
        if (monthKind) {
          if (!MONTH.test(v.from)) throw Object.assign(new Error('from must be a month, YYYY-MM'), { field: 'from' });
          if (!MONTH.test(v.to)) throw Object.assign(new Error('to must be a month, YYYY-MM'), { field: 'to' });
          if (v.from >= v.to) throw Object.assign(new Error('from must be before to (the range is [from, to))'), { field: 'from' });
          from = v.from;
          to = v.to;
        } else {
          const a = new Date(v.from);
          const b = new Date(v.to);
          if (Number.isNaN(a.getTime())) throw Object.assign(new Error('from must be a date and time'), { field: 'from' });
          if (Number.isNaN(b.getTime())) throw Object.assign(new Error('to must be a date and time'), { field: 'to' });
          if (a >= b) throw Object.assign(new Error('from must be before to (the range is [from, to))'), { field: 'from' });
          from = isoWithOffset(a);
          to = isoWithOffset(b);
        }
        const body = { kind: v.kind, from, to, bom: v.bom };
        if (v.accountId.trim()) body.accountId = v.accountId.trim().toLowerCase();
        const r = await api('POST', '/v1/exports', { body });
        storeIds([r.id, ...storedIds().filter((x) => x !== r.id)]);
        flash(`Export ${r.id} started (${kindText(v.kind).toLowerCase()}).`);
        drawJobs();
        const e = rows.get(r.id);
        e.job = { id: r.id, kind: v.kind, from, to, accountId: body.accountId ?? null, bom: v.bom, status: r.status, rows: 0, bytes: 0, error: null, createdAt: new Date().toISOString(), startedAt: null, finishedAt: null };
        update(e);
        start();
      },
    });
    f.inputs.accountId.title = 'An account id: a UUID such as 0b5e3a52-8a4f-4c53-9d0e-6a1f3f2a7c10.';
    f.inputs.kind.addEventListener('change', () => {
      drawForm(f.inputs.kind.value, { accountId: f.inputs.accountId.value, bom: f.inputs.bom.checked });
      formBox.querySelector('select[name="kind"]')?.focus();
    });
    mount(formBox, f);
  };
  drawForm('ledger');

  drawJobs();
  await poll(true);
  if ([...rows.values()].some((e) => !e.error && e.job && (e.job.status === 'pending' || e.job.status === 'running'))) start();
}
