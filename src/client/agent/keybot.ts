/**
 * keybot's key on one agent session: given by the user, remembered in the known-keybots file, or
 * asked of keybot through the plugin. The rules are keybot-trust.ts's (SealClient and the proxy
 * share them); what differs is the transport and that every step is a notice for the user.
 *
 * The plugin's IRC connection is the only transport: to ask keybot for its key the session queues
 * `PRIVMSG keybot :pubkey` for the plugin to send, and reads the NOTICE lines of the answer out of
 * the incoming stream (hiding them).
 */
import { readPublicKey, type PublicKeyHandle } from '../../crypto/index.js';
import { backoffDelay } from '../../protocol/backoff.js';
import { KEYBOT_NICK, casefold } from '../../protocol/names.js';
import type { IncomingResult, RoomCryptoEngine } from '../core/index.js';
import { ArmorCollector } from '../core/index.js';
import { judgeKeybotKey, rememberKeybot, rememberedInMemory, rememberedKeyToUse, type CompanionMemory, type KeybotPinSource } from '../core/index.js';
import type { KnownKeybot, KnownKeybots } from '../core/index.js';
import type { AgentEvent } from './protocol.js';

/** What the user said about keybot's key, and how patiently to ask keybot for it. */
export interface KeybotOptions {
  /** Pin keybot to this fingerprint (else trust on first use, remembered in knownKeybots). */
  keybotFingerprint?: string;
  /** keybot's armored public key, if the user has it (then nothing is asked of keybot). */
  keybotPublicKey?: string;
  /** The trust-on-first-use file; undefined: remember nothing. */
  knownKeybots?: KnownKeybots;
  /** How long keybot has to answer `pubkey` (default 10 s), and when to ask again (default 30 s). */
  keyFetchTimeoutMs?: number;
  keyRetryMs?: number;
}

/** What {@link AgentKeybot} needs of its session. */
export interface KeybotHost {
  /** `host:port`, the known-keybots entry. */
  serverKey: string;
  /** keybot's pin for (account, server) when the known-keybots file keeps none (core/memory.ts). */
  memory?: CompanionMemory;
  nick: string;
  engine: RoomCryptoEngine;
  clock: () => number;
  notice(text: string, level: AgentEvent['level']): void;
  /** Queue a raw line for the plugin to send. */
  send(line: string): void;
  /** What the engine released once the key was pinned (envelopes that waited for it). */
  results(rs: IncomingResult[]): void;
}

/** How keybot's key stands on this connection. */
export type KeybotState =
  | { status: 'pinned'; fingerprint: string; source: KeybotPinSource }
  | { status: 'fetching'; since: number }
  | { status: 'unavailable'; reason: string; retryAt: number }
  | { status: 'mismatch'; expected: string; got: string };

/** How a pinned key came to be trusted, in the notice. */
const PINNED_HOW: Record<KeybotPinSource, string> = {
  'first-use': 'trusted on first use: compare it with the fingerprint your operator gives you',
  configured: 'matches the fingerprint you configured',
  known: 'the key you pinned before',
  'option-key': 'the key you gave',
};

/** keybot's key for one session. The session calls it in its one queue, so steps never overlap. */
export class AgentKeybot {
  private current: KeybotState = { status: 'unavailable', reason: 'not started', retryAt: Number.POSITIVE_INFINITY };
  private collector: ArmorCollector | undefined;
  private failures = 0;

  constructor(
    private readonly o: KeybotOptions,
    private readonly host: KeybotHost,
  ) {}

  get state(): KeybotState {
    return this.current;
  }

  /** Settle keybot's key from what we have, or ask keybot for it (through the plugin). */
  async start(): Promise<void> {
    const o = this.o;
    if (o.keybotPublicKey !== undefined) return this.pin(o.keybotPublicKey, false);
    const remembered = await this.remembered();
    if (remembered === null) return;
    const armored = rememberedKeyToUse(remembered, o.keybotFingerprint);
    if (armored !== undefined) return this.pin(armored, false);
    this.request(true);
  }

