/**
 * Password guessing: attempts are throttled per IP and per account; an unknown account and a
 * wrong password get byte-identical replies and the same work (one argon2 verification against a
 * hash of the same parameters, counted). Reply times are measured and reported, not asserted: a
 * timing assertion on a shared machine would flake.
 */
import { expect } from 'chai';
import net from 'node:net';
import { KeyedRateLimiter } from '../../src/ircd/server/throttle.js';
import { DEFAULT_LIMITS } from '../../src/ircd/config.js';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { useCrashGuard, figure, LineConn, size } from './harness.js';

const TIMING_N = size(20, 200);

/** Connect from a chosen loopback address (Linux routes all of 127/8 to lo): a distinct client IP. */
function connectFrom(port: number, localAddress: string): Promise<LineConn> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress }, () => resolve(new LineConn(s)));
    s.once('error', reject);
  });
}

/** One login attempt; the full transcript up to the close and the time to the 464 (or 904). */
async function attempt(port: number, lines: string[], from = '127.0.0.1'): Promise<{ transcript: string[]; ms: number }> {
  const c = await connectFrom(port, from);
  const t0 = performance.now();
  c.send(...lines);
  await c.waitLine(/^:\S+ (464|904) /, 10_000);
  const ms = performance.now() - t0;
  if (lines.some((l) => l.startsWith('PASS'))) await c.waitClose(5000);
  c.close();
  return { transcript: c.lines, ms };
}

const pass = (nick: string, secret: string): string[] => [`PASS ${secret}`, `NICK ${nick}`, `USER ${nick} 0 * :x`];

function stats(xs: number[]): { mean: number; sd: number; median: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1));
  const sorted = [...xs].sort((a, b) => a - b);
  return { mean, sd, median: sorted[Math.floor(sorted.length / 2)]! };
}

