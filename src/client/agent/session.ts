/**
 * One IRC connection of a plugin, as the agent sees it: an adapter between the agent protocol
 * (protocol.ts) and one CompanionSession (core/session.ts), which holds the rules.
 *
 * The plugin's IRC connection is the only transport: what the core wants sent (`PRIVMSG keybot
 * :pubkey`, a held message's ciphertext) waits in `send` for the plugin's next request, and what
 * it wants shown that is not the answer to the line at hand waits in `events`, both in the words
 * below. Protocol-3 plugins hand over raw lines (`lineIn`, `lineOut`): which lines matter, what
 * they mean, which of them the agent itself asked for, and what to tell the user are decided
 * here, so a plugin only applies the action. Plugins that speak protocol 2 report every JOIN,
 * PART, KICK and QUIT in their rooms and understand the `hold` answer; older ones are refused
 * instead (fail closed).
 */
import { KEYBOT_NICK, casefold } from '../../protocol/names.js';
import { parseAction } from '../../protocol/ctcp.js';
import {
  CompanionSession,
  carryOut,
  heldTextNotice,
  keyChangesSuffix,
  missingMessagesText,
  sendLine,
  type ActionHandlers,
  type CompanionAction,
  type CompanionSessionOptions,
  type IncomingResult,
  type KeybotPinSource,
  type KeybotState,
  type MembershipChange,
  type RoomInfo,
  type TextCommand,
  HISTORY_CAPS,
  type HistoryShown,
  type LineTags,
} from '../core/index.js';
import { outLine, readLine, withMarker, withText, type PluginLine } from './lines.js';
import type { AgentEvent, AgentSend, CheckReply, IncomingReply, LineReply, OutgoingReply } from './protocol.js';

/** Options of {@link AgentSession}: the core's, with the plugin's name for the connection. */
export interface AgentSessionOptions extends Omit<CompanionSessionOptions, 'server'> {
  /** The plugin's label for the connection. */
  label: string;
  nick: string;
  host?: string;
  port?: number;
}

/** `host:port`, the known-keybots and memory entry of a connection; its label when the plugin did not say. */
export function serverKeyOf(o: { label: string; host?: string; port?: number }): string {
  return o.host !== undefined && o.port !== undefined ? `${o.host}:${o.port}` : o.label;
}

/** Events and sends kept per session until a plugin collects them. */
const MAX_QUEUED = 500;
/** Lines handed out in `send` that the plugin's outgoing hook has not shown back yet (bounded: a hook may never see one). */
const MAX_OWN_LINES = 1000;
/** What marks a verified message when the plugin did not say (`connected`'s `marker`). */
export const DEFAULT_MARKER = '\u2713';

/** How a pinned key came to be trusted, in the notice. */
const PINNED_HOW: Record<KeybotPinSource, string> = {
  'first-use': 'trusted on first use: compare it with the fingerprint your operator gives you',
  configured: 'matches the fingerprint you configured',
  known: 'the key you pinned before',
  'option-key': 'the key you gave',
};

export class AgentSession {
  readonly label: string;
  readonly nick: string;
  /** Which plugin connection collects this session's events (the last to say `connected`). */
  owner: number | undefined;
  /**
   * The protocol the plugin speaks (`connected`'s `protocol`; 1 if it did not say). From 2 it
   * understands `hold`: a protocol-1 plugin sends whatever it does not recognise as it is, so it
   * is never told to hold, it is refused instead (fail closed). From 3 it hands over raw lines and
   * shows what it is told as it is (marked text, notices for refusals).
   */
  protocol = 1;
  /** Put before verified text for protocol-3 plugins (theirs, from `connected`). */
  marker = DEFAULT_MARKER;
  /** Lines this session asked its plugin to send, by {@link ownLineKey}: they come back through the plugin's outgoing hook, and pass once each. */
  private readonly ownLines = new Map<string, number>();
  private readonly core: CompanionSession;
  /** The history capabilities asked for (then [] once answered), and the server's CHATHISTORY limit. */
  private capsAsked: string[] | undefined;
  private historyLimit: string | undefined;
  private events: AgentEvent[] = [];
  private sends: AgentSend[] = [];
  private closed = false;

