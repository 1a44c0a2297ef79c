/**
 * sealchat companions' library: what the terminal client, the local proxy and the plugin agent
 * build on. Their rules live once, in the transport-free core (core/index.ts): CompanionSession
 * composes the RoomCryptoEngine, the Outbox and KeyTrust, RoomMembership, keybot's key and the
 * CompanionMemory. SealClient (client.ts, over irc-framework), the proxy (proxy/) and the agent
 * (agent/) are adapters that each hold one CompanionSession per connection.
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
export {
  KnownServers,
  decideServerTrust,
  knownServersFileFor,
  type KnownServer,
  type PresentedCertificate,
  type ServerTrustDecision,
} from './server-trust.js';
export { SealTransport, ServerCertificateError, judgeServerCertificate, type SealTlsOptions } from './transport.js';
