/**
 * The one place in sealchat that imports openpgp.js.
 *
 * Everything else in src/crypto reaches OpenPGP through these re-exports, so the library's global
 * configuration is set exactly once, here, before any other module can use it (pmcrypto and
 * mailvelope follow the same pattern). Nothing outside src/crypto may import this file; other
 * components use src/crypto/index.ts.
 */
import * as openpgp from 'openpgp';

// Key envelopes carry a 32-byte key: AES-256 keeps the wrapping at least as strong as what it wraps.
openpgp.config.preferredSymmetricAlgorithm = openpgp.enums.symmetric.aes256;
// Envelopes are never compressed (the payload mixes attacker-chosen names with a secret key, the
// classic setting for compression oracles); and whatever a peer sends us must not inflate past this.
openpgp.config.preferredCompressionAlgorithm = openpgp.enums.compression.uncompressed;
openpgp.config.maxDecompressedMessageSize = 1 << 20;
// No "Version:"/"Comment:" armor headers: stored keys are normalised text, identical across versions.
openpgp.config.showVersion = false;
openpgp.config.showComment = false;

export const {
  config,
  enums,
  generateKey,
  revokeKey,
  reformatKey,
  readKey,
  readKeys,
  readPrivateKey,
  decryptKey,
  createMessage,
  readMessage,
  encrypt,
  decrypt,
  sign,
  readSignature,
} = openpgp;

export type {
  Key,
  PublicKey,
  PrivateKey,
  Subkey,
  SignaturePacket,
  Message,
  KeyID,
  AlgorithmInfo,
} from 'openpgp';