  constructor(o: AgentSessionOptions) {
    this.label = o.label;
    this.nick = o.nick;
    this.core = new CompanionSession({ ...o, server: serverKeyOf(o) });
  }

  /** The plugin understands `hold`. */
  get holds(): boolean {
    return this.protocol >= 2;
  }

  get keybotState(): KeybotState {
    return this.core.keybot;
  }

  /** Settle keybot's key from what we have, or ask keybot for it (through the plugin). */
  start(): Promise<void> {
    return this.core.serial(async () => this.act(await this.core.start()));
  }

  /** Decide one received line. */
  incoming(line: { from: string; target: string; command: TextCommand; text: string; tags?: LineTags }): Promise<IncomingReply> {
    return this.core.serial(async () => {
      if (this.closed) return { id: null, ok: true, action: 'pass' };
      const { result, actions } = await this.core.received(line);
      const reply = this.reply(result);
      this.act(actions);
      return reply;
    });
  }

  /**
   * Encrypt one outgoing line for a room, hold it for the room's next key, refuse it, or let it
   * pass. Only PRIVMSGs to rooms we are in are held, and only for plugins that understand `hold`.
   */
  outgoing(target: string, text: string, command: TextCommand = 'PRIVMSG'): OutgoingReply {
    // Malformed targets, lists naming a room and @#room/+#room are refused before anything else.
    const refusal = this.core.targetRefusal(target);
    if (refusal !== undefined) return { id: null, ok: true, action: 'refuse', reason: refusal };
    if (target.includes(',')) return { id: null, ok: true, action: 'pass' };
    if (this.closed) return { id: null, ok: true, action: 'refuse', reason: 'the connection is closing; nothing was sent' };
    const r = this.core.send({ target, text, command, hold: this.holds });
    switch (r.status) {
      case 'send':
        return { id: null, ok: true, action: 'send', lines: r.lines };
      case 'held':
        return { id: null, ok: true, action: 'hold', reason: r.reason };
      case 'refused':
        return r.code === 'not-encrypted' ? { id: null, ok: true, action: 'pass' } : { id: null, ok: true, action: 'refuse', reason: r.reason };
    }
  }

  /**
   * Would text to `target` be sent (encrypted), held, refused, or passed as it is? No state
   * changes. `held`: it would wait for the room's next key (the plugin lets the client echo it).
   */
  check(target: string): { encrypted: boolean; canSend: boolean; held?: boolean; reason?: string } {
    return this.core.preview(target, this.holds);
  }

  /**
   * `check` as a plugin asks it before its client echoes typed text: `refuse` when the text would
   * not be sent; a protocol-3 plugin is also told why in `events` (it shows them as they are).
   */
  checkReply(target: string): CheckReply {
    const c = this.check(target);
    const refuse = c.encrypted && !c.canSend;
    if (refuse && this.protocol >= 3) this.notice(`NOT SENT: ${c.reason ?? `no key for ${target}`}`, 'error', target);
    return { id: null, ok: true, ...c, action: refuse ? 'refuse' : 'pass' };
  }

