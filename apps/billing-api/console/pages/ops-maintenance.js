// Operator page: SLA maintenance windows. Lists the windows of this month and the next
// (cancelled ones too), announces a window (saying whether it is early enough to exclude
// anything under the policy) and cancels one with a reason.
import { button, flash, form, h, isoWithOffset, kv, localInputToIso, messageOf, mount, table, toLocalInput, when } from '../ui.js';

const canOperate = (who) => who.role === 'admin' || who.role === 'ops';

const pad = (n) => String(n).padStart(2, '0');




/** Seconds as words: 86400 → "24 hours". */
function duration(seconds) {
  if (seconds === null || seconds === undefined) return 'the notice period';
  if (seconds % 86400 === 0 && seconds >= 86400 * 2) return `${seconds / 86400} days`;
  if (seconds % 3600 === 0) return `${seconds / 3600} hour${seconds === 3600 ? '' : 's'}`;
  if (seconds % 60 === 0) return `${seconds / 60} minutes`;
  return `${seconds} seconds`;
}


/** What a window does under the policy, in words. */
function effectOf(m) {
  if (m.cancelledAt) return `Cancelled ${when(m.cancelledAt)} by ${m.cancelledBy ?? '—'}: excludes nothing.`;
  if (m.excludesUnderPolicy) return `Excludes its minutes (announced at least ${duration(m.noticePeriodSeconds)} ahead, policy v${m.policyVersion}).`;
  return `Announced too late to exclude anything (policy v${m.policyVersion ?? '?'} needs ${duration(m.noticePeriodSeconds)} notice).`;
}

