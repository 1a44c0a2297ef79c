/**
 * keybot's key, for one proxied connection (session.ts): fetched with `pubkey` over the session's
 * own connection (its lines hidden from the client), then pinned (pinning.ts, keybot-trust.ts).
 */
import type { PublicKeyHandle } from '../../crypto/index.js';
import { KEYBOT_NICK } from '../../protocol/names.js';
import type { IncomingResult } from '../core/index.js';
import { ArmorCollector } from '../core/index.js';
import { settleKeybotKey } from '../core/index.js';
import { ProxySessionIO } from './session-io.js';

const ARMOR_BEGIN = '-----BEGIN PGP PUBLIC KEY BLOCK-----';

/** Pin keybot's key for the session. */
export abstract class ProxySessionKeybot extends ProxySessionIO {
  /** A keybot NOTICE to us while we fetch its key: consume it if it belongs to the key. */
  protected keyLine(target: string, text: string): boolean {
    const f = this.keyFetch;
    if (!f || !this.rooms?.isSelf(target)) return false;
    const step = f.collector.push(text);
    if (text.trim() === ARMOR_BEGIN) f.started = true;
    if (step.status === 'done') {
      f.done(step.armored);
      return true;
    }
    if (step.status === 'more') return true;
    if (f.started) {
      f.done(new Error(`keybot's key was interrupted (${step.reason})`));
      return false;
    }
    // keybot does not know `pubkey` (`unknown command "pubkey"`) or throttles us: that answer is
    // ours, not the user's. Other lines (a reply to the user's own command) pass.
    if (/"pubkey"|^slow down/i.test(text)) {
      f.done(new Error(`keybot answered: ${text}`));
      return true;
    }
    return false;
  }

  protected fetchKeybotKey(): Promise<string> {
    return new Promise((resolve, reject) => {
      const ms = this.o.keybotTimeoutMs ?? 10_000;
      const timer = setTimeout(() => done(new Error(`keybot did not answer "pubkey" within ${Math.round(ms / 1000)} s`)), ms);
      timer.unref();
      const done = (r: string | Error): void => {
        clearTimeout(timer);
        if (this.keyFetch?.done === done) this.keyFetch = undefined;
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      this.keyFetch = { collector: new ArmorCollector(), started: false, done };
      this.toServer(`PRIVMSG ${KEYBOT_NICK} :pubkey`);
    });
  }

  protected async pinKeybot(): Promise<void> {
    if (this.pinning || this.closed) return;
    this.pinning = true;
    try {
      const u = this.o.upstream;
      const outcome = await settleKeybotKey({
        server: `${u.host}:${u.port}`,
        fetch: () => this.fetchKeybotKey(),
        ...(this.memory ? { memory: this.memory } : {}),
        ...(this.o.keybotFingerprint !== undefined ? { keybotFingerprint: this.o.keybotFingerprint } : {}),
        ...(this.o.keybotPublicKey !== undefined ? { keybotPublicKey: this.o.keybotPublicKey } : {}),
        ...(this.o.knownKeybotsFile !== undefined ? { knownKeybotsFile: this.o.knownKeybotsFile } : {}),
      });
      if (this.closed) return;
      const me = this.nick ?? '*';
      if (outcome.status === 'pinned') {
        await new Promise<void>((resolve) => this.enqueue(() => this.installKeybotKey(outcome.key, outcome.source).finally(resolve)));
      } else if (outcome.status === 'mismatch') {
        this.keybot = { status: 'mismatch', reason: outcome.reason };
        this.enqueue(() => {
          this.engine!.distrustKeybot(outcome.reason);
          this.notice(me, `WARNING: ${outcome.reason}`);
        });
      } else {
        this.keybot = { status: 'unavailable', reason: outcome.reason, at: Date.now() };
        this.enqueue(() => this.notice(me, `${outcome.reason}; encrypted rooms get no keys until keybot's key is pinned (retried when keybot is heard from)`));
      }
    } finally {
      this.pinning = false;
    }
  }

  protected async installKeybotKey(key: PublicKeyHandle, source: string): Promise<void> {
    if (this.closed) return;
    this.keybot = { status: 'pinned', fingerprint: key.fingerprint };
    const how =
      source === 'first-use'
        ? 'trusted on first use; compare it with the one your administrator gives you'
        : source === 'known'
          ? 'as pinned before'
          : source === 'configured'
            ? 'matches the fingerprint you configured'
            : 'the key you gave';
    this.notice(this.nick ?? '*', `end-to-end encryption is on; keybot's key ${key.fingerprint} is pinned (${how})`);
    this.deliverAll(await this.engine!.setKeybotKey(key));
  }

  /** keybot was heard from while its key is unavailable: try again (at most every 5 s). */
  protected maybeRetryKeybot(): void {
    const k = this.keybot;
    if (k.status !== 'unavailable' || this.pinning || Date.now() - k.at < 5000) return;
    void this.pinKeybot();
  }

  /** Show the client what results mean (session-server.ts). */
  protected abstract deliverAll(results: IncomingResult[]): void;
}