  /**
   * One raw line the plugin's client received (protocol 3). A PRIVMSG or NOTICE is decided as
   * `incoming` decides it, and shown text comes back as the whole line to use instead, marked; a
   * JOIN, PART or KICK in a sealchat room, and every QUIT, is applied as `membership`; anything
   * else passes. Membership lines always pass: the user sees who came and went.
   */
  async lineIn(raw: string): Promise<LineReply> {
    const l = readLine(raw);
    if (!l) return PASS;
    // The history catch-up's lines may come without a source (a server may leave it out).
    if (HISTORY_COMMANDS.has(l.command)) return this.historyLine(l);
    if (l.source === '') return PASS;
    const [first = '', second = ''] = l.params;
    switch (l.command) {
      case 'PRIVMSG':
      case 'NOTICE': {
        if (l.params.length < 2) return PASS;
        const r = await this.incoming({ from: l.nick, target: first, command: l.command, text: second, ...(l.lineTags ? { tags: l.lineTags } : {}) });
        if (r.action !== 'show') return { id: null, ok: true, action: r.action };
        const text = withMarker(r.text ?? '', r.verified ? this.marker : r.warning ? `[${r.warning}]` : '');
        return { id: null, ok: true, action: 'show', line: withText(l, l.command, text), text };
      }
      case 'JOIN':
      case 'PART':
        if (l.nick !== '' && this.core.engine.isEncryptedRoom(first)) await this.membership({ kind: l.command === 'JOIN' ? 'join' : 'part', room: first, nick: l.nick });
        return PASS;
      case 'KICK':
        if (second !== '' && this.core.engine.isEncryptedRoom(first)) await this.membership({ kind: 'kick', room: first, nick: second });
        return PASS;
      case 'QUIT':
        if (l.nick !== '') await this.membership({ kind: 'quit', nick: l.nick });
        return PASS;
      case 'INVITE':
        // keybot brings members into its rooms by INVITE on an ordinary IRC network: the core
        // decides whether to join (the JOIN goes out in `send`); the user sees the invitation.
        await this.core.serial(() => {
          if (!this.closed && l.nick !== '') this.act(this.core.invited({ from: l.nick, invited: first, channel: second }));
        });
        return PASS;
      default:
        return PASS;
    }
  }

  /**
   * Ask the server for the capabilities of the history catch-up (after `connected`): the plugin's
   * client may not have asked for them (WeeChat 3.8 asks for server-time and message-tags, not
   * batch; neither asks for draft/chathistory). The answer comes back as a line in, hidden.
   */
  requestHistoryCaps(): void {
    if (this.protocol < 3 || this.capsAsked !== undefined) return;
    this.capsAsked = [...HISTORY_CAPS];
    this.sendLine(`CAP REQ :${HISTORY_CAPS.join(' ')}`);
  }

  /** CAP, BATCH, FAIL and ISUPPORT lines: what the history catch-up needs of them (protocol 3). */
  private historyLine(l: PluginLine): Promise<LineReply> {
    return this.core.serial(() => {
      if (this.closed) return PASS;
      const [first = '', second = '', third] = l.params;
      if (l.command === '005') {
        // The network's name, for key registrations (core/key-registration.ts).
        this.core.isupport(l.params.slice(1, -1));
        const limit = l.params.slice(1, -1).map((p) => /^CHATHISTORY(?:=(\d+))?$/i.exec(p)).find((x) => x);
        if (limit) this.historyLimit = limit[1] ?? '0';
        return PASS;
      }
      if (l.command === 'CAP') {
        const sub = second.toUpperCase();
        const caps = (l.params[l.params.length - 1] ?? '').split(' ').filter((c) => c !== '').map((c) => c.toLowerCase());
        const ours = this.capsAsked !== undefined && caps.length === this.capsAsked.length && this.capsAsked.every((c) => caps.includes(c));
        if (!ours || (sub !== 'ACK' && sub !== 'NAK')) return PASS;
        this.capsAsked = [];
        if (sub === 'ACK') this.act(this.core.capabilities(caps, this.historyLimit));
        else this.notice('the server offers no history: what was said while you were away is not shown', 'info');
        return HIDE;
      }
      if (l.command === 'BATCH') {
        const b = this.core.batch({ ref: first.slice(1), start: first.startsWith('+'), ...(second !== '' ? { type: second } : {}), ...(third !== undefined ? { target: third } : {}) });
        this.act(b.actions);
        return b.taken ? HIDE : PASS;
      }
      // FAIL CHATHISTORY <code> <context> :<description>: our request was refused.
      if (first.toUpperCase() === 'CHATHISTORY' && this.core.catchesUp) {
        this.notice(`no history: ${l.params[l.params.length - 1] ?? ''} (${second})`, 'warn');
        // That room's catch-up ends now with what it has (not at its page timeout).
        this.act(this.core.historyFailed(l.params.slice(2, -1).find((p) => p.startsWith('#'))));
        return HIDE;
      }
      return PASS;
    });
  }

