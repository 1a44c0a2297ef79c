export type { AccountRecord, AccountStore } from './types.js';
export { StoreError } from './types.js';
export { KeyvAccountStore, openAccountStore, SCHEMA_VERSION } from './keyv-store.js';
