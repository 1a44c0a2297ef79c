/**
 * keybot's key, for every companion: the one fetcher (KeybotKey) that reads it out of keybot's
 * NOTICE replies to `pubkey` (ArmorCollector), and the rules that settle which key is trusted (the
 * decision itself is known-keybots.ts's): a key or fingerprint the user configured wins, else the
 * key remembered for this server (the known-keybots file, or this process's CompanionMemory when
 * nothing is written to disk), else the key keybot offers now (trust on first use, remembered). A
 * key that differs from the configured or remembered one is refused, never adopted.
 *
 * IRC lines cannot hold newlines, so keybot sends the armored key one armor line per NOTICE.
 * Clients drop empty lines (irc-framework's say() does), so the blank line that ends the armor
 * headers may be missing: the armor is rebuilt from the BEGIN line, any `Key: value` headers, the
 * base64 body, the optional `=XXXX` checksum and the END line. Whatever keybot sends is only a
 * candidate: it is pinned by fingerprint, never because keybot said so.
 *
 * KeybotKey has no socket and no timer, like the rest of the core: CompanionSession (session.ts)
 * hands it the NOTICEs, the "keybot is (not) online" facts and the sweep's `now`, and carries out
 * what it answers (a line to send, a new state to show, envelopes that waited for the key).
 */
import { readPublicKey, type PublicKeyHandle } from '../../crypto/index.js';
import { backoffDelay } from '../../protocol/backoff.js';
import { normalizeFingerprint } from '../../protocol/fingerprint.js';
import { casefold } from '../../protocol/names.js';
import type { RoomCryptoEngine } from './engine.js';
import type { IncomingResult } from './types.js';
import { KnownKeybots, decideKeybotTrust, type KnownKeybot, type TrustSource } from './known-keybots.js';
import type { CompanionMemory } from './memory.js';

/** What the user said about keybot's key, and how patiently to ask keybot for it: every companion's options. */
export interface KeybotOptions {
  /** Pin keybot to this fingerprint (recommended: compare it with the operator out of band). */
  keybotFingerprint?: string;
  /** keybot's armored public key, if the user has it (then nothing is asked of keybot). */
  keybotPublicKey?: string;
  /** The trust-on-first-use file (default ~/.sealchat/known_keybots.json); false: remember nothing. */
  knownKeybotsFile?: string | false;
  /** How long keybot has to answer `pubkey` (default 10 s)... */
  keyFetchTimeoutMs?: number;
  /** ...and when to ask again after it did not (default 30 s, doubling to 8 min). */
  keyRetryMs?: number;
}

/** Why a pinned key is trusted: known-keybots.ts's sources, or `option-key` (the key the user gave). */
export type KeybotPinSource = TrustSource | 'option-key';

/** How keybot's key stands on a connection (every companion shows this one union). */
export type KeybotState =
  /** Being asked for (keybot's answer is on its way); envelopes wait. */
  | { status: 'fetching' }
  | { status: 'pinned'; fingerprint: string; source: KeybotPinSource }
  /** No key yet (keybot offline and none known): envelopes wait; asked again later. */
  | { status: 'unavailable'; reason: string }
  /** keybot offered a key other than the configured or pinned one: refused, envelopes are rejected. */
  | { status: 'mismatch'; expected: string; got: string; source: 'configured' | 'known'; reason: string };

/** What one step of KeybotKey asks its session to do. */
export interface KeybotStep {
  /** Send this to keybot as a PRIVMSG (`pubkey`). */
  ask?: string;
  /** The state changed (`retry`: a repeated attempt, not the first of this connection). */
  state?: KeybotState;
  retry?: boolean;
  /** Something the user should know that changes nothing (the file could not be written). */
  warning?: string;
  /** What the engine decided about the envelopes that waited for the key. */
  results?: IncomingResult[];
}

/** keybot did not answer within this long, or is offline: asked again no sooner than this after a line from it. */
const HEARD_RETRY_MS = 5000;

/**
 * keybot's key on one connection: settle it from what the user gave or what is remembered, else
 * ask keybot (`pubkey`) and pin its answer; ask again after a failure (when keybot is heard from,
 * and on a backoff timer); after a reconnect, check that keybot still offers the pinned key.
 * Its session calls it from its one queue, so steps never overlap.
 */
export class KeybotKey {
  private current: KeybotState = { status: 'unavailable', reason: 'not started' };
  /** The `pubkey` request in flight: `recheck` compares with the pin instead of pinning. */
  private fetch: { collector: ArmorCollector; since: number; started: boolean; recheck: boolean } | undefined;
  private failures = 0;
  private failedAt = 0;
  private retryAt = Number.POSITIVE_INFINITY;
  private recheckDue = false;
  private online = true;
  private readonly settled: Array<(s: KeybotState) => void> = [];

