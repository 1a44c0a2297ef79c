/**
 * RoomCryptoEngine: the transport-free crypto session of one user on one server.
 *
 * It sees IRC-level facts (who sent what to whom) and answers what they mean: an envelope part to
 * swallow, a new room key, a verified room message, something that must not be trusted, or a line
 * that is none of sealchat's business. The terminal client, the local proxy and the plugin agent
 * all sit on it; none of them touches crypto. No I/O, no timers: every call may pass `now` (ms).
 *
 * Rules it enforces (docs/PROTOCOL.md, "Who accepts an envelope" and "Who accepts a room message"):
 *  - envelopes only from the nick `keybot`, signed by the pinned keybot key, addressed to our own
 *    account and key, issued recently, and for an epoch newer than any we installed for the room;
 *  - room messages only under a key we hold, from a sender the envelope of that epoch lists, with
 *    that sender's signature, and never twice (ReplayGuard);
 *  - every member account's fingerprint is pinned on first sight (in memory, for the engine's
 *    lifetime); an envelope that lists a known account with another fingerprint is rejected
 *    (`member-key-changed`) and the room refuses outgoing text until the user accepts the new
 *    fingerprint ({@link RoomCryptoEngine.acceptMemberKey}) or starts a new engine;
 *  - the previous epoch's key is kept only briefly (messages in flight), then wiped;
 *  - outgoing text in a room we have or had a key for, or in any `#sc-` room, is encrypted or
 *    refused: the engine never hands back plaintext for such a room (fail closed).
 */
import {
  EnvelopeStatus,
  MessageStatus,
  PartStatus,
  PartsReassembler,
  ReplayGuard,
  ReplayStatus,
  classifyLine,
  decryptRoomMessage,
  encryptRoomMessage,
  isNewerEpoch,
  maxPlaintextBytes,
  openEnvelope,
  parsePart,
  peekRoomMessage,
  sanitizeText,
  signingPublicKeyOf,
  splitPlaintext,
  type EnvelopeMember,
  type PrivateKeyHandle,
  type PublicKeyHandle,
  type ReassemblerOptions,
  type SigAlg,
} from '../crypto/index.js';
import { KEYBOT_NICK, SERVICE_ROOM_PREFIX, casefold } from '../ircd/names.js';

/** The two IRC commands that carry text. */
export type TextCommand = 'PRIVMSG' | 'NOTICE';

/** One received PRIVMSG or NOTICE, as the IRC layer saw it. */
export interface IncomingLine {
  /** The sender's nick (= account on sealchat), from the line's prefix. */
  from: string;
  /** The channel, or our own nick for a private message. */
  target: string;
  command: TextCommand;
  /** The trailing parameter, exactly as received (for CTCP ACTION: `\x01ACTION ...\x01`). */
  text: string;
  /** Arrival time, ms since the Unix epoch (default: the engine's clock). */
  now?: number;
}

/** Why an envelope was not applied. */
export type EnvelopeRejectCode =
  | 'not-keybot'
  /** keybot's key could not be trusted (it changed, or could not be obtained): see distrustKeybot. */
  | 'keybot-untrusted'
  | 'parts'
  | 'malformed'
  | 'unsupported-version'
  | 'not-for-me'
  | 'decrypt-failed'
  | 'unsigned'
  | 'bad-signature'
  | 'wrong-recipient'
  | 'expired'
  | 'not-yet-valid'
  | 'not-newer'
  /**
   * It lists a member account with another fingerprint than the one pinned for that account:
   * its key may have been swapped by whoever runs the directory. See `account`, `pinned`, `offered`.
   */
  | 'member-key-changed';

/** Why a room message cannot be shown. */
export type UndecryptableCode =
  /** We hold no key for this room at all. */
  | 'no-key'
  /** We hold keys for the room, but not for the epoch the message names. */
  | 'unknown-epoch'
  /** The epoch's key was replaced and, after the grace period, wiped. */
  | 'epoch-discarded'
  /** The sender is not in the member list of that epoch. */
  | 'not-a-member'
  /** GCM failed: wrong key, altered bytes, or the line's room/sender is not the one bound inside. */
  | 'decrypt-failed'
  /** The sender's signature does not verify against the key keybot listed for them. */
  | 'bad-signature'
  /** A sequence number seen before (or older than one seen): a replay. */
  | 'replay'
  | 'malformed'
  | 'unsupported-version'
  /** A room message sent to a nick rather than a channel. */
  | 'not-a-room';