  /**
   * A NOTICE keybot sent: while its key is asked for, a line of the answer to us. Resolves true
   * when the line was taken (hide it).
   */
  async take(target: string, text: string): Promise<boolean> {
    if (!this.collector || casefold(target) !== casefold(this.host.nick)) return false;
    const step = this.collector.push(text);
    if (step.status === 'more') return true;
    this.collector = undefined;
    if (step.status === 'done') {
      await this.pin(step.armored, true);
      return true;
    }
    this.fail(`keybot did not send its key (${step.reason})`);
    return false;
  }

  /** A key request timed out, or is due again. */
  sweep(now: number): void {
    const k = this.current;
    if (k.status === 'fetching' && now - k.since > (this.o.keyFetchTimeoutMs ?? 10_000)) {
      this.collector = undefined;
      this.fail(`keybot did not send its key (is it online?); asking again later`);
    } else if (k.status === 'unavailable' && now >= k.retryAt) {
      this.request(false);
    }
  }

  private request(announce: boolean): void {
    this.collector = new ArmorCollector();
    this.current = { status: 'fetching', since: this.host.clock() };
    this.host.send(`PRIVMSG ${KEYBOT_NICK} :pubkey`);
    if (announce) this.host.notice(`asking ${KEYBOT_NICK} for its key (room keys are accepted only under keybot's pinned key)`, 'info');
  }

  private fail(reason: string): void {
    // Ask again later, less often each time (keybot may be offline for a while): 30 s, 1, 2, 4, 8 min.
    const retry = this.o.keyRetryMs ?? 30_000;
    const delay = backoffDelay(this.failures++, { initialMs: retry, maxMs: retry * 16 });
    this.current = { status: 'unavailable', reason, retryAt: this.host.clock() + delay };
    this.host.notice(reason, 'warn');
  }

  /**
   * The known-keybots entry for this server; null when the file cannot be read (reported). A
   * corrupt file: never guess. Envelopes wait; the user fixes the file.
   */
  private async remembered(): Promise<KnownKeybot | undefined | null> {
    try {
      return (await this.o.knownKeybots?.get(this.host.serverKey)) ?? rememberedInMemory(this.host.memory);
    } catch (err) {
      this.fail(`cannot read the known-keybots file: ${(err as Error).message}`);
      return null;
    }
  }

  /** Decide whether keybot's key may be pinned, and pin it. */
  private async pin(armored: string, fromKeybot: boolean): Promise<void> {
    const { o, host } = this;
    const read = await readPublicKey({ armored });
    if (!read.key) {
      this.fail(`keybot's key is unusable: ${read.reason ?? read.status}`);
      return;
    }
    const key: PublicKeyHandle = read.key;
    const remembered = await this.remembered();
    if (remembered === null) return;
    const judged = judgeKeybotKey({ ...o, server: host.serverKey }, key, remembered, fromKeybot);
    if (judged.status === 'mismatch') {
      host.engine.distrustKeybot(judged.reason);
      this.current = { status: 'mismatch', expected: judged.expected, got: judged.got };
      host.notice(judged.reason, 'error');
      return;
    }
    if (o.knownKeybots && judged.remember) {
      try {
        await rememberKeybot(o.knownKeybots, host.serverKey, key);
      } catch (err) {
        host.notice(`could not remember keybot's key in ${o.knownKeybots.file}: ${(err as Error).message}`, 'warn');
      }
    }
    host.memory?.pinKeybot(key.fingerprint);
    this.current = { status: 'pinned', fingerprint: key.fingerprint, source: judged.source };
    host.notice(`keybot's key ${key.fingerprint} is pinned (${PINNED_HOW[judged.source]})`, judged.source === 'first-use' ? 'warn' : 'info');
    host.results(await host.engine.setKeybotKey(key));
  }
}
