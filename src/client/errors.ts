/** Why a SealClient call failed. */
export type SealClientErrorCode =
  /** Not connected (yet, or any more). */
  | 'not-connected'
  /** Registration refused: wrong account or password, or the nick is taken. */
  | 'auth'
  /** The connection failed or closed. */
  | 'connection'
  /** The server's TLS certificate is not the pinned one (nothing was sent to it). */
  | 'tls'
  /** The private key could not be read or unlocked. */
  | 'key'
  /** keybot's key could not be pinned (unavailable, or different from the pinned one). */
  | 'keybot-trust'
  /** Nothing was sent: the room is encrypted and we hold no key for it. */
  | 'no-key'
  /** Nothing was sent: the target is not a sealchat room. */
  | 'not-encrypted'
  /** keybot is not online, so it cannot answer. */
  | 'keybot-offline'
  /** No answer in time. */
  | 'timeout'
  /** keybot refused a request (a key registration on an ordinary IRC network). */
  | 'keybot-refused';

/** An expected failure of a SealClient call, with a sentence for the user. */
export class SealClientError extends Error {
  constructor(
    readonly code: SealClientErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SealClientError';
  }
}
