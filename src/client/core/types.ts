/**
 * The vocabulary of RoomCryptoEngine (engine.ts): the lines it is given, what it answers, and its
 * options. Public through src/client/index.ts.
 */
import type { PrivateKeyHandle, PublicKeyHandle, ReassemblerOptions } from '../../crypto/index.js';
import type { CompanionMemory } from './memory.js';

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
  /** The line's IRCv3 tags that matter to the history catch-up (msgid, time, batch): history.ts. */
  tags?: { msgid?: string; time?: string; batch?: string };
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
  | 'member-key-changed'
  /**
   * It adds someone to a room whose roster we held that no operation signed by a member
   * explains (docs/PROTOCOL.md "Room operations"): see `accounts`.
   */
  | 'unexplained-member'
  /** A version 1 or 2 envelope for a room we hold under version 3 (docs/PROTOCOL.md "Envelope version 3"). */
  | 'downgrade'
  /** An epoch notice whose roster does not follow from the one we hold and its operations (advanceRoster). */
  | 'bad-roster';

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
/**
 * keybot proposed an invite for us to sign (operations.ts): the signed `SC1O` lines to send to
 * keybot, or why it was refused. CompanionSession turns it into actions; adapters never see it.
 */
export interface ProposalResult {
  kind: 'proposal';
  lines?: string[];
  refused?: string;
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
  /**
   * The epoch is older than the newest one we know (one we missed, delivered from the daemon's
   * mailbox): its key is kept for READING its messages (history) only, never sent under, and the
   * room's current key is unchanged (docs/PROTOCOL.md "Rooms that outlive a connection").
   */
  readOnly?: true;
  /**
   * What changed, as verified from the members' signed operations keybot relayed:
   * "carol added by alice, verified", "room opened by alice with you, bob, verified".
   */
  changes?: string[];
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
  /** For `unexplained-member`: who was added without a member's signed operation. */
  accounts?: string[];
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
  /**
   * Messages from this sender in this epoch that never arrived before this one (their sequence
   * numbers were skipped: the server dropped them, or a chunk of a long text went missing).
   * Absent when none are missing, or when this is the first we see from them.
   */
  missingBefore?: number;
  /** It came from the server's history (a catch-up after our JOIN: history.ts), not live. */
  history?: true;
  /** Its server time (ms since the Unix epoch), when the server gave one (server-time). */
  time?: number;
  /** Its IRCv3 msgid, when the server gave one. */
  msgid?: string;
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
  | HeldResult
  | ProposalResult;

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
  /** When keybot issued the current epoch's envelope (ms since the Unix epoch). */
  issuedAt?: number;
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
  /**
   * How long a key kept for reading only (an older epoch from the mailbox, or the key held when
   * the connection was lost) still decrypts history (default 10 min after it was retired).
   */
  historyKeyMs?: number;
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
  /**
   * What outlives the connection for this (account, server): member pins and the highest epoch
   * per room (memory.ts). Default: a memory of the engine's own, forgotten with it.
   */
  memory?: CompanionMemory;
}
