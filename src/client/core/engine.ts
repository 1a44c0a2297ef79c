/**
 * RoomCryptoEngine: the transport-free crypto session of one user on one server.
 *
 * It sees IRC-level facts (who sent what to whom) and answers what they mean: an envelope part to
 * swallow, a new room key, a verified room message, something that must not be trusted, or a line
 * that is none of sealchat's business. The terminal client, the local proxy and the plugin agent
 * all sit on it (through CompanionSession, session.ts); none of them touches crypto. No I/O, no
 * timers: every call may pass `now` (ms).
 *
 * It owns its collaborators: RoomKeys (room-keys.ts, the key store), RoomMessages
 * (room-messages.ts, encrypt/decrypt) and EnvelopeIntake (envelopes.ts, keybot's envelopes).
 *
 * Rules it enforces (docs/PROTOCOL.md, "Who accepts an envelope" and "Who accepts a room message"):
 *  - envelopes only from the nick `keybot`, signed by the pinned keybot key, addressed to our own
 *    account and key, issued recently, and for an epoch newer than any we installed for the room;
 *  - room messages only under a key we hold, from a sender the envelope of that epoch lists, with
 *    that sender's signature, and never twice (ReplayGuard);
 *  - every member account's fingerprint is pinned on first sight, in the CompanionMemory of
 *    (account, server) (memory.ts), which outlives the connection; an envelope that lists a known
 *    account with another fingerprint is rejected (`member-key-changed`) and the room refuses
 *    outgoing text until the user accepts the new fingerprint ({@link RoomCryptoEngine.acceptMemberKey});
 *  - an envelope whose epoch is not newer than the highest installed for its room, on this
 *    connection or (memory.ts) an earlier one, is rejected (`not-newer`);
 *  - the previous epoch's key is kept only briefly (messages in flight), then wiped;
 *  - outgoing text in a room we have or had a key for, or in any `#sc-` room, is encrypted or
 *    refused: the engine never hands back plaintext for such a room (fail closed).
 */
import { KEY_LINE_PREFIX, classifyLine, sanitizeText, type EnvelopeMember, type PublicKeyHandle } from '../../crypto/index.js';
import { casefold } from '../../protocol/names.js';
import { EnvelopeIntake } from './envelopes.js';
import { CompanionMemory } from './memory.js';
import { RoomOperations } from './operations.js';
import { RoomKeys, engineConfig, isChannel, type EngineConfig, type HeldMessage } from './room-keys.js';
import { RoomMessages } from './room-messages.js';
import type { TextCommand, IncomingLine, IncomingResult, MessageResult, OutgoingResult, RoomCryptoEngineOptions, RoomInfo, UndecryptableResult } from './types.js';

/** A complete room message of a history batch, not yet decrypted (history.ts keeps it while its key is on the way). */
export interface HistoryRecord {
  from: string;
  room: string;
  command: TextCommand;
  record: HeldMessage['record'];
}

/** A transport-free crypto session; see the file comment. */
export class RoomCryptoEngine {
  readonly account: string;
  private readonly c: EngineConfig;
  private readonly keys: RoomKeys;
  private readonly messages: RoomMessages;
  private readonly envelopes: EnvelopeIntake;
  private readonly memory: CompanionMemory;
  private readonly operations: RoomOperations;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(options: RoomCryptoEngineOptions) {
    this.c = engineConfig(options);
    this.account = this.c.account;
    // Without a memory of its own (a test, a one-off), the engine remembers for its lifetime only.
    this.memory = options.memory ?? new CompanionMemory(options.account, '');
    this.keys = new RoomKeys(this.c, this.memory.epochs());
    this.messages = new RoomMessages(this.c, this.keys, options.reassembler, (room, epoch, seq) => this.memory.recordOwnSeq(room, epoch, seq));
    this.operations = new RoomOperations(this.c.account, this.c.privateKey);
    this.envelopes = new EnvelopeIntake(this.c, this.keys, this.messages, this.memory, this.operations, {
      ...(options.keybotKey ? { keybotKey: options.keybotKey } : {}),
      ...(options.reassembler ? { reassembler: options.reassembler } : {}),
    });
  }

  /** Fingerprint of the pinned keybot key, if one is set. */
  get keybotFingerprint(): string | undefined {
    return this.envelopes.keybotFingerprint;
  }

  /** The fingerprint pinned for a member account (first seen in an accepted envelope), if any. */
  memberFingerprint(account: string): string | undefined {
    return this.memory.memberPin(account);
  }

