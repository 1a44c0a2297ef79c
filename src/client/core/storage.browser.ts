/**
 * The browser twin of storage.ts (the web companion's bundle swaps it in): documents live in
 * IndexedDB (database `sealchat`, store `documents`, keyed by name), same names, same contract.
 * Nothing here is a secret in clear: pins and epochs, and the web companion's key sealed under
 * its passphrase (src/client/web/key-store.ts).
 */
/// <reference lib="dom" />

const DB_NAME = 'sealchat';
const STORE = 'documents';

/** POSIX path operations on document names (the subset memory.ts and known-keybots.ts use). */
export const path = {
  join(...parts: string[]): string {
    return parts
      .filter((p) => p !== '')
      .join('/')
      .replace(/\/{2,}/g, '/');
  },
  dirname(p: string): string {
    const i = p.lastIndexOf('/');
    return i <= 0 ? (i === 0 ? '/' : '.') : p.slice(0, i);
  },
  basename(p: string): string {
    return p.slice(p.lastIndexOf('/') + 1);
  },
};

/** The browser has no home folder: documents are named under /sealchat. */
export function storageHome(): string {
  return '/sealchat';
}

let opened: Promise<IDBDatabase> | undefined;

function db(): Promise<IDBDatabase> {
  opened ??= new Promise<IDBDatabase>((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => {
      const d = req.result;
      // Another tab (or "forget this browser") deletes or upgrades the database: let it, and open again next time.
      d.onversionchange = () => {
        d.close();
        opened = undefined;
      };
      resolve(d);
    };
    req.onerror = () => reject(req.error ?? new Error('IndexedDB cannot be opened'));
  });
  opened.catch(() => (opened = undefined));
  return opened;
}

async function run<T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest): Promise<T> {
  const d = await db();
  return new Promise<T>((resolve, reject) => {
    const tx = d.transaction(STORE, mode);
    const req = f(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(req.result as T);
    tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
    tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
  });
}

export async function readDocument(name: string): Promise<string | undefined> {
  const v = await run<unknown>('readonly', (s) => s.get(name));
  return typeof v === 'string' ? v : undefined;
}

export async function writeDocument(name: string, text: string): Promise<void> {
  await run('readwrite', (s) => s.put(text, name));
}

export async function removeDocument(name: string): Promise<void> {
  await run('readwrite', (s) => s.delete(name));
}
