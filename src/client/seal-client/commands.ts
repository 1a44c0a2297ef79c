/**
 * keybot's commands for SealClient (client.ts owns one KeybotCommands): one command at a time,
 * and its reply, which is one burst of NOTICEs to us, collected until keybot falls quiet.
 */
import { SealClientError } from '../errors.js';

/** keybot's reply to one command is one burst of NOTICEs: it is over after this much silence. */
const REPLY_QUIET_MS = 300;

interface Pending {
  lines: string[];
  /** Lines that are not the end of the reply (an invite's refusals, before its outcome). */
  waitPast?: RegExp;
  resolve: (lines: string[]) => void;
  reject: (err: Error) => void;
  quiet?: NodeJS.Timeout;
  deadline: NodeJS.Timeout;
}

export class KeybotCommands {
  private tail: Promise<unknown> = Promise.resolve();
  private pending: Pending | undefined;

  /** `say`: send one PRIVMSG to keybot (throws when not connected). */
  constructor(private readonly say: (text: string) => void) {}

  /** Send a command; resolves with keybot's reply lines, or [] if it says nothing within the timeout. */
  run(text: string, timeoutMs: number): Promise<string[]> {
    const run = this.tail.then(
      () =>
        new Promise<string[]>((resolve, reject) => {
          const finish = (): void => {
            const p = this.pending!;
            clearTimeout(p.quiet);
            this.pending = undefined;
            resolve(p.lines);
          };
          this.pending = {
            lines: [],
            resolve,
            reject,
            deadline: setTimeout(finish, timeoutMs),
            ...(/^\s*invite\s/i.test(text) ? { waitPast: /^cannot invite / } : {}),
          };
          this.pending.deadline.unref();
          try {
            this.say(text);
          } catch (err) {
            clearTimeout(this.pending.deadline);
            this.pending = undefined;
            reject(err as Error);
          }
        }),
    );
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** A line keybot sent to us: part of the reply being collected, if any. */
  reply(text: string): void {
    const p = this.pending;
    if (!p) return;
    p.lines.push(text);
    clearTimeout(p.quiet);
    // An invite's refusals come at once, its outcome only after our companion signed keybot's
    // proposal and keybot placed everyone: wait for the outcome, not for a quiet moment.
    if (p.waitPast !== undefined && p.waitPast.test(text)) return;
    p.quiet = setTimeout(() => {
      clearTimeout(p.deadline);
      if (this.pending === p) this.pending = undefined;
      p.resolve(p.lines);
    }, REPLY_QUIET_MS);
  }

  /** keybot is not online: the command in flight gets no answer. */
  offline(): void {
    const p = this.take();
    p?.reject(new SealClientError('keybot-offline', 'keybot is not online; try again later'));
  }

  /** The command in flight cannot succeed (its reply will not come): it fails with `err`. */
  fail(err: Error): void {
    this.take()?.reject(err);
  }

  /** The connection closed: the command in flight ends with what it got. */
  closed(): void {
    const p = this.take();
    p?.resolve(p.lines);
  }

  private take(): Pending | undefined {
    const p = this.pending;
    if (!p) return undefined;
    clearTimeout(p.quiet);
    clearTimeout(p.deadline);
    this.pending = undefined;
    return p;
  }
}

/** Nick lists for keybot commands: no spaces or control characters can smuggle another command. */
export function names(users: string[]): string {
  for (const u of users) {
    if (!/^[^\s\x00-\x1f\x7f]+$/.test(u)) throw new TypeError(`not a user name: ${JSON.stringify(u)}`);
  }
  return users.join(' ');
}
