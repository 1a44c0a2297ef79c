/**
 * Which keybot key a companion trusts. Envelopes are accepted only under the pinned key, so this
 * decision is the root of a member's trust (docs/PROTOCOL.md, "Who accepts an envelope", rule 3).
 *
 * Order: a fingerprint (or key) the user configured wins; else the key remembered for this server
 * (trust on first use, like ssh's known_hosts); else the key keybot offers now is remembered, with
 * a warning. A key that differs from the configured or remembered one is refused, never adopted:
 * the user must check it out of band and edit the file (or pass the new fingerprint).
 */
import { normalizeFingerprint } from '../../protocol/fingerprint.js';
// Files for Node, IndexedDB in the browser bundle (storage.ts, storage.browser.ts).
import { path, readDocument, storageHome, writeDocument } from './storage.js';

/** Where sealchat keeps per-user files: $SEALCHAT_HOME, else ~/.sealchat (in the browser: /sealchat in IndexedDB). */
export function sealchatHome(): string {
  return storageHome();
}

/** One remembered keybot. */
export interface KnownKeybot {
  fingerprint: string;
  /** The armored key, so later connections need not ask keybot for it. */
  publicKey?: string;
  /** ISO time of first use. */
  firstSeen: string;
}

/**
 * A file of pins, `{ "<host>:<port>": { fingerprint, ... } }`, mode 0600, written whole to a
 * temporary file and renamed. The known keybots and the known servers (server-trust.ts) are each
 * one. A corrupt file throws: never guess.
 */
export class PinFile<T extends { fingerprint: string }> {
  constructor(
    readonly file: string,
    /** Hex digits a valid fingerprint has (OpenPGP v4: 40, v6 and SHA-256: 64). */
    private readonly digits: readonly number[] = [40, 64],
  ) {}

  /** The entry remembered for `server` (`host:port`), if any, its fingerprint normalised. */
  async get(server: string): Promise<T | undefined> {
    const entry = (await this.readAll())[server];
    if (entry === undefined) return undefined;
    const fingerprint = typeof entry?.fingerprint === 'string' ? normalizeFingerprint(entry.fingerprint) : undefined;
    if (!fingerprint || !this.digits.includes(fingerprint.length)) throw new Error(`${this.file}: the entry for ${server} has no valid fingerprint`);
    return { ...entry, fingerprint };
  }

  /** Remember an entry for `server` (atomic write, 0600). */
  async set(server: string, entry: T): Promise<void> {
    const all = await this.readAll();
    all[server] = entry;
    await writeDocument(this.file, JSON.stringify(all, null, 2) + '\n');
  }

  private async readAll(): Promise<Record<string, T>> {
    const text = await readDocument(this.file);
    if (text === undefined) return {};
    const parsed: unknown = JSON.parse(text);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`${this.file}: expected a JSON object`);
    return parsed as Record<string, T>;
  }
}

/** The known-keybots file: `{ "<host>:<port>": KnownKeybot, ... }`, mode 0600. */
export class KnownKeybots extends PinFile<KnownKeybot> {
  constructor(file: string = path.join(sealchatHome(), 'known_keybots.json')) {
    super(file);
  }
}

/** Where the trusted fingerprint came from. */
export type TrustSource = 'configured' | 'known' | 'first-use';

/** The outcome of {@link decideKeybotTrust}. */
export type TrustDecision =
  | { status: 'trusted'; fingerprint: string; source: TrustSource }
  | { status: 'mismatch'; expected: string; got: string; source: Exclude<TrustSource, 'first-use'> };

/**
 * Decide whether the key with fingerprint `offered` may be pinned, given what the user configured
 * and what was remembered for this server. Pure; the caller stores first-use keys.
 */
export function decideKeybotTrust(options: { offered: string; configured?: string; known?: KnownKeybot }): TrustDecision {
  const offered = normalizeFingerprint(options.offered);
  if (!offered) throw new TypeError('decideKeybotTrust: offered is not a fingerprint');
  if (options.configured !== undefined) {
    const expected = normalizeFingerprint(options.configured);
    if (!expected) throw new TypeError('decideKeybotTrust: the configured keybot fingerprint is not a fingerprint');
    return expected === offered
      ? { status: 'trusted', fingerprint: offered, source: 'configured' }
      : { status: 'mismatch', expected, got: offered, source: 'configured' };
  }
  if (options.known) {
    return options.known.fingerprint === offered
      ? { status: 'trusted', fingerprint: offered, source: 'known' }
      : { status: 'mismatch', expected: options.known.fingerprint, got: offered, source: 'known' };
  }
  return { status: 'trusted', fingerprint: offered, source: 'first-use' };
}
