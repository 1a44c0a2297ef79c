/**
 * Room messages: AES-256-GCM under the room's epoch key, signed by the sender's own key.
 *
 * Record (all integers big-endian), docs/PROTOCOL.md §"Room messages" has the details:
 *   version u8 = 1 | alg u8 (1 ed25519, 2 rsa-pss) | epoch u32 | seq u32 | nonce 12 | ciphertext | tag 16 | signature
 * On the wire: `SC1M <base64(record)>` in one line; when that is longer than MAX_LINE_PAYLOAD
 * (RSA signatures are 256-512 bytes), the record goes out as `SC1P` parts (parts.ts) instead.
 * Room and sender are not on the wire (the IRC line already names them) but bound into the AAD
 * and the signature, casefolded.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { casefold, concatBytes, fromBase64, toBase64, utf8 } from './bytes.js';
import { privateState } from './keys.js';
import { MAX_LINE_PAYLOAD, frameParts } from './parts.js';
import { sanitizeText } from './sanitize.js';
import {
  ED25519_SIGNATURE_BYTES,
  MAX_RSA_BITS,
  importSigningPublicKey,
  signRaw,
  verifyRaw,
  type SigAlg,
  type SigningPublicKey,
} from './signing.js';
import type { PrivateKeyHandle } from './keys.js';

export { MAX_LINE_PAYLOAD } from './parts.js';

/** Version byte of the room-message record. */
export const MESSAGE_VERSION = 1;
/** Prefix of a one-line room message. */
export const MESSAGE_PREFIX = 'SC1M ';
/** Size of a room key (AES-256). */
export const ROOM_KEY_BYTES = 32;
/** GCM nonce size; random per message. */
export const NONCE_BYTES = 12;
/** GCM tag size. */
export const TAG_BYTES = 16;
/** version u8 | alg u8 | epoch u32 | seq u32. */
export const HEADER_BYTES = 10;
/** Largest epoch and sequence number (both u32 on the wire). */
export const MAX_U32 = 0xffff_ffff;

const ALG_CODE: Record<SigAlg, number> = { ed25519: 1, 'rsa-pss': 2 };
const ALG_OF_CODE: Record<number, SigAlg> = { 1: 'ed25519', 2: 'rsa-pss' };
const AAD_LABEL = utf8.encode('SC1M');
const SIGNATURE_DOMAIN = utf8.encode('sealchat room message signature v1\x00');
// Longest base64 record we even try to decode (a 4096-bit RSA message is about 1.1 K characters).
const MAX_PAYLOAD_CHARS = 8192;

/**
 * Largest plaintext (UTF-8 bytes) per message. Ed25519: what keeps `SC1M <base64>` within
 * MAX_LINE_PAYLOAD (132 bytes). RSA-PSS: the message spans 3-4 `SC1P` lines anyway; 256 bytes.
 */
export function maxPlaintextBytes(sigAlg: SigAlg): number {
  if (sigAlg === 'ed25519') {
    const recordBytes = Math.floor((MAX_LINE_PAYLOAD - MESSAGE_PREFIX.length) / 4) * 3;
    return recordBytes - HEADER_BYTES - NONCE_BYTES - TAG_BYTES - ED25519_SIGNATURE_BYTES;
  }
  if (sigAlg === 'rsa-pss') return 256;
  throw new TypeError(`maxPlaintextBytes: unknown signature algorithm ${String(sigAlg)}`);
}

/** Outcome of encrypting, decrypting or peeking at a room message. */
export enum MessageStatus {
  OK = 'ok',
  /** Not a room message, bad base64, or too short for its fields. */
  MALFORMED = 'malformed',
  /** A record version this code does not know. */
  UNSUPPORTED_VERSION = 'unsupported_version',
  /** The header names another epoch than the one the caller asked for. */
  WRONG_EPOCH = 'wrong_epoch',
  /** The GCM tag does not verify: wrong key, or ciphertext/header/room/sender/seq altered. */
  DECRYPT_FAILED = 'decrypt_failed',
  /** The sender's signature is missing, of another algorithm, or does not verify. */
  BAD_SIGNATURE = 'bad_signature',
  /** The given sender key is not a valid SigningPublicKey. */
  BAD_SENDER_KEY = 'bad_sender_key',
  /** (encrypt) The plaintext is longer than one message may carry: split it with splitPlaintext(). */
  TOO_LARGE = 'too_large',
}