  constructor(
    private readonly o: KeybotOptions & { server: string; account: string; memory?: CompanionMemory },
    private readonly engine: RoomCryptoEngine,
  ) {}

  get state(): KeybotState {
    return this.current;
  }

  /** Resolves once the key is no longer being asked for (pinned, unavailable or refused). */
  whenSettled(): Promise<KeybotState> {
    if (this.current.status !== 'fetching') return Promise.resolve(this.current);
    return new Promise((resolve) => this.settled.push(resolve));
  }

  /** Settle keybot's key from what we have, or ask keybot for it. */
  async start(now: number): Promise<KeybotStep[]> {
    const o = this.o;
    if (o.keybotFingerprint !== undefined && !normalizeFingerprint(o.keybotFingerprint)) {
      return this.fail(`"${o.keybotFingerprint}" is not a key fingerprint`, now);
    }
    if (o.keybotPublicKey !== undefined) return this.pin(o.keybotPublicKey, false, now);
    const remembered = await this.remembered();
    if (typeof remembered === 'string') return this.fail(remembered, now);
    // The remembered key saves asking keybot (and works while it is offline), unless it is not
    // the one the user configured now.
    const armored = rememberedKeyToUse(remembered, o.keybotFingerprint);
    if (armored !== undefined) return this.pin(armored, false, now);
    return this.request(now, false);
  }

  /**
   * A NOTICE keybot sent to `target`: while its key is asked for, a line of the answer to us.
   * `taken`: the line belongs to the fetch (hide it). Lines before the key that are not about
   * `pubkey` (a reply to the user's own command) are not taken and the fetch goes on.
   */
  async take(target: string, text: string, now: number): Promise<{ taken: boolean; steps: KeybotStep[] }> {
    const f = this.fetch;
    if (!f || casefold(target) !== casefold(this.o.account)) return { taken: false, steps: [] };
    const step = f.collector.push(text);
    if (text.trim() === BEGIN) f.started = true;
    if (step.status === 'more') return { taken: true, steps: [] };
    if (step.status === 'done') {
      this.fetch = undefined;
      return { taken: true, steps: f.recheck ? await this.compare(step.armored) : await this.pin(step.armored, true, now) };
    }
    if (f.started) return { taken: false, steps: this.failFetch(`keybot's key was interrupted (${step.reason})`, now) };
    // keybot does not know `pubkey` (`unknown command "pubkey"`) or throttles us: that answer is
    // the fetch's, not the user's.
    if (/"pubkey"|^slow down/i.test(text)) return { taken: true, steps: this.failFetch(`keybot answered: ${text}`, now) };
    return { taken: false, steps: [] };
  }

  /** The server says keybot is not online (401, or the MONITOR offline reply). `taken`: it answered our fetch. */
  offline(now: number): { taken: boolean; steps: KeybotStep[] } {
    if (!this.fetch || this.fetch.started) return { taken: false, steps: [] };
    return { taken: true, steps: this.failFetch("cannot get keybot's key: keybot is not online", now) };
  }

  /**
   * keybot is there: it came online (`certain`, MONITOR says so) or a line came from it. Ask again
   * for a key we could not get (after a line, no sooner than 5 s after the failure), or check the
   * pinned key after a reconnect.
   */
  heard(now: number, certain: boolean): KeybotStep[] {
    if (this.fetch || !this.online) return [];
    if (this.current.status === 'unavailable' && (certain || now - this.failedAt >= HEARD_RETRY_MS)) return this.request(now, true);
    if (this.recheckDue && certain && this.current.status === 'pinned') return this.request(now, true, true);
    return [];
  }

  /** About once a second: a request that timed out, or one due again. */
  sweep(now: number): KeybotStep[] {
    const f = this.fetch;
    if (f && now - f.since > (this.o.keyFetchTimeoutMs ?? 10_000)) return this.failFetch('keybot did not send its key (is it online?)', now);
    if (!f && this.online && this.current.status === 'unavailable' && now >= this.retryAt) return this.request(now, true);
    return [];
  }

  /** The connection is gone: a fetch in flight cannot be answered. */
  connectionLost(now: number): KeybotStep[] {
    this.online = false;
    return this.fetch ? this.failFetch('the connection closed', now) : [];
  }

