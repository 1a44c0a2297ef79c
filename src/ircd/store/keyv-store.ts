/**
 * AccountStore on keyv: @keyv/sqlite by default, any other keyv backend by URL.
 *
 * Layout (one keyv table): namespace `accounts` holds AccountRecords under casefold(name);
 * namespace `meta` holds `schema` = SCHEMA_VERSION, the hook for later migrations.
 *
 * Keyv pitfalls handled here (docs/STACK.md 7-10): keyv swallows store errors unless
 * throwOnErrors is set; the sqlite directory must exist first; node-sqlite3's 1 s busy timeout
 * is too short when the admin tool and the daemon touch the file together; @keyv/sqlite pages
 * its iterator 10 rows at a time unless iterationLimit is raised.
 */

import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import Keyv, { type KeyvStoreAdapter } from 'keyv';
import { KeyvSqlite } from '@keyv/sqlite';
import { casefold } from '../../protocol/names.js';
import { createLogger } from '../../util/log.js';
import { StoreError, type AccountRecord, type AccountStore } from './types.js';

const log = createLogger('store');

/** Version of the stored layout. Bump it and add a step to MIGRATIONS when the layout changes. */
export const SCHEMA_VERSION = 1;

/**
 * MIGRATIONS[n] upgrades a store at version n to n + 1. Version 0 means a fresh store (no
 * `meta:schema` record yet); its step only creates the record.
 */
const MIGRATIONS: Array<(accounts: Keyv, meta: Keyv) => Promise<void>> = [async () => {}];

/** keyv adapter packages by URL scheme (the ones keyv publishes). */
const ADAPTERS: Record<string, string> = {
  redis: '@keyv/redis',
  rediss: '@keyv/redis',
  valkey: '@keyv/valkey',
  postgres: '@keyv/postgres',
  postgresql: '@keyv/postgres',
  mysql: '@keyv/mysql',
  mongodb: '@keyv/mongo',
  'mongodb+srv': '@keyv/mongo',
  etcd: '@keyv/etcd',
};

export type AdapterFactory = () => Promise<KeyvStoreAdapter | Map<unknown, unknown>>;

export class KeyvAccountStore implements AccountStore {
  private closed = false;

  private constructor(
    private readonly accounts: Keyv<AccountRecord>,
    private readonly meta: Keyv<number>,
    readonly url: string,
    /** sqlite only: whether a row exists under a keyv key, without keyv's layers (see get). */
    private readonly hasRow: ((key: string) => Promise<boolean>) | null = null,
  ) {}

  /**
   * Open (and create if needed) the store at a keyv URL: `sqlite:///abs/path.sqlite`,
   * `memory:` (process-local, for tests), or any scheme in ADAPTERS.
   */
  static async open(url: string): Promise<KeyvAccountStore> {
    const opened: Array<Keyv> = [];
    try {
      const factory = await adapterFactory(url);
      // Two keyv instances, each on its own adapter: keyv writes its namespace onto the
      // adapter, so two namespaces cannot share one adapter object.
      const accountsAdapter = await factory();
      const accounts = makeKeyv<AccountRecord>(accountsAdapter, 'accounts');
      opened.push(accounts as Keyv);
      const meta = makeKeyv<number>(await factory(), 'meta');
      opened.push(meta as Keyv);
      const store = new KeyvAccountStore(accounts, meta, url, accountsAdapter instanceof KeyvSqlite ? rowProbe(accountsAdapter) : null);
      await store.migrate();
      return store;
    } catch (err) {
      await Promise.allSettled(opened.map((kv) => kv.disconnect()));
      if (err instanceof StoreError) throw err;
      throw new StoreError(`cannot open account store ${redact(url)}: ${(err as Error).message}`);
    }
  }

  async get(folded: string): Promise<AccountRecord | undefined> {
    this.checkOpen();
    // Most lookups of a name that is no account come from guest logins (a guest may not take an
    // account's nick): on sqlite one indexed `SELECT 1` answers those, at about half the cost of
    // keyv's get (issue 14: registration CPU). A row that exists is read through keyv as before.
    if (this.hasRow !== null && !(await this.hasRow(`accounts:${folded}`))) return undefined;
    const rec = await this.accounts.get(folded);
    return rec === undefined || rec === null ? undefined : rec;
  }

  async put(record: AccountRecord): Promise<void> {
    this.checkOpen();
    const ok = await this.accounts.set(casefold(record.name), { ...record });
    if (!ok) throw new StoreError(`store refused to write account ${record.name}`);
  }

  async delete(folded: string): Promise<boolean> {
    this.checkOpen();
    return this.accounts.delete(folded);
  }

