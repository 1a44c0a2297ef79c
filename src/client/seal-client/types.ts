/**
 * The public vocabulary of SealClient (client.ts): its options, results and events. Split out of
 * client.ts; import it from there.
 */
import type { PrivateKeyHandle } from '../../crypto/index.js';
import type {
  BotNoticeResult,
  EnvelopeRejectedResult,
  KeyResult,
  PlaintextInRoomResult,
  RoomCryptoEngineOptions,
  TextCommand,
  UndecryptableResult,
} from '../core/index.js';
import type { OutboxOptions } from '../core/index.js';
import type { TrustSource } from '../core/index.js';

/** How SealClient re-establishes a lost connection. */
export interface ReconnectOptions {
  /** First delay (default 1000 ms); doubles with each failed attempt... */
  initialMs?: number;
  /** ...up to this (default 30 000 ms). */
  maxMs?: number;
  /** Up to this fraction of each delay is taken off at random, so clients spread out (default 0.5). */
  jitter?: number;
  /** Give up (and emit 'close') after this many failed attempts in a row (default: never). */
  maxAttempts?: number;
}

/** Options of {@link SealClient.connect}. */
export interface SealConnectOptions {
  host: string;
  port: number;
  tls?: boolean;
  /** Default true; set false only for a self-signed test server. */
  rejectUnauthorized?: boolean;
  /** The account name; sealchat nicks are account names. */
  nick: string;
  /** Account password, sent as PASS (give this or `sasl`). */
  password?: string;
  /** SASL PLAIN instead of PASS. */
  sasl?: { account?: string; password: string };
  /** The user's key: an unlocked handle, or armored text / a file plus passphrase. */
  privateKey?: PrivateKeyHandle;
  privateKeyArmored?: string;
  privateKeyFile?: string;
  passphrase?: string;
  /** Pin keybot to this fingerprint (recommended: compare it with the operator out of band). */
  keybotFingerprint?: string;
  /** keybot's armored public key; otherwise it is taken from the known-keybots file or asked of keybot. */
  keybotPublicKey?: string;
  /** The trust-on-first-use file (default ~/.sealchat/known_keybots.json); false: remember nothing. */
  knownKeybotsFile?: string | false;
  /** How long to wait for registration and for keybot's key (default 10 s each). */
  timeoutMs?: number;
  /** Engine tuning (grace period, hold time, clock). */
  engine?: Omit<RoomCryptoEngineOptions, 'account' | 'privateKey' | 'keybotKey'>;
  /**
   * Reconnect when the connection is lost after login (default on: 1 s doubling to 30 s, half
   * of it jitter). false: a lost connection ends the client ('close'), as before.
   */
  reconnect?: boolean | ReconnectOptions;
  /**
   * Hold room text that cannot be encrypted now but will be soon (the room's key is being
   * replaced, or the connection is being re-established), and send it under the next key
   * (default on, at most 30 s). false: refuse such text at once with 'no-key'.
   */
  outbox?: boolean | Omit<OutboxOptions, 'clock'>;
}

/** What {@link SealClient.send} did. */
export interface SendResult {
  /** The epoch whose key encrypted the text. */
  epoch: number;
  /** How many PRIVMSG lines went out. */
  lines: number;
  /** Present when the text had to wait for a key: how long it was held. */
  held?: { id: number; ms: number };
}

/** How keybot's key stands after connecting. */
export type KeybotTrust =
  | { status: 'pinned'; fingerprint: string; source: TrustSource | 'option-key' }
  /** No key yet (keybot offline and none known): envelopes wait; retried when keybot comes online. */
  | { status: 'unavailable'; reason: string }
  /** keybot offered a key other than the pinned one: refused, envelopes are rejected. */
  | { status: 'mismatch'; expected: string; got: string; source: 'configured' | 'known' };

export interface ConnectResult {
  nick: string;
  keybot: KeybotTrust;
}

/** A decrypted, verified room message. */
export interface RoomMessageEvent {
  room: string;
  from: string;
  text: string;
  epoch: number;
  command: TextCommand;
  /** True for `/me` (text then holds the action without the CTCP framing). */
  action: boolean;
}

/** Events of {@link SealClient}, with their arguments. */
export interface SealClientEvents {
  registered: [{ nick: string }];
  /** keybot's key was pinned (source 'first-use' means: trusted on first use, check it). */
  'keybot-pinned': [{ fingerprint: string; source: TrustSource | 'option-key'; server: string }];
  /** LOUD: keybot's key differs from the pinned one. It was refused; no envelope will be accepted. */
  'keybot-key-changed': [{ server: string; expected: string; got: string; source: 'configured' | 'known' }];
  /** keybot's key could not be obtained (yet). */
  'keybot-unavailable': [{ reason: string }];
  /** A new room key was accepted. */
  key: [Omit<KeyResult, 'released' | 'kind'>];
  message: [RoomMessageEvent];
  undecryptable: [Omit<UndecryptableResult, 'kind'>];
  /** Someone wrote plaintext into an encrypted room: it is not confidential and not verified. */
  'plaintext-warning': [Omit<PlaintextInRoomResult, 'kind'>];
  'envelope-rejected': [Omit<EnvelopeRejectedResult, 'kind'>];
  /**
   * LOUD: an envelope listed `account` with another key than the one pinned for it (someone may
   * have replaced their registered key). It was refused and nothing is sent to `room` until the
   * user checks `offered` with `account` and calls `crypto.acceptMemberKey(account, offered)`
   * (then asks keybot for the key again), or restarts the companion. Also emitted as 'envelope-rejected'.
   */
  'member-key-changed': [{ room: string; account: string; pinned: string; offered: string; epoch?: number; reason: string }];
  /** keybot's human-readable replies and room announcements. */
  'bot-notice': [Omit<BotNoticeResult, 'kind'>];
  /** A NOTICE that is none of sealchat's business (server notices have `from` ''). */
  notice: [{ from: string; target: string; text: string }];
  /** A PRIVMSG that is none of sealchat's business (a private message, an ordinary channel). */
  privmsg: [{ from: string; target: string; text: string }];
  join: [{ room: string; nick: string; self: boolean }];
  part: [{ room: string; nick: string; self: boolean; reason: string; kickedBy?: string }];
  quit: [{ nick: string; reason: string }];
  error: [Error];
  /** The connection was lost; `reconnecting` tells whether a new one is being attempted. Keys are wiped. */
  disconnected: [{ reason: string; reconnecting: boolean }];
  /** A reconnect attempt is scheduled in `delayMs`. */
  reconnecting: [{ attempt: number; delayMs: number }];
  /** Logged in again after a lost connection (rooms come back as keybot re-keys them). */
  reconnected: [{ nick: string; attempts: number }];
  /** Room text could not be encrypted now and waits for the room's next key (tell the user). */
  'message-held': [{ id: number; room: string; reason: string }];
  /** Held room text was encrypted under the new key and sent. */
  'message-released': [{ id: number; room: string; epoch: number; lines: number; heldMs: number }];
  /** Held room text was given up: it was NOT sent (tell the user). */
  'message-unsent': [{ id: number; room: string; reason: string; heldMs: number }];
  /** The client is finished: quit, or the connection was lost for good. */
  close: [];
}
