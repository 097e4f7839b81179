// Account page: access keys. `#/keys` lists the account's key pairs (without secrets), creates
// one (its SecretKey shown once, with a Copy button), disables, enables and deletes them, warning
// when the key is the one this console is signed in with (disabling or deleting it ends the
// sign-in at once).
import { button, confirmed, flash, h, mount, table, when } from '../ui.js';



/** Copies `text`; falls back to selecting it when the clipboard is not available. */
async function copy(text, selectable) {
  try {
    await navigator.clipboard.writeText(text);
    flash('Copied to the clipboard.');
  } catch {
    const range = document.createRange();
    range.selectNodeContents(selectable);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    flash('Could not reach the clipboard: the text is selected, press Ctrl+C (or ⌘C) to copy it.', 'error');
  }
}

export async function render(root, ctx) {
  const { api, who, refresh } = ctx;
  const base = `/v1/accounts/${encodeURIComponent(who.accountId)}/keys`;
  const mine = (k) => k.secretId === who.secretId;

  const secretBox = h('div', { 'aria-live': 'polite' });
  const listBox = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));

  const showSecret = (created) => {
    const idText = h('code', {}, created.secretId);
    const keyText = h('code', {}, created.secretKey);
    const heading = h('h2', { id: 'keys-new', tabIndex: -1 }, 'Your new key');
    mount(
      secretBox,
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'keys-new' },
        heading,
        h('p', { class: 'error', role: 'alert' }, h('strong', {}, 'Store the SecretKey now: it will not be shown again. '), 'If you lose it, create another key and delete this one.'),
        h('div', { class: 'secret' }, h('div', {}, 'SecretId: ', idText), h('div', {}, 'SecretKey: ', keyText)),
        h(
          'p',
          { style: 'display:flex; flex-wrap:wrap; gap:8px' },
          button('Copy', () => copy(created.secretKey, keyText), { title: 'Copy the SecretKey' }),
          button('Copy SecretId', () => copy(created.secretId, idText), { kind: 'secondary' }),
          button('I have stored it', async () => mount(secretBox), { kind: 'secondary', title: 'Hide the SecretKey' }),
        ),
      ),
    );
    heading.focus();
  };

  const load = async () => {
    const keys = await api('GET', base);
    const enabledCount = keys.filter((k) => k.status === 'enabled').length;
    mount(
      listBox,
      table(
        [
          { key: 'secretId', label: 'SecretId', render: (k) => h('span', {}, h('code', {}, k.secretId), mine(k) ? h('strong', {}, ' (this sign-in)') : null) },
          { key: 'status', label: 'Status', render: (k) => h('span', { class: k.status === 'enabled' ? 'ok' : 'error' }, k.status) },
          { key: 'createdAt', label: 'Created', render: (k) => when(k.createdAt) },
          {
            key: 'actions',
            label: 'Actions',
            render: (k) =>
              h(
                'div',
                { style: 'display:flex; flex-wrap:wrap; gap:6px' },
                k.status === 'enabled'
                  ? button(
                      'Disable',
                      async () => {
                        // only the signed-in key asks first: disabling it ends this sign-in
                        if (mine(k) && !confirmed(`Disable ${k.secretId}? It is the key you are signed in with: you will be signed out at once, and SDKs using it will be refused.`)) return;
                        await api('POST', `${base}/${encodeURIComponent(k.secretId)}/disable`);
                        flash(`${k.secretId} disabled.`);
                        if (mine(k)) await refresh();
                        else await load();
                      },
                      { kind: 'secondary', title: `Disable ${k.secretId}` },
                    )
                  : button(
                      'Enable',
                      async () => {
                        await api('POST', `${base}/${encodeURIComponent(k.secretId)}/enable`);
                        flash(`${k.secretId} enabled.`);
                        await load();
                      },
                      { kind: 'secondary', title: `Enable ${k.secretId}` },
                    ),
                button(
                  'Delete',
                  async () => {
                    const last = k.status === 'enabled' && enabledCount === 1 ? ' It is your only enabled key.' : '';
                    const q = mine(k)
                      ? `Delete ${k.secretId}? It is the key you are signed in with: you will be signed out at once and cannot sign in with it again.${last} This cannot be undone.`
                      : `Delete ${k.secretId}? SDKs using it stop working.${last} This cannot be undone.`;
                    if (!confirmed(q)) return;
                    await api('DELETE', `${base}/${encodeURIComponent(k.secretId)}`);
                    flash(`${k.secretId} deleted.`);
                    if (mine(k)) await refresh();
                    else await load();
                  },
                  { kind: 'danger', title: `Delete ${k.secretId}` },
                ),
              ),
          },
        ],
        keys,
        { empty: 'No keys.', caption: 'Keys are shown without their secrets. Disabling a key refuses it at once everywhere; enabling it accepts it again.' },
      ),
    );
  };

  mount(
    root,
    h('h1', {}, 'Access keys'),
    h('p', { class: 'muted' }, 'Key pairs sign your CMQ requests (SecretId and SecretKey, as in an SDK) and sign in to this console.'),
    h(
      'p',
      {},
      button('Create key', async () => {
        const created = await api('POST', base);
        showSecret(created);
        await load();
      }),
    ),
    secretBox,
    h('section', { 'aria-labelledby': 'keys-list' }, h('h2', { id: 'keys-list' }, 'Your keys'), listBox),
  );
  await load();
}
