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
export { KeyTrust, Outbox, type OutboxOptions, type SubmitResult, type Released, type Unsent } from './core/index.js';
export { RoomMembership, type MembershipChange, type MembershipKind } from './core/index.js';
export {
  RoomCryptoEngine,
  type RoomCryptoEngineOptions,
  type IncomingLine,
  type IncomingResult,
  type OutgoingResult,
  type RoomInfo,
  type TextCommand,
  type KeyResult,
  type MessageResult,
  type UndecryptableResult,
  type UndecryptableCode,
  type EnvelopeRejectedResult,
  type EnvelopeRejectCode,
  type PlaintextInRoomResult,
  type BotNoticeResult,
  type HeldResult,
} from './core/index.js';
export { SealClientError, type SealClientErrorCode } from './errors.js';
export { loadPrivateKey, type PrivateKeySource } from './identity.js';
export { ArmorCollector, type ArmorStep } from './core/index.js';
export {
  KnownKeybots,
  decideKeybotTrust,
  sealchatHome,
  type KnownKeybot,
  type TrustDecision,
  type TrustSource,
} from './core/index.js';
