export type { AccountRecord, AccountStore } from './types.js';
export { StoreError } from './types.js';
export { KeyvAccountStore, openAccountStore, SCHEMA_VERSION } from './keyv-store.js';
export {
  HISTORY_CHUNK, KeyvRoomStore, openRoomStore,
  type LoadedRooms, type RoomMemberRecord, type RoomMemberState, type RoomRecord, type RoomStore, type StoredLine,
} from './rooms.js';