  /** True for a channel whose outgoing text must be encrypted: a `#sc-` room, or one we have or had a key for. */
  isEncryptedRoom(room: string): boolean {
    return this.keys.isEncryptedRoom(room);
  }

  /** What we know about a room, or undefined if nothing. */
  roomInfo(room: string, now?: number): RoomInfo | undefined {
    return this.keys.info(room, now);
  }

  /** Every room we hold or held a key for. */
  listRooms(now?: number): RoomInfo[] {
    return this.keys.list(now);
  }

  /**
   * We left (or were removed from) a room: wipe its keys now. The room stays known as encrypted
   * (outgoing text is refused) and its highest epoch is remembered (old envelopes stay refused).
   * Call it in order with handleIncoming (the IRC layer serialises both).
   */
  forgetRoom(room: string): void {
    this.operations.forgetRoom(room);
    this.keys.forget(room);
    this.messages.forgetRoom(room);
  }

  /**
   * Our connection is gone: no key may be sent under until keybot's envelopes come again (the
   * room may have changed meanwhile), but each is kept for READING the history of the gap
   * (docs/PROTOCOL.md "Rooms that outlive a connection"), bounded, for `historyKeyMs`.
   */
  retireKeys(now?: number): void {
    this.keys.retireAll(now ?? this.c.clock());
  }

  /** Logged in again: the keys kept for reading count their lifetime from now. */
  keysReconnected(now?: number): void {
    this.keys.refreshReadOnly(now ?? this.c.clock());
  }

  /**
   * One line of a `chathistory` batch (history.ts): the room message's record once complete, or
   * what the line is instead. Never held for a key here and never through the live replay guard.
   * Not queued: CompanionSession calls it inside its own serial queue, after every line before it.
   */
  historyLine(line: IncomingLine): { record: HistoryRecord } | { result: IncomingResult } {
    const now = line.now ?? this.c.clock();
    const kind = classifyLine(line.text);
    if (kind === 'message' || kind === 'message-part') {
      const r = this.messages.historyRecord(line.from, line.target, line.text, kind, now);
      return 'record' in r ? { record: { from: line.from, room: line.target, command: line.command, record: r.record } } : r;
    }
    if (kind === undefined && casefold(line.from) !== this.c.keybotNick && this.keys.isEncryptedRoom(line.target)) {
      return { result: { kind: 'plaintext-in-room', room: this.keys.displayName(line.target), from: line.from, text: sanitizeText(line.text), command: line.command } };
    }
    return { result: { kind: 'hidden' } };
  }

  /** Decrypt and verify a history record with the keys held now; `wanting`: no key for its epoch (yet). */
  openHistory(h: HistoryRecord, now?: number): MessageResult | UndecryptableResult | { wanting: number } {
    return this.messages.openHistory(this.keys.state(h.room), h.from, h.command, h.record, now ?? this.c.clock());
  }

  /** Why a history record of `epoch` stays unread (its key never came). */
  historyNoKey(h: HistoryRecord, epoch: number): UndecryptableResult {
    return this.messages.noKey(this.keys.state(h.room), h.from, epoch);
  }

  /**
   * Encrypt text for a room: split on newlines and to the per-message limit, one sequence
   * number per piece. Never returns plaintext for a room that is, was or will be encrypted.
   */
  encryptOutgoing(options: { room: string; text: string; now?: number }): OutgoingResult {
    return this.messages.encryptOutgoing(options);
  }

  /**
   * The user sent `text` to keybot (typed in their client): an `invite` is remembered, so that
   * keybot's proposal for it is signed with the user's key (operations.ts) and no other is.
   */
  typedToKeybot(text: string, now?: number): void {
    this.operations.typed(text, now ?? this.c.clock());
  }

  /**
   * Pin keybot's key (once; the trust decision is the caller's, see keybot.ts). Envelopes that
   * arrived before it are checked now; their results come back in arrival order.
   */
  setKeybotKey(key: PublicKeyHandle, now?: number): Promise<IncomingResult[]> {
    this.envelopes.setKeybotKey(key);
    return this.serial(() => this.envelopes.openPending(now ?? this.c.clock()));
  }

  /**
   * No keybot key can be trusted on this connection (it differs from the pinned one, say): drop
   * envelopes held for it and reject every further one with `keybot-untrusted` and this reason.
   */
  distrustKeybot(reason: string): void {
    this.envelopes.distrustKeybot(reason);
  }

