/**
 * Persistent account storage, by role. The daemon is the one writer while it runs; the admin
 * tool opens the store directly only when no daemon answers on the control socket.
 */

/** One account, stored under casefold(name). Timestamps are ISO 8601 strings. */
export interface AccountRecord {
  /** Display name as registered. */
  name: string;
  /** argon2id encoded hash (PHC string). */
  passwordHash: string;
  /** Armored OpenPGP public key; null only for the service account before it registers its key. */
  publicKey: string | null;
  /** Lowercase hex fingerprint of publicKey; null when publicKey is null. */
  fingerprint: string | null;
  /** The reserved key-service account (keybot). */
  service?: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface AccountStore {
  /** The record stored under a casefolded name, or undefined. */
  get(folded: string): Promise<AccountRecord | undefined>;
  /** Insert or replace the record under casefold(record.name). Resolves once it is durable. */
  put(record: AccountRecord): Promise<void>;
  /** Remove a record; false if there was none. */
  delete(folded: string): Promise<boolean>;
  /** Every record, in no particular order. */
  list(): Promise<AccountRecord[]>;
  /** Release the backend (connections, file handles). Idempotent. */
  close(): Promise<void>;
}

export class StoreError extends Error {
  override name = 'StoreError';
}