/** Split text into message-sized pieces (see {@link splitPlaintext}). */
export interface SplitOptions {
  text: string;
  /** Algorithm of the sender's signing key (from signingPublicKeyOf). */
  sigAlg: SigAlg;
}

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/**
 * Split UTF-8 text into chunks that each encrypt to one message (for Ed25519 senders: one line
 * of at most MAX_LINE_PAYLOAD bytes). Never splits inside a code point, and not inside a grapheme
 * cluster unless a single cluster is itself too long; prefers to break after a space in the last
 * third of a chunk. Empty text gives no chunks. Callers split on newlines first.
 */
export function splitPlaintext(options: SplitOptions): string[] {
  if (!options || typeof options !== 'object') throw new TypeError('splitPlaintext: expected one options object');
  if (typeof options.text !== 'string') throw new TypeError('splitPlaintext: options.text must be a string');
  const max = maxPlaintextBytes(options.sigAlg);
  const chunks: string[] = [];
  let current: string[] = [];
  let sizes: number[] = [];
  let currentBytes = 0;
  let lastSpace = -1; // index into `current` after which we may break
  let bytesAtSpace = 0;

  const push = (segment: string, size: number): void => {
    current.push(segment);
    sizes.push(size);
    currentBytes += size;
  };
  const flush = (upTo: number): void => {
    chunks.push(current.slice(0, upTo).join(''));
    current = current.slice(upTo);
    sizes = sizes.slice(upTo);
    currentBytes = sizes.reduce((n, b) => n + b, 0);
    lastSpace = -1;
  };

  // Pure ASCII needs no segmenter (every character is its own cluster, bar CR LF): ~10x faster.
  const segments = /^[\x00-\x7f]*$/.test(options.text)
    ? options.text
    : Array.from(graphemes.segment(options.text), (g) => g.segment);
  for (const segment of segments) {
    const size = Buffer.byteLength(segment, 'utf8');
    if (size > max) {
      // One enormous cluster (e.g. stacked combining marks): fall back to code points.
      if (current.length) flush(current.length);
      for (const cp of segment) {
        const cpSize = Buffer.byteLength(cp, 'utf8');
        if (currentBytes + cpSize > max) flush(current.length);
        push(cp, cpSize);
      }
      continue;
    }
    if (currentBytes + size > max && lastSpace >= 0 && bytesAtSpace >= (max * 2) / 3) flush(lastSpace + 1);
    if (currentBytes + size > max && current.length) flush(current.length);
    push(segment, size);
    if (size === 1 ? segment === ' ' || segment === '\t' : /^\s+$/.test(segment)) {
      lastSpace = current.length - 1;
      bytesAtSpace = currentBytes;
    }
  }
  if (current.length) chunks.push(current.join(''));
  return chunks;
}

function foldedName(name: unknown, what: string, caller: string): Uint8Array {
  if (typeof name !== 'string' || name.length === 0) throw new TypeError(`${caller}: options.${what} must be a non-empty string`);
  const bytes = utf8.encode(casefold(name));
  if (bytes.length > 255) throw new TypeError(`${caller}: options.${what} is longer than 255 bytes`);
  return bytes;
}

function checkU32(value: unknown, what: string, caller: string): number {
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > MAX_U32) {
    throw new TypeError(`${caller}: options.${what} must be an integer from 0 to ${MAX_U32}`);
  }
  return value as number;
}

function checkRoomKey(value: unknown, caller: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== ROOM_KEY_BYTES) {
    throw new TypeError(`${caller}: options.roomKey must be a ${ROOM_KEY_BYTES}-byte Uint8Array`);
  }
  return value;
}

