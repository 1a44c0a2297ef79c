/**
 * sealchat crypto: the public API. Other components import from here only (never from the files
 * behind it, and never openpgp directly), except self-signed.ts: the TLS certificate helper of the
 * Node programs, kept out of here so that what the browser companion bundles from here needs no
 * Node built-in (primitives.ts is swapped for primitives.browser.ts there). Every call takes one options object; expected failures
 * come back as a status enum, misuse throws. docs/PROTOCOL.md specifies the wire formats.
 */
export {
  KeyStatus,
  signingPublicKeyOf,
  type InspectResult,
  type PublicKeyHandle,
  type PrivateKeyHandle,
} from './keys.js';
export { MAX_ARMORED_KEY_CHARS, inspectPublicKey, readPublicKey, type ReadPublicKeyResult } from './key-read.js';
export { UnlockStatus, unlockPrivateKey, type UnlockResult } from './key-unlock.js';
export { generateUserKey, type GenerateUserKeyOptions, type GeneratedUserKey } from './key-generate.js';
export { sameSigningKey, type SigAlg, type SigningPublicKey } from './signing.js';
/** Whether two byte strings are equal (length, then every byte, without stopping early). */
export { bytesEqual } from './bytes.js';
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
  generateRoomKey,
} from './message.js';
export { splitPlaintext, type SplitOptions } from './message-split.js';
export { encryptRoomMessage, type EncryptRoomMessageOptions, type EncryptRoomMessageResult } from './message-encrypt.js';
export {
  decryptRoomMessage,
  peekRoomMessage,
  type DecryptRoomMessageOptions,
  type DecryptRoomMessageResult,
  type PeekResult,
} from './message-decrypt.js';
export { ReplayStatus, ReplayGuard, type ReplayGuardOptions } from './replay.js';
export { sanitizeText } from './sanitize.js';
export {
  ENVELOPE_VERSION,
  MAX_MEMBERS,
  EnvelopeStatus,
  encodeEnvelopePayload,
  type EnvelopeMember,
  type EnvelopePayload,
} from './envelope.js';
export {
  signEnvelope,
  sealEnvelope,
  type SignedEnvelope,
  type SignEnvelopeResult,
  type SealEnvelopeOptions,
  type SealEnvelopeResult,
} from './envelope-seal.js';
export {
  DEFAULT_ENVELOPE_MAX_AGE_MS,
  DEFAULT_ENVELOPE_MAX_SKEW_MS,
  openEnvelope,
  isNewerEpoch,
  type OpenEnvelopeOptions,
  type OpenEnvelopeResult,
} from './envelope-open.js';
export {
  DEFAULT_OP_MAX_AGE_MS,
  DEFAULT_OP_MAX_SKEW_MS,
  EMPTY_ROSTER_HASH,
  MAX_OP_TARGETS,
  MAX_ROSTER,
  ROOM_OP_NONCE_BYTES,
  ROOM_OP_VERSION,
  RoomOpStatus,
  applyRoomOp,
  encodeRoomOp,
  readProposedOp,
  readRoomOp,
  rosterHash,
  signRoomOp,
  verifyRoomOp,
  type ApplyResult,
  type RoomOp,
  type RoomOpAction,
  type RoomOpResult,
  type OpTarget,
} from './room-ops.js';
export {
  ENVELOPE_V3,
  KEY_LINE_PREFIX,
  MAX_NOTICE_OPS,
  MAX_ROSTER_PAGES,
  MEMBER_KEY_BYTES,
  ROSTER_PAGE_BYTES,
  RosterStatus,
  advanceRoster,
  assembleRoster,
  signRosterPages,
  signedJsonKind,
  verifyRosterPage,
  generateMemberKey,
  isEpochNotice,
  openJoinEnvelope,
  peekKeyLine,
  sealJoinEnvelope,
  signEpochNotice,
  unwrapEpochKey,
  verifyEpochNotice,
  wrapEpochKey,
  type EpochNotice,
  type JoinPayload,
  type RosterChange,
  type RosterPage,
} from './envelope-v3.js';
export {
  KEY_PROOF_NONCE_BYTES,
  KEY_PROOF_VERSION,
  KeyProofStatus,
  MAX_KEY_REGISTRATION_BYTES,
  decodeKeyRegistration,
  encodeKeyRegistration,
  frameKeyRegistration,
  keyProofTranscript,
  sameNonce,
  signKeyProof,
  verifyKeyProof,
  type KeyProofFields,
  type KeyProofPurpose,
  type KeyRegistration,
} from './key-proof.js';
