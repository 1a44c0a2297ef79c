/**
 * The web companion's library (issue 17): the companion core over a browser WebSocket
 * (companion.ts) and the private key sealed in this browser (key-store.ts). src/web is its page.
 * Bundled for the browser only (src/web/build.ts swaps core/storage.ts and crypto/primitives.ts
 * for their browser twins).
 */
export { WebCompanion, STATUS, type ChatLine, type ConnectionState, type RoomView, type WebCompanionOptions } from './companion.js';
export { BrowserKeyStore, type StoredKeyInfo, type UnsealResult } from './key-store.js';
