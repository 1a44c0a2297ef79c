/**
 * CompanionSession: one user's companion on one IRC connection (or, for SealClient, on the
 * connections that replace one another), with no socket and no timer. SealClient, the local proxy
 * and the plugin agent are adapters around it: they hand it IRC facts (a received PRIVMSG or
 * NOTICE, a JOIN/PART/KICK/QUIT, the text the user typed for a target, keybot being (not) online,
 * a sweep tick with `now`) and carry out the actions it answers (lines to send, engine results to
 * show, keybot's key state, held text released or given up) in their own words.
 *
 * It owns the RoomCryptoEngine (engine.ts), the Outbox and its KeyTrust (outbox.ts), the
 * RoomMembership rules (membership.ts), the keybot-key fetcher (keybot.ts), the CompanionMemory of
 * (account, server) it was given (memory.ts) and ONE serial queue: received lines, membership
 * changes and sweeps are decided in arrival order, so a key envelope is applied before the message
 * after it and a PART after the messages before it. Adapters run every transport event through
 * {@link CompanionSession.serial}, including lines they only pass along, so those keep their place.
 */
import type { PrivateKeyHandle } from '../../crypto/index.js';
import { KEYBOT_NICK, casefold, isSealchatRoomName } from '../../protocol/names.js';
import { RoomCryptoEngine } from './engine.js';
import { HistoryCatchUp, type HistoryShown, type LineTags } from './history.js';
import { KeybotKey, type KeybotOptions, type KeybotState, type KeybotStep } from './keybot.js';
import { KeyRegistration } from './key-registration.js';
import type { CompanionMemory } from './memory.js';
import { RoomMembership, type MembershipChange } from './membership.js';
import { Outbox, type OutboxOptions, type SubmitResult } from './outbox.js';
import { SerialQueue } from './queue.js';
import type { IncomingLine, IncomingResult, RoomCryptoEngineOptions, RoomInfo, TextCommand } from './types.js';

/**
 * keybot's answers to someone it does not count as logged in (src/bot/commands.ts, and
 * network/registration.ts where keybot keeps the accounts): with a keybot password, the
 * companion logs in again (keybot restarted and forgot the connection's login, say).
 */
const NOT_LOGGED_IN = /^(?:you need an account (?:to |with )|register refused: log in to keybot first)/;
/** After a login keybot did not accept, at most one login again per this long, so a refused password cannot loop. */
const RELOGIN_MS = 30_000;

/** STATUSMSG prefixes a channel target may carry (ISUPPORT STATUSMSG; sealchat's daemon offers @ and +). */
const STATUSMSG_PREFIX = /^[@%+~&]+/;

/** The one options type of a companion: who, where, keybot's key, and tuning. */
export interface CompanionSessionOptions extends KeybotOptions {
  /** Our account (= nick on sealchat). */
  account: string;
  /** `host:port` (the known-keybots entry), or the plugin's label when it did not say. */
  server: string;
  /** Our unlocked key. */
  privateKey: PrivateKeyHandle;
  /** What outlives the connection for (account, server): pins and epochs (memory.ts). */
  memory?: CompanionMemory;
  /** Engine tuning (grace period, hold time, clock). */
  engine?: Omit<RoomCryptoEngineOptions, 'account' | 'privateKey' | 'keybotKey' | 'memory'>;
  /** How long and how much room text waits for a key it may be sent under (default 30 s). */
  outbox?: Omit<OutboxOptions, 'clock'>;
  /** Clock, ms since the Unix epoch (default Date.now). */
  clock?: () => number;
  /** The connection's queue, when the adapter needed it before the session existed (queue.ts). */
  queue?: SerialQueue;
  /**
   * The user's password of their account at keybot, on a network without services where keybot
   * keeps the accounts (ngIRCd, `--accounts keybot`; docs/NETWORKS.md): `login` is sent to keybot
   * at connect and after every reconnect, since a login there belongs to one connection.
   */
  keybotPassword?: string;
}

