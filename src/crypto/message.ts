/**
 * Room messages: AES-256-GCM under the room's epoch key, signed by the sender's own key.
 *
 * Record (all integers big-endian), docs/PROTOCOL.md §"Room messages" has the details:
 *   version u8 = 1 | alg u8 (1 ed25519, 2 rsa-pss) | epoch u32 | seq u32 | nonce 12 | ciphertext | tag 16 | signature
 * On the wire: `SC1M <base64(record)>` in one line; when that is longer than MAX_LINE_PAYLOAD
 * (RSA signatures are 256-512 bytes), the record goes out as `SC1P` parts (parts.ts) instead.
 * Room and sender are not on the wire (the IRC line already names them) but bound into the AAD
 * and the signature, casefolded.
 *
 * This file is the record format (header, AAD, signed transcript, building and parsing a record);
 * splitting text is message-split.ts, encrypting message-encrypt.ts, peeking and decrypting
 * message-decrypt.ts.
 */
import { aesGcmSeal, randomBytes } from './primitives.js';
import { casefold, concatBytes, fromBase64, utf8 } from './bytes.js';
import { MAX_LINE_PAYLOAD } from './parts.js';
import { ED25519_SIGNATURE_BYTES, MAX_RSA_BITS, type SigAlg } from './signing.js';

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

/** @internal A room or sender name, casefolded and UTF-8 encoded, as bound into the AAD. */
export function foldedName(name: unknown, what: string, caller: string): Uint8Array {
  if (typeof name !== 'string' || name.length === 0) throw new TypeError(`${caller}: options.${what} must be a non-empty string`);
  const bytes = utf8.encode(casefold(name));
  if (bytes.length > 255) throw new TypeError(`${caller}: options.${what} is longer than 255 bytes`);
  return bytes;
}

/** @internal */
export function checkU32(value: unknown, what: string, caller: string): number {
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > MAX_U32) {
    throw new TypeError(`${caller}: options.${what} must be an integer from 0 to ${MAX_U32}`);
  }
  return value as number;
}

/** @internal */
export function checkRoomKey(value: unknown, caller: string): Uint8Array {
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
  const sealed = aesGcmSeal(o.roomKey, o.nonce, o.plaintext, aad);
  const signature = o.sign(roomMessageTranscript(aad, o.nonce, sealed));
  return concatBytes(h, o.nonce, sealed, signature);
}

/** @internal A record whose header and length have been checked (nothing is authenticated yet). */
export interface ParsedRecord {
  version: number;
  alg: SigAlg;
  epoch: number;
  seq: number;
  record: Uint8Array;
}

/** @internal Decode `SC1M <base64>` or take raw `data`, and check the header and length. */
export function parseRecord(
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

/** A fresh random 32-byte room key (keybot makes one per epoch). */
export function generateRoomKey(): Uint8Array {
  return randomBytes(ROOM_KEY_BYTES);
}