export interface HiddenResult {
  kind: 'hidden';
}
export interface PassthroughResult {
  kind: 'passthrough';
}
export interface KeyResult {
  kind: 'key';
  /** The room as keybot names it. */
  room: string;
  epoch: number;
  /** The epoch this one replaced (its key stays usable for a short grace period). */
  previousEpoch?: number;
  /** Member accounts holding this key, ourselves included. */
  members: string[];
  /** When keybot sealed the envelope (ms). */
  issuedAt: number;
  verified: true;
  /** Messages that were held waiting for this key, now decided (in arrival order). */
  released: IncomingResult[];
}
export interface EnvelopeRejectedResult {
  kind: 'envelope-rejected';
  from: string;
  code: EnvelopeRejectCode;
  reason: string;
  room?: string;
  epoch?: number;
  /** For `member-key-changed`: the account whose fingerprint differs... */
  account?: string;
  /** ...the fingerprint pinned for it... */
  pinned?: string;
  /** ...and the one the envelope lists. */
  offered?: string;
}
export interface MessageResult {
  kind: 'message';
  room: string;
  from: string;
  /** Decrypted and sanitised (no CR/LF/NUL/CTCP framing except a whole `/me`). */
  text: string;
  epoch: number;
  seq: number;
  command: TextCommand;
  verified: true;
}
export interface UndecryptableResult {
  kind: 'undecryptable';
  room: string;
  from: string;
  code: UndecryptableCode;
  reason: string;
  epoch?: number;
}
export interface PlaintextInRoomResult {
  kind: 'plaintext-in-room';
  room: string;
  from: string;
  /** Sanitised. Never treat it as a room message: nobody encrypted or signed it. */
  text: string;
  command: TextCommand;
}
export interface BotNoticeResult {
  kind: 'bot-notice';
  /** Our nick (a reply to us) or a room. */
  target: string;
  /** Sanitised human-readable text from keybot. */
  text: string;
  command: TextCommand;
}
export interface HeldResult {
  kind: 'held';
  what: 'envelope' | 'message';
  from: string;
  room?: string;
  epoch?: number;
  reason: string;
}

/** What one incoming line means. */
export type IncomingResult =
  | HiddenResult
  | PassthroughResult
  | KeyResult
  | EnvelopeRejectedResult
  | MessageResult
  | UndecryptableResult
  | PlaintextInRoomResult
  | BotNoticeResult
  | HeldResult;

/** What to send for one outgoing text. */
export type OutgoingResult =
  /** Send each line, in order, as the trailing parameter of a PRIVMSG to `room`. */
  | { status: 'ok'; room: string; epoch: number; lines: string[] }
  /** Send nothing: the room is (or was, or will be) encrypted and we hold no key for it. */
  | { status: 'no-key'; room: string; reason: string }
  /** Not a sealchat room (a nick, or a channel that never had a key): the caller decides. */
  | { status: 'not-encrypted'; room: string; reason: string };

/** What the engine knows about one room. */
export interface RoomInfo {
  room: string;
  /** Current epoch, if we hold its key. */
  epoch?: number;
  members: string[];
  /** True while we hold a key to send with. */
  hasKey: boolean;
  /** Highest epoch ever installed (survives forgetRoom, so old envelopes stay refused). */
  highestEpoch?: number;
  /**
   * Member key changes that block sending into the room (an envelope listed these accounts with
   * another fingerprint than the pinned one); empty or absent when sending is allowed.
   */
  keyChanges?: MemberKeyChange[];
}

/** An account an envelope listed with another fingerprint than the one pinned for it. */
export interface MemberKeyChange {
  account: string;
  pinned: string;
  offered: string;
}

/** Options of {@link RoomCryptoEngine}. */
export interface RoomCryptoEngineOptions {
  /** Our account name (= nick). Envelopes must be addressed to it. */
  account: string;
  /** Our unlocked key: decrypts envelopes, signs room messages. */
  privateKey: PrivateKeyHandle;
  /** keybot's pinned key. May be set later with {@link RoomCryptoEngine.setKeybotKey}. */
  keybotKey?: PublicKeyHandle;
  /** The reserved nick envelopes must come from (default `keybot`). */
  keybotNick?: string;
  /** How long a replaced epoch's key still decrypts messages in flight (default 120 s). */
  previousEpochGraceMs?: number;
  /** How long a message for an epoch not yet received waits for its envelope (default 15 s). */
  holdMs?: number;
  /** Messages held per room (default 64) and in total (default 1024). */
  maxHeldPerRoom?: number;
  maxHeldTotal?: number;
  /** Complete envelopes kept while no keybot key is pinned (default 32). */
  maxPendingEnvelopes?: number;
  /** Envelope age and clock-skew limits (crypto defaults: 15 min, 5 min). */
  envelopeMaxAgeMs?: number;
  envelopeMaxSkewMs?: number;
  /** Limits of the parts reassemblers (crypto defaults). */
  reassembler?: ReassemblerOptions;
  /** Clock, ms since the Unix epoch (default Date.now). */
  clock?: () => number;
}

