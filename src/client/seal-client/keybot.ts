/**
 * keybot, for SealClient (client.ts): pinning its key (pinning.ts, keybot-trust.ts), checking it
 * again after a reconnect, and its commands with their NOTICE replies.
 */
import { readPublicKey } from '../../crypto/index.js';
import { KEYBOT_NICK, casefold } from '../../protocol/names.js';
import type { BotNoticeResult, IncomingResult } from '../core/index.js';
import { ArmorCollector } from '../core/index.js';
import { settleKeybotKey } from '../core/index.js';
import { SealClientConnection } from './connection.js';
import type { KeybotTrust } from './types.js';

/** keybot's reply to one command is one burst of NOTICEs: it is over after this much silence. */
const REPLY_QUIET_MS = 300;

/** Talk to keybot over the connection. */
export abstract class SealClientKeybot extends SealClientConnection {
  /** `invite <user>...`: ask keybot for a new room with these users. Resolves with keybot's reply. */
  invite(users: string[]): Promise<string[]> {
    return this.command(`invite ${names(users)}`);
  }

  /** `invite <#room> <user>...`: add users to a room we are in. */
  inviteTo(room: string, users: string[]): Promise<string[]> {
    return this.command(`invite ${room} ${names(users)}`);
  }

  /** Who is online (keybot's answer). */
  online(): Promise<string[]> {
    return this.command('online');
  }

  /** Whether `user` exists, is online and has a usable key (keybot's answer). */
  status(user: string): Promise<string[]> {
    return this.command(`status ${names([user])}`);
  }

  /** The rooms keybot has us in (keybot's answer). See {@link localRooms} for the keys we hold. */
  rooms(): Promise<string[]> {
    return this.command('rooms');
  }

  /** Leave a room (keybot removes us and rekeys the others); our keys for it are wiped. */
  leave(room: string): Promise<string[]> {
    return this.command(`leave ${room}`);
  }

  /** Ask keybot to re-send the current key of a room we are in. */
  requestKey(room: string): Promise<string[]> {
    return this.command(`key ${room}`);
  }

  /**
   * Send any keybot command; resolves with the NOTICE lines keybot sends back to us (they are
   * also emitted as 'bot-notice'), or [] if it says nothing within the timeout.
   */
  command(text: string, timeoutMs = 5000): Promise<string[]> {
    const { irc } = this.connected();
    const run = this.commandTail.then(
      () =>
        new Promise<string[]>((resolve, reject) => {
          const finish = (): void => {
            const p = this.pending!;
            clearTimeout(p.quiet);
            clearTimeout(p.deadline);
            this.pending = undefined;
            resolve(p.lines);
          };
          this.pending = { lines: [], resolve, reject, deadline: setTimeout(finish, timeoutMs) };
          this.pending.deadline.unref();
          irc.say(KEYBOT_NICK, text);
        }),
    );
    this.commandTail = run.catch(() => undefined);
    return run;
  }

  /** keybot's text: a line of its key while we fetch it, else a reply or announcement. */
  protected botNotice(r: BotNoticeResult): void {
    const toUs = casefold(r.target) === casefold(this.options!.nick);
    if (toUs && this.keyFetch) {
      const step = this.keyFetch.collector.push(r.text);
      if (step.status === 'done') this.keyFetch.done(step.armored);
      else if (step.status === 'not-armor') this.keyFetch.done(new Error(`keybot did not send its key (${step.reason}; it said: ${r.text})`));
      if (step.status !== 'not-armor') return;
    }
    const { kind: _k, ...rest } = r;
    this.emit('bot-notice', rest);
    if (toUs && this.pending) {
      const p = this.pending;
      p.lines.push(r.text);
      clearTimeout(p.quiet);
      p.quiet = setTimeout(() => {
        clearTimeout(p.deadline);
        if (this.pending === p) this.pending = undefined;
        p.resolve(p.lines);
      }, REPLY_QUIET_MS);
    }
  }

