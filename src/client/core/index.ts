/**
 * The companion core: everything SealClient, the proxy and the agent share, with no socket and no
 * timer (docs/COMPANIONS.md "Inside a companion"). RoomCryptoEngine decides what every line
 * means; Outbox and KeyTrust decide when a key may be sent under; RoomMembership applies JOIN,
 * PART, KICK and QUIT; keybot.ts settles keybot's key; memory.ts keeps what must outlive a
 * connection.
 */
export { RoomCryptoEngine } from './engine.js';
export type * from './types.js';
export { KeyTrust, Outbox, type OutboxOptions, type SubmitResult, type Released, type Unsent } from './outbox.js';
export { RoomMembership, type MembershipChange, type MembershipKind } from './membership.js';
export { CompanionMemory, MemoryBook, memoryFileFor } from './memory.js';
export {
  ArmorCollector,
  judgeKeybotKey,
  rememberKeybot,
  rememberedInMemory,
  rememberedKeyToUse,
  settleKeybotKey,
  type ArmorStep,
  type KeybotPinSource,
  type KeybotTrustOutcome,
} from './keybot.js';
export {
  KnownKeybots,
  decideKeybotTrust,
  sealchatHome,
  type KnownKeybot,
  type TrustDecision,
  type TrustSource,
} from './known-keybots.js';
