// The console's shell: who is signed in, the API client, the routes, the navigation. Every page
// is a module of ./pages exporting render(root, ctx); ctx carries the API client and the route.
import { flash, form, h, messageOf, mount } from './ui.js';

const TOKEN_KEY = 'cmq-console-token';

/** An error of the internal API (problem+json) or of a CMQ call (code ≠ 0). */
class ApiError extends Error {
  constructor(message, extra) {
    super(message);
    Object.assign(this, extra);
  }
}

const session = {
  token: sessionStorage.getItem(TOKEN_KEY),
  /** { kind: 'account', accountId, secretId } or { kind: 'operator', name, role } */
  who: null,
};

/**
 * Calls the API with the signed-in bearer token: JSON in and out, `raw: true` for text (CSV,
 * HTML). A problem answer throws an ApiError carrying it; 401 signs out.
 */
async function api(method, path, { body, headers = {}, raw = false } = {}) {
  const res = await fetch(path, {
    method,
    headers: {
      ...(session.token ? { authorization: `Bearer ${session.token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401 && session.token) {
    signOutLocally();
    throw new ApiError('Your sign-in has ended. Please sign in again.', { status: 401 });
  }
  if (!res.ok) {
    let problem;
    try {
      problem = await res.json();
    } catch {
      problem = { detail: `${res.status} ${res.statusText}` };
    }
    throw new ApiError(problem.detail ?? problem.title ?? `HTTP ${res.status}`, { problem, status: res.status, field: fieldOf(problem) });
  }
  if (res.status === 204) return null;
  return raw ? res.text() : res.json();
}

/** The field a validation problem names first, if any (to show the words next to it). */
function fieldOf(problem) {
  const first = Array.isArray(problem?.errors) ? String(problem.errors[0] ?? '') : String(problem?.detail ?? '');
  const m = /^([a-zA-Z]+) /.exec(first);
  return m ? m[1] : undefined;
}

/**
 * A CMQ action as the signed-in key (through the console's CMQ route): resolves with the reply
 * when its code is 0; throws an ApiError with `cmq` (code, message) otherwise, unless `allow`
 * lists the code (e.g. 7000, no message).
 */
async function cmq(action, params = {}, { allow = [] } = {}) {
  const reply = await api('POST', '/console/api/cmq', { body: { action, params } });
  if (reply.code !== 0 && !allow.includes(reply.code)) throw new ApiError(`CMQ error ${reply.code}: ${reply.message}`, { cmq: reply });
  return reply;
}

/** Pages by route. Account pages first, operator pages under ops/. */
const ACCOUNT_ROUTES = [
  ['queues', 'Queues', './pages/queues.js'],
  ['topics', 'Topics', './pages/topics.js'],
  ['usage', 'Usage', './pages/usage.js'],
  ['billing', 'Balance & bills', './pages/billing.js'],
  ['sla', 'SLA', './pages/sla.js'],
  ['keys', 'Access keys', './pages/keys.js'],
  ['audit', 'Audit', './pages/audit.js'],
  ['data', 'Your data', './pages/data.js'],
];
const OPERATOR_ROUTES = [
  ['ops/accounts', 'Accounts', './pages/ops-accounts.js'],
  ['ops/maintenance', 'Maintenance', './pages/ops-maintenance.js'],
  ['ops/incidents', 'Incidents', './pages/ops-incidents.js'],
  ['ops/sla', 'Fleet SLA', './pages/ops-sla.js'],
  ['ops/exports', 'Exports', './pages/ops-exports.js'],
];

function routesOf(who) {
  return who?.kind === 'operator' ? OPERATOR_ROUTES : ACCOUNT_ROUTES;
}

/** `#/queues/orders?x=1` → { path: 'queues', rest: ['orders'], query } with the longest matching route. */
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [pathPart, queryPart = ''] = raw.split('?');
  const parts = pathPart.split('/').filter(Boolean).map(decodeURIComponent);
  const routes = routesOf(session.who);
  for (let n = Math.min(parts.length, 2); n > 0; n--) {
    const key = parts.slice(0, n).join('/');
    const r = routes.find(([k]) => k === key);
    if (r) return { route: r, rest: parts.slice(n), query: new URLSearchParams(queryPart) };
  }
  return { route: routes[0], rest: [], query: new URLSearchParams(queryPart) };
}

function navigate(path) {
  location.hash = `#/${path}`;
}

function signOutLocally() {
  session.token = null;
  session.who = null;
  sessionStorage.removeItem(TOKEN_KEY);
  render();
}

async function signOut() {
  try {
    await api('DELETE', '/console/api/session');
  } catch {
    // signed out here whatever the server said
  }
  signOutLocally();
}

function renderNav(current) {
  const nav = document.getElementById('nav');
  const who = document.getElementById('who');
  if (!session.who) {
    mount(nav);
    mount(who);
    return;
  }
  mount(
    nav,
    routesOf(session.who).map(([key, label]) =>
      h('a', { href: `#/${key}`, 'aria-current': current === key ? 'page' : undefined, onclick: () => nav.classList.remove('open') }, label),
    ),
  );
  const label = session.who.kind === 'account' ? `Account ${session.who.accountId} · key ${session.who.secretId}` : `Operator ${session.who.name} (${session.who.role})`;
  mount(who, label, ' ', h('button', { type: 'button', class: 'secondary', onclick: signOut }, 'Sign out'));
}

function signInPage(root) {
  const done = async (token) => {
    session.token = token;
    sessionStorage.setItem(TOKEN_KEY, token);
    session.who = await api('GET', '/console/api/session');
    render();
  };
  mount(
    root,
    h('h1', {}, 'Sign in'),
    h(
      'div',
      { class: 'row' },
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'signin-account' },
        h('h2', { id: 'signin-account' }, 'With an access key'),
        h('p', { class: 'muted' }, 'Use one of your account’s key pairs, as you would in an SDK.'),
        form({
          submit: 'Sign in',
          fields: [
            { name: 'secretId', label: 'SecretId', required: true, pattern: 'AKID[A-Za-z0-9]{1,60}', placeholder: 'AKID…', autocomplete: 'username' },
            { name: 'secretKey', label: 'SecretKey', type: 'password', required: true, autocomplete: 'current-password' },
          ],
          onSubmit: async (v) => {
            const r = await api('POST', '/console/api/session', { body: { secretId: v.secretId.trim(), secretKey: v.secretKey } });
            await done(r.token);
          },
        }),
      ),
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'signin-operator' },
        h('h2', { id: 'signin-operator' }, 'As an operator'),
        h('p', { class: 'muted' }, 'Use your operator token (admin, ops or finance).'),
        form({
          submit: 'Sign in',
          fields: [{ name: 'token', label: 'Operator token', type: 'password', required: true, autocomplete: 'current-password' }],
          onSubmit: async (v) => {
            session.token = v.token.trim();
            try {
              const who = await api('GET', '/console/api/session');
              if (who.kind !== 'operator') throw new Error('That is not an operator token.');
              await done(session.token);
            } catch (err) {
              session.token = null;
              throw err;
            }
          },
        }),
      ),
    ),
  );
}

let rendering = 0;

async function render() {
  const root = document.getElementById('main');
  const mine = ++rendering;
  if (!session.token) {
    renderNav(null);
    signInPage(root);
    return;
  }
  if (!session.who) {
    try {
      session.who = await api('GET', '/console/api/session');
    } catch (err) {
      if (session.token) flash(messageOf(err), 'error');
      return;
    }
  }
  const { route, rest, query } = parseHash();
  renderNav(route[0]);
  mount(root, h('p', { class: 'muted' }, 'Loading…'));
  try {
    const page = await import(route[2]);
    if (mine !== rendering) return;
    // each render draws into a view of its own: a page still loading when another is opened
    // fills a view no longer on the page
    const view = h('div');
    mount(root, view);
    await page.render(view, { api, cmq, who: session.who, rest, query, navigate, refresh: render });
  } catch (err) {
    if (mine !== rendering) return;
    mount(root, h('h1', {}, route[1]), h('p', { class: 'error', role: 'alert' }, messageOf(err)));
  }
}

document.querySelector('.menu-toggle').addEventListener('click', (ev) => {
  const nav = document.getElementById('nav');
  const open = nav.classList.toggle('open');
  ev.currentTarget.setAttribute('aria-expanded', String(open));
});
window.addEventListener('hashchange', render);
render();
