/**
 * One IRC connection of a plugin, as the agent sees it: a RoomCryptoEngine for (server, account),
 * keybot's key (pinned from the known-keybots file, or asked of keybot through the plugin), and
 * the things to show or send that are not the answer to one line.
 *
 * The plugin's IRC connection is the only transport: keybot's key is asked for and read through it
 * (keybot.ts). Everything received is decided in arrival order (one queue), so a key is installed
 * before the message after it is looked at.
 *
 * Membership (docs/PROTOCOL.md "Faults"): plugins that speak protocol 2 report every JOIN, PART,
 * KICK and QUIT in their rooms (`membership`), and the session applies them exactly as SealClient
 * does (RoomMembership, KeyTrust, Outbox): once a member of the epoch left, or someone unlisted
 * came, the room's key is not sent under any more. Text typed then is held (the `outgoing` reply
 * says `hold`, with the reason for the user) and goes out under the room's next key as raw lines
 * in `send`, with a notice; after 30 s it is given up and reported NOT SENT, with its text.
 */
import type { PrivateKeyHandle } from '../../crypto/index.js';
import { KEYBOT_NICK } from '../../protocol/names.js';
import {
  RoomCryptoEngine,
  type IncomingResult,
  type RoomCryptoEngineOptions,
  type RoomInfo,
  type TextCommand,
} from '../core/index.js';
import { RoomMembership, type CompanionMemory, type MembershipChange } from '../core/index.js';
import { Outbox, type OutboxOptions, type Unsent } from '../core/index.js';
import { AgentKeybot, type KeybotOptions, type KeybotState } from './keybot.js';
import type { AgentEvent, AgentSend, IncomingReply, OutgoingReply } from './protocol.js';

/** Options of {@link AgentSession}. */
export interface AgentSessionOptions extends KeybotOptions {
  /** The plugin's label for the connection. */
  label: string;
  account: string;
  nick: string;
  host?: string;
  port?: number;
  privateKey: PrivateKeyHandle;
  /** What outlives this connection for (account, server): pins and epochs (core/memory.ts). */
  memory?: CompanionMemory;
  engine?: Omit<RoomCryptoEngineOptions, 'account' | 'privateKey' | 'keybotKey'>;
  /** How long and how much room text waits for a key it may be sent under (default 30 s). */
  outbox?: Omit<OutboxOptions, 'clock'>;
  clock?: () => number;
}

/** `host:port`, the known-keybots and memory entry of a connection; its label when the plugin did not say. */
export function serverKeyOf(o: { label: string; host?: string; port?: number }): string {
  return o.host !== undefined && o.port !== undefined ? `${o.host}:${o.port}` : o.label;
}

/** Events and sends kept per session until a plugin collects them. */
const MAX_QUEUED = 500;
const ACTION_RE = /^\x01ACTION ([\s\S]*)\x01$/;

export class AgentSession {
  readonly label: string;
  readonly nick: string;
  readonly engine: RoomCryptoEngine;
  /** Which plugin connection collects this session's events (the last to say `connected`). */
  owner: number | undefined;
  /**
   * The plugin understands `hold` (protocol 2). A protocol-1 plugin sends whatever it does not
   * recognise as it is, so it is never told to hold: it is refused instead (fail closed).
   */
  holds = false;
  private readonly outbox: Outbox;
  private readonly rooms: RoomMembership;
  /** Held texts (id → text), to name them when they are given up. */
  private readonly heldTexts = new Map<number, string>();
  private readonly keybot: AgentKeybot;
  private events: AgentEvent[] = [];
  private sends: AgentSend[] = [];
  private tail: Promise<unknown> = Promise.resolve();
  private readonly clock: () => number;
  private closed = false;

  constructor(private readonly o: AgentSessionOptions) {
    this.label = o.label;
    this.nick = o.nick;
    this.clock = o.clock ?? Date.now;
    this.engine = new RoomCryptoEngine({
      ...o.engine,
      account: o.account,
      privateKey: o.privateKey,
      ...(o.clock ? { clock: o.clock } : {}),
      ...(o.memory ? { memory: o.memory } : {}),
    });
    this.outbox = new Outbox(this.engine, { ...o.outbox, clock: this.clock });
    this.rooms = new RoomMembership(this.engine, this.outbox);
    this.keybot = new AgentKeybot(o, {
      serverKey: this.serverKey,
      ...(o.memory ? { memory: o.memory } : {}),
      nick: o.nick,
      engine: this.engine,
      clock: this.clock,
      notice: (text, level) => this.notice(text, level),
      send: (line) => {
        this.sends.push({ server: this.label, line });
        if (this.sends.length > MAX_QUEUED) this.sends.shift();
      },
      results: (rs) => this.results(rs),
    });
  }