function header(alg: SigAlg, epoch: number, seq: number): Uint8Array {
  const h = new Uint8Array(HEADER_BYTES);
  const view = new DataView(h.buffer);
  h[0] = MESSAGE_VERSION;
  h[1] = ALG_CODE[alg];
  view.setUint32(2, epoch);
  view.setUint32(6, seq);
  return h;
}

/** The GCM additional data: "SC1M" || header || len(room) || room || len(sender) || sender. */
export function roomMessageAad(headerBytes: Uint8Array, room: Uint8Array, sender: Uint8Array): Uint8Array {
  return concatBytes(AAD_LABEL, headerBytes, Uint8Array.of(room.length), room, Uint8Array.of(sender.length), sender);
}

/** The bytes the sender signs: domain label || AAD || nonce || ciphertext || tag. */
export function roomMessageTranscript(aad: Uint8Array, nonce: Uint8Array, sealed: Uint8Array): Uint8Array {
  return concatBytes(SIGNATURE_DOMAIN, aad, nonce, sealed);
}

/** @internal Build a record with an explicit nonce and signing function (test vectors use it). */
export function sealRoomRecord(o: {
  roomKey: Uint8Array;
  room: string;
  epoch: number;
  sender: string;
  seq: number;
  plaintext: Uint8Array;
  nonce: Uint8Array;
  alg: SigAlg;
  sign: (transcript: Uint8Array) => Uint8Array;
}): Uint8Array {
  const h = header(o.alg, o.epoch, o.seq);
  const aad = roomMessageAad(h, utf8.encode(casefold(o.room)), utf8.encode(casefold(o.sender)));
  const cipher = createCipheriv('aes-256-gcm', o.roomKey, o.nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const sealed = concatBytes(cipher.update(o.plaintext), cipher.final(), cipher.getAuthTag());
  const signature = o.sign(roomMessageTranscript(aad, o.nonce, sealed));
  return concatBytes(h, o.nonce, sealed, signature);
}

/** Options of {@link encryptRoomMessage}. */
export interface EncryptRoomMessageOptions {
  /** The room's current 32-byte key (from a key envelope). */
  roomKey: Uint8Array;
  /** Channel name; casefolded (ASCII) before binding. */
  room: string;
  /** Epoch of `roomKey`. */
  epoch: number;
  /** The sender's account (= nick); casefolded before binding. */
  sender: string;
  /** Per (room, epoch, sender) sequence number, strictly increasing; start at 1 in each epoch. */
  seq: number;
  /** At most maxPlaintextBytes(alg) UTF-8 bytes: use splitPlaintext() first. */
  plaintext: string;
  /** The sender's unlocked key; its signing key must be the one keybot lists for the sender. */
  signer: PrivateKeyHandle;
  /** Test vectors only: a fixed 12-byte nonce. Never set it otherwise (GCM nonce reuse is fatal). */
  nonce?: Uint8Array;
}

/** Result of {@link encryptRoomMessage}. */
export interface EncryptRoomMessageResult {
  status: MessageStatus;
  /** `SC1M <base64>`: the whole message as one string (may exceed MAX_LINE_PAYLOAD for RSA signers). */
  payload: string;
  /** What to send, one IRC line each, every one at most MAX_LINE_PAYLOAD bytes: `[payload]` when it fits, else `SC1P` parts. */
  lines: string[];
}

/** Encrypt and sign one chunk of text for a room. */
export function encryptRoomMessage(options: EncryptRoomMessageOptions): EncryptRoomMessageResult {
  const caller = 'encryptRoomMessage';
  if (!options || typeof options !== 'object') throw new TypeError(`${caller}: expected one options object`);
  const roomKey = checkRoomKey(options.roomKey, caller);
  foldedName(options.room, 'room', caller);
  foldedName(options.sender, 'sender', caller);
  const epoch = checkU32(options.epoch, 'epoch', caller);
  const seq = checkU32(options.seq, 'seq', caller);
  if (typeof options.plaintext !== 'string') throw new TypeError(`${caller}: options.plaintext must be a string`);
  const signer = privateState(options.signer, caller);
  let nonce = options.nonce;
  if (nonce === undefined) nonce = new Uint8Array(randomBytes(NONCE_BYTES));
  else if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_BYTES) {
    throw new TypeError(`${caller}: options.nonce must be ${NONCE_BYTES} bytes`);
  }

  const plaintext = utf8.encode(options.plaintext);
  if (plaintext.length > maxPlaintextBytes(signer.signingAlg)) return { status: MessageStatus.TOO_LARGE, payload: '', lines: [] };
  const record = sealRoomRecord({
    roomKey,
    room: options.room,
    epoch,
    sender: options.sender,
    seq,
    plaintext,
    nonce,
    alg: signer.signingAlg,
    sign: (t) => signRaw(signer.signingAlg, signer.signingKeyObject, t),
  });
  const payload = MESSAGE_PREFIX + toBase64(record);
  const lines = payload.length <= MAX_LINE_PAYLOAD ? [payload] : frameParts({ data: record, kind: 'message' }).parts;
  return { status: MessageStatus.OK, payload, lines };
}