  /** Find keybot's key and decide whether to pin it; at most one attempt at a time. */
  protected settleKeybot(): Promise<KeybotTrust> {
    this.fetching ??= this.pinKeybot()
      .catch((err: Error): KeybotTrust => ({ status: 'unavailable', reason: err.message }))
      .then((trust) => {
        this.fetching = undefined;
        this.trust = trust;
        return trust;
      });
    return this.fetching;
  }

  protected async pinKeybot(): Promise<KeybotTrust> {
    const o = this.options!;
    const engine = this.engine!;
    const server = this.server();
    const outcome = await settleKeybotKey({
      server,
      ...(o.keybotFingerprint !== undefined ? { keybotFingerprint: o.keybotFingerprint } : {}),
      ...(o.keybotPublicKey !== undefined ? { keybotPublicKey: o.keybotPublicKey } : {}),
      ...(o.knownKeybotsFile !== undefined ? { knownKeybotsFile: o.knownKeybotsFile } : {}),
      fetch: () => this.fetchKeybotKey(),
      ...(this.memory ? { memory: this.memory } : {}),
    });
    if (outcome.status === 'unavailable') {
      this.trust = { status: 'unavailable', reason: outcome.reason };
      this.emit('keybot-unavailable', { reason: outcome.reason });
      return this.trust;
    }
    if (outcome.status === 'mismatch') {
      engine.distrustKeybot(outcome.reason);
      this.trust = { status: 'mismatch', expected: outcome.expected, got: outcome.got, source: outcome.source };
      this.emit('keybot-key-changed', { server, expected: outcome.expected, got: outcome.got, source: outcome.source });
      return this.trust;
    }
    const { key, source } = outcome;
    const results = await engine.setKeybotKey(key);
    this.trust = { status: 'pinned', fingerprint: key.fingerprint, source };
    this.emit('keybot-pinned', { fingerprint: key.fingerprint, source, server });
    this.enqueue(() => this.emitResults(results));
    return this.trust;
  }

  /** Ask keybot for its armored public key (`pubkey`). */
  protected fetchKeybotKey(): Promise<string> {
    const irc = this.irc!;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error('keybot did not answer "pubkey"')), this.timeoutMs());
      const done = (r: string | Error): void => {
        clearTimeout(timer);
        this.keyFetch = undefined;
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      this.keyFetch = { collector: new ArmorCollector(), done };
      irc.say(KEYBOT_NICK, 'pubkey');
    });
  }

  /** Re-check keybot's key on a new connection: it must be the pinned one. */
  protected async recheckKeybot(): Promise<void> {
    const expected = this.engine?.keybotFingerprint;
    if (!this.keybotCheckDue || this.keybotChecking || this.phase !== 'online' || !expected) return;
    this.keybotChecking = true;
    try {
      const read = await readPublicKey({ armored: await this.fetchKeybotKey() });
      if (!read.key) return; // not a key: asked again when keybot next comes online
      this.keybotCheckDue = false;
      if (read.key.fingerprint === expected) return;
      // The pinned key stays in force (envelopes signed by the other key are refused); say it loudly.
      const source = this.options!.keybotFingerprint !== undefined ? 'configured' : 'known';
      this.trust = { status: 'mismatch', expected, got: read.key.fingerprint, source };
      this.emit('keybot-key-changed', { server: this.server(), expected, got: read.key.fingerprint, source });
    } catch {
      // keybot is not online (yet): MONITOR tells us when it is.
    } finally {
      this.keybotChecking = false;
    }
  }

  /** Report what the engine decided (rooms.ts). */
  protected abstract emitResults(results: IncomingResult[]): void;
}

/** Nick lists for keybot commands: no spaces or control characters can smuggle another command. */
function names(users: string[]): string {
  for (const u of users) {
    if (!/^[^\s\x00-\x1f\x7f]+$/.test(u)) throw new TypeError(`not a user name: ${JSON.stringify(u)}`);
  }
  return users.join(' ');
}