  /** `host:port`, the known-keybots entry; the label when the plugin did not say. */
  get serverKey(): string {
    return serverKeyOf(this.o);
  }

  get keybotState(): KeybotState {
    return this.keybot.state;
  }

  /** Settle keybot's key from what we have, or ask keybot for it (through the plugin). */
  start(): Promise<void> {
    return this.serial(() => this.keybot.start());
  }

  /** Decide one received line. */
  incoming(line: { from: string; target: string; command: TextCommand; text: string }): Promise<IncomingReply> {
    return this.serial(async () => {
      if (this.closed) return { id: null, ok: true, action: 'pass' };
      const r = await this.engine.handleIncoming(line);
      return this.reply(r);
    });
  }

  /**
   * Encrypt one outgoing line for a room, hold it for the room's next key, refuse it, or let it
   * pass. Only PRIVMSGs to rooms we are in are held, and only for plugins that understand `hold`.
   */
  outgoing(target: string, text: string, command: TextCommand = 'PRIVMSG'): OutgoingReply {
    const targets = target.split(',');
    if (targets.length > 1) {
      const sealed = targets.filter((t) => this.engine.isEncryptedRoom(t));
      if (sealed.length > 0) {
        return { id: null, ok: true, action: 'refuse', reason: `${sealed.join(', ')} ${sealed.length > 1 ? 'are' : 'is'} encrypted: send to one room at a time; nothing was sent` };
      }
      return { id: null, ok: true, action: 'pass' };
    }
    if (this.closed) return { id: null, ok: true, action: 'refuse', reason: 'the connection is closing; nothing was sent' };
    const r = this.outbox.submit({ room: target, text, mayHold: this.mayHold(target, command) });
    switch (r.status) {
      case 'send':
        return { id: null, ok: true, action: 'send', lines: r.lines };
      case 'held':
        this.heldTexts.set(r.id, text);
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
    if (this.mayHold(target, 'PRIVMSG')) {
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

  /**
   * A JOIN, PART, KICK or QUIT the plugin saw: applied after every line received before it, as
   * SealClient applies its own (membership.ts). Resolves with the rooms whose key may not be
   * sent under now, and why.
   */
  membership(change: MembershipChange): Promise<{ suspended: Array<{ room: string; reason: string }> }> {
    return this.serial(() => {
      if (this.closed) return { suspended: [] };
      const { unsent } = this.rooms.apply(change);
      this.unsent(unsent);
      return { suspended: this.suspendedRooms() };
    });
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

  /** Rooms the plugin was already in when it (re)attached: text for them may wait for a key. */
  inRooms(rooms: string[]): void {
    for (const room of rooms.slice(0, 500)) if (/^[#&][^\s,:]+$/.test(room)) this.rooms.add(room);
  }

  /** Ask keybot to re-send the keys of these rooms (the sealchat ones among them). */
  requestRoomKeys(rooms: string[]): void {
    for (const room of rooms.slice(0, 50)) {
      if (!/^#[^\s,:]+$/.test(room) || !this.engine.isEncryptedRoom(room) || this.engine.roomInfo(room)?.hasKey) continue;
      this.sends.push({ server: this.label, line: `PRIVMSG ${KEYBOT_NICK} :key ${room}` });
    }
  }

  /** We left `room`: wipe its keys (after every line received before); held text for it is not sent. */
  async left(room: string): Promise<void> {
    await this.membership({ kind: 'part', room, nick: this.o.account });
  }

  /** What the plugin's `/sealchat` shows. */
  status(): { server: string; nick: string; keybot: KeybotState; rooms: RoomInfo[] } {
    return { server: this.label, nick: this.nick, keybot: this.keybot.state, rooms: this.engine.listRooms() };
  }

  /** Housekeeping, about once a second: held messages given up, a key request timed out or due again. */
  sweep(): Promise<void> {
    return this.serial(() => {
      if (this.closed) return;
      const now = this.clock();
      for (const u of this.engine.sweep(now)) this.results([u]);
      this.unsent(this.outbox.expire(now));
      this.keybot.sweep(now);
    });
  }

  /** Take what is waiting to be shown and sent. */
  drain(): { events: AgentEvent[]; send: AgentSend[] } {
    const out = { events: this.events, send: this.sends };
    this.events = [];
    this.sends = [];
    return out;
  }

  /** The connection is gone: wipe every key. */
  close(): void {
    this.closed = true;
    this.outbox.drop('the connection closed; nothing was sent');
    this.heldTexts.clear();
    this.rooms.clear();
    for (const r of this.engine.listRooms()) this.engine.forgetRoom(r.room);
    this.events = [];
    this.sends = [];
  }

  // ---- internals ---------------------------------------------------------------------------

  private serial<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.tail.then(fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  private event(e: Omit<AgentEvent, 'server'>): void {
    this.events.push({ server: this.label, ...e });
    if (this.events.length > MAX_QUEUED) this.events.shift();
  }

  private notice(text: string, level: AgentEvent['level'] = 'info', target = ''): void {
    this.event({ type: 'notice', target, text, level });
  }

  /** Hold text for `target`? Only PRIVMSGs (what a release sends), to rooms we are in, for plugins that can. */
  private mayHold(target: string, command: TextCommand): boolean {
    return this.holds && command === 'PRIVMSG' && this.keybot.state.status !== 'mismatch' && (this.rooms.has(target) || this.engine.roomInfo(target)?.hasKey === true);
  }

  /** Send what the outbox can encrypt now (after a new key), as raw lines for the plugin. */
  private flushOutbox(): void {
    for (const r of this.outbox.release()) {
      this.heldTexts.delete(r.id);
      for (const line of r.lines) this.sends.push({ server: this.label, line: `PRIVMSG ${r.room} :${line}` });
      this.notice(`sent: a held message went out under epoch ${r.epoch} (held ${(r.heldMs / 1000).toFixed(1)} s)`, 'info', r.room);
    }
  }

  /** Held text given up: tell the user, with the text. */
  private unsent(list: Unsent[]): void {
    for (const u of list) {
      const text = this.heldTexts.get(u.id);
      this.heldTexts.delete(u.id);
      this.notice(`NOT SENT: ${u.reason}${text !== undefined ? `: ${JSON.stringify(text)}` : ''}`, 'error', u.room);
    }
  }

  /** Turn the engine's answer for the line at hand into a reply (side results become events). */
  private async reply(r: IncomingResult): Promise<IncomingReply> {
    switch (r.kind) {
      case 'passthrough':
        return { id: null, ok: true, action: 'pass' };
      case 'hidden':
      case 'held':
        return { id: null, ok: true, action: 'hide' };
      case 'message':
        return { id: null, ok: true, action: 'show', text: r.text, verified: true };
      case 'plaintext-in-room':
        return { id: null, ok: true, action: 'show', text: r.text, verified: false, warning: 'NOT ENCRYPTED, NOT VERIFIED' };
      case 'bot-notice':
        // While keybot's key is asked for, its NOTICEs to us are the answer.
        if (await this.keybot.take(r.target, r.text)) return { id: null, ok: true, action: 'hide' };
        return { id: null, ok: true, action: 'show', text: r.text, verified: false };
      default:
        this.results([r]);
        return { id: null, ok: true, action: 'hide' };
    }
  }

  /** Results that are not the line at hand (released, swept, re-checked envelopes) → events. */
  private results(rs: IncomingResult[]): void {
    for (const r of rs) {
      switch (r.kind) {
        case 'key':
          this.event({
            type: 'key',
            target: r.room,
            room: r.room,
            level: 'info',
            text: `key for ${r.room} (epoch ${r.epoch}) from keybot, verified; members: ${r.members.join(', ')}`,
          });
          // A new epoch: its member list is the room as it is now, so it may be sent under.
          this.outbox.trust.keyInstalled(r.room);
          this.results(r.released);
          this.flushOutbox();
          break;
        case 'message':
          this.event({ type: 'message', target: r.room, from: r.from, text: r.text, verified: true });
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
        case 'bot-notice': {
          const action = ACTION_RE.exec(r.text);
          this.notice(`${KEYBOT_NICK}: ${action ? action[1] : r.text}`, 'info', r.target);
          break;
        }
        case 'passthrough':
        case 'hidden':
        case 'held':
          break;
      }
    }
  }
}