interface EpochKey {
  epoch: number;
  key: Uint8Array;
  /** Folded account → member. */
  members: Map<string, EnvelopeMember>;
  issuedAt: number;
  /** Set when a newer epoch replaced this one. */
  retiredAt?: number;
}

/** A room message whose epoch we do not hold yet (its envelope may still be on the way). */
interface HeldMessage {
  from: string;
  room: string;
  command: TextCommand;
  record: { payload: string } | { data: Uint8Array };
  epoch: number;
  heldAt: number;
}

interface RoomState {
  /** Display name (keybot's spelling once an envelope arrived, else the first one seen). */
  name: string;
  current?: EpochKey;
  previous?: EpochKey;
  highestEpoch?: number;
  /** The last few epochs we installed (to tell "discarded" from "never had"). */
  installed: number[];
  /** Last sequence number used or seen from our own account in the current epoch. */
  seq: number;
  held: HeldMessage[];
  /** Member key changes seen in envelopes for this room: while any, outgoing text is refused. */
  keyChanges: MemberKeyChange[];
}

const MAX_U32 = 0xffff_ffff;
const ACTION_RE = /^\x01ACTION ([\s\S]*?)\x01?$/;
const utf8 = new TextEncoder();

function isChannel(name: string): boolean {
  return name.startsWith('#') || name.startsWith('&');
}

function wipe(k: EpochKey | undefined): void {
  k?.key.fill(0);
}

const ENVELOPE_CODES: Record<string, EnvelopeRejectCode> = {
  [EnvelopeStatus.MALFORMED]: 'malformed',
  [EnvelopeStatus.UNSUPPORTED_VERSION]: 'unsupported-version',
  [EnvelopeStatus.NOT_FOR_ME]: 'not-for-me',
  [EnvelopeStatus.DECRYPT_FAILED]: 'decrypt-failed',
  [EnvelopeStatus.UNSIGNED]: 'unsigned',
  [EnvelopeStatus.BAD_SIGNATURE]: 'bad-signature',
  [EnvelopeStatus.WRONG_RECIPIENT]: 'wrong-recipient',
  [EnvelopeStatus.EXPIRED]: 'expired',
  [EnvelopeStatus.NOT_YET_VALID]: 'not-yet-valid',
};

const ENVELOPE_REASONS: Record<EnvelopeRejectCode, string> = {
  'not-keybot': 'key envelopes are accepted only from keybot',
  'keybot-untrusted': 'keybot\'s key is not trusted',
  parts: 'its parts did not reassemble',
  malformed: 'it is not a well-formed key envelope',
  'unsupported-version': 'it uses an envelope version this client does not know',
  'not-for-me': 'it is encrypted to another key than yours',
  'decrypt-failed': 'it is addressed to your key but does not decrypt (corrupt or tampered)',
  unsigned: 'it carries no signature',
  'bad-signature': 'it is not signed by the pinned keybot key',
  'wrong-recipient': 'it is addressed to another account or lists you with another key',
  expired: 'it was issued too long ago (a replay?)',
  'not-yet-valid': 'it was issued in the future (check the clocks)',
  'not-newer': 'its epoch is not newer than the key you hold',
  'member-key-changed': 'it lists a member with another key than the one you saw for them before',
};

/** A transport-free crypto session; see the file comment. */
export class RoomCryptoEngine {
  readonly account: string;
  private readonly folded: string;
  private readonly privateKey: PrivateKeyHandle;
  private readonly sigAlg: SigAlg;
  private keybotKey: PublicKeyHandle | undefined;
  private readonly keybotNick: string;
  private readonly graceMs: number;
  private readonly holdMs: number;
  private readonly maxHeldPerRoom: number;
  private readonly maxHeldTotal: number;
  private readonly maxPendingEnvelopes: number;
  private readonly envelopeMaxAgeMs: number | undefined;
  private readonly envelopeMaxSkewMs: number | undefined;
  private readonly clock: () => number;
  private readonly roomStates = new Map<string, RoomState>();
  /** Member fingerprints pinned on first sight: folded account → fingerprint (lowercase hex). */
  private readonly memberPins = new Map<string, string>();
  private readonly replay = new ReplayGuard();
  private readonly envelopeParts: PartsReassembler;
  private readonly messageParts: PartsReassembler;
  private pendingEnvelopes: Array<{ from: string; data: Uint8Array; at: number }> = [];
  private distrust: string | undefined;
  private heldTotal = 0;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(options: RoomCryptoEngineOptions) {
    if (!options || typeof options !== 'object') throw new TypeError('RoomCryptoEngine: expected one options object');
    if (typeof options.account !== 'string' || options.account.length === 0) {
      throw new TypeError('RoomCryptoEngine: options.account must be a non-empty string');
    }
    this.account = options.account;
    this.folded = casefold(options.account);
    this.privateKey = options.privateKey;
    // Also checks that privateKey is a real handle (throws otherwise).
    this.sigAlg = signingPublicKeyOf({ key: options.privateKey }).alg;
    this.keybotKey = options.keybotKey;
    this.keybotNick = casefold(options.keybotNick ?? KEYBOT_NICK);
    this.graceMs = options.previousEpochGraceMs ?? 120_000;
    this.holdMs = options.holdMs ?? 15_000;
    this.maxHeldPerRoom = options.maxHeldPerRoom ?? 64;
    this.maxHeldTotal = options.maxHeldTotal ?? 1024;
    this.maxPendingEnvelopes = options.maxPendingEnvelopes ?? 32;
    this.envelopeMaxAgeMs = options.envelopeMaxAgeMs;
    this.envelopeMaxSkewMs = options.envelopeMaxSkewMs;
    this.clock = options.clock ?? Date.now;
    this.envelopeParts = new PartsReassembler(options.reassembler);
    this.messageParts = new PartsReassembler(options.reassembler);
  }