/** What the adapter does, in order. */
export type CompanionAction =
  /** Send `text` to `target` as `command` (ciphertext of held text, or `pubkey` to keybot). */
  | { type: 'send'; command: TextCommand; target: string; text: string }
  /** What the engine decided about something other than the line at hand (a key, a released message...). */
  | { type: 'result'; result: IncomingResult }
  /** keybot's key state changed (`retry`: asked again, not for the first time). */
  | { type: 'keybot'; state: KeybotState; retry: boolean }
  /** Something the user should know that changes nothing (`about: 'register'`: keybot's registration nonce was not answered, and why). */
  | { type: 'warning'; text: string; about?: 'register' }
  /** Held text was encrypted under the room's new key; its lines are the `send` actions before this. */
  | { type: 'released'; id: number; room: string; epoch: number; lines: number; heldMs: number }
  /** Held text was given up: it was NOT sent. `text` is what the user typed. */
  | { type: 'unsent'; id: number; room: string; reason: string; heldMs: number; text?: string }
  /** Send this raw IRC line to the server as it is (`CHATHISTORY …`: the history catch-up). */
  | { type: 'raw'; line: string }
  /** A part of a history catch-up, decided (history.ts): show its messages, in order, marked as history, then its summary (the last part's). */
  | { type: 'history'; shown: HistoryShown };

/** What an adapter does with each kind of action, in its own words. */
export interface ActionHandlers {
  send(a: Extract<CompanionAction, { type: 'send' }>): void;
  result(r: IncomingResult): void;
  keybot(state: KeybotState, retry: boolean): void;
  warning(text: string, about?: 'register'): void;
  released(a: Extract<CompanionAction, { type: 'released' }>): void;
  unsent(a: Extract<CompanionAction, { type: 'unsent' }>): void;
  raw(line: string): void;
  history(shown: HistoryShown): void;
}

/**
 * Why `password` cannot be a keybot password, or undefined: it goes out as the one word after
 * `login` on one line, so a space or a control character would cut or break it.
 */
export function keybotPasswordProblem(password: string): string | undefined {
  if (password === '') return 'the keybot password is empty';
  return /[\s\x00-\x1f\x7f]/.test(password) ? 'the keybot password cannot contain spaces or control characters (keybot reads it as one word)' : undefined;
}

/** Carry out `actions` in order with the adapter's handlers. */
export function carryOut(actions: CompanionAction[], h: ActionHandlers): void {
  for (const a of actions) {
    if (a.type === 'send') h.send(a);
    else if (a.type === 'result') h.result(a.result);
    else if (a.type === 'keybot') h.keybot(a.state, a.retry);
    else if (a.type === 'warning') h.warning(a.text, a.about);
    else if (a.type === 'released') h.released(a);
    else if (a.type === 'raw') h.raw(a.line);
    else if (a.type === 'history') h.history(a.shown);
    else h.unsent(a);
  }
}

/** A `send` action as one IRC line, the trailing parameter always marked (`PRIVMSG keybot :pubkey`), as clients write it. */
export function sendLine(a: Extract<CompanionAction, { type: 'send' }>): string {
  return `${a.command} ${a.target} :${a.text}`;
}

/** The user's words for held text that went out or was given up (the proxy and the agent say it alike). */
export function heldTextNotice(a: Extract<CompanionAction, { type: 'released' | 'unsent' }>): string {
  if (a.type === 'released') return `sent: a held message went out under epoch ${a.epoch} (held ${(a.heldMs / 1000).toFixed(1)} s)`;
  return `NOT SENT: ${a.reason}${a.text !== undefined ? `: ${JSON.stringify(a.text)}` : ''}`;
}

/**
 * Who added whom in a new epoch, as the members' signed operations show it, appended to a key
 * event ("; carol added by alice, verified"); '' when the epoch adds nobody we could check.
 */
export function keyChangesSuffix(r: { changes?: readonly string[] }): string {
  return r.changes && r.changes.length > 0 ? `; ${r.changes.join('; ')}` : '';
}

/** What a received PRIVMSG/NOTICE means: the line's own result, then what else to do. */
export interface Received {
  /** `hidden` also for keybot's lines that answered our own `pubkey`. A `key` comes without its `released` (they are in `actions`). */
  result: IncomingResult;
  actions: CompanionAction[];
}

/** Would text to a target go out now? (No state changes.) */
export interface SendPreview {
  encrypted: boolean;
  canSend: boolean;
  /** It would wait for the room's next key. */
  held?: boolean;
  reason?: string;
}