  /**
   * One raw line the plugin's client is about to send (protocol 3): a PRIVMSG or NOTICE is
   * encrypted (`send`: the lines to send instead, whatever their target), held, refused or passed
   * as `outgoing` decides; a line this session itself asked the plugin to send passes once; a
   * TOPIC for an encrypted room is refused (a topic is plaintext to the server). What the user
   * should read about it comes in `events`.
   */
  lineOut(raw: string): LineReply {
    const l = readLine(raw);
    if (!l) {
      // A line the server might still read as a message (it is lenient where we are not): never passed on.
      return /^ *(?:@\S* +)?(?::\S* +)?(?:PRIVMSG|NOTICE|TOPIC)(?: |$)/i.test(raw) ? this.refuseLine('', 'a line sealchat cannot read; nothing was sent') : PASS;
    }
    const [target = '', text = ''] = l.params;
    switch (l.command) {
      case 'PRIVMSG':
      case 'NOTICE': {
        if (l.params.length < 2) return this.refuseLine(target, `a ${l.command} without a target and text; nothing was sent`);
        if (this.takeOwnLine(l.command, target, text)) return PASS;
        const r = this.outgoing(target, text, l.command);
        if (r.action === 'send') return { id: null, ok: true, action: 'send', lines: (r.lines ?? []).map((x) => outLine(l, l.command as TextCommand, target, x)) };
        if (r.action === 'refuse') return this.refuseLine(target, r.reason ?? 'refused');
        if (r.action === 'hold') {
          this.notice(`held: ${r.reason ?? "waiting for the room's new key"}`, 'warn', target);
          return { id: null, ok: true, action: 'hold', ...(r.reason !== undefined ? { reason: r.reason } : {}) };
        }
        return PASS;
      }
      case 'TOPIC':
        // Asking for the topic, or clearing it, says nothing; a new topic would be plaintext to the server.
        if (l.params.length < 2 || text === '' || !this.check(target).encrypted) return PASS;
        return this.refuseLine(target, `the topic of ${target} would not be encrypted`);
      default:
        return PASS;
    }
  }

  /**
   * A JOIN, PART, KICK or QUIT the plugin saw: applied after every line received before it.
   * Resolves with the rooms whose key may not be sent under now, and why.
   */
  membership(change: MembershipChange): Promise<{ suspended: Array<{ room: string; reason: string }> }> {
    return this.core.serial(() => {
      if (this.closed) return { suspended: [] };
      this.act(this.core.membership(change).actions);
      return { suspended: this.core.suspendedRooms() };
    });
  }