export async function render(root, ctx) {
  const { api, who } = ctx;
  const operate = canOperate(who);
  const now = new Date();
  const from = new Date(now.getFullYear(), now.getMonth(), 1);
  const to = new Date(now.getFullYear(), now.getMonth() + 2, 1);

  // the regions: those the fleet report covers (the deployment's), and any a window names
  const [fleet, policies] = await Promise.all([
    api('GET', `/v1/sla/months/${from.getFullYear()}-${pad(from.getMonth() + 1)}`).catch(() => null),
    api('GET', '/v1/sla/policies').catch(() => []),
  ]);
  const regions = new Set((fleet?.regions ?? []).map((r) => r.region));
  const policy = [...policies].sort((a, b) => b.version - a.version).find((p) => p.effectiveFrom <= now.toISOString().slice(0, 10)) ?? null;

  const listBox = h('div', { 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading…'));
  const cancelBox = h('div', {});
  const resultBox = h('div', { 'aria-live': 'polite' });

  const loadList = async () => {
    try {
      const params = new URLSearchParams({ from: isoWithOffset(from), to: isoWithOffset(to), includeCancelled: 'true' });
      const list = await api('GET', `/v1/sla/maintenance?${params}`);
      for (const m of list) if (m.region) regions.add(m.region);
      const nowMs = Date.now();
      mount(
        listBox,
        (table(
          [
            { key: 'id', label: 'Id', num: true },
            { key: 'region', label: 'Region', render: (m) => m.region ?? 'All regions' },
            { key: 'startsAt', label: 'Starts', render: (m) => when(m.startsAt) },
            { key: 'endsAt', label: 'Ends', render: (m) => when(m.endsAt) },
            { key: 'reason', label: 'Reason' },
            { key: 'announcedAt', label: 'Announced', render: (m) => `${when(m.announcedAt)} by ${m.createdBy}` },
            {
              key: 'effect',
              label: 'Effect',
              render: (m) => h('span', { class: m.cancelledAt ? 'muted' : m.excludesUnderPolicy ? 'ok' : 'error' }, effectOf(m)),
            },
            {
              key: 'action',
              label: 'Action',
              render: (m) => {
                if (m.cancelledAt) return h('span', { class: 'muted' }, 'cancelled');
                if (Date.parse(m.endsAt) <= nowMs) return h('span', { class: 'muted' }, 'ended');
                if (!operate) return h('span', { class: 'muted' }, '—');
                const b = h('button', { type: 'button', class: 'danger', onclick: () => openCancel(m), 'aria-label': `Cancel window ${m.id}` }, 'Cancel');
                return b;
              },
            },
          ],
          list,
          { empty: 'No maintenance windows this month or next.', caption: `Windows overlapping ${from.toLocaleDateString()} – ${to.toLocaleDateString()} (your local time), cancelled ones included.` },
        )),
      );
    } catch (err) {
      mount(listBox, h('p', { class: 'error', role: 'alert' }, messageOf(err)));
    }
  };

  const openCancel = (m) => {
    const f = form({
      submit: 'Cancel window',
      danger: true,
      fields: [{ name: 'reason', label: 'Reason for cancelling', type: 'textarea', rows: 2, required: true, placeholder: 'upgrade postponed' }],
      onSubmit: async (v) => {
        if (!v.reason.trim()) throw Object.assign(new Error('reason is required'), { field: 'reason' });
        const after = await api('POST', `/v1/sla/maintenance/${encodeURIComponent(m.id)}/cancel`, {
          body: { reason: v.reason.trim() },
          headers: { 'x-operator': who.name },
        });
        flash(`Window ${after.id} cancelled: it excludes nothing.`);
        mount(cancelBox);
        await loadList();
      },
    });
    const keep = h('button', { type: 'button', class: 'secondary', onclick: () => mount(cancelBox) }, 'Keep the window');
    mount(
      cancelBox,
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'mw-cancel' },
        h('h2', { id: 'mw-cancel', style: 'margin-top:0' }, `Cancel window ${m.id}`),
        kv([
          ['Region', m.region ?? 'All regions'],
          ['Starts', when(m.startsAt)],
          ['Ends', when(m.endsAt)],
          ['Reason', m.reason],
        ]),
        f,
        h('p', {}, keep),
      ),
    );
    f.inputs.reason.focus();
  };

  // the list first: the regions its windows name join the region choice
  await loadList();

  let announcePart;
  if (operate) {
    const regionOptions = [['', 'All regions'], ...[...regions].sort().map((r) => [r, r])];
    const start = new Date(Date.now() + 2 * 86_400_000);
    start.setMinutes(0, 0, 0);
    announcePart = form({
      submit: 'Announce maintenance',
      fields: [
        { name: 'region', label: 'Region', type: 'select', options: regionOptions, value: '' },
        { name: 'startsAt', label: 'Starts at', type: 'datetime-local', required: true, min: toLocalInput(new Date()), help: 'Your local time.' },
        { name: 'endsAt', label: 'Ends at', type: 'datetime-local', required: true, min: toLocalInput(new Date()), help: 'Your local time; after the start.' },
        { name: 'reason', label: 'Reason', type: 'textarea', rows: 2, required: true, placeholder: 'storage cluster upgrade' },
      ],
      onSubmit: async (v) => {
        const startsAt = localInputToIso(v.startsAt);
        const endsAt = localInputToIso(v.endsAt);
        if (!startsAt) throw Object.assign(new Error('startsAt must be a date and time'), { field: 'startsAt' });
        if (!endsAt) throw Object.assign(new Error('endsAt must be a date and time'), { field: 'endsAt' });
        if (Date.parse(endsAt) <= Date.parse(startsAt)) throw Object.assign(new Error('endsAt must be after startsAt'), { field: 'endsAt' });
        if (Date.parse(startsAt) < Date.now()) throw Object.assign(new Error('startsAt must not be in the past'), { field: 'startsAt' });
        if (!v.reason.trim()) throw Object.assign(new Error('reason is required'), { field: 'reason' });
        const m = await api('POST', '/v1/sla/maintenance', {
          body: { region: v.region || null, startsAt, endsAt, reason: v.reason.trim() },
          headers: { 'x-operator': who.name },
        });
        mount(
          resultBox,
          h(
            'p',
            { class: m.excludesUnderPolicy ? 'ok' : 'error', role: 'status' },
            `Window ${m.id} announced (${m.region ?? 'all regions'}, ${when(m.startsAt)} – ${when(m.endsAt)}). `,
            m.excludesUnderPolicy
              ? `It excludes its minutes from downtime: announced at least ${duration(m.noticePeriodSeconds)} ahead under policy v${m.policyVersion}.`
              : `It was announced too late to exclude anything: policy v${m.policyVersion ?? '?'} needs ${duration(m.noticePeriodSeconds)} notice. It is stored, but counts no minutes out.`,
          ),
        );
        announcePart.reset();
        await loadList();
      },
    });
  } else {
    announcePart = h('p', { class: 'muted', role: 'note' }, `Your role (${who.role}) may not announce or cancel maintenance: that needs an ops or admin token. The form is hidden.`);
  }

  mount(
    root,
    h('h1', {}, 'Maintenance'),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'mw-announce' },
      h('h2', { id: 'mw-announce', style: 'margin-top:0' }, 'Announce maintenance'),
      policy
        ? h(
            'p',
            { class: 'muted' },
            `A window excludes its minutes from downtime only when announced at least ${duration(policy.noticePeriodSeconds)} before it starts (policy v${policy.version}; a window is judged by the policy of the month it starts in). It cannot start in the past.`,
          )
        : null,
      announcePart,
      resultBox,
    ),
    cancelBox,
    h('section', { 'aria-labelledby': 'mw-list' }, h('h2', { id: 'mw-list' }, 'Windows this month and next'), listBox),
  );
}