/** One companion's rules, transport-free; see the file comment. */
export class CompanionSession {
  readonly account: string;
  readonly server: string;
  readonly engine: RoomCryptoEngine;
  readonly outbox: Outbox;
  private readonly rooms: RoomMembership;
  private readonly keybotKey: KeybotKey;
  private readonly history: HistoryCatchUp;
  private readonly clock: () => number;
  /** Held texts (id → text), to name them when they are given up. */
  private readonly heldTexts = new Map<number, string>();
  /** Folded room → when we last asked keybot for its key because ours was past its sending lifetime. */
  private readonly freshKeyAskedAt = new Map<string, number>();
  /** Encrypted rooms we were in when the connection was lost (folded → name): text for them may wait for a key. */
  private readonly restoring = new Map<string, string>();
  private reconnectedAt = 0;
  private online = true;
  private readonly queue: SerialQueue;
  private readonly registration: KeyRegistration;
  private readonly keybotPassword: string | undefined;
  /** The network name our server announces (ISUPPORT NETWORK): key registrations bind it. */
  private network = '';
  /** When `login` last went to keybot, and whether keybot accepted it since. */
  private loggedInAt = -Infinity;
  private loginAccepted = false;

  constructor(o: CompanionSessionOptions) {
    this.account = o.account;
    this.server = o.server;
    this.clock = o.clock ?? Date.now;
    this.queue = o.queue ?? new SerialQueue();
    this.engine = new RoomCryptoEngine({
      ...o.engine,
      account: o.account,
      privateKey: o.privateKey,
      ...(o.clock ? { clock: o.clock } : {}),
      ...(o.memory ? { memory: o.memory } : {}),
    });
    this.outbox = new Outbox(this.engine, { ...o.outbox, clock: this.clock });
    this.rooms = new RoomMembership(this.engine, this.outbox);
    this.keybotKey = new KeybotKey(o, this.engine);
    this.history = new HistoryCatchUp(this.engine, o.memory, o.engine?.holdMs);
    this.registration = new KeyRegistration(o.account, o.privateKey);
    const bad = o.keybotPassword !== undefined ? keybotPasswordProblem(o.keybotPassword) : undefined;
    if (bad !== undefined) throw new TypeError(`keybotPassword: ${bad}`);
    this.keybotPassword = o.keybotPassword;
  }

  /**
   * Run `fn` after everything queued before it: the companion's one queue. The fact methods
   * below do not queue themselves; adapters call them inside `serial` (never `serial` in `serial`).
   */
  serial<T>(fn: () => Promise<T> | T): Promise<T> {
    return this.queue.run(fn);
  }

  /** How keybot's key stands. */
  get keybot(): KeybotState {
    return this.keybotKey.state;
  }

  /** Resolves once keybot's key is no longer being asked for. */
  keybotSettled(): Promise<KeybotState> {
    return this.keybotKey.whenSettled();
  }

  /** Is `nick` us? */
  isSelf(nick: string): boolean {
    return this.rooms.isSelf(nick);
  }

  /** Are we in `room` (as far as the JOINs and PARTs we were told about go)? */
  inRoom(room: string): boolean {
    return this.rooms.has(room);
  }

  /** The rooms we are in. */
  joinedRooms(): string[] {
    return this.rooms.rooms();
  }

  /** Rooms we hold or held a key for. */
  listRooms(): RoomInfo[] {
    return this.engine.listRooms();
  }

  // ---- facts in (call inside serial) -------------------------------------------------------

  /** Log in to keybot where it keeps the accounts; settle keybot's key from what we have, or ask keybot for it. */
  async start(now = this.clock()): Promise<CompanionAction[]> {
    return [...this.keybotLogin(now), ...this.keybotSteps(await this.keybotKey.start(now))];
  }

  /**
   * The server's ISUPPORT tokens (RPL_ISUPPORT 005, as `NAME=value`): its `NETWORK` name is what
   * a key registration binds (key-registration.ts).
   */
  isupport(tokens: readonly string[]): void {
    for (const t of tokens) {
      const m = /^NETWORK=(\S+)$/i.exec(t);
      if (m) this.network = m[1]!;
    }
  }

