/**
 * Pacing keybot's lines under a network's flood limits (docs/NETWORKS.md "Flood limits").
 *
 * An ordinary IRC server reads a client's lines at a limited rate and disconnects it when too many
 * bytes wait unread. Measured on InspIRCd 3 with its default connect class (`threshold="10"`,
 * `commandrate="1000"`, `recvq="8192"`): 10 lines of 415 bytes pass at once, then one a second;
 * 20 such lines sent at once (8.3 KB) end the connection. A rekey is one envelope (several such
 * lines) per member, so keybot paces every line it writes with a token bucket: `burst` lines at
 * once, then `perSecond`. With the bucket below the server's threshold nothing waits unread at the
 * server, so its receive queue cannot overflow either.
 *
 * The pacer sits under irc-framework's `raw` (every command keybot sends goes through it; several
 * lines joined by CRLF are split). Commands other than PRIVMSG and NOTICE (JOIN, MODE, INVITE,
 * KICK, WHOIS…) go ahead of queued messages, in their own order: keybot waits for their answers
 * with timeouts, and an envelope is no worse for its room being opened first. Messages keep
 * their order. QUIT goes at once (dropping what is queued: a quitting keybot has nothing left to
 * deliver). Protocol replies irc-framework writes
 * itself (PONG, CAP, AUTHENTICATE) do not pass through `raw` and are never delayed.
 */
import type { Client as IrcClient } from 'irc-framework';
import { createLogger } from '../../util/log.js';

const log = createLogger('keybot');

export interface Pace {
  /** Lines that may go at once (keep it under the server's threshold). */
  burst: number;
  /** Lines per second after that. */
  perSecond: number;
}

/** Under InspIRCd 3's default connect class (measured, above): 8 at once, then one a second. */
export const DEFAULT_PACE: Pace = { burst: 8, perSecond: 1 };

/** Pace every line `irc` sends through `raw`. Returns a function that stops pacing (flushing nothing). */
export function paceLines(irc: IrcClient, pace: Pace): () => void {
  const client = irc as unknown as {
    raw: (...args: unknown[]) => void;
    rawString: (...args: unknown[]) => string;
    connection: { write(line: string): void };
  };
  const original = client.raw;
  const queue: string[] = [];
  const control: string[] = [];
  let tokens = pace.burst;
  let last = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let warned = false;

  const refill = (): void => {
    const now = Date.now();
    tokens = Math.min(pace.burst, tokens + ((now - last) / 1000) * pace.perSecond);
    last = now;
  };
  const drain = (): void => {
    timer = undefined;
    refill();
    while (control.length + queue.length > 0 && tokens >= 1) {
      tokens -= 1;
      client.connection.write((control.length > 0 ? control : queue).shift()!);
    }
    if (control.length + queue.length === 0) return;
    if (!warned && queue.length > pace.burst * 4) {
      warned = true;
      log.info(`pacing: ${queue.length} lines wait (${pace.perSecond}/s after ${pace.burst}); give keybot a connect class with more room (docs/NETWORKS.md)`);
    }
    timer = setTimeout(drain, Math.ceil(((1 - tokens) / pace.perSecond) * 1000));
    timer.unref();
  };

  client.raw = function paced(this: unknown, ...args: unknown[]): void {
    const first = args[0] as { to1459?: () => string } | undefined;
    const text = first && typeof first === 'object' && typeof first.to1459 === 'function' ? first.to1459() : client.rawString(...args);
    const lines = text.split(/\r\n/).filter((l) => l !== '');
    if (lines.some((l) => /^QUIT(\s|$)/i.test(l))) {
      queue.length = 0;
      control.length = 0;
      clearTimeout(timer);
      timer = undefined;
      for (const l of lines) client.connection.write(l);
      return;
    }
    for (const l of lines) (/^(PRIVMSG|NOTICE) /i.test(l) ? queue : control).push(l);
    if (!timer) drain();
  };
  return () => {
    clearTimeout(timer);
    queue.length = 0;
    control.length = 0;
    client.raw = original;
  };
}