interface ParsedRecord {
  version: number;
  alg: SigAlg;
  epoch: number;
  seq: number;
  record: Uint8Array;
}

function parseRecord(
  input: { payload?: unknown; data?: unknown },
  caller: string,
): { status: MessageStatus.OK; parsed: ParsedRecord } | { status: MessageStatus; parsed?: undefined } {
  let record: Uint8Array | undefined;
  if (input.data !== undefined) {
    if (input.payload !== undefined) throw new TypeError(`${caller}: give options.payload or options.data, not both`);
    if (!(input.data instanceof Uint8Array)) throw new TypeError(`${caller}: options.data must be a Uint8Array`);
    record = input.data;
  } else {
    if (typeof input.payload !== 'string') throw new TypeError(`${caller}: options.payload must be a string (or give options.data)`);
    const payload = input.payload;
    if (!payload.startsWith(MESSAGE_PREFIX) || payload.length > MAX_PAYLOAD_CHARS) return { status: MessageStatus.MALFORMED };
    record = fromBase64(payload.slice(MESSAGE_PREFIX.length));
    if (!record) return { status: MessageStatus.MALFORMED };
  }
  if (record.length < HEADER_BYTES) return { status: MessageStatus.MALFORMED };
  if (record[0] !== MESSAGE_VERSION) return { status: MessageStatus.UNSUPPORTED_VERSION };
  const alg = ALG_OF_CODE[record[1]!];
  if (!alg) return { status: MessageStatus.MALFORMED };
  const minSig = alg === 'ed25519' ? ED25519_SIGNATURE_BYTES : 256;
  const maxSig = alg === 'ed25519' ? ED25519_SIGNATURE_BYTES : MAX_RSA_BITS / 8;
  const bodyLength = record.length - HEADER_BYTES - NONCE_BYTES - TAG_BYTES;
  if (bodyLength < minSig || bodyLength > maxSig + maxPlaintextBytes(alg)) return { status: MessageStatus.MALFORMED };
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  return {
    status: MessageStatus.OK,
    parsed: { version: record[0]!, alg, epoch: view.getUint32(2), seq: view.getUint32(6), record },
  };
}

/** Result of {@link peekRoomMessage}. */
export interface PeekResult {
  status: MessageStatus;
  version?: number;
  sigAlg?: SigAlg;
  /** Which room key to use. */
  epoch?: number;
  seq?: number;
}

/**
 * Read a room message's header without decrypting: the epoch tells the receiver which key to use.
 * Nothing here is authenticated until decryptRoomMessage succeeds. Give the one-line `payload`
 * (`SC1M ...`) or the reassembled `data` of `SC1P` parts.
 */
export function peekRoomMessage(options: { payload?: string; data?: Uint8Array }): PeekResult {
  if (!options || typeof options !== 'object') throw new TypeError('peekRoomMessage: expected one options object');
  const r = parseRecord(options, 'peekRoomMessage');
  if (!r.parsed) return { status: r.status };
  const { version, alg, epoch, seq } = r.parsed;
  return { status: MessageStatus.OK, version, sigAlg: alg, epoch, seq };
}