  /** Fingerprint of the pinned keybot key, if one is set. */
  get keybotFingerprint(): string | undefined {
    return this.keybotKey?.fingerprint;
  }

  /**
   * Pin keybot's key (once; the trust decision is the caller's, see pinning.ts). Envelopes that
   * arrived before it are checked now; their results come back in arrival order.
   */
  setKeybotKey(key: PublicKeyHandle, now?: number): Promise<IncomingResult[]> {
    if (!key || key.kind !== 'public') throw new TypeError('setKeybotKey: expected a PublicKeyHandle');
    if (this.keybotKey && this.keybotKey.fingerprint !== key.fingerprint) {
      throw new Error(`setKeybotKey: keybot is already pinned to ${this.keybotKey.fingerprint}`);
    }
    this.keybotKey = key;
    this.distrust = undefined;
    return this.serial(async () => {
      const pending = this.pendingEnvelopes;
      this.pendingEnvelopes = [];
      const results: IncomingResult[] = [];
      for (const p of pending) results.push(await this.openEnvelopeData(p.from, p.data, now ?? this.clock()));
      return results;
    });
  }

  /**
   * No keybot key can be trusted on this connection (it differs from the pinned one, say): drop
   * envelopes held for it and reject every further one with `keybot-untrusted` and this reason.
   */
  distrustKeybot(reason: string): void {
    if (this.keybotKey) throw new Error('distrustKeybot: a keybot key is already pinned');
    this.distrust = reason;
    this.pendingEnvelopes = [];
  }

  /** The fingerprint pinned for a member account (first seen in an accepted envelope), if any. */
  memberFingerprint(account: string): string | undefined {
    return this.memberPins.get(casefold(account));
  }

  /**
   * The user checked `account`'s new fingerprint out of band and accepts it: pin it, and let the
   * rooms blocked only by that change send again. Returns those rooms. Their key is not the new
   * epoch's (its envelope was refused): ask keybot to send it again (`/msg keybot key <room>`).
   */
  acceptMemberKey(account: string, fingerprint: string): string[] {
    if (typeof account !== 'string' || account.length === 0) throw new TypeError('acceptMemberKey: account must be a non-empty string');
    if (typeof fingerprint !== 'string' || !/^(?:[0-9a-f]{40}|[0-9a-f]{64})$/i.test(fingerprint)) {
      throw new TypeError('acceptMemberKey: fingerprint must be 40 or 64 hex digits');
    }
    const folded = casefold(account);
    const fp = fingerprint.toLowerCase();
    this.memberPins.set(folded, fp);
    const unblocked: string[] = [];
    for (const state of this.roomStates.values()) {
      if (state.keyChanges.length === 0) continue;
      state.keyChanges = state.keyChanges.filter((c) => !(casefold(c.account) === folded && c.offered === fp));
      if (state.keyChanges.length === 0) unblocked.push(state.name);
    }
    return unblocked;
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
    return this.serial(() => this.process(line, line.now ?? this.clock()));
  }

