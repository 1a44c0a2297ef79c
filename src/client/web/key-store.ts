/**
 * The web companion's private key, kept in this browser only: the armored key as the user gave
 * or made it, sealed with AES-256-GCM under a key derived from the passphrase (PBKDF2-SHA-256,
 * 600 000 iterations, OWASP 2023), stored as a document (core/storage: IndexedDB in the browser).
 * The passphrase is asked per session and never stored; the unsealed key lives in memory only,
 * as an unlocked handle. A key that is itself passphrase-protected (GnuPG, `sealchat keygen`)
 * stays protected inside the seal: the same passphrase unlocks both.
 */
/// <reference lib="dom" />
import { UnlockStatus, generateUserKey, unlockPrivateKey, type PrivateKeyHandle } from '../../crypto/index.js';
import { path, readDocument, removeDocument, storageHome, writeDocument } from '../core/storage.js';

const ITERATIONS = 600_000;
const FORMAT = 1;

/** What is stored: nothing of it is the key in clear. */
interface Sealed {
  format: number;
  account: string;
  fingerprint: string;
  publicArmored: string;
  salt: string;
  iv: string;
  sealed: string;
}

/** What the page may show about a stored key. */
export interface StoredKeyInfo {
  account: string;
  fingerprint: string;
  publicArmored: string;
}

export type UnsealResult = { ok: true; key: PrivateKeyHandle; info: StoredKeyInfo } | { ok: false; reason: string };

function b64(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function unb64(text: string): Uint8Array<ArrayBuffer> {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

async function deriveKey(passphrase: string, salt: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  const base = await crypto.subtle.importKey('raw', new TextEncoder().encode(passphrase), 'PBKDF2', false, ['deriveKey']);
  return crypto.subtle.deriveKey({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations: ITERATIONS }, base, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
}

/** The sealed key of one browser: one document per server (`host:port`). */
export class BrowserKeyStore {
  constructor(readonly server: string) {}

  private get name(): string {
    return path.join(storageHome(), 'web-keys', `${encodeURIComponent(this.server)}.json`);
  }

  /** The stored key's public facts, or undefined when this browser holds none. */
  async info(): Promise<StoredKeyInfo | undefined> {
    const s = await this.read();
    return s && { account: s.account, fingerprint: s.fingerprint, publicArmored: s.publicArmored };
  }

  /**
   * Check `armored` unlocks with `passphrase` (when it is protected) and is usable, then seal and
   * store it. Without a passphrase nothing is stored: the key must never rest unencrypted.
   */
  async importKey(o: { account: string; armored: string; passphrase: string }): Promise<UnsealResult> {
    if (o.passphrase.length < 8) return { ok: false, reason: 'choose a passphrase of at least 8 characters: it protects the key in this browser' };
    const salt = crypto.getRandomValues(new Uint8Array(16));
    const iv = crypto.getRandomValues(new Uint8Array(12));
    // The seal's key is derived (PBKDF2, in Web Crypto's own thread) while openpgp.js unlocks the
    // key: neither waits for the other. A key that does not unlock wastes only the derivation.
    const [r, k] = await Promise.all([unlockPrivateKey({ armored: o.armored, passphrase: o.passphrase }), deriveKey(o.passphrase, salt)]);
    if (r.status !== UnlockStatus.OK || !r.key) return { ok: false, reason: unlockWords(r.status, r.reason) };
    const pub = r.key.publicKey.armored;
    const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, k, new TextEncoder().encode(o.armored)));
    const doc: Sealed = { format: FORMAT, account: o.account, fingerprint: r.key.fingerprint, publicArmored: pub, salt: b64(salt), iv: b64(iv), sealed: b64(sealed) };
    await writeDocument(this.name, JSON.stringify(doc));
    return { ok: true, key: r.key, info: { account: o.account, fingerprint: r.key.fingerprint, publicArmored: pub } };
  }

  /** Make a key pair in this browser (protected by the passphrase), and store it sealed. */
  async generate(o: { account: string; passphrase: string }): Promise<UnsealResult> {
    if (o.passphrase.length < 8) return { ok: false, reason: 'choose a passphrase of at least 8 characters: it protects the key in this browser' };
    const k = await generateUserKey({ name: o.account, passphrase: o.passphrase });
    return this.importKey({ account: o.account, armored: k.privateArmored, passphrase: o.passphrase });
  }

  /** Unseal and unlock the stored key with this session's passphrase. */
  async unseal(passphrase: string): Promise<UnsealResult> {
    const s = await this.read();
    if (!s) return { ok: false, reason: 'this browser holds no key for this server' };
    let armored: string;
    try {
      const k = await deriveKey(passphrase, unb64(s.salt));
      armored = new TextDecoder().decode(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: unb64(s.iv) }, k, unb64(s.sealed)));
    } catch {
      return { ok: false, reason: 'the passphrase is wrong' };
    }
    const r = await unlockPrivateKey({ armored, passphrase });
    if (r.status !== UnlockStatus.OK || !r.key) return { ok: false, reason: unlockWords(r.status, r.reason) };
    return { ok: true, key: r.key, info: { account: s.account, fingerprint: s.fingerprint, publicArmored: s.publicArmored } };
  }

  /** Forget the key (the rest of "forget this browser" is the page's). */
  async forget(): Promise<void> {
    await removeDocument(this.name);
  }

  private async read(): Promise<Sealed | undefined> {
    const text = await readDocument(this.name);
    if (text === undefined) return undefined;
    const s = JSON.parse(text) as Sealed;
    if (s.format !== FORMAT || typeof s.sealed !== 'string') throw new Error('the key stored in this browser is not in a format this page knows');
    return s;
  }
}

function unlockWords(status: UnlockStatus, reason?: string): string {
  const why: Record<string, string> = {
    [UnlockStatus.INVALID]: 'it is not a readable OpenPGP private key',
    [UnlockStatus.NOT_PRIVATE]: 'it is a public key; the private key is needed',
    [UnlockStatus.PASSPHRASE_REQUIRED]: 'it is protected by a passphrase and none was given',
    [UnlockStatus.BAD_PASSPHRASE]: 'the passphrase does not unlock this key',
    [UnlockStatus.UNUSABLE]: 'the key cannot be used',
  };
  return `${why[status] ?? status}${reason ? ` (${reason})` : ''}`;
}
