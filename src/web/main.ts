/**
 * The web companion's page: log in, the key kept in this browser, rooms. Everything about keys
 * and text is src/client/web (WebCompanion, BrowserKeyStore) over the companion core; this file
 * only draws its model (preact, no JSX: `h` calls) and turns keys and clicks into its verbs.
 *
 * Keyboard: the message box has focus; Alt+↑/Alt+↓ (or Alt+1…9) change room; Esc returns to the
 * message box. Narrow screens get one column with the room list on top.
 */
/// <reference lib="dom" />
import { h, render, type ComponentChild } from 'preact';
import { BrowserKeyStore, STATUS, WebCompanion, type ChatLine, type StoredKeyInfo } from '../client/web/index.js';

/** Where the daemon is: ?server=wss://host:port/ (a page hosted elsewhere), else this page's own origin. */
function defaultServer(): string {
  const q = new URLSearchParams(location.search).get('server');
  if (q) return q;
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`;
}

interface Ui {
  screen: 'login' | 'chat';
  server: string;
  account: string;
  password: string;
  passphrase: string;
  keybotFingerprint: string;
  stored?: StoredKeyInfo | undefined;
  keyMode: 'import' | 'generate';
  armored: string;
  busy: string;
  error: string;
  /** A key just made: what the administrator needs. */
  made?: StoredKeyInfo;
  companion?: WebCompanion;
}

const ui: Ui = {
  screen: 'login',
  server: defaultServer(),
  account: '',
  password: '',
  passphrase: '',
  keybotFingerprint: new URLSearchParams(location.search).get('keybot') ?? '',
  keyMode: 'import',
  armored: '',
  busy: '',
  error: '',
};

const root = document.getElementById('app')!;
root.textContent = ''; // the "loading" placeholder: preact draws into an empty element
let scheduled = false;
function redraw(): void {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    render(h(App, null), root);
    const unread = ui.companion ? [...ui.companion.rooms.values()].reduce((n, r) => n + r.unread, 0) : 0;
    document.title = unread > 0 ? `(${unread}) sealchat` : 'sealchat';
    const log = document.querySelector('.lines');
    if (log) log.scrollTop = log.scrollHeight;
  });
}

function set(p: Partial<Ui>): void {
  Object.assign(ui, p);
  redraw();
}

function serverKey(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || (u.protocol === 'wss:' ? '443' : '80')}`;
  } catch {
    return url;
  }
}

async function refreshStored(): Promise<void> {
  try {
    set({ stored: await new BrowserKeyStore(serverKey(ui.server)).info() });
  } catch (err) {
    set({ error: (err as Error).message });
  }
}

// ---- actions ----------------------------------------------------------------------------------

async function logIn(): Promise<void> {
  if (!ui.account || !ui.password) return set({ error: 'account and password are needed' });
  if (!ui.passphrase) return set({ error: 'the passphrase is needed: it unlocks your key in this browser' });
  const store = new BrowserKeyStore(serverKey(ui.server));
  set({ busy: ui.stored ? 'unlocking your key…' : 'checking and saving your key…', error: '' });
  const making = !ui.stored && ui.keyMode === 'generate';
  const keyed = ui.stored
    ? store.unseal(ui.passphrase)
    : ui.keyMode === 'import'
      ? store.importKey({ account: ui.account, armored: ui.armored, passphrase: ui.passphrase })
      : store.generate({ account: ui.account, passphrase: ui.passphrase });
  // Log in while the key is unsealed and unlocked (see WebCompanionOptions.privateKey): the
  // connection and SASL need no key, so they no longer wait for the key's KDFs.
  const companion = making
    ? undefined
    : new WebCompanion({
        url: ui.server,
        account: ui.account,
        password: ui.password,
        privateKey: keyed.then((r) => (r.ok ? r.key : Promise.reject(new Error(r.reason)))),
        ...(ui.keybotFingerprint ? { keybotFingerprint: ui.keybotFingerprint } : {}),
        changed: redraw,
      });
  const r = await keyed;
  if (!r.ok) {
    companion?.quit();
    return set({ busy: '', error: `cannot use the key: ${r.reason}` });
  }
  if (!companion) {
    // The administrator must add the account with this public key before a login can succeed.
    return set({ busy: '', stored: r.info, made: r.info, passphrase: '' });
  }
  // Only the unlocked handle is kept (in memory); the passphrase and password are not.
  set({ busy: '', screen: 'chat', companion, passphrase: '', password: '', armored: '', stored: r.info });
}

async function forgetBrowser(): Promise<void> {
  if (!confirm('Forget this browser? The key kept here (and the pins) are deleted. Keep a copy of your key elsewhere first.')) return;
  ui.companion?.quit();
  await new BrowserKeyStore(serverKey(ui.server)).forget();
  await new Promise<void>((resolve) => {
    const req = indexedDB.deleteDatabase('sealchat');
    req.onsuccess = req.onerror = req.onblocked = () => resolve();
  });
  set({ screen: 'login', companion: undefined, stored: undefined, made: undefined, error: '', busy: 'this browser holds no sealchat key any more' });
}

