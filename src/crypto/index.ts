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
