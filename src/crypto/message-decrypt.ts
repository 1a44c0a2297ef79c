/**
 * The receiver's side of room messages: read a record's header (peek) to pick the epoch key, then
 * check and decrypt it (record format in message.ts).
 */
import { concatBytes, utf8 } from './bytes.js';
import {
  HEADER_BYTES,
  MessageStatus,
  NONCE_BYTES,
  TAG_BYTES,
  checkRoomKey,
  checkU32,
  foldedName,
  parseRecord,
  roomMessageAad,
  roomMessageTranscript,
} from './message.js';
import { sanitizeText } from './sanitize.js';
import { aesGcmOpen, verifyRaw } from './primitives.js';
import { importSigningPublicKey, type SigAlg, type SigningPublicKey } from './signing.js';

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
  const plaintext = aesGcmOpen(roomKey, nonce, sealed, aad);
  if (!plaintext) return { status: MessageStatus.DECRYPT_FAILED, epoch, seq };
  if (!verifyRaw(alg, imported.keyObject, roomMessageTranscript(aad, nonce, sealed), signature)) {
    return { status: MessageStatus.BAD_SIGNATURE, epoch, seq };
  }
  return { status: MessageStatus.OK, plaintext: sanitizeText(utf8.decode(plaintext)), seq, epoch };
}
