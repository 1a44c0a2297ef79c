/**
 * keybot's own key directory on an ordinary IRC network (docs/NETWORKS.md): which public key each
 * services account registered, by proving possession (src/crypto/key-proof.ts; the proof is
 * checked by registration.ts before anything is stored here). Kept in keyv over sqlite in the
 * data dir (`keybot.keys.sqlite`), casefolded account → record.
 *
 * A key CHANGE is the dangerous step: whoever can log in as the account (its password, or the
 * network's services operators) could register a key of their own and be keyed into the
 * account's rooms. So a change takes effect at once only when the registered key endorsed it;
 * otherwise it is recorded as pending and takes effect after the cool-down, during which the
 * registered key's owner can cancel it by registering their key again. Rooms do not take the new
 * key silently either way: a member whose key changed is removed and must be invited again
 * (the pins rule, src/bot/service.ts).
 */
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import KeyvSqlite from '@keyv/sqlite';
import Keyv from 'keyv';
import { casefold } from '../../protocol/names.js';
import { createLogger } from '../../util/log.js';

const log = createLogger('keybot');

/** The key file in keybot's data dir. */
export const NETWORK_KEYS_FILE = 'keybot.keys.sqlite';
/** Default cool-down of an unendorsed key change: 7 days. */
export const DEFAULT_KEY_CHANGE_COOLDOWN_MS = 7 * 24 * 3600_000;

export interface StoredKey {
  /** Account as the network spelled it when the key was registered. */
  account: string;
  publicKey: string;
  fingerprint: string;
  registeredAt: number;
  /** keybot's own key (never a member). */
  service?: boolean;
  /** An unendorsed change waiting out the cool-down. */
  pending?: { publicKey: string; fingerprint: string; requestedAt: number; effectiveAt: number };
}

export type RegisterOutcome =
  | { status: 'registered'; fingerprint: string; replaced?: string }
  | { status: 'unchanged'; fingerprint: string }
  /** An unendorsed change: recorded, takes effect at `effectiveAt` unless cancelled. */
  | { status: 'pending'; fingerprint: string; current: string; effectiveAt: number }
  /** The registered key came back while a change was pending: the change is dropped. */
  | { status: 'cancelled'; fingerprint: string; dropped: string };

export interface NetworkKeyStoreOptions {
  /** How long an unendorsed key change waits (default 7 days). */
  coolDownMs?: number;
  now?: () => number;
}

export class NetworkKeyStore {
  private readonly coolDownMs: number;
  private readonly now: () => number;

  private constructor(
    private readonly kv: Keyv<StoredKey>,
    private readonly adapter: { disconnect(): Promise<void> } | undefined,
    o: NetworkKeyStoreOptions,
  ) {
    this.coolDownMs = o.coolDownMs ?? DEFAULT_KEY_CHANGE_COOLDOWN_MS;
    this.now = o.now ?? Date.now;
  }

  /** Open (creating, mode 0600) `<dataDir>/keybot.keys.sqlite`. */
  static async open(dataDir: string, o: NetworkKeyStoreOptions = {}): Promise<NetworkKeyStore> {
    const file = path.join(dataDir, NETWORK_KEYS_FILE);
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    await (await open(file, 'a', 0o600)).close();
    const adapter = new KeyvSqlite({ uri: `sqlite://${file}`, busyTimeout: 10_000, iterationLimit: 100_000 });
    adapter.on('error', () => {});
    await adapter.query('PRAGMA journal_mode=WAL');
    const kv = new Keyv<StoredKey>({ store: adapter, namespace: 'keys', throwOnErrors: true });
    kv.on('error', (err: unknown) => log.debug(`key store: ${(err as Error)?.message ?? String(err)}`));
    return new NetworkKeyStore(kv, adapter, o);
  }

  /** The cool-down in force (for replies). */
  get coolDown(): number {
    return this.coolDownMs;
  }

  /** The account's key; a pending change whose cool-down is over is applied first. */
  async get(account: string): Promise<StoredKey | undefined> {
    const rec = await this.kv.get(casefold(account));
    if (!rec?.pending || rec.pending.effectiveAt > this.now()) return rec ?? undefined;
    const p = rec.pending;
    const next: StoredKey = { account: rec.account, publicKey: p.publicKey, fingerprint: p.fingerprint, registeredAt: p.effectiveAt };
    await this.kv.set(casefold(account), next);
    log.warn(`${rec.account}: key change to ${p.fingerprint} took effect after the cool-down (was ${rec.fingerprint})`);
    return next;
  }

  /**
   * Register a key whose possession was proven. `endorsed`: the registered key signed the change
   * (registration.ts checked it); only then does a change take effect at once.
   */
  async register(o: { account: string; publicKey: string; fingerprint: string; endorsed: boolean }): Promise<RegisterOutcome> {
    const f = casefold(o.account);
    const rec = await this.get(o.account);
    const now = this.now();
    if (!rec) {
      await this.kv.set(f, { account: o.account, publicKey: o.publicKey, fingerprint: o.fingerprint, registeredAt: now });
      return { status: 'registered', fingerprint: o.fingerprint };
    }
    if (rec.fingerprint === o.fingerprint) {
      if (!rec.pending) return { status: 'unchanged', fingerprint: o.fingerprint };
      const { pending: dropped, ...kept } = rec;
      await this.kv.set(f, kept);
      return { status: 'cancelled', fingerprint: o.fingerprint, dropped: dropped.fingerprint };
    }
    if (o.endorsed) {
      await this.kv.set(f, { account: o.account, publicKey: o.publicKey, fingerprint: o.fingerprint, registeredAt: now });
      return { status: 'registered', fingerprint: o.fingerprint, replaced: rec.fingerprint };
    }
    // The same pending key again keeps its clock: asking twice does not shorten or restart it.
    const pending = rec.pending?.fingerprint === o.fingerprint
      ? rec.pending
      : { publicKey: o.publicKey, fingerprint: o.fingerprint, requestedAt: now, effectiveAt: now + this.coolDownMs };
    await this.kv.set(f, { ...rec, pending });
    return { status: 'pending', fingerprint: o.fingerprint, current: rec.fingerprint, effectiveAt: pending.effectiveAt };
  }

  /** keybot's own key, under its services account. */
  async setServiceKey(account: string, publicKey: string, fingerprint: string): Promise<void> {
    await this.kv.set(casefold(account), { account, publicKey, fingerprint, registeredAt: this.now(), service: true });
  }

  /** Every account with a key (keybot's own excluded). */
  async accounts(): Promise<string[]> {
    const out: string[] = [];
    for await (const [, rec] of this.kv.iterator!(undefined)) {
      const r = rec as StoredKey | undefined;
      if (r && !r.service) out.push(r.account);
    }
    return out;
  }

  async close(): Promise<void> {
    await this.adapter?.disconnect().catch(() => undefined);
  }
}
