/**
 * sealchat crypto: the public API. Other components import from here only (never from the files
 * behind it, and never openpgp directly). Every call takes one options object; expected failures
 * come back as a status enum, misuse throws. docs/PROTOCOL.md specifies the wire formats.
 */
export {
  KeyStatus,
  UnlockStatus,
  MAX_ARMORED_KEY_CHARS,
  inspectPublicKey,
  readPublicKey,
  unlockPrivateKey,
  generateUserKey,
  signingPublicKeyOf,
  type InspectResult,
  type ReadPublicKeyResult,
  type UnlockResult,
  type PublicKeyHandle,
  type PrivateKeyHandle,
  type GenerateUserKeyOptions,
  type GeneratedUserKey,
} from './keys.js';
export { sameSigningKey, type SigAlg, type SigningPublicKey } from './signing.js';
export {
  MAX_LINE_PAYLOAD,
  MAX_PARTS,
  FrameStatus,
  PartStatus,
  PartsReassembler,
  classifyLine,
  frameParts,
  parsePart,
  newPartId,
  type PartKind,
  type LineKind,
  type FrameResult,
  type ParsedPart,
  type PartResult,
  type ReassemblerOptions,
} from './parts.js';
export {
  MESSAGE_VERSION,
  MESSAGE_PREFIX,
  ROOM_KEY_BYTES,
  MessageStatus,
  maxPlaintextBytes,
  splitPlaintext,
  encryptRoomMessage,
  decryptRoomMessage,
  peekRoomMessage,
  generateRoomKey,
  type SplitOptions,
  type EncryptRoomMessageOptions,
  type EncryptRoomMessageResult,
  type DecryptRoomMessageOptions,
  type DecryptRoomMessageResult,
  type PeekResult,
} from './message.js';
export { ReplayStatus, ReplayGuard, type ReplayGuardOptions } from './replay.js';
export { sanitizeText } from './sanitize.js';
export {
  ENVELOPE_VERSION,
  MAX_MEMBERS,
  DEFAULT_ENVELOPE_MAX_AGE_MS,
  DEFAULT_ENVELOPE_MAX_SKEW_MS,
  EnvelopeStatus,
  signEnvelope,
  sealEnvelope,
  openEnvelope,
  isNewerEpoch,
  encodeEnvelopePayload,
  type EnvelopeMember,
  type SignedEnvelope,
  type SignEnvelopeResult,
  type EnvelopePayload,
  type SealEnvelopeOptions,
  type SealEnvelopeResult,
  type OpenEnvelopeOptions,
  type OpenEnvelopeResult,
} from './envelope.js';