  /**
   * An INVITE: keybot brings members into the rooms it holds on an ordinary IRC network by
   * INVITE (docs/NETWORKS.md), so an INVITE from keybot, for us, to a sealchat room (`#sc-` or `##sc-`) is joined
   * (`raw` JOIN). Anything else is the user's to decide. Joining gives nothing away: room keys
   * come only in envelopes signed by the pinned keybot key, and none while keybot's key is refused.
   */
  invited(o: { from: string; invited: string; channel: string }): CompanionAction[] {
    if (casefold(o.from) !== KEYBOT_NICK || !this.isSelf(o.invited) || this.keybotKey.state.status === 'mismatch') return [];
    if (!/^#[^\s,\x00-\x1f]+$/.test(o.channel) || !isSealchatRoomName(o.channel) || this.rooms.has(o.channel)) return [];
    return [{ type: 'raw', line: `JOIN ${o.channel}` }];
  }

  /**
   * The next `register` the user sends keybot also signs with `oldKey`, the key registered so
   * far: keybot then takes the change at once instead of after the cool-down.
   */
  endorseNextRegistration(oldKey: PrivateKeyHandle | undefined): void {
    this.registration.endorseWith(oldKey);
  }

  /** `login <password>` to keybot, where keybot keeps the accounts (never shown, never logged). */
  private keybotLogin(now: number): CompanionAction[] {
    if (this.keybotPassword === undefined) return [];
    this.loggedInAt = now;
    this.loginAccepted = false;
    return [{ type: 'send', command: 'PRIVMSG', target: KEYBOT_NICK, text: `login ${this.keybotPassword}` }];
  }

  /** One received PRIVMSG or NOTICE from a nick (server notices are none of the core's business). */
  async received(line: IncomingLine): Promise<Received> {
    const now = line.now ?? this.clock();
    if (this.history.inBatch(line.tags)) {
      // A line of a history batch we asked for: decided with the whole batch at its end.
      this.history.line({ ...line, now });
      return { result: { kind: 'hidden' }, actions: [] };
    }
    const actions: CompanionAction[] = [];
    if (casefold(line.from) === KEYBOT_NICK) actions.push(...this.keybotSteps(this.keybotKey.heard(now, false)));
    const r = await this.engine.handleIncoming({ ...line, now });
    if (r.kind === 'proposal') {
      // keybot asks us to sign an invite: the signed lines go back to keybot, or the user hears why not.
      for (const text of r.lines ?? []) actions.push({ type: 'send', command: 'PRIVMSG', target: KEYBOT_NICK, text });
      if (r.refused !== undefined) actions.push({ type: 'warning', text: r.refused });
      return { result: { kind: 'hidden' }, actions };
    }
    if (r.kind === 'bot-notice') {
      const { taken, steps } = await this.keybotKey.take(r.target, r.text, now);
      actions.push(...this.keybotSteps(steps));
      if (!taken && this.isSelf(r.target)) {
        const registered = this.registrationStep(r.text, now);
        if (registered !== undefined) return { result: { kind: 'hidden' }, actions: [...actions, ...registered] };
        if (this.keybotPassword !== undefined && /^login: /.test(r.text)) this.loginAccepted = true;
        if (this.keybotPassword !== undefined && NOT_LOGGED_IN.test(r.text) && (this.loginAccepted || now - this.loggedInAt >= RELOGIN_MS)) {
          // keybot forgot this connection's login (it restarted?): log in again; the command is the user's to repeat.
          actions.push(...this.keybotLogin(now), { type: 'warning', text: 'keybot did not count you as logged in (did it restart?); logging in to keybot again: repeat your command' });
        }
      }
      return { result: taken ? { kind: 'hidden' } : r, actions };
    }
    if (r.kind === 'key' && r.readOnly) {
      // An older epoch, for reading only: it lifts no suspension and lets no held text out.
      return { result: { ...r, released: [] }, actions: [...this.expand(r.released), ...this.historyReady(now)] };
    }
    if (r.kind === 'key') {
      // A new epoch: its member list is the room as it is now, so it may be sent under.
      this.outbox.trust.keyInstalled(r.room);
      actions.push(...this.expand(r.released), ...this.release(now), ...this.historyReady(now));
      return { result: { ...r, released: [] }, actions };
    }
    // A message history showed, arriving live again: the live replay guard refuses it as old; it
    // is no attack, just the overlap of live and history (never shown twice, not reported).
    if (r.kind === 'undecryptable' && r.code === 'replay' && this.history.shownId(line.tags?.msgid)) return { result: { kind: 'hidden' }, actions };
    if (r.kind === 'message') {
      // Shown from history already (live and history overlap): not twice.
      if (this.history.live(r, line.tags)) return { result: { kind: 'hidden' }, actions };
      return { result: { ...r, ...(line.tags?.msgid ? { msgid: line.tags.msgid } : {}) }, actions };
    }
    return { result: r, actions };
  }

  /**
   * The capabilities the server enabled for this connection (every CAP ACK so far) and its
   * ISUPPORT `CHATHISTORY` limit: with `draft/chathistory`, `batch`, `server-time` and
   * `message-tags`, our JOINs ask for what we missed (history.ts). Returns the requests for rooms
   * already joined when the capabilities came.
   */
  capabilities(enabled: readonly string[], historyLimit?: string | number): CompanionAction[] {
    const before = this.history.available;
    this.history.capabilities(enabled, historyLimit);
    if (before || !this.history.available) return [];
    // Enabled after we joined (a plugin's agent asks for the capabilities once it is told of the
    // connection): catch up on the rooms we are in already.
    return this.rooms.rooms().flatMap((room) => {
      const line = this.history.joined(room);
      return line !== undefined ? [{ type: 'raw', line } as const] : [];
    });
  }

  /** Does this connection catch up on history after a JOIN? */
  get catchesUp(): boolean {
    return this.history.available;
  }

  /**
   * `BATCH +ref type params…` (`start`) or `BATCH -ref`. Returns whether the batch is a history
   * batch of ours (`taken`: the adapter need not show it) and, at its end, what to show.
   */
  batch(b: { ref: string; start: boolean; type?: string; target?: string; now?: number }): { taken: boolean; actions: CompanionAction[] } {
    if (b.start) return { taken: this.history.batchStart(b.ref, b.type ?? '', b.target), actions: [] };
    const open = this.history.inBatch({ batch: b.ref });
    // A full page: the next one is asked for (`raw`) before what can be shown of this one.
    const { request, shown } = this.history.batchEnd(b.ref, b.now ?? this.clock());
    const actions: CompanionAction[] = request !== undefined ? [{ type: 'raw', line: request }] : [];
    return { taken: open, actions: [...actions, ...shown.map((s) => ({ type: 'history', shown: s }) as const)] };
  }

  /** `FAIL CHATHISTORY … [target]`: our history request was refused; that room's catch-up ends with what it has. */
  historyFailed(target?: string, now = this.clock()): CompanionAction[] {
    return this.history.failed(target, now).map((shown) => ({ type: 'history', shown }) as const);
  }

  /** History batches that waited for a key and can be shown now. */
  private historyReady(now: number): CompanionAction[] {
    return this.history.retry(now).map((shown) => ({ type: 'history', shown }) as const);
  }

  /**
   * A JOIN, PART, KICK or QUIT (a KICK names the member removed). Held text for a room we left
   * is given up. `self`: the change was about us.
   */
  membership(change: MembershipChange): { self: boolean; actions: CompanionAction[] } {
    const { self, unsent } = this.rooms.apply(change);
    if (self && change.room !== undefined) this.restoring.delete(casefold(change.room));
    const actions = this.unsent(unsent);
    if (self && change.kind === 'join' && change.room !== undefined) {
      // Our JOIN (our own, or the daemon placing us back at login): ask for what we missed.
      const line = this.history.joined(change.room);
      if (line !== undefined) actions.push({ type: 'raw', line });
    }
    // keybot joining a room of ours is keybot online for certain (it came back after a restart,
    // say): a key we could not get is asked for now, not at the next retry.
    if (change.kind === 'join' && casefold(change.nick) === KEYBOT_NICK) actions.push(...this.keybotHeard(true));
    return { self, actions };
  }

  /** Count `room` as joined without a JOIN (a plugin loaded while already in it). */
  assumeJoined(room: string): void {
    this.rooms.add(room);
  }

  /**
   * keybot is there: MONITOR says it came online (`certain`), or the adapter saw a line from it.
   * A key we could not get is asked for again; after a reconnect, the pinned key is checked.
   */
  keybotHeard(certain: boolean, now = this.clock()): CompanionAction[] {
    return this.keybotSteps(this.keybotKey.heard(now, certain));
  }

  /** The server says keybot is not online. `taken`: it was the answer to our own `pubkey` (hide it). */
  keybotOffline(now = this.clock()): { taken: boolean; actions: CompanionAction[] } {
    const { taken, steps } = this.keybotKey.offline(now);
    return { taken, actions: this.keybotSteps(steps) };
  }

  /**
   * Housekeeping, about once a second: replaced keys wiped, held messages and held text given up,
   * a `pubkey` request timed out or due again, rooms not given back after a reconnect forgotten.
   */
  sweep(now = this.clock()): CompanionAction[] {
    const actions = this.expand(this.engine.sweep(now));
    actions.push(...this.unsent(this.outbox.expire(now)));
    actions.push(...this.keybotSteps(this.keybotKey.sweep(now)));
    actions.push(...this.askForFreshKeys(now));
    actions.push(...this.historyReady(now));
    // After a reconnect, rooms keybot did not give back within the hold time are not waited for.
    if (this.online && this.restoring.size > 0 && now - this.reconnectedAt > this.outbox.holdMs) this.restoring.clear();
    return actions;
  }

  /**
   * A room key past its sending lifetime (KeyTrust) means keybot's newer epochs are not reaching
   * us (a daemon hiding them, or keybot down): ask keybot for the room's current key, at most
   * once a minute per room. Text meanwhile is held, then reported NOT SENT.
   */
  private askForFreshKeys(now: number): CompanionAction[] {
    if (!this.online) return [];
    const out: CompanionAction[] = [];
    for (const r of this.engine.listRooms(now)) {
      if (!r.hasKey || r.issuedAt === undefined || now - r.issuedAt <= this.outbox.trust.sendLifetimeMs) continue;
      const f = casefold(r.room);
      if (now - (this.freshKeyAskedAt.get(f) ?? -Infinity) < 60_000) continue;
      this.freshKeyAskedAt.set(f, now);
      out.push({ type: 'send', command: 'PRIVMSG', target: KEYBOT_NICK, text: `key ${r.room}` });
    }
    return out;
  }

  /**
   * The connection is gone but another may follow (SealClient): keys are wiped (they live in
   * memory only, per connection), the encrypted rooms we were in may get text held for them.
   */
  connectionLost(now = this.clock()): CompanionAction[] {
    this.online = false;
    for (const room of this.rooms.rooms()) if (this.engine.isEncryptedRoom(room)) this.restoring.set(casefold(room), room);
    // Nothing may be sent under the keys we held (the room may change while we are away), but
    // they still read what was said meanwhile (the history catch-up after the next login).
    this.rooms.clear();
    this.history.reset();
    this.engine.retireKeys(now);
    return this.keybotSteps(this.keybotKey.connectionLost(now));
  }

  /**
   * Logged in again: the pin stays, and is checked once keybot is online (keybotHeard). Where
   * keybot keeps the accounts, the new connection logs in to keybot again (returned).
   */
  reconnected(now = this.clock()): CompanionAction[] {
    this.online = true;
    this.reconnectedAt = now;
    this.engine.keysReconnected(now);
    this.keybotKey.reconnected();
    return this.keybotLogin(now);
  }

  /** The companion is done with this session: held text given up (with `why`), every key wiped. */
  close(why: string, now = this.clock()): CompanionAction[] {
    this.online = false;
    this.restoring.clear();
    this.keybotKey.connectionLost(now);
    const unsent = this.unsent(this.outbox.drop(`${why}; nothing was sent`, undefined, now));
    this.wipe();
    return unsent;
  }

  // ---- text out (not queued: it only reads and encrypts) ------------------------------------

  /**
   * The user sent `text` to keybot (any adapter calls this for a PRIVMSG to keybot it passes on):
   * an `invite` is noted, so keybot's proposal for it gets signed (docs/PROTOCOL.md "Room operations").
   */
  typedToKeybot(text: string, now = this.clock()): void {
    this.engine.typedToKeybot(text, now);
    this.registration.typed(text, now);
  }

  /**
   * Text the user typed for a channel: encrypt it now, hold it for the room's next key, or refuse
   * it; `not-encrypted` refusals are the adapter's to decide (an ordinary channel). `hold`: the
   * adapter can hold (its user will see the text go out later); only PRIVMSGs to rooms we are (or
   * were, before a lost connection) in are held, and never once keybot's key was refused.
   */
  send(o: { target: string; text: string; command?: TextCommand; hold: boolean; now?: number }): SubmitResult {
    if (casefold(o.target) === KEYBOT_NICK && (o.command ?? 'PRIVMSG') === 'PRIVMSG') this.typedToKeybot(o.text, o.now);
    const refusal = this.targetRefusal(o.target);
    if (refusal !== undefined) return { status: 'refused', code: 'no-key', room: o.target, reason: refusal };
    const room = o.target;
    const folded = casefold(room);
    const mayHold = this.mayHold(room, o.command ?? 'PRIVMSG', o.hold);
    const lost = this.restoring.has(folded) && (!this.online || !this.rooms.has(room));
    const r = this.outbox.submit({
      room,
      text: o.text,
      mayHold,
      ...(lost ? { why: `the connection to the server was lost and ${room}'s key with it` } : {}),
      ...(o.now !== undefined ? { now: o.now } : {}),
    });
    if (r.status === 'held') this.heldTexts.set(r.id, o.text);
    return r;
  }

  /**
   * Why text to `target` is refused whatever the keys say, or undefined (docs/PROTOCOL.md
   * "Faults", the rule for targets): a target that is no target (empty, with a space: a line the
   * client could not have meant), a list of targets naming an encrypted room, or a STATUSMSG
   * target (`@#room`, `+#room`: modern.ircdocs.horse "STATUSMSG") of an encrypted room, which
   * would not be encrypted for the room's members. Every companion decides this here, before any
   * key is looked at, so none passes such a line on as plaintext.
   */
  targetRefusal(target: string): string | undefined {
    if (target === '' || /[\s\x00]/.test(target)) return `"${target}" is not a target (a malformed line); nothing was sent`;
    const parts = target.split(',');
    const sealed = parts.filter((p) => p !== '' && this.engine.isEncryptedRoom(p.replace(STATUSMSG_PREFIX, '')));
    if (sealed.length === 0) return parts.some((p) => p === '') ? `"${target}" is not a list of targets; nothing was sent` : undefined;
    if (parts.length > 1) return `${sealed.join(', ')}: send to one encrypted room at a time; nothing was sent`;
    if (STATUSMSG_PREFIX.test(target)) return `${target}: a message to part of an encrypted room could not be encrypted for its members; nothing was sent`;
    return undefined;
  }

  /** Would text to `target` (one or several, comma-separated) be sent, held, refused or passed? */
  preview(target: string, hold: boolean): SendPreview {
    const refusal = this.targetRefusal(target);
    if (refusal !== undefined) return { encrypted: true, canSend: false, reason: refusal };
    const targets = target.split(',');
    const sealed = targets.filter((t) => this.engine.isEncryptedRoom(t));
    if (sealed.length === 0) return { encrypted: false, canSend: true };
    if (targets.length > 1) return { encrypted: true, canSend: false, reason: `${sealed.join(', ')}: send to one encrypted room at a time; nothing was sent` };
    const info = this.engine.roomInfo(target);
    const suspended = this.outbox.trust.suspension(target);
    const queued = this.outbox.size(target) > 0;
    if (info?.hasKey && suspended === undefined && !queued) return { encrypted: true, canSend: true };
    const why =
      suspended !== undefined
        ? `the key of ${target} is being replaced (${suspended})`
        : queued
          ? `earlier messages to ${target} are waiting`
          : `no key for ${target} yet`;
    if (this.mayHold(target, 'PRIVMSG', hold)) {
      return { encrypted: true, canSend: true, held: true, reason: `${why}: held until the new key arrives (at most ${Math.round(this.outbox.holdMs / 1000)} s)` };
    }
    const reason =
      suspended !== undefined || queued
        ? `${why}; nothing was sent`
        : info?.highestEpoch !== undefined
          ? `you no longer hold a key for ${info.room} (you left it, or were removed); nothing was sent`
          : `no key for ${target} yet: keybot has not sent you one (ask with /msg ${KEYBOT_NICK} key ${target}); nothing was sent`;
    return { encrypted: true, canSend: false, reason };
  }

  /** Rooms whose current key may not be sent under, and why (text for them is held). */
  suspendedRooms(): Array<{ room: string; reason: string }> {
    const out: Array<{ room: string; reason: string }> = [];
    for (const r of this.engine.listRooms()) {
      const why = this.outbox.trust.suspension(r.room);
      if (why !== undefined) out.push({ room: r.room, reason: `the key of ${r.room} is being replaced (${why}); text for it waits for the new key` });
    }
    return out;
  }

  // ---- internals ---------------------------------------------------------------------------

  private mayHold(room: string, command: TextCommand, hold: boolean): boolean {
    if (!hold || command !== 'PRIVMSG' || this.keybotKey.state.status === 'mismatch') return false;
    return this.rooms.has(room) || this.restoring.has(casefold(room)) || this.engine.roomInfo(room)?.hasKey === true;
  }

  private wipe(): void {
    this.rooms.clear();
    for (const r of this.engine.listRooms()) this.engine.forgetRoom(r.room);
  }

  /** Engine results as actions: a key's released messages follow it, then what the new keys let out of the outbox. */
  private expand(results: IncomingResult[], now = this.clock()): CompanionAction[] {
    const out: CompanionAction[] = [];
    let keyed = false;
    const add = (r: IncomingResult): void => {
      if (r.kind !== 'key') {
        out.push({ type: 'result', result: r });
        return;
      }
      if (!r.readOnly) {
        this.outbox.trust.keyInstalled(r.room);
        keyed = true;
      }
      out.push({ type: 'result', result: { ...r, released: [] } });
      for (const x of r.released) add(x);
    };
    for (const r of results) add(r);
    if (keyed) out.push(...this.release(now));
    return out;
  }

  /** Send what the outbox can encrypt now (after a new key). */
  private release(now: number): CompanionAction[] {
    const out: CompanionAction[] = [];
    for (const r of this.outbox.release(now)) {
      this.heldTexts.delete(r.id);
      for (const text of r.lines) out.push({ type: 'send', command: 'PRIVMSG', target: r.room, text });
      out.push({ type: 'released', id: r.id, room: r.room, epoch: r.epoch, lines: r.lines.length, heldMs: r.heldMs });
    }
    out.push(...this.unsent(this.outbox.takeUnsent()));
    return out;
  }

  private unsent(list: Array<{ id: number; room: string; reason: string; heldMs: number }>): CompanionAction[] {
    return list.map((u) => {
      const text = this.heldTexts.get(u.id);
      this.heldTexts.delete(u.id);
      return { type: 'unsent', id: u.id, room: u.room, reason: u.reason, heldMs: u.heldMs, ...(text !== undefined ? { text } : {}) };
    });
  }

  /**
   * keybot's nonce for a `register` the user sent: answered with the signed registration (its
   * lines to keybot), or refused with the reason; undefined for any other line from keybot.
   */
  private registrationStep(text: string, now: number): CompanionAction[] | undefined {
    const step = this.registration.nonce(text, this.network, now);
    switch (step.kind) {
      case 'none':
        return undefined;
      case 'unasked':
        return [{ type: 'warning', text: 'keybot sent a registration nonce nobody here asked for (no register in the last minute); not answered', about: 'register' }];
      case 'refused':
        return [{ type: 'warning', text: `register: not answered: ${step.reason}`, about: 'register' }];
      case 'answer':
        // keybot's answer to these lines is the user's confirmation ("register: key … registered for …").
        return step.lines.map((text) => ({ type: 'send', command: 'PRIVMSG', target: KEYBOT_NICK, text }) as const);
    }
  }

  private keybotSteps(steps: KeybotStep[]): CompanionAction[] {
    const out: CompanionAction[] = [];
    for (const s of steps) {
      if (s.ask !== undefined) out.push({ type: 'send', command: 'PRIVMSG', target: KEYBOT_NICK, text: s.ask });
      if (s.state) out.push({ type: 'keybot', state: s.state, retry: s.retry === true });
      if (s.warning !== undefined) out.push({ type: 'warning', text: s.warning });
      if (s.results) out.push(...this.expand(s.results));
    }
    return out;
  }
}