  /** A new connection: the pin stays; check that keybot still offers it once it is online. */
  reconnected(): void {
    this.online = true;
    this.recheckDue = this.engine.keybotFingerprint !== undefined;
  }

  // ---- internals -------------------------------------------------------------------------

  private request(now: number, retry: boolean, recheck = false): KeybotStep[] {
    this.fetch = { collector: new ArmorCollector(), since: now, started: false, recheck };
    if (recheck) return [{ ask: 'pubkey' }];
    this.current = { status: 'fetching' };
    return [{ ask: 'pubkey', state: this.current, retry }];
  }

  /** The fetch in flight failed: a recheck is tried again when keybot is next online. */
  private failFetch(reason: string, now: number): KeybotStep[] {
    const recheck = this.fetch?.recheck === true;
    this.fetch = undefined;
    return recheck ? [] : this.fail(reason, now);
  }

  private fail(reason: string, now: number): KeybotStep[] {
    // Ask again later, less often each time (keybot may be offline for a while): 30 s, 1, 2, 4, 8 min.
    const retry = this.o.keyRetryMs ?? 30_000;
    this.retryAt = now + backoffDelay(this.failures++, { initialMs: retry, maxMs: retry * 16 });
    this.failedAt = now;
    return this.set({ status: 'unavailable', reason });
  }

  private set(state: KeybotState): KeybotStep[] {
    this.current = state;
    for (const resolve of this.settled.splice(0)) resolve(state);
    return [{ state }];
  }

  /**
   * What is remembered for this server (the known-keybots file, else this process's memory), or
   * why it cannot be read: a corrupt file is never guessed at; envelopes wait, the user fixes it.
   */
  private async remembered(): Promise<KnownKeybot | undefined | string> {
    const file = this.o.knownKeybotsFile;
    try {
      return (file === false ? undefined : await new KnownKeybots(file).get(this.o.server)) ?? rememberedInMemory(this.o.memory);
    } catch (err) {
      return `cannot read the known-keybots file: ${(err as Error).message}`;
    }
  }

  /** Decide whether `armored` may be pinned, and pin it. */
  private async pin(armored: string, fromKeybot: boolean, now: number): Promise<KeybotStep[]> {
    const { o } = this;
    const read = await readPublicKey({ armored });
    if (!read.key) return this.fail(`keybot's key is unusable: ${read.reason ?? read.status}`, now);
    const key: PublicKeyHandle = read.key;
    const remembered = await this.remembered();
    if (typeof remembered === 'string') return this.fail(remembered, now);
    const judged = judgeKeybotKey(o, key, remembered, fromKeybot);
    if (judged.status === 'mismatch') {
      this.engine.distrustKeybot(judged.reason);
      const { status, expected, got, source, reason } = judged;
      return this.set({ status, expected, got, source, reason });
    }
    const steps: KeybotStep[] = [];
    if (o.knownKeybotsFile !== false && judged.remember) {
      const known = new KnownKeybots(o.knownKeybotsFile);
      try {
        await rememberKeybot(known, o.server, key);
      } catch (err) {
        // Remembering is a convenience: the key is pinned for this connection either way.
        steps.push({ warning: `could not remember keybot's key in ${known.file}: ${(err as Error).message}` });
      }
    }
    o.memory?.pinKeybot(key.fingerprint);
    this.failures = 0;
    steps.push(...this.set({ status: 'pinned', fingerprint: key.fingerprint, source: judged.source }));
    steps.push({ results: await this.engine.setKeybotKey(key, now) });
    return steps;
  }

  /** After a reconnect: keybot must still offer the pinned key. Another one is said loudly; the pin stays in force. */
  private async compare(armored: string): Promise<KeybotStep[]> {
    const expected = this.engine.keybotFingerprint;
    const read = await readPublicKey({ armored });
    // Not a key: asked again when keybot is next online.
    if (!read.key || expected === undefined) return [];
    this.recheckDue = false;
    if (read.key.fingerprint === expected) return [];
    const source = this.o.keybotFingerprint !== undefined ? 'configured' : 'known';
    return this.set({ status: 'mismatch', expected, got: read.key.fingerprint, source, reason: mismatchReason(this.o.server, expected, read.key.fingerprint, source) });
  }
}

/**
 * keybot's pin as this process remembers it (memory.ts), standing in for a known-keybots entry
 * when none is written (`knownKeybotsFile: false`): a later connection must meet the same key.
 */
function rememberedInMemory(memory: CompanionMemory | undefined): KnownKeybot | undefined {
  const fingerprint = memory?.keybotFingerprint;
  return fingerprint === undefined ? undefined : { fingerprint, firstSeen: '' };
}

