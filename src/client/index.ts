/**
 * sealchat companions' library: what the terminal client, the local proxy and the plugin agent
 * build on. SealClient owns an IRC connection; RoomCryptoEngine is the same crypto session for
 * layers that already have one (a proxy sits between a client and the server), and KeyTrust and
 * Outbox (outbox.ts) decide, for them too, when a room key may be sent under and what to do with
 * text that has to wait for the next one. RoomMembership (membership.ts) applies JOIN, PART, KICK
 * and QUIT to both, with the same rules in every companion.
 */
export {
  SealClient,
  type SealConnectOptions,
  type SealClientEvents,
  type ConnectResult,
  type KeybotTrust,
  type RoomMessageEvent,
  type ReconnectOptions,
  type SendResult,
} from './client.js';
// The companion core (core/index.ts): engine, outbox, membership, keybot's key, memory.
export * from './core/index.js';
export { SealClientError, type SealClientErrorCode } from './errors.js';
export { loadPrivateKey, type PrivateKeySource } from './identity.js';
