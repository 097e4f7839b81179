// Small DOM helpers shared by every page of the console. No framework: pages build elements
// with h(), tables with table(), forms with form(), and report the API's errors in words.

/** An element: h('button', { class: 'x', onclick }, 'text', child, ...). Attributes set as properties when they are. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  for (const c of children.flat(Infinity)) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/**
 * A table: `columns` as [{ key, label, num?, render?(row) }]; `rows` plain objects. An empty list
 * shows `empty` (text) in one cell. Wrapped for horizontal scrolling on narrow screens; a
 * `caption` shows above it.
 */
let noteSeq = 0;

export function table(columns, rows, { empty = 'Nothing here yet.', caption } = {}) {
  const head = h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : undefined }, c.label)));
  const body = rows.length
    ? rows.map((r) =>
        h(
          'tr',
          {},
          columns.map((c) => h('td', { class: c.num ? 'num' : undefined }, c.render ? c.render(r) : r[c.key] ?? '')),
        ),
      )
    : [h('tr', {}, h('td', { colspan: columns.length, class: 'muted' }, empty))];
  const el = h('div', { class: 'table-wrap' }, h('table', {}, h('thead', {}, head), h('tbody', {}, body)));
  if (!caption) return el;
  // the caption as a note above the scrolling box (inside it, a phone would scroll it away),
  // tied to the table for screen readers
  const id = `table-note-${++noteSeq}`;
  el.querySelector('table').setAttribute('aria-describedby', id);
  return h('div', {}, h('p', { class: 'muted', id, style: 'margin:4px 0' }, caption), el);
}

let fieldSeq = 0;

/**
 * A labelled form. `fields`: [{ name, label, type?: 'text'|'number'|'password'|'select'|'textarea'|'checkbox'|'datetime-local',
 * value?, options?: [[value, label]], required?, min?, max?, pattern?, placeholder?, help? }].
 * `onSubmit(values, form)` may throw: the error's words show under the form (and a field's, next
 * to it when the error names it). The button is disabled while it runs.
 */
export function form({ fields, submit = 'Save', onSubmit, inline = false, danger = false }) {
  const errorBox = h('p', { class: 'error', role: 'alert', hidden: true });
  const inputs = {};
  const rows = fields.map((f) => {
    const id = `f${++fieldSeq}-${f.name}`;
    let input;
    if (f.type === 'select') {
      input = h('select', { id, name: f.name, required: f.required }, (f.options ?? []).map(([v, l]) => h('option', { value: v, selected: String(f.value ?? '') === String(v) }, l)));
    } else if (f.type === 'textarea') {
      input = h('textarea', { id, name: f.name, required: f.required, rows: f.rows ?? 3, placeholder: f.placeholder }, f.value ?? '');
    } else if (f.type === 'checkbox') {
      input = h('input', { id, name: f.name, type: 'checkbox', checked: !!f.value });
    } else {
      input = h('input', {
        id,
        name: f.name,
        type: f.type ?? 'text',
        value: f.value ?? '',
        required: f.required,
        min: f.min,
        max: f.max,
        step: f.step,
        pattern: f.pattern,
        placeholder: f.placeholder,
        autocomplete: f.autocomplete ?? 'off',
      });
    }
    inputs[f.name] = input;
    const fieldError = h('span', { class: 'field-error', id: `${id}-error`, hidden: true });
    input.setAttribute('aria-describedby', `${id}-error`);
    input.fieldError = fieldError;
    if (f.type === 'checkbox') return h('label', { class: 'check', for: id }, input, f.label, fieldError);
    return h('label', { for: id }, f.label, input, f.help ? h('span', { class: 'muted' }, f.help) : null, fieldError);
  });
  const button = h('button', { type: 'submit', class: danger ? 'danger' : undefined }, submit);
  const el = h('form', { class: inline ? 'inline' : 'stack', novalidate: true }, rows, h('div', {}, button), errorBox);
  el.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    errorBox.hidden = true;
    for (const i of Object.values(inputs)) {
      i.fieldError.hidden = true;
      i.removeAttribute('aria-invalid');
    }
    // the browser's own checks first, in words next to the field
    let bad = false;
    for (const i of Object.values(inputs)) {
      if (!i.checkValidity()) {
        bad = true;
        i.setAttribute('aria-invalid', 'true');
        i.fieldError.textContent = i.validationMessage;
        i.fieldError.hidden = false;
      }
    }
    if (bad) return;
    const values = {};
    for (const [k, i] of Object.entries(inputs)) values[k] = i.type === 'checkbox' ? i.checked : i.value;
    button.disabled = true;
    try {
      await onSubmit(values, el);
    } catch (err) {
      errorBox.textContent = messageOf(err);
      errorBox.hidden = false;
      const named = err && err.field && inputs[err.field];
      if (named) {
        named.setAttribute('aria-invalid', 'true');
        named.fieldError.textContent = messageOf(err);
        named.fieldError.hidden = false;
      }
    } finally {
      button.disabled = false;
    }
  });
  el.inputs = inputs;
  return el;
}

