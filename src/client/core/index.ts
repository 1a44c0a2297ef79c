/**
 * The companion core: everything SealClient, the proxy and the agent share, with no socket and no
 * timer (docs/COMPANIONS.md "Inside a companion"). CompanionSession is what the adapters hold: it
 * composes RoomCryptoEngine (what every line means), Outbox and KeyTrust (when a key may be sent
 * under), RoomMembership (JOIN, PART, KICK and QUIT), KeybotKey (keybot's key), HistoryCatchUp
 * (what was said while we were away) and the CompanionMemory that outlives a connection.
 */
export {
  CompanionSession,
  carryOut,
  type ActionHandlers,
  heldTextNotice,
  keybotPasswordProblem,
  keyChangesSuffix,
  sendLine,
  type CompanionAction,
  type CompanionSessionOptions,
  type Received,
  type SendPreview,
} from './session.js';
export { SerialQueue } from './queue.js';
export { RoomCryptoEngine } from './engine.js';
export { missingMessagesText } from './room-messages.js';
export type * from './types.js';
export { KeyTrust, Outbox, type OutboxOptions, type SubmitResult, type Released, type Unsent } from './outbox.js';
export { RoomMembership, type MembershipChange, type MembershipKind } from './membership.js';
export { CompanionMemory, MemoryBook, memoryFileFor } from './memory.js';
export { HISTORY_CAPS, CHATHISTORY_BATCH, HistoryCatchUp, historySummary, serverTime, type HistoryMessage, type HistoryShown, type LineTags } from './history.js';
export {
  ArmorCollector,
  KeybotKey,
  type ArmorStep,
  type KeybotOptions,
  type KeybotPinSource,
  type KeybotState,
  type KeybotStep,
} from './keybot.js';
export {
  KnownKeybots,
  decideKeybotTrust,
  sealchatHome,
  type KnownKeybot,
  type TrustDecision,
  type TrustSource,
} from './known-keybots.js';