  async list(): Promise<AccountRecord[]> {
    this.checkOpen();
    const iterate = this.accounts.iterator;
    if (!iterate) throw new StoreError(`the keyv backend of ${redact(this.url)} cannot list keys`);
    const out: AccountRecord[] = [];
    for await (const [, value] of iterate(undefined)) {
      if (value) out.push(value as AccountRecord);
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Disconnect both even if one fails; a half-opened sqlite handle may reject here (STACK.md 8).
    const results = await Promise.allSettled([this.accounts.disconnect(), this.meta.disconnect()]);
    for (const r of results) if (r.status === 'rejected') log.warn('closing the store failed', r.reason);
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreError('account store is closed');
  }

  private async migrate(): Promise<void> {
    const found = (await this.meta.get('schema')) ?? 0;
    if (typeof found !== 'number' || !Number.isInteger(found) || found < 0) {
      throw new Error(`meta:schema holds ${JSON.stringify(found)}, not a version number`);
    }
    if (found > SCHEMA_VERSION) {
      throw new Error(`its schema version ${found} is newer than this sealchatd understands (${SCHEMA_VERSION}); upgrade sealchatd`);
    }
    for (let v = found; v < SCHEMA_VERSION; v++) {
      if (v > 0) log.info(`migrating account store from schema ${v} to ${v + 1}`);
      await MIGRATIONS[v]!(this.accounts as Keyv, this.meta as Keyv);
      await this.meta.set('schema', v + 1);
    }
  }
}

export async function openAccountStore(url: string): Promise<AccountStore> {
  return KeyvAccountStore.open(url);
}

/**
 * An array value handed to keyv already serialised, item by item in keyv's format, joined with
 * commas: the serialiser below writes it as it is. Only for keyv instances made by makeKeyv on a
 * store that keyv serialises for (`kv.serialize` set).
 */
export class SerializedArray {
  constructor(readonly items: string) {}
}

/**
 * keyv's own serialiser, byte for byte, at JSON.stringify's speed. keyv's default walks every
 * value in JavaScript and builds the text by concatenation (in a busy room that was most of the
 * history write path); its only differences from JSON.stringify for the plain records stored
 * here are that a string value starting with ':' gets a second ':' (undone on reading) and that
 * a Buffer becomes ':base64:…'. A string value starting with ':' always shows in JSON as `":`
 * right after `[`, `,` or `:`; when that sequence occurs anywhere (also inside a string, a
 * harmless false alarm) keyv's serialiser runs instead. The records stored here hold no
 * Buffers, functions or undefined array entries (the other cases where the two differ).
 */
export function fastSerializer(keyvSerialize: (data: never) => string | Promise<string>): (data: unknown) => string | Promise<string> {
  return (data) => {
    // A value given as the serialised text of its items (the room store's history chunks).
    const stored = data as { value?: unknown; expires?: unknown };
    if (stored.value instanceof SerializedArray) {
      const expires = stored.expires === undefined ? '' : `,"expires":${JSON.stringify(stored.expires)}`;
      return `{"value":[${stored.value.items}]${expires}}`;
    }
    const json = JSON.stringify(data);
    if (json === undefined || json.includes('[":') || json.includes(',":') || json.includes(':":')) return keyvSerialize(data as never);
    return json;
  };
}

export function makeKeyv<T>(store: KeyvStoreAdapter | Map<unknown, unknown>, namespace: string): Keyv<T> {
  const kv = new Keyv<T>({ store: store as KeyvStoreAdapter, namespace, throwOnErrors: true });
  // keyv's default serialiser is not exported; the instance holds it (undefined for stores that
  // keep values as they are).
  if (kv.serialize) kv.serialize = fastSerializer(kv.serialize) as typeof kv.serialize;
  // Errors are also thrown to the caller (throwOnErrors); the listener keeps an 'error' emit
  // from becoming an uncaught exception.
  kv.on('error', (err: unknown) => log.debug(`keyv ${namespace}: ${(err as Error)?.message ?? String(err)}`));
  return kv;
}

export async function adapterFactory(url: string): Promise<AdapterFactory> {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined) throw new StoreError(`store URL ${JSON.stringify(url)} has no scheme (expected e.g. sqlite:///path/sealchat.sqlite)`);
  if (scheme === 'memory') {
    return async () => new Map();
  }
  if (scheme === 'sqlite') {
    const file = url.slice('sqlite://'.length);
    if (!url.startsWith('sqlite://') || file === '') throw new StoreError(`store URL ${url} is not sqlite://<path>`);
    if (file !== ':memory:') {
      await mkdir(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 });
      // Password hashes live here: create the file owner-only. SQLite gives its -wal and -shm
      // files the database file's mode. ('a' never truncates an existing database.)
      await (await open(file, 'a', 0o600)).close();
    }
    return async () => {
      const adapter = new KeyvSqlite({ uri: url, busyTimeout: 10_000, iterationLimit: 100_000 });
      // The adapter also emits a failed connect as 'error' before keyv listens: swallow that
      // copy, the rejected query below carries the same error to the caller.
      adapter.on('error', () => {});
      try {
        // WAL: concurrent readers with one writer, ~3.5x faster writes. synchronous=FULL: a
        // committed write has reached the disk when set() resolves (durable put()).
        await adapter.query('PRAGMA journal_mode=WAL');
        await adapter.query('PRAGMA synchronous=FULL');
      } catch (err) {
        await adapter.disconnect().catch(() => {});
        throw err;
      }
      return withSetMany(adapter);
    };
  }
  const pkg = ADAPTERS[scheme];
  if (pkg === undefined) {
    throw new StoreError(`unsupported store URL scheme "${scheme}:" (supported: sqlite, memory, ${Object.keys(ADAPTERS).join(', ')})`);
  }
  let mod: { default?: unknown };
  try {
    mod = (await import(pkg)) as { default?: unknown };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new StoreError(`store URL ${redact(url)} needs the keyv adapter ${pkg}: install it with \`npm install ${pkg}\``);
    }
    throw err;
  }
  const Adapter = mod.default as new (uri: string) => KeyvStoreAdapter;
  if (typeof Adapter !== 'function') throw new StoreError(`${pkg} has no default export to construct an adapter from`);
  return async () => new Adapter(url);
}