async function readKeyFile(ev: Event): Promise<void> {
  const f = (ev.target as HTMLInputElement).files?.[0];
  if (f) set({ armored: await f.text() });
}

// ---- views ------------------------------------------------------------------------------------

const val = (ev: Event): string => (ev.target as HTMLInputElement).value;

function field(label: string, name: keyof Ui, type = 'text', extra: Record<string, unknown> = {}): ComponentChild {
  return h('label', null, label, h('input', { name, type, value: ui[name] as string, onInput: (e: Event) => set({ [name]: val(e) } as Partial<Ui>), ...extra }));
}

function LoginView(): ComponentChild {
  const made = ui.made;
  return h(
    'main',
    { class: 'login' },
    h('h1', null, 'sealchat'),
    h('p', { class: 'hint' }, 'End-to-end encrypted rooms. Your private key stays in this browser, sealed under your passphrase.'),
    h(
      'form',
      {
        onSubmit: (e: Event) => {
          e.preventDefault();
          void logIn();
        },
      },
      field('Server', 'server', 'url', { onChange: () => void refreshStored() }),
      field('Account', 'account', 'text', { autocomplete: 'username', autofocus: true }),
      field('Password', 'password', 'password', { autocomplete: 'current-password' }),
      ui.stored
        ? h('p', { class: 'stored' }, `This browser holds the key of ${ui.stored.account}: `, h('code', null, ui.stored.fingerprint))
        : h(
            'fieldset',
            null,
            h('legend', null, 'Your key'),
            h(
              'div',
              { class: 'tabs' },
              h('button', { type: 'button', class: ui.keyMode === 'import' ? 'on' : '', onClick: () => set({ keyMode: 'import' }) }, 'Import my key'),
              h('button', { type: 'button', class: ui.keyMode === 'generate' ? 'on' : '', onClick: () => set({ keyMode: 'generate' }) }, 'Make a key here'),
            ),
            ui.keyMode === 'import'
              ? h(
                  'div',
                  null,
                  h('label', null, 'Armored private key file (gpg --export-secret-keys --armor)', h('input', { type: 'file', name: 'keyfile', accept: '.asc,.key,.txt,.gpg', onChange: (e: Event) => void readKeyFile(e) })),
                  h('label', null, '…or paste it', h('textarea', { name: 'armored', rows: 4, value: ui.armored, onInput: (e: Event) => set({ armored: val(e) }) })),
                )
              : h('p', { class: 'hint' }, 'A new key is made in this browser; you will get the line your administrator runs to add you.'),
          ),
      field(ui.stored ? 'Passphrase (unlocks your key)' : 'Passphrase (of the key, or a new one for this browser)', 'passphrase', 'password', { autocomplete: 'off' }),
      h('details', null, h('summary', null, "keybot's fingerprint (optional)"), field('From your administrator; empty: trusted on first use, with a warning', 'keybotFingerprint')),
      h('button', { type: 'submit', class: 'primary', disabled: ui.busy !== '' && !ui.busy.startsWith('this browser') }, ui.stored ? 'Log in' : ui.keyMode === 'import' ? 'Save key and log in' : 'Make my key'),
    ),
    ui.busy ? h('p', { class: 'busy' }, ui.busy) : null,
    ui.error ? h('p', { class: 'error', role: 'alert' }, ui.error) : null,
    made
      ? h(
          'section',
          { class: 'made' },
          h('h2', null, 'Your key was made'),
          h('p', null, 'Fingerprint: ', h('code', null, made.fingerprint)),
          h('p', null, `Send your administrator this public key (saved as ${made.account}.pub.asc) and ask them to run:`),
          h('pre', { class: 'useradd' }, `sealchatd user add ${made.account} --key ${made.account}.pub.asc`),
          h('a', { download: `${made.account}.pub.asc`, href: URL.createObjectURL(new Blob([made.publicArmored], { type: 'text/plain' })) }, `Download ${made.account}.pub.asc`),
          h('pre', { class: 'pubkey' }, made.publicArmored),
          h('p', { class: 'hint' }, 'Once they have, log in with your password and passphrase.'),
        )
      : null,
    ui.stored ? h('button', { type: 'button', class: 'forget', onClick: () => void forgetBrowser() }, 'Forget this browser') : null,
  );
}