describe('ircd against password guessing', function () {
  this.timeout(size(60_000, 600_000));
  useCrashGuard();

  describe('replies and timing (throttle raised out of the way)', () => {
    let t: TestDaemon;
    before(async () => {
      t = await startTestDaemon({ limits: { loginAttemptsPerIpPerMinute: 1_000_000, loginAttemptsPerAccountPerMinute: 1_000_000 } });
      await t.addUser('alice');
    });
    after(async () => t.stop());

    it('times the first unknown-account attempt after start against the next one', async () => {
      const cold = await attempt(t.port, pass('guess', 'nobody:first-guess'));
      const warm = await attempt(t.port, pass('guess', 'nobody:second-guess'));
      figure('first unknown-account attempt after start / the next one', `${cold.ms.toFixed(0)} ms / ${warm.ms.toFixed(0)} ms`);
    });

    it('answers an unknown account and a wrong password with byte-identical replies (PASS both ways, and SASL)', async () => {
      const cases: Array<[string, string[], string[]]> = [
        ['PASS account:password', pass('guess', 'alice:wrong-password'), pass('guess', 'nobody:wrong-password')],
        ['PASS password with NICK = account', pass('alice', 'wrong-password'), pass('alice', 'wrong-password').map((l) => l.replace(/alice/g, 'alicf'))],
        [
          'SASL PLAIN',
          ['CAP REQ :sasl', 'AUTHENTICATE PLAIN', `AUTHENTICATE ${Buffer.from('\0alice\0wrong-password').toString('base64')}`],
          ['CAP REQ :sasl', 'AUTHENTICATE PLAIN', `AUTHENTICATE ${Buffer.from('\0nobody\0wrong-password').toString('base64')}`],
        ],
      ];
      for (const [what, wrong, unknown] of cases) {
        const a = await attempt(t.port, wrong);
        const b = await attempt(t.port, unknown);
        // The second PASS form addresses the nick given; normalise only that.
        const norm = (x: string[]): string[] => x.map((l) => l.replace(/ (alice|alicf) /, ' NICK '));
        expect(norm(b.transcript), what).to.deep.equal(norm(a.transcript));
        figure(`reply to a failed ${what}`, JSON.stringify(a.transcript));
      }
    });

    it(`does the same work for ${TIMING_N} unknown-account as for ${TIMING_N} wrong-password attempts, and reports their reply times`, async () => {
      const unknown: number[] = [];
      const wrong: number[] = [];
      // Every argon2 verification the daemon runs, with the hash's parameters (not its salt or digest).
      const accounts = t.daemon.accounts;
      const original = accounts.verifyPasswordHash;
      const verified: string[] = [];
      accounts.verifyPasswordHash = (hash: string, password: string) => {
        verified.push(hash.split('$').slice(0, 4).join('$'));
        return original.call(accounts, hash, password);
      };
      const work: Array<{ unknown: string[]; wrong: string[] }> = [];
      try {
        for (let i = 0; i < TIMING_N; i++) {
          // Interleaved, so drift in machine load hits both alike.
          let from = verified.length;
          unknown.push((await attempt(t.port, pass('guess', `nobody${i}:guess-${i}`))).ms);
          const u = verified.slice(from);
          from = verified.length;
          wrong.push((await attempt(t.port, pass('guess', `alice:guess-${i}`))).ms);
          work.push({ unknown: u, wrong: verified.slice(from) });
        }
      } finally {
        accounts.verifyPasswordHash = original;
      }
      // The 464 comes after the check, so each attempt's verifications are in by its reply.
      for (const w of work) {
        expect(w.unknown, 'verifications for an unknown account').to.have.length(1);
        expect(w.unknown, 'the same argon2 parameters as a real hash').to.deep.equal(w.wrong);
      }
      expect(work[0]!.wrong[0]).to.match(/^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+$/);
      const u = stats(unknown);
      const w = stats(wrong);
      const se = Math.sqrt(u.sd ** 2 / unknown.length + w.sd ** 2 / wrong.length);
      figure('reply time, unknown account (mean ± sd, median)', `${u.mean.toFixed(1)} ± ${u.sd.toFixed(1)} ms, ${u.median.toFixed(1)} ms`);
      figure('reply time, wrong password (mean ± sd, median)', `${w.mean.toFixed(1)} ± ${w.sd.toFixed(1)} ms, ${w.median.toFixed(1)} ms`);
      figure('difference of means (unknown − wrong), ~95% interval', `${(u.mean - w.mean).toFixed(1)} ± ${(1.96 * se).toFixed(1)} ms`);
    });

    it('measures how many password checks per second the daemon could do without the throttle', async () => {
      const n = size(24, 96);
      const t0 = performance.now();
      await Promise.all(Array.from({ length: n }, (_, i) => attempt(t.port, pass('guess', `alice:parallel-${i}`))));
      const s = (performance.now() - t0) / 1000;
      figure(`unthrottled capacity (${n} parallel wrong passwords, hashConcurrency ${t.config.limits.hashConcurrency})`, `${(n / s).toFixed(1)} checks/s`);
    });
  });

  describe('throttling (default limits)', () => {
    let t: TestDaemon;
    before(async () => {
      t = await startTestDaemon();
      await t.addUser('victim');
    });
    after(async () => t.stop());

    it(`lets one IP try ${DEFAULT_LIMITS.loginAttemptsPerIpPerMinute} passwords, then refuses until the bucket refills`, async () => {
      const t0 = Date.now();
      let checked = 0;
      let refused = 0;
      for (let i = 0; i < 30; i++) {
        const r = await attempt(t.port, pass('guess', `someone${i}:guess`), '127.0.0.5');
        if (r.transcript.some((l) => / 464 \S+ :Password incorrect$/.test(l))) checked++;
        else if (r.transcript.some((l) => /Too many login attempts/.test(l))) refused++;
      }
      const elapsedMin = (Date.now() - t0) / 60_000;
      const allowed = DEFAULT_LIMITS.loginAttemptsPerIpPerMinute;
      expect(checked + refused).to.equal(30);
      expect(checked).to.be.at.least(allowed);
      expect(checked).to.be.at.most(allowed + Math.ceil(elapsedMin * allowed));
      // Another address is not affected.
      const other = await attempt(t.port, pass('guess', 'someone:guess'), '127.0.0.6');
      expect(other.transcript.some((l) => /Password incorrect/.test(l))).to.equal(true);
      figure('one IP, 30 guesses back to back', `${checked} checked, ${refused} refused ("Too many login attempts")`);
    });

    it(`lets one account be tried ${DEFAULT_LIMITS.loginAttemptsPerAccountPerMinute} times a minute, from any number of IPs`, async () => {
      const t0 = Date.now();
      let checked = 0;
      let refused = 0;
      for (let i = 0; i < 15; i++) {
        const r = await attempt(t.port, pass('guess', `victim:guess-${i}`), `127.0.1.${i + 1}`);
        if (r.transcript.some((l) => /Password incorrect$/.test(l))) checked++;
        else refused++;
      }
      const allowed = DEFAULT_LIMITS.loginAttemptsPerAccountPerMinute;
      const elapsedMin = (Date.now() - t0) / 60_000;
      expect(checked).to.be.at.least(allowed);
      expect(checked).to.be.at.most(allowed + Math.ceil(elapsedMin * allowed));
      figure('one account from 15 IPs, 15 guesses back to back', `${checked} checked, ${refused} refused`);
      // The owner is locked out for as long (the price of a per-account limit): report it.
      const owner = await attempt(t.port, pass('victim', 'pw-victim-secret'), '127.0.2.1');
      figure('the owner, right after (right password, another IP)', owner.transcript.some((l) => / 001 /.test(l)) ? 'logged in' : JSON.stringify(owner.transcript));
    });

    it('achieves these guess rates over ten minutes (the daemon\'s own limiter, driven with simulated time)', () => {
      const l = DEFAULT_LIMITS;
      const perIp = new KeyedRateLimiter(l.loginAttemptsPerIpPerMinute);
      const perAccount = new KeyedRateLimiter(l.loginAttemptsPerAccountPerMinute);
      // An attacker trying every 100 ms for 10 minutes: (a) one IP, many names; (b) many IPs, one name.
      let oneIp = 0;
      let oneAccount = 0;
      for (let ms = 0; ms < 600_000; ms += 100) {
        if (perIp.take('203.0.113.1', ms) && perAccount.take(`name${ms}`, ms)) oneIp++;
        if (perIp.take(`198.51.100.${ms % 250}`, ms) && perAccount.take('victim', ms)) oneAccount++;
      }
      figure('guesses in 10 min, one IP (many account names)', `${oneIp} (${(oneIp / 10).toFixed(1)}/min; first minute ${l.loginAttemptsPerIpPerMinute} at once)`);
      figure('guesses in 10 min against one account (any number of IPs)', `${oneAccount} (${(oneAccount / 10).toFixed(1)}/min)`);
      expect(oneIp).to.be.at.most(l.loginAttemptsPerIpPerMinute * 11);
      expect(oneAccount).to.be.at.most(l.loginAttemptsPerAccountPerMinute * 11);
    });
  });
});