/**
 * Whether the adapter's table holds a row under a key as keyv writes it (`<namespace>:<key>`).
 * keyv's get answers undefined for a missing row and reads, checks expiry and parses a present one,
 * so "no row" here is exactly keyv's undefined.
 */
function rowProbe(adapter: KeyvSqlite): (key: string) => Promise<boolean> {
  const sql = `SELECT 1 FROM ${adapter.opts.table as string} WHERE key = ? LIMIT 1`;
  return async (key) => ((await adapter.query(sql, key)) as unknown[]).length > 0;
}

/** Rows per upsert or delete statement: at most 2 parameters each, far below SQLite's 32766. */
const SET_MANY_ROWS = 256;

/**
 * @keyv/sqlite has no setMany, so keyv's setMany falls back to one INSERT per entry, and each is
 * a transaction of its own with an fsync (synchronous=FULL). The room store writes many history
 * chunks at once (every room that had traffic since the last write-behind): give the adapter a
 * setMany that writes them in one statement, hence one transaction and one fsync, with the same
 * rows (keyv has already prefixed the keys and serialised the values) and the same upsert as its
 * set().
 */
function withSetMany(adapter: KeyvSqlite): KeyvSqlite {
  const table = adapter.opts.table as string;
  const setMany = async (entries: Array<{ key: string; value: unknown }>): Promise<boolean[]> => {
    for (let i = 0; i < entries.length; i += SET_MANY_ROWS) {
      const part = entries.slice(i, i + SET_MANY_ROWS);
      const params: unknown[] = [];
      for (const e of part) params.push(e.key, e.value);
      await adapter.query(`INSERT INTO ${table} (key, value) VALUES ${part.map(() => '(?, ?)').join(', ')} ON CONFLICT(key) DO UPDATE SET value=excluded.value`, ...params);
    }
    return entries.map(() => true);
  };
  // Its own deleteMany first reads every row it deletes and matches them with an Array.find per
  // key (quadratic: 4,000 history parts dropped at once took most of a write-behind's CPU); one
  // DELETE does the same. True when any row was there, as its own.
  const deleteMany = async (keys: string[]): Promise<boolean> => {
    let found = false;
    for (let i = 0; i < keys.length; i += SET_MANY_ROWS) {
      const part = keys.slice(i, i + SET_MANY_ROWS);
      const rows = (await adapter.query(`DELETE FROM ${table} WHERE key IN (${part.map(() => '?').join(', ')}) RETURNING key`, ...part)) as unknown[];
      found ||= rows.length > 0;
    }
    return found;
  };
  return Object.assign(adapter, { setMany, deleteMany });
}

/** Hide credentials in URLs (redis://user:pass@host) before they reach logs or errors. */
export function redact(url: string): string {
  return url.replace(/\/\/([^/@]*)@/, '//***@');
}