/** An error as words: the API's problem detail, a CMQ code and message, or the error's own. */
export function messageOf(err) {
  if (!err) return 'Something went wrong.';
  if (err.problem) {
    const p = err.problem;
    const reasons = Array.isArray(p.errors) && p.errors.length ? `: ${p.errors.join('; ')}` : '';
    return `${p.detail ?? p.title ?? 'Request failed'}${reasons}`;
  }
  if (err.cmq) return `CMQ error ${err.cmq.code}: ${err.cmq.message}`;
  return err.message ?? String(err);
}

/** A message at the top of the page for a few seconds (errors stay until the next one). */
export function flash(text, kind = 'ok') {
  const box = document.getElementById('flash');
  const msg = h('div', { class: `msg ${kind}` }, text);
  box.replaceChildren(msg);
  if (kind !== 'error') setTimeout(() => msg.remove(), 6000);
}

/** A button that runs `action`, disabled while it runs, errors flashed in words. */
export function button(label, action, { kind, title } = {}) {
  const b = h('button', { type: 'button', class: kind, title });
  b.textContent = label;
  b.addEventListener('click', async () => {
    b.disabled = true;
    try {
      await action();
    } catch (err) {
      flash(messageOf(err), 'error');
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

/** Asks before a destructive action. */
export function confirmed(question) {
  return window.confirm(question);
}

/** A definition list of [label, value] pairs. */
export function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
}

/** A time for people: local date and time. */
export function when(iso) {
  if (iso === null || iso === undefined || iso === '') return '—';
  const d = typeof iso === 'number' ? new Date(iso * 1000) : new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

/** Starts a file download of `text` (CSV from the API) under `filename`. */
export function saveText(text, filename, type = 'text/csv') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A Chart.js chart in a labelled figure; `config` is Chart.js's. Destroyed when its canvas leaves the page. */
export function chart(label, config) {
  const canvas = h('canvas', { role: 'img', 'aria-label': label });
  const fig = h('figure', { class: 'card' }, h('figcaption', {}, label), canvas);
  requestAnimationFrame(() => {
    // eslint-disable-next-line no-undef
    const c = new Chart(canvas, { ...config, options: { responsive: true, animation: false, ...(config.options ?? {}) } });
    fig.chart = c;
  });
  return fig;
}

const pad2 = (n) => String(n).padStart(2, '0');

/** A Date as ISO 8601 in the browser's zone with its offset: 2026-12-01T18:00:00+08:00. */
export function isoWithOffset(d) {
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const a = Math.abs(off);
  return (
    `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}T${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}` +
    `${sign}${pad2(Math.floor(a / 60))}:${pad2(a % 60)}`
  );
}

/** A datetime-local value (local wall time) as ISO 8601 with the offset; null when not a time. */
export function localInputToIso(value) {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : isoWithOffset(d);
}

/** A Date as a datetime-local value (minutes). */
export function toLocalInput(d) {
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}T${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}