  /** Rooms the plugin was already in when it (re)attached: text for them may wait for a key. */
  inRooms(rooms: string[]): void {
    for (const room of rooms.slice(0, 500)) if (/^[#&][^\s,:]+$/.test(room)) this.core.assumeJoined(room);
  }

  /** Ask keybot to re-send the keys of these rooms (the sealchat ones among them). */
  requestRoomKeys(rooms: string[]): void {
    const engine = this.core.engine;
    for (const room of rooms.slice(0, 50)) {
      if (!/^#[^\s,:]+$/.test(room) || !engine.isEncryptedRoom(room) || engine.roomInfo(room)?.hasKey) continue;
      this.sendLine(`PRIVMSG ${KEYBOT_NICK} :key ${room}`);
    }
  }

  /** We left `room`: wipe its keys (after every line received before); held text for it is not sent. */
  async left(room: string): Promise<void> {
    await this.membership({ kind: 'part', room, nick: this.core.account });
  }

  /** What the plugin's `/sealchat` shows. */
  status(): { server: string; nick: string; keybot: KeybotState; rooms: RoomInfo[] } {
    return { server: this.label, nick: this.nick, keybot: this.core.keybot, rooms: this.core.listRooms() };
  }

  /** Housekeeping, about once a second: held messages given up, a key request timed out or due again. */
  sweep(): Promise<void> {
    return this.core.serial(() => {
      if (!this.closed) this.act(this.core.sweep());
    });
  }

  /** Take what is waiting to be shown and sent. */
  drain(): { events: AgentEvent[]; send: AgentSend[] } {
    const out = { events: this.events, send: this.sends };
    this.events = [];
    this.sends = [];
    return out;
  }

  /** The connection is gone: wipe every key (held text goes with it, unreported: nobody is listening). */
  close(): void {
    this.closed = true;
    this.core.close('the connection closed');
    this.events = [];
    this.sends = [];
  }

  // ---- internals ---------------------------------------------------------------------------

  private sendLine(line: string): void {
    this.sends.push({ server: this.label, line });
    if (this.sends.length > MAX_QUEUED) this.sends.shift();
    const key = this.protocol >= 3 ? ownLineKey(line) : undefined;
    if (key === undefined) return;
    if (this.ownLines.size >= MAX_OWN_LINES) this.ownLines.clear();
    this.ownLines.set(key, (this.ownLines.get(key) ?? 0) + 1);
  }

  /** True once for each line this session asked its plugin to send: it goes out as it is. */
  private takeOwnLine(command: string, target: string, text: string): boolean {
    const key = ownKey(command, target, text);
    const n = this.ownLines.get(key) ?? 0;
    if (n <= 0) return false;
    if (n === 1) this.ownLines.delete(key);
    else this.ownLines.set(key, n - 1);
    return true;
  }

  /** Refuse a line, and tell the user why (in the target's window; '' for the server's). */
  private refuseLine(target: string, reason: string): LineReply {
    this.notice(`NOT SENT: ${reason}`, 'error', target);
    return { id: null, ok: true, action: 'refuse', reason };
  }

  private event(e: Omit<AgentEvent, 'server'>): void {
    this.events.push({ server: this.label, ...e });
    if (this.events.length > MAX_QUEUED) this.events.shift();
  }

  private notice(text: string, level: AgentEvent['level'] = 'info', target = ''): void {
    this.event({ type: 'notice', target, text, level });
  }

  /** Turn the core's answer for the line at hand into a reply (what is not the line itself becomes events). */
  private reply(r: IncomingResult): IncomingReply {
    switch (r.kind) {
      case 'passthrough':
        return { id: null, ok: true, action: 'pass' };
      case 'hidden':
      case 'held':
        return { id: null, ok: true, action: 'hide' };
      case 'message':
        if (r.missingBefore) this.notice(missingMessagesText(r.missingBefore, r.from, r.room), 'warn', r.room);
        return { id: null, ok: true, action: 'show', text: r.text, verified: true };
      case 'plaintext-in-room':
        return { id: null, ok: true, action: 'show', text: r.text, verified: false, warning: 'NOT ENCRYPTED, NOT VERIFIED' };
      case 'bot-notice':
        return { id: null, ok: true, action: 'show', text: r.text, verified: false };
      default:
        this.result(r);
        return { id: null, ok: true, action: 'hide' };
    }
  }

  /** Carry out what the core asked: lines for the plugin to send, events for it to show. */
  private act(actions: CompanionAction[]): void {
    carryOut(actions, this.handlers);
  }

  private readonly handlers: ActionHandlers = {
    send: (a) => this.sendLine(sendLine(a)),
    result: (r) => this.result(r),
    keybot: (state, retry) => this.keybotNotice(state, retry),
    warning: (text) => this.notice(text, 'warn'),
    released: (a) => this.notice(heldTextNotice(a), 'info', a.room),
    unsent: (a) => this.notice(heldTextNotice(a), 'error', a.room),
    raw: (line) => this.sendLine(line),
    history: (shown) => this.history(shown),
  };

  /**
   * What was said while we were away, as `message` events in order, each marked (the verified
   * marker, then `[history HH:MM]`, the time it was said) with `history` and `time`; then the summary.
   */
  private history(shown: HistoryShown): void {
    for (const r of shown.results) {
      if (r.kind !== 'message') {
        this.result(r);
        continue;
      }
      const when = new Date(r.time ?? Date.now());
      const mark = `[history ${String(when.getHours()).padStart(2, '0')}:${String(when.getMinutes()).padStart(2, '0')}]`;
      const text = withMarker(r.text, this.protocol >= 3 ? `${this.marker} ${mark}` : mark);
      this.event({ type: 'message', target: r.room, from: r.from, text, verified: true, history: true, ...(r.time !== undefined ? { time: r.time } : {}) });
    }
    if (shown.summary !== '') this.notice(shown.summary, 'info', shown.room);
  }

  private keybotNotice(k: KeybotState, retry: boolean): void {
    switch (k.status) {
      case 'fetching':
        if (!retry) this.notice(`asking ${KEYBOT_NICK} for its key (room keys are accepted only under keybot's pinned key)`, 'info');
        return;
      case 'pinned':
        this.notice(`keybot's key ${k.fingerprint} is pinned (${PINNED_HOW[k.source]})`, k.source === 'first-use' ? 'warn' : 'info');
        return;
      case 'unavailable':
        this.notice(`${k.reason}; asking again later`, 'warn');
        return;
      case 'mismatch':
        this.notice(k.reason, 'error');
        return;
    }
  }

  /** One engine result that is not the line at hand → an event. */
  private result(r: IncomingResult): void {
    switch (r.kind) {
      case 'key':
        this.event({
          type: 'key',
          target: r.room,
          room: r.room,
          level: 'info',
          text: r.readOnly
            ? `older key for ${r.room} (epoch ${r.epoch}, missed while you were away) from keybot, verified; for reading history only`
            : `key for ${r.room} (epoch ${r.epoch}) from keybot, verified; members: ${r.members.join(', ')}${keyChangesSuffix(r)}`,
        });
        break;
      case 'message':
        if (r.missingBefore) this.notice(missingMessagesText(r.missingBefore, r.from, r.room), 'warn', r.room);
        // A protocol-3 plugin shows the text as it is: the marker is put in here.
        this.event({ type: 'message', target: r.room, from: r.from, text: this.protocol >= 3 ? withMarker(r.text, this.marker) : r.text, verified: true });
        break;
      case 'plaintext-in-room':
        this.notice(`${r.from} wrote unencrypted text in ${r.room}: ${r.text}`, 'warn', r.room);
        break;
      case 'undecryptable':
        this.notice(`cannot read a message from ${r.from} in ${r.room}: ${r.reason}`, 'warn', r.room);
        break;
      case 'envelope-rejected':
        this.notice(`refused a key envelope from ${r.from}${r.room ? ` for ${r.room}` : ''}: ${r.reason}`, 'warn', r.room ?? '');
        break;
      case 'bot-notice':
        this.notice(`${KEYBOT_NICK}: ${parseAction(r.text) ?? r.text}`, 'info', r.target);
        break;
      case 'passthrough':
      case 'hidden':
      case 'held':
        break;
    }
  }
}

const PASS: LineReply = { id: null, ok: true, action: 'pass' };
const HIDE: LineReply = { id: null, ok: true, action: 'hide' };
/** The lines of the history catch-up (`historyLine`). */
const HISTORY_COMMANDS = new Set(['CAP', 'BATCH', 'FAIL', '005']);

/** Which outgoing line is which, as the server reads it: command, target (casefolded), text. */
function ownKey(command: string, target: string, text: string): string {
  return `${command.toUpperCase()}\0${casefold(target)}\0${text}`;
}

function ownLineKey(line: string): string | undefined {
  const l = readLine(line);
  return l && (l.command === 'PRIVMSG' || l.command === 'NOTICE') && l.params.length === 2 ? ownKey(l.command, l.params[0]!, l.params[1]!) : undefined;
}