  /**
   * The user checked `account`'s new fingerprint out of band and accepts it: pin it, and let the
   * rooms blocked only by that change send again. Returns those rooms. Their key is not the new
   * epoch's (its envelope was refused): ask keybot to send it again (`/msg keybot key <room>`).
   */
  acceptMemberKey(account: string, fingerprint: string): string[] {
    return this.envelopes.acceptMemberKey(account, fingerprint);
  }

  /**
   * Decide what one received PRIVMSG/NOTICE means. Calls are processed one at a time in call
   * order (an envelope is applied before the message after it is looked at), so callers may fire
   * them without awaiting each.
   */
  handleIncoming(line: IncomingLine): Promise<IncomingResult> {
    if (!line || typeof line !== 'object') throw new TypeError('handleIncoming: expected one line object');
    if (typeof line.from !== 'string' || typeof line.target !== 'string' || typeof line.text !== 'string') {
      throw new TypeError('handleIncoming: from, target and text must be strings');
    }
    if (line.command !== 'PRIVMSG' && line.command !== 'NOTICE') throw new TypeError("handleIncoming: command must be 'PRIVMSG' or 'NOTICE'");
    return this.serial(() => this.process(line, line.now ?? this.c.clock()));
  }

  /**
   * Housekeeping, to call every second or so: wipes replaced keys past their grace period, drops
   * stale parts and envelopes, and gives up on held messages whose key did not come (returned as
   * `undecryptable`, in arrival order).
   */
  sweep(now?: number): UndecryptableResult[] {
    const t = now ?? this.c.clock();
    this.envelopes.sweep(t);
    this.messages.sweep(t);
    const out: UndecryptableResult[] = [];
    const holdMs = this.c.holdMs;
    for (const state of this.keys.roomStates().values()) {
      this.keys.expirePrevious(state, t);
      if (state.held.length === 0) continue;
      const keep: HeldMessage[] = [];
      for (const h of state.held) {
        if (t - h.heldAt < holdMs) keep.push(h);
        else {
          out.push({
            kind: 'undecryptable',
            room: h.room,
            from: h.from,
            code: 'unknown-epoch',
            epoch: h.epoch,
            reason: `no key for epoch ${h.epoch} of ${h.room} arrived within ${Math.round(holdMs / 1000)} s`,
          });
        }
      }
      this.keys.heldTotal -= state.held.length - keep.length;
      state.held = keep;
    }
    return out;
  }

  // ---- internals -------------------------------------------------------------------------

  /** The members of the room's current epoch, if we hold one. */
  private roster(room: string): EnvelopeMember[] | undefined {
    const cur = this.keys.get(room)?.current;
    return cur ? [...cur.members.values()] : undefined;
  }

  // What the collaborators hold for peers, by the names test/security/flood.test.ts checks are bounded.
  private get envelopeParts(): unknown {
    return this.envelopes.envelopeParts;
  }
  private get messageParts(): unknown {
    return this.messages.messageParts;
  }
  private get heldTotal(): number {
    return this.keys.heldTotal;
  }
  private get pendingEnvelopes(): unknown[] {
    return this.envelopes.pendingEnvelopes;
  }

  private serial<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.tail.then(fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async process(line: IncomingLine, now: number): Promise<IncomingResult> {
    const { from, target, command, text } = line;
    const kind = classifyLine(text);
    const fromKeybot = casefold(from) === this.c.keybotNick;
    // A version-3 key line (docs/PROTOCOL.md "Envelope version 3"): keybot's NOTICE to us alone.
    if (text.startsWith(`${KEY_LINE_PREFIX} `) && !isChannel(target)) return this.envelopes.keyLine(from, text, fromKeybot, now);
    if (kind === 'envelope-part') return this.envelopes.envelopePart(from, text, fromKeybot, now);
    // Room operations (operations.ts): only keybot proposes (to us) and relays (to a room).
    if (kind === 'proposal-part') {
      if (!fromKeybot || isChannel(target)) return { kind: 'hidden' };
      const answer = this.operations.proposalPart(text, (room) => this.roster(room), now);
      return answer ? { kind: 'proposal', ...answer } : { kind: 'hidden' };
    }
    if (kind === 'op-part') {
      if (fromKeybot && isChannel(target)) this.operations.relayedPart(target, text, now);
      return { kind: 'hidden' };
    }
    if (kind === 'message' || kind === 'message-part') return this.messages.roomLine(from, target, command, text, kind, now);
    if (fromKeybot) return { kind: 'bot-notice', target, text: sanitizeText(text), command };
    if (this.keys.isEncryptedRoom(target)) {
      return { kind: 'plaintext-in-room', room: this.keys.displayName(target), from, text: sanitizeText(text), command };
    }
    return { kind: 'passthrough' };
  }
}