function time(t: number): string {
  const d = new Date(t);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

function Line(l: ChatLine): ComponentChild {
  return h(
    'li',
    { class: `line ${l.kind}`, key: l.id },
    h('time', { dateTime: new Date(l.time).toISOString(), title: new Date(l.time).toLocaleString() }, time(l.time)),
    l.nick ? h('span', { class: 'nick' }, l.nick) : null,
    l.verified ? h('span', { class: 'verified', title: 'encrypted, and signed by this member: verified' }, '✓') : null,
    l.kind === 'plaintext' ? h('span', { class: 'unverified', title: 'not encrypted, not verified' }, '⚠') : null,
    l.history ? h('span', { class: 'history', title: 'said while you were away (from the server\'s history)' }, 'history') : null,
    h('span', { class: 'text' }, l.text),
  );
}

function onInputKey(ev: KeyboardEvent, c: WebCompanion): void {
  const names = [...c.rooms.values()].map((r) => r.name);
  const at = names.findIndex((n) => n === c.active);
  if (ev.altKey && (ev.key === 'ArrowDown' || ev.key === 'ArrowUp')) {
    ev.preventDefault();
    c.show(names[(at + (ev.key === 'ArrowDown' ? 1 : names.length - 1)) % names.length]!);
  } else if (ev.altKey && /^[1-9]$/.test(ev.key)) {
    ev.preventDefault();
    const n = names[Number(ev.key) - 1];
    if (n) c.show(n);
  } else if (ev.key === 'Enter' && !ev.shiftKey) {
    ev.preventDefault();
    const box = ev.target as HTMLTextAreaElement;
    c.input(box.value);
    box.value = '';
  }
}

function ChatView(): ComponentChild {
  const c = ui.companion!;
  const view = c.rooms.get([...c.rooms.keys()].find((k) => c.rooms.get(k)!.name === c.active) ?? '')!;
  const k = c.keybot;
  const isRoom = c.active !== STATUS;
  const key = isRoom ? c.keyInfo(c.active) : undefined;
  return h(
    'div',
    { class: 'chat' },
    h(
      'header',
      null,
      h('strong', null, 'sealchat'),
      h('span', { class: `conn ${c.state}` }, c.state === 'closed' ? `disconnected: ${c.closedReason ?? ''}` : c.state),
      h(
        'span',
        { class: `keybot ${k.status}` },
        k.status === 'pinned'
          ? ["keybot ", h('code', { title: k.fingerprint }, k.fingerprint.slice(-16)), k.source === 'first-use' ? h('em', { class: 'tofu' }, ' trusted on first use: check it with your administrator') : ' pinned']
          : k.status === 'mismatch'
            ? `keybot's key CHANGED: ${k.reason}`
            : k.status === 'fetching'
              ? "getting keybot's key…"
              : `no keybot key: ${k.reason}`,
      ),
      h('button', { type: 'button', class: 'forget', onClick: () => void forgetBrowser() }, 'Forget this browser'),
    ),
    h(
      'nav',
      { class: 'rooms', 'aria-label': 'rooms' },
      h(
        'ul',
        null,
        [...c.rooms.values()].map((r, i) =>
          h(
            'li',
            { key: r.name },
            h(
              'button',
              { type: 'button', class: `room${r.name === c.active ? ' on' : ''}${r.joined || r.name === STATUS ? '' : ' gone'}`, title: i < 9 ? `Alt+${i + 1}` : '', onClick: () => c.show(r.name) },
              r.name === STATUS ? 'status' : r.name,
              r.unread > 0 ? h('span', { class: 'unread' }, String(r.unread)) : null,
            ),
          ),
        ),
      ),
    ),
    h(
      'main',
      { class: 'room-view' },
      h(
        'div',
        { class: 'room-head' },
        h('h2', null, isRoom ? c.active : 'status'),
        key ? h('span', { class: key.hasKey ? 'key on' : 'key off' }, key.hasKey ? `encrypted · epoch ${key.epoch}` : 'no key: nothing can be sent') : null,
      ),
      h('ol', { class: 'lines', 'aria-live': 'polite' }, view.lines.map(Line)),
      h('textarea', {
        class: 'input',
        rows: 2,
        autofocus: true,
        placeholder: isRoom ? `Message ${c.active} (encrypted) — /help for commands` : '/invite NICK opens a room — /help',
        onKeyDown: (e: KeyboardEvent) => onInputKey(e, c),
      }),
    ),
    h(
      'aside',
      { class: 'members', 'aria-label': 'members' },
      h('h3', null, 'members'),
      h(
        'ul',
        null,
        isRoom
          ? c.presence(c.active).map((p) =>
              h('li', { key: p.nick, class: p.online ? 'online' : 'offline' }, h('span', { class: 'dot' }, p.online ? '●' : '○'), ` ${p.nick}`, p.service ? ' (key service)' : p.keyed ? '' : ' (no key)'),
            )
          : null,
      ),
    ),
  );
}

function App(): ComponentChild {
  return ui.screen === 'chat' && ui.companion ? ChatView() : LoginView();
}

document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape') (document.querySelector('.input') as HTMLTextAreaElement | null)?.focus();
});
redraw();
void refreshStored();