/** Options of {@link decryptRoomMessage}. */
export interface DecryptRoomMessageOptions {
  /** `SC1M <base64>` as received (give this or `data`). */
  payload?: string;
  /** The reassembled record of `SC1P` parts (PartsReassembler COMPLETE with kind 'message'). */
  data?: Uint8Array;
  /** Key of the epoch named in the header (see peekRoomMessage). */
  roomKey: Uint8Array;
  /** The channel the line was sent to. */
  room: string;
  /** If given, a header naming another epoch is refused with WRONG_EPOCH before any crypto. */
  epoch?: number;
  /** The nick (= account) that sent the line, as the server reported it. */
  sender: string;
  /** The sender's signing key, from the member list of the current key envelope. */
  senderKey: SigningPublicKey;
}

/** Result of {@link decryptRoomMessage}. */
export interface DecryptRoomMessageResult {
  status: MessageStatus;
  /** The text, already passed through sanitizeText (OK only). */
  plaintext?: string;
  seq?: number;
  epoch?: number;
}

/**
 * Check and decrypt one room message. OK means: encrypted under `roomKey` for this room, epoch,
 * sender and seq, and signed by `senderKey`. The caller must still run the ReplayGuard on
 * (room, epoch, sender, seq) before showing it.
 */
export function decryptRoomMessage(options: DecryptRoomMessageOptions): DecryptRoomMessageResult {
  const caller = 'decryptRoomMessage';
  if (!options || typeof options !== 'object') throw new TypeError(`${caller}: expected one options object`);
  const roomKey = checkRoomKey(options.roomKey, caller);
  const room = foldedName(options.room, 'room', caller);
  const sender = foldedName(options.sender, 'sender', caller);
  if (options.epoch !== undefined) checkU32(options.epoch, 'epoch', caller);
  const senderKey = options.senderKey;
  if (!senderKey || typeof senderKey !== 'object') throw new TypeError(`${caller}: options.senderKey must be a SigningPublicKey`);

  const r = parseRecord(options, caller);
  if (!r.parsed) return { status: r.status };
  const { alg, epoch, seq, record } = r.parsed;
  if (options.epoch !== undefined && epoch !== options.epoch) return { status: MessageStatus.WRONG_EPOCH, epoch, seq };
  const imported = importSigningPublicKey(senderKey);
  if (!imported) return { status: MessageStatus.BAD_SENDER_KEY };
  if (imported.alg !== alg) return { status: MessageStatus.BAD_SIGNATURE };
  const sigStart = record.length - imported.signatureBytes;
  const sealedStart = HEADER_BYTES + NONCE_BYTES;
  if (sigStart - sealedStart < TAG_BYTES) return { status: MessageStatus.MALFORMED };

  const h = record.subarray(0, HEADER_BYTES);
  const nonce = record.subarray(HEADER_BYTES, sealedStart);
  const sealed = record.subarray(sealedStart, sigStart);
  const signature = record.subarray(sigStart);
  const aad = roomMessageAad(h, room, sender);

  // GCM first: it is the cheaper check and rejects everyone who does not hold the room key.
  let plaintext: Uint8Array;
  try {
    const decipher = createDecipheriv('aes-256-gcm', roomKey, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    plaintext = concatBytes(decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final());
  } catch {
    return { status: MessageStatus.DECRYPT_FAILED, epoch, seq };
  }
  if (!verifyRaw(alg, imported.keyObject, roomMessageTranscript(aad, nonce, sealed), signature)) {
    return { status: MessageStatus.BAD_SIGNATURE, epoch, seq };
  }
  return { status: MessageStatus.OK, plaintext: sanitizeText(utf8.decode(plaintext)), seq, epoch };
}

/** A fresh random 32-byte room key (keybot makes one per epoch). */
export function generateRoomKey(): Uint8Array {
  return new Uint8Array(randomBytes(ROOM_KEY_BYTES));
}