  /**
   * Encrypt text for a room: split on newlines and to the per-message limit, one sequence
   * number per piece. Never returns plaintext for a room that is, was or will be encrypted.
   */
  encryptOutgoing(options: { room: string; text: string; now?: number }): OutgoingResult {
    if (!options || typeof options !== 'object') throw new TypeError('encryptOutgoing: expected one options object');
    const { room, text } = options;
    if (typeof room !== 'string' || room.length === 0) throw new TypeError('encryptOutgoing: options.room must be a non-empty string');
    if (typeof text !== 'string') throw new TypeError('encryptOutgoing: options.text must be a string');
    const now = options.now ?? this.clock();
    const state = this.roomStates.get(casefold(room));
    if (!this.isEncryptedRoom(room)) {
      return {
        status: 'not-encrypted',
        room,
        reason: isChannel(room) ? `${room} is not a sealchat room (no key was ever received for it)` : `${room} is not a room`,
      };
    }
    this.expirePrevious(state, now);
    if (state && state.keyChanges.length > 0) {
      const c = state.keyChanges[0]!;
      return {
        status: 'no-key',
        room,
        reason:
          `${c.account}'s key changed (pinned ${c.pinned}, now ${c.offered}): nothing is sent to ${room} until you ` +
          `check the new fingerprint with ${c.account} and accept it`,
      };
    }
    const current = state?.current;
    if (!state || !current) {
      const reason =
        state?.highestEpoch !== undefined
          ? `you no longer hold a key for ${room} (you left it, or were removed); nothing was sent`
          : `no key for ${room} yet: keybot has not sent you one (ask with /msg ${KEYBOT_NICK} key ${room}); nothing was sent`;
      return { status: 'no-key', room, reason };
    }
    const pieces = this.split(text);
    if (state.seq + pieces.length > MAX_U32) {
      return { status: 'no-key', room, reason: `the key of ${room} is used up; ask keybot for a new one (/msg ${KEYBOT_NICK} key ${room})` };
    }
    const lines: string[] = [];
    for (const piece of pieces) {
      const r = encryptRoomMessage({
        roomKey: current.key,
        room: state.name,
        epoch: current.epoch,
        sender: this.account,
        seq: state.seq + 1,
        plaintext: piece,
        signer: this.privateKey,
      });
      // split() keeps every piece within maxPlaintextBytes, so anything else is a bug.
      if (r.status !== MessageStatus.OK) throw new Error(`encryptOutgoing: encryption failed (${r.status})`);
      state.seq++;
      lines.push(...r.lines);
    }
    return { status: 'ok', room, epoch: current.epoch, lines };
  }

  /**
   * True for a channel whose outgoing text must be encrypted: a `#sc-` room, or one we have or
   * had a key for.
   */
  isEncryptedRoom(room: string): boolean {
    if (!isChannel(room)) return false;
    const folded = casefold(room);
    return folded.startsWith(SERVICE_ROOM_PREFIX) || this.roomStates.get(folded)?.highestEpoch !== undefined;
  }

  /** What we know about a room, or undefined if nothing. */
  roomInfo(room: string, now?: number): RoomInfo | undefined {
    const state = this.roomStates.get(casefold(room));
    if (!state) return undefined;
    this.expirePrevious(state, now ?? this.clock());
    const current = state.current;
    return {
      room: state.name,
      ...(current ? { epoch: current.epoch } : {}),
      members: current ? [...current.members.values()].map((m) => m.account) : [],
      hasKey: current !== undefined,
      ...(state.highestEpoch !== undefined ? { highestEpoch: state.highestEpoch } : {}),
      ...(state.keyChanges.length > 0 ? { keyChanges: state.keyChanges.map((c) => ({ ...c })) } : {}),
    };
  }

  /** Every room we hold or held a key for. */
  listRooms(now?: number): RoomInfo[] {
    const out: RoomInfo[] = [];
    for (const state of this.roomStates.values()) {
      if (state.highestEpoch === undefined) continue;
      out.push(this.roomInfo(state.name, now)!);
    }
    return out;
  }

  /**
   * We left (or were removed from) a room: wipe its keys now. The room stays known as encrypted
   * (outgoing text is refused) and its highest epoch is remembered (old envelopes stay refused).
   * Call it in order with handleIncoming (the IRC layer serialises both).
   */
  forgetRoom(room: string): void {
    const state = this.roomStates.get(casefold(room));
    if (!state) return;
    wipe(state.current);
    wipe(state.previous);
    state.current = undefined;
    state.previous = undefined;
    state.seq = 0;
    this.heldTotal -= state.held.length;
    state.held = [];
    this.replay.forgetRoom({ room });
  }

  /**
   * Housekeeping, to call every second or so: wipes replaced keys past their grace period, drops
   * stale parts and envelopes, and gives up on held messages whose key did not come (returned as
   * `undecryptable`, in arrival order).
   */
  sweep(now?: number): UndecryptableResult[] {
    const t = now ?? this.clock();
    this.envelopeParts.sweep({ now: t });
    this.messageParts.sweep({ now: t });
    const maxAge = this.envelopeMaxAgeMs ?? 15 * 60_000;
    this.pendingEnvelopes = this.pendingEnvelopes.filter((p) => t - p.at < maxAge);
    const out: UndecryptableResult[] = [];
    for (const state of this.roomStates.values()) {
      this.expirePrevious(state, t);
      if (state.held.length === 0) continue;
      const keep: HeldMessage[] = [];
      for (const h of state.held) {
        if (t - h.heldAt < this.holdMs) keep.push(h);
        else {
          out.push({
            kind: 'undecryptable',
            room: h.room,
            from: h.from,
            code: 'unknown-epoch',
            epoch: h.epoch,
            reason: `no key for epoch ${h.epoch} of ${h.room} arrived within ${Math.round(this.holdMs / 1000)} s`,
          });
        }
      }
      this.heldTotal -= state.held.length - keep.length;
      state.held = keep;
    }
    return out;
  }