/** The remembered key, if it may stand in for asking keybot: it is the one configured, or none is. */
function rememberedKeyToUse(remembered: KnownKeybot | undefined, keybotFingerprint: string | undefined): string | undefined {
  if (!remembered?.publicKey) return undefined;
  return keybotFingerprint === undefined || normalizeFingerprint(keybotFingerprint) === remembered.fingerprint ? remembered.publicKey : undefined;
}

/** The outcome of {@link judgeKeybotKey}. */
type KeybotJudgement =
  | { status: 'pinned'; source: KeybotPinSource; remember: boolean }
  | { status: 'mismatch'; expected: string; got: string; source: 'configured' | 'known'; reason: string };

/**
 * May `key` be pinned for `o.server`? A key the user gave (with no fingerprint to check it
 * against) is taken as it is; otherwise known-keybots.ts decides. `remember`: write it to the
 * known-keybots file (nothing was remembered for the server, or only the fingerprint, and keybot
 * has now sent the key itself).
 */
function judgeKeybotKey(
  o: Pick<KeybotOptions, 'keybotFingerprint' | 'keybotPublicKey'> & { server: string },
  key: PublicKeyHandle,
  remembered: KnownKeybot | undefined,
  fromKeybot: boolean,
): KeybotJudgement {
  if (o.keybotPublicKey !== undefined && o.keybotFingerprint === undefined) return { status: 'pinned', source: 'option-key', remember: false };
  const decision = decideKeybotTrust({
    offered: key.fingerprint,
    ...(o.keybotFingerprint !== undefined ? { configured: o.keybotFingerprint } : {}),
    ...(remembered ? { known: remembered } : {}),
  });
  if (decision.status === 'mismatch') {
    const reason = mismatchReason(o.server, decision.expected, decision.got, decision.source);
    return { status: 'mismatch', expected: decision.expected, got: decision.got, source: decision.source, reason };
  }
  return { status: 'pinned', source: decision.source, remember: !remembered || (fromKeybot && !remembered.publicKey) };
}

function mismatchReason(server: string, expected: string, got: string, source: 'configured' | 'known'): string {
  return (
    `keybot's key changed! ${server} offered ${got}, but ${source === 'configured' ? 'you configured' : 'you pinned'} ` +
    `${expected}. It is refused: no room key will be accepted until you verify the new key with the operator.`
  );
}

/** Remember `key` as keybot's for `server` (first seen now). Throws what the file does. */
function rememberKeybot(known: KnownKeybots, server: string, key: PublicKeyHandle): Promise<void> {
  return known.set(server, { fingerprint: key.fingerprint, publicKey: key.armored, firstSeen: new Date().toISOString() });
}

const BEGIN = '-----BEGIN PGP PUBLIC KEY BLOCK-----';
const END = '-----END PGP PUBLIC KEY BLOCK-----';
const HEADER_RE = /^[A-Za-z][A-Za-z0-9-]*: /;
const BODY_RE = /^[A-Za-z0-9+/=]+$/;
/** Public keys are a few KiB (RSA-4096 with a few signatures ~ 4 K characters); refuse floods. */
const MAX_LINES = 400;

export type ArmorStep =
  | { status: 'more' }
  | { status: 'done'; armored: string }
  /** The line is not part of an armored key (keybot said something else). */
  | { status: 'not-armor'; reason: string };

/** Collects the lines of one armored public key. */
export class ArmorCollector {
  private lines: string[] = [];
  private started = false;

  push(rawLine: string): ArmorStep {
    const line = rawLine.trim();
    if (!this.started) {
      if (line === '') return { status: 'more' };
      if (line !== BEGIN) return { status: 'not-armor', reason: `expected "${BEGIN}", got "${line.slice(0, 80)}"` };
      this.started = true;
      return { status: 'more' };
    }
    if (line === END) return { status: 'done', armored: this.rebuild() };
    if (line === '') return { status: 'more' };
    if (this.lines.length >= MAX_LINES) return { status: 'not-armor', reason: 'the key is longer than any public key should be' };
    if (!HEADER_RE.test(line) && !BODY_RE.test(line)) return { status: 'not-armor', reason: 'a line of the key is not armor' };
    this.lines.push(line);
    return { status: 'more' };
  }

  private rebuild(): string {
    const headers = this.lines.filter((l) => HEADER_RE.test(l));
    const body = this.lines.filter((l) => !HEADER_RE.test(l));
    return [BEGIN, ...headers, '', ...body, END, ''].join('\n');
  }
}
