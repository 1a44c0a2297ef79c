/**
 * The sender's side of room messages: encrypt and sign one chunk of text and frame it for IRC
 * (record format in message.ts).
 */
import { toBase64, utf8 } from './bytes.js';
import { privateState, type PrivateKeyHandle } from './keys.js';
import {
  MESSAGE_PREFIX,
  MessageStatus,
  NONCE_BYTES,
  checkRoomKey,
  checkU32,
  foldedName,
  maxPlaintextBytes,
  sealRoomRecord,
} from './message.js';
import { MAX_LINE_PAYLOAD, frameParts } from './parts.js';
import { randomBytes, signRaw } from './primitives.js';

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
  if (nonce === undefined) nonce = randomBytes(NONCE_BYTES);
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