  // ---- internals -------------------------------------------------------------------------

  private serial<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.tail.then(fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async process(line: IncomingLine, now: number): Promise<IncomingResult> {
    const { from, target, command, text } = line;
    const kind = classifyLine(text);
    const fromKeybot = casefold(from) === this.keybotNick;
    if (kind === 'envelope-part') return this.envelopePart(from, text, fromKeybot, now);
    if (kind === 'message' || kind === 'message-part') return this.roomLine(from, target, command, text, kind, now);
    if (fromKeybot) return { kind: 'bot-notice', target, text: sanitizeText(text), command };
    if (this.isEncryptedRoom(target)) {
      return { kind: 'plaintext-in-room', room: this.displayName(target), from, text: sanitizeText(text), command };
    }
    return { kind: 'passthrough' };
  }

  private async envelopePart(from: string, text: string, fromKeybot: boolean, now: number): Promise<IncomingResult> {
    if (!fromKeybot) {
      // Report a forged envelope once (on its first part); swallow the rest, they are not text.
      const part = parsePart(text);
      if (part && part.index !== 1) return { kind: 'hidden' };
      return this.rejected(from, 'not-keybot', `${ENVELOPE_REASONS['not-keybot']}, and this came from ${from}`);
    }
    const r = this.envelopeParts.accept({ sender: from, line: text, now });
    switch (r.status) {
      case PartStatus.INCOMPLETE:
      case PartStatus.DUPLICATE:
        return { kind: 'hidden' };
      case PartStatus.COMPLETE:
        break;
      default:
        return this.rejected(from, 'parts', `${ENVELOPE_REASONS.parts} (${r.status})`);
    }
    if (!this.keybotKey && this.distrust !== undefined) {
      return this.rejected(from, 'keybot-untrusted', `${ENVELOPE_REASONS['keybot-untrusted']}: ${this.distrust}`);
    }
    if (!this.keybotKey) {
      this.pendingEnvelopes.push({ from, data: r.data!, at: now });
      if (this.pendingEnvelopes.length > this.maxPendingEnvelopes) this.pendingEnvelopes.shift();
      return { kind: 'held', what: 'envelope', from, reason: 'keybot\'s key is not pinned yet; the envelope will be checked once it is' };
    }
    return this.openEnvelopeData(from, r.data!, now);
  }

  private async openEnvelopeData(from: string, data: Uint8Array, now: number): Promise<IncomingResult> {
    const res = await openEnvelope({
      data,
      decryptionKey: this.privateKey,
      signerKey: this.keybotKey!,
      expectedAccount: this.account,
      now,
      ...(this.envelopeMaxAgeMs !== undefined ? { maxAgeMs: this.envelopeMaxAgeMs } : {}),
      ...(this.envelopeMaxSkewMs !== undefined ? { maxSkewMs: this.envelopeMaxSkewMs } : {}),
    });
    if (res.status !== EnvelopeStatus.OK || !res.payload) {
      const code = ENVELOPE_CODES[res.status] ?? 'malformed';
      return this.rejected(from, code, ENVELOPE_REASONS[code] + (res.reason ? ` (${res.reason})` : ''));
    }
    const p = res.payload;
    const state = this.state(p.room);
    if (!isNewerEpoch({ current: state.highestEpoch, offered: p.epoch })) {
      const reason =
        p.epoch === state.highestEpoch
          ? `epoch ${p.epoch} of ${p.room} was already received`
          : `epoch ${p.epoch} of ${p.room} is older than epoch ${state.highestEpoch}, already received (a replay?)`;
      return { ...this.rejected(from, 'not-newer', reason), room: p.room, epoch: p.epoch };
    }
    // Every other member must be listed with the fingerprint pinned for their account.
    for (const m of p.members) {
      const folded = casefold(m.account);
      if (folded === this.folded) continue; // openEnvelope checked our own entry against our key
      const pinned = this.memberPins.get(folded);
      const offered = m.fingerprint.toLowerCase();
      if (pinned === undefined || pinned === offered) continue;
      if (!state.keyChanges.some((c) => casefold(c.account) === folded && c.offered === offered)) {
        state.keyChanges.push({ account: m.account, pinned, offered });
      }
      state.name = p.room;
      p.key.fill(0);
      const reason =
        `${ENVELOPE_REASONS['member-key-changed']}: epoch ${p.epoch} of ${p.room} lists ${m.account} with key ${offered}, ` +
        `but ${m.account}'s key was ${pinned}. Someone may have replaced ${m.account}'s registered key to read the room ` +
        `and write in their name. Nothing is sent to ${p.room} until you check the new fingerprint with ${m.account} ` +
        'and accept it (acceptMemberKey), or restart the companion';
      return { ...this.rejected(from, 'member-key-changed', reason), room: p.room, epoch: p.epoch, account: m.account, pinned, offered };
    }
    for (const m of p.members) {
      const folded = casefold(m.account);
      if (folded !== this.folded && !this.memberPins.has(folded)) this.memberPins.set(folded, m.fingerprint.toLowerCase());
    }
    // Install: the current key becomes the previous one (kept briefly); an older one is wiped.
    wipe(state.previous);
    state.previous = state.current ? { ...state.current, retiredAt: now } : undefined;
    const members = new Map<string, EnvelopeMember>();
    for (const m of p.members) members.set(casefold(m.account), m);
    state.current = { epoch: p.epoch, key: p.key, members, issuedAt: p.issuedAt };
    state.highestEpoch = p.epoch;
    state.installed.push(p.epoch);
    if (state.installed.length > 16) state.installed.shift();
    state.name = p.room;
    state.seq = 0;
    const released = this.release(state, now);
    return {
      kind: 'key',
      room: p.room,
      epoch: p.epoch,
      ...(state.previous ? { previousEpoch: state.previous.epoch } : {}),
      members: p.members.map((m) => m.account),
      issuedAt: p.issuedAt,
      verified: true,
      released,
    };
  }

  private rejected(from: string, code: EnvelopeRejectCode, reason: string): EnvelopeRejectedResult {
    return { kind: 'envelope-rejected', from, code, reason };
  }

  private roomLine(
    from: string,
    target: string,
    command: TextCommand,
    text: string,
    kind: 'message' | 'message-part',
    now: number,
  ): IncomingResult {
    if (!isChannel(target)) {
      return { kind: 'undecryptable', room: target, from, code: 'not-a-room', reason: 'a room message was sent privately, not to a room' };
    }
    const room = this.displayName(target);
    const folded = casefold(target);
    const state = this.roomStates.get(folded);
    if (!this.isEncryptedRoom(target) && !state) {
      return { kind: 'undecryptable', room, from, code: 'no-key', reason: `no key for ${room}: it is not a room keybot gave you a key for` };
    }
    let record: HeldMessage['record'];
    if (kind === 'message-part') {
      // Key parts by sender and room, so one member's parts in two rooms never mix.
      const r = this.messageParts.accept({ sender: `${from} ${folded}`, line: text, now });
      if (r.status === PartStatus.INCOMPLETE || r.status === PartStatus.DUPLICATE) return { kind: 'hidden' };
      if (r.status !== PartStatus.COMPLETE) {
        return { kind: 'undecryptable', room, from, code: 'malformed', reason: `the parts of a message did not reassemble (${r.status})` };
      }
      record = { data: r.data! };
    } else {
      record = { payload: text };
    }
    return this.openRecord(this.state(target), from, command, record, now, true);
  }

  private openRecord(
    state: RoomState,
    from: string,
    command: TextCommand,
    record: HeldMessage['record'],
    now: number,
    mayHold: boolean,
  ): IncomingResult {
    const room = state.name;
    const fail = (code: UndecryptableCode, reason: string, epoch?: number): UndecryptableResult => ({
      kind: 'undecryptable',
      room,
      from,
      code,
      reason,
      ...(epoch !== undefined ? { epoch } : {}),
    });
    const peek = peekRoomMessage(record);
    if (peek.status !== MessageStatus.OK || peek.epoch === undefined) {
      return peek.status === MessageStatus.UNSUPPORTED_VERSION
        ? fail('unsupported-version', `a room message of version ${peek.version ?? '?'}, which this client does not know`)
        : fail('malformed', 'not a well-formed room message');
    }
    const epoch = peek.epoch;
    this.expirePrevious(state, now);
    const key = state.current?.epoch === epoch ? state.current : state.previous?.epoch === epoch ? state.previous : undefined;
    if (!key) {
      const newer = state.highestEpoch === undefined || epoch > state.highestEpoch;
      // Its envelope may still be on the way (keybot seals one member at a time): wait a little.
      if (newer && mayHold && (state.current || state.highestEpoch === undefined)) {
        if (state.held.length < this.maxHeldPerRoom && this.heldTotal < this.maxHeldTotal) {
          state.held.push({ from, room, command, record, epoch, heldAt: now });
          this.heldTotal++;
          return { kind: 'held', what: 'message', from, room, epoch, reason: `waiting for the key of epoch ${epoch}` };
        }
      }
      if (state.highestEpoch === undefined) {
        return fail('no-key', `no key for ${room}: keybot has not sent you one (ask with /msg ${KEYBOT_NICK} key ${room})`, epoch);
      }
      if (!state.current) return fail('no-key', `you no longer hold a key for ${room}`, epoch);
      if (epoch > state.highestEpoch) return fail('unknown-epoch', `no key for epoch ${epoch} of ${room} (yet)`, epoch);
      if (state.installed.includes(epoch)) {
        return fail('epoch-discarded', `the key of epoch ${epoch} of ${room} was replaced and has been discarded`, epoch);
      }
      return fail('unknown-epoch', `no key for epoch ${epoch} of ${room}: it predates your key or was discarded (you hold epoch ${state.current.epoch})`, epoch);
    }
    const member = key.members.get(casefold(from));
    if (!member) return fail('not-a-member', `${from} is not a member of epoch ${epoch} of ${room}`, epoch);
    const res = decryptRoomMessage({ ...record, roomKey: key.key, room, epoch, sender: from, senderKey: member.signingKey });
    switch (res.status) {
      case MessageStatus.OK:
        break;
      case MessageStatus.DECRYPT_FAILED:
        return fail('decrypt-failed', `it does not decrypt as a message from ${from} in ${room} (tampered, or sent in someone else's name)`, epoch);
      case MessageStatus.BAD_SIGNATURE:
      case MessageStatus.BAD_SENDER_KEY:
        return fail('bad-signature', `its signature is not ${from}'s (forged?)`, epoch);
      case MessageStatus.UNSUPPORTED_VERSION:
        return fail('unsupported-version', 'a room message version this client does not know', epoch);
      default:
        return fail('malformed', `not a well-formed room message (${res.status})`, epoch);
    }
    const seq = res.seq!;
    const guard = this.replay.accept({ room, epoch, sender: from, seq });
    if (guard.status !== ReplayStatus.OK) {
      return fail('replay', guard.status === ReplayStatus.REPLAY ? `a replay of ${from}'s message ${seq}` : `an old message of ${from} (seq ${seq}) seen again`, epoch);
    }
    // Another session of our own account shares our sequence space (docs/PROTOCOL.md): go above it.
    if (casefold(from) === this.folded && state.current === key && seq > state.seq) state.seq = seq;
    return { kind: 'message', room, from, text: res.plaintext!, epoch, seq, command, verified: true };
  }

  /** Decide the held messages of a room whose key may now be here. */
  private release(state: RoomState, now: number): IncomingResult[] {
    if (state.held.length === 0) return [];
    const out: IncomingResult[] = [];
    const keep: HeldMessage[] = [];
    for (const h of state.held) {
      if (h.epoch > (state.highestEpoch ?? -1)) keep.push(h);
      else out.push(this.openRecord(state, h.from, h.command, h.record, now, false));
    }
    this.heldTotal -= state.held.length - keep.length;
    state.held = keep;
    return out;
  }

  private expirePrevious(state: RoomState | undefined, now: number): void {
    const prev = state?.previous;
    if (prev && now - (prev.retiredAt ?? now) > this.graceMs) {
      wipe(prev);
      state.previous = undefined;
    }
  }

  private state(room: string): RoomState {
    const folded = casefold(room);
    let s = this.roomStates.get(folded);
    if (!s) {
      s = { name: room, seq: 0, held: [], installed: [], keyChanges: [] };
      this.roomStates.set(folded, s);
    }
    return s;
  }

  private displayName(room: string): string {
    return this.roomStates.get(casefold(room))?.name ?? room;
  }

  /** Newline split, then per-message split; a `/me` stays a `/me` in every piece. */
  private split(text: string): string[] {
    const out: string[] = [];
    for (const line of text.split(/\r\n|\r|\n/)) {
      if (line.length === 0) continue;
      const action = ACTION_RE.exec(line);
      if (!action) {
        out.push(...splitPlaintext({ text: line, sigAlg: this.sigAlg }));
        continue;
      }
      const max = maxPlaintextBytes(this.sigAlg) - utf8.encode('\x01ACTION \x01').length;
      for (let chunk of splitPlaintext({ text: action[1]!, sigAlg: this.sigAlg })) {
        while (utf8.encode(chunk).length > max) {
          const [head, tail] = cutAtBytes(chunk, max);
          out.push(`\x01ACTION ${head}\x01`);
          chunk = tail;
        }
        out.push(`\x01ACTION ${chunk}\x01`);
      }
    }
    return out;
  }
}

/** Split text at a code point boundary so the head has at most `max` UTF-8 bytes. */
function cutAtBytes(text: string, max: number): [string, string] {
  let bytes = 0;
  let i = 0;
  for (const cp of text) {
    const size = utf8.encode(cp).length;
    if (bytes + size > max) break;
    bytes += size;
    i += cp.length;
  }
  return [text.slice(0, i), text.slice(i)];
}
