/**
 * Member keys: a user's registered OpenPGP key from the directory, parsed and checked by
 * src/crypto, with the fields an envelope lists for a member. Looked up fresh from the directory
 * every time (a user may replace their key at any moment); only the parsing is cached, by the
 * armored text, and can be done ahead of need (`warm`: users coming online, everyone online when
 * keybot starts).
 */
import {
  KeyStatus,
  readPublicKey,
  signingPublicKeyOf,
  type EnvelopeMember,
  type PublicKeyHandle,
  type ReadPublicKeyResult,
} from '../crypto/index.js';
import { casefold, isValidAccountName, KEYBOT_NICK } from '../protocol/names.js';
import type { DirectoryUser, UserDirectory } from './directory.js';

/** Why a user cannot hold a room key. */
export type KeyProblem =
  /** Not an account name at all. */
  | 'invalid_name'
  /** No such account. */
  | 'unknown'
  /** The key service itself (it is in every room, but never a member of the key list). */
  | 'service'
  /** No key registered, or the key is expired, revoked or otherwise unusable now. */
  | 'no_key';

export type MemberKey =
  | {
      ok: true;
      /** Account name as registered. */
      account: string;
      online: boolean;
      key: PublicKeyHandle;
      member: EnvelopeMember;
    }
  | { ok: false; problem: KeyProblem; online: boolean; detail?: string };

/** Parsed keys kept, keyed by armored text (a few hundred bytes each). */
const CACHE_LIMIT = 2048;
/**
 * A key found unusable is read again after this long (a key usable now is kept until the instant
 * its own packets name, readPublicKey's validUntil: re-verifying every member's key on a timer
 * made the first epoch after it cost ~2 ms per member, 5 s for a room of 2,000).
 */
const FAILURE_TTL_MS = 10 * 60_000;

/** Most users queued for warming at once; beyond that, presence bursts are not worth following. */
const WARM_QUEUE_LIMIT = CACHE_LIMIT / 2;

export class KeyBook {
  /** Parsed keys by armored text, each with the instant (ms) from which it must be read again. */
  private readonly parsed = new Map<string, { until: number; result: ReadPublicKeyResult }>();
  /** Users whose keys are waiting to be parsed ahead of need (casefolded → name), in order. */
  private readonly warmQueue = new Map<string, string>();
  private warming: Promise<void> | undefined;

  constructor(
    private readonly directory: UserDirectory,
    /** The clock keys are judged by (tests move it). */
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * Parse `names`' registered keys ahead of need, one at a time in the background, so that an
   * invite or a rekey finds them parsed (readPublicKey costs ~2 ms a key, which would otherwise
   * fall on the invite's critical path). Only the parsing is cached, by armored text: every
   * lookup still asks the directory, so a key replaced after warming is seen as the new key.
   * Failures are ignored (the real lookup reports them).
   */
  warm(names: Iterable<string>): void {
    for (const name of names) {
      if (this.warmQueue.size >= WARM_QUEUE_LIMIT) break;
      if (isValidAccountName(name) && casefold(name) !== KEYBOT_NICK) this.warmQueue.set(casefold(name), name);
    }
    if (this.warming || this.warmQueue.size === 0) return;
    this.warming = this.drainWarmQueue();
  }

  /** Resolves once every key queued for warming has been parsed (or found unusable). */
  warmed(): Promise<void> {
    return this.warming ?? Promise.resolve();
  }

  private async drainWarmQueue(): Promise<void> {
    try {
      for (;;) {
        const next = this.warmQueue.entries().next();
        if (next.done) return;
        const [folded, name] = next.value;
        this.warmQueue.delete(folded);
        const user = await this.directory.lookupUser(name).catch(() => null);
        if (user?.publicKey && !user.service) await this.read(user.publicKey).catch(() => undefined);
        // Let IRC events and commands in between two keys.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.warming = undefined;
    }
  }

  /** Whether this armored key is parsed and cached now. */
  isParsed(armored: string): boolean {
    return this.parsed.has(armored);
  }

  /** Stop warming (the session ends). */
  stopWarming(): void {
    this.warmQueue.clear();
  }

  /** The usable key of `name`, or why there is none. Throws DirectoryError if the directory fails. */
  async lookup(name: string): Promise<MemberKey> {
    if (!isValidAccountName(name)) return { ok: false, problem: 'invalid_name', online: false };
    if (casefold(name) === KEYBOT_NICK) return { ok: false, problem: 'service', online: true };
    const user = await this.directory.lookupUser(name);
    if (!user) return { ok: false, problem: 'unknown', online: false };
    return this.check(user);
  }

  private async check(user: DirectoryUser): Promise<MemberKey> {
    if (user.service) return { ok: false, problem: 'service', online: user.online };
    if (!user.publicKey) return { ok: false, problem: 'no_key', online: user.online, detail: 'no key is registered' };
    const result = await this.read(user.publicKey);
    if (result.status !== KeyStatus.OK || !result.key) {
      return { ok: false, problem: 'no_key', online: user.online, detail: result.reason ?? result.status };
    }
    const key = result.key;
    return {
      ok: true,
      account: user.name,
      online: user.online,
      key,
      member: { account: user.name, fingerprint: key.fingerprint, signingKey: signingPublicKeyOf({ key }) },
    };
  }

  private async read(armored: string): Promise<ReadPublicKeyResult> {
    const now = this.clock();
    const hit = this.parsed.get(armored);
    if (hit && now < hit.until) {
      // Most recently used last, so the users in use stay when the cache is full.
      this.parsed.delete(armored);
      this.parsed.set(armored, hit);
      return hit.result;
    }
    const result = await readPublicKey({ armored, now });
    if (this.parsed.size >= CACHE_LIMIT) this.parsed.delete(this.parsed.keys().next().value!);
    this.parsed.delete(armored);
    this.parsed.set(armored, { until: result.status === KeyStatus.OK ? (result.validUntil ?? now) : now + FAILURE_TTL_MS, result });
    return result;
  }
}
