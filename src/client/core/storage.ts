/**
 * Where a companion keeps its small documents (the known-keybots pins, the memory of
 * memory.ts, the web companion's sealed key): the storage interface of the core, and its
 * backend for Node, files. The browser bundle swaps this file for storage.browser.ts (IndexedDB),
 * as it swaps src/crypto/primitives.ts (docs/DESIGN.md "Layers"); both export the same names.
 *
 * A document is named by a path (`~/.sealchat/known_keybots.json`); its text is replaced whole.
 */
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** The path operations documents are named with (node:path here, a POSIX subset in the browser). */
export { path };

/** Where sealchat keeps per-user documents: $SEALCHAT_HOME, else ~/.sealchat. */
export function storageHome(): string {
  return process.env.SEALCHAT_HOME || path.join(os.homedir(), '.sealchat');
}

/** The text of a document, or undefined when there is none; other failures throw. */
export async function readDocument(name: string): Promise<string | undefined> {
  try {
    return await readFile(name, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Replace a document whole: its folder 0700, a temporary file 0600, renamed over the old one. */
export async function writeDocument(name: string, text: string): Promise<void> {
  await mkdir(path.dirname(name), { recursive: true, mode: 0o700 });
  const tmp = `${name}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o600 });
  await rename(tmp, name);
}

/** Remove a document (none is fine). */
export async function removeDocument(name: string): Promise<void> {
  try {
    await unlink(name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
