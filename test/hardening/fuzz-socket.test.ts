/**
 * Fuzzing the daemon through real sockets: generated lines before and after registration, the
 * whole command table with missing and extra parameters, and a raw byte stream with arbitrary
 * framing. Every line must be answered as the spec oracle says (oracle.ts), the daemon must
 * never crash, hang, reject a promise unhandled or log a failed handler, and afterwards a fresh
 * client must still log in and get a PONG.
 *
 * Normal run: 20k lines through sockets. SEALCHAT_STRESS=1: 10^6.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { Commands } from '../../src/ircd/commands/table.js';
import { startTestDaemon, type TestDaemon, type TestUser } from '../helpers/daemon.js';
import { anyLine, chaosChunk, variants } from './generators.js';
import { FuzzRunner, type FuzzStats } from './fuzz-runner.js';
import { bodyBytes, useCrashGuard, figure, LineConn, memory, mib, size } from './harness.js';

const SOCKET_LINES = size(20_000, 1_000_000);
const SEED = Number(process.env.SEALCHAT_FUZZ_SEED ?? Date.now() % 2 ** 31);

/**
 * Limits for fuzzing: no fakelag, roomy queues and no login throttle (the fuzzer re-logs in after
 * every QUIT), so the run measures handling, not throttling; limits.test.ts and
 * passwords.test.ts cover the throttles.
 */
const FUZZ_LIMITS = {
  commandBurst: 1_000_000,
  commandsPerSecond: 1_000_000,
  recvqBytes: 64 * 1024 * 1024,
  sendqBytes: 64 * 1024 * 1024,
  loginAttemptsPerIpPerMinute: 1_000_000,
  loginAttemptsPerAccountPerMinute: 1_000_000,
};

/** Every line the daemon sent fits 512 bytes (tags aside) and carries no bare CR. */
function expectWellFormedReplies(s: FuzzStats): void {
  expect(s.repliesWithCr, 'replies with a bare CR').to.equal(0);
  expect(s.overlongByCommand, 'replies over 512 bytes, by command').to.deep.equal({});
}

function report(what: string, s: FuzzStats): void {
  figure(`${what}: lines`, s.lines);
  figure(`${what}: throughput`, `${Math.round(s.lines / (s.ms / 1000)).toLocaleString('en')} lines/s (each followed by a PING marker)`);
  figure(`${what}: lines answered with their exact numeric`, s.numericChecks);
  figure(`${what}: closes by the daemon`, JSON.stringify(s.closes));
  figure(`${what}: replies with a bare CR / over 512 bytes / longest body`, `${s.repliesWithCr} / ${s.overlongReplies} / ${s.longestReplyBody} bytes`);
  figure(`${what}: replies over 512 bytes by command`, JSON.stringify(s.overlongByCommand));
}

/** Property: every batch of generated lines gets oracle-conforming answers. */
async function fuzz(runner: FuzzRunner, total: number, quitWeight: number): Promise<void> {
  const perRun = 32; // generated lines per property run, x8 derived variants each
  const details = await fc.check(
    fc.asyncProperty(fc.array(anyLine({ quitWeight }), { minLength: perRun, maxLength: perRun }), fc.integer(), async (batch, seed) => {
      await runner.run(batch.flatMap((b, i) => variants(b, seed + i)));
    }),
    { numRuns: Math.ceil(total / (perRun * 8)), seed: SEED, endOnFailure: true },
  );
  // Our own report: the runner's error names the one offending line; fast-check's would print
  // the whole batch of 256 lines.
  if (details.failed) {
    const err = details.errorInstance as Error | undefined;
    throw new Error(`after ${runner.stats.lines} lines (seed ${details.seed}, path ${details.counterexamplePath}): ${err?.message ?? 'property failed'}`);
  }
}

describe('ircd under fuzzed input through real sockets (fast-check)', function () {
  this.timeout(size(60_000, 3_600_000));
  let pre: TestDaemon;
  let reg: TestDaemon;
  let fuzzer: TestUser;
  let witnessUser: TestUser;
  let witness: LineConn;
  const witnessStats = { lines: 0, withCr: 0, overlong: 0 };
  useCrashGuard();
  const handlerFailures: string[] = [];
  let memBefore: ReturnType<typeof memory>;

  before(async () => {
    figure('fuzz seed (SEALCHAT_FUZZ_SEED to replay)', SEED);
    memBefore = memory();
    // Two daemons: state one mode leaves behind (channels, MONITOR lists) stays out of the other.
    pre = await startTestDaemon({ limits: FUZZ_LIMITS });
    reg = await startTestDaemon({ limits: FUZZ_LIMITS });
    for (const t of [pre, reg]) {
      const log = t.daemon.server.log;
      const original = log.error;
      log.error = (msg: string, ...rest: unknown[]) => {
        handlerFailures.push(msg);
        original.call(log, msg, ...rest);
      };
    }
    fuzzer = await reg.addUser('fuzzer');
    witnessUser = await reg.addUser('witness');
    witness = await LineConn.connect(reg.port);
    witness.send('CAP REQ :message-tags server-time account-tag echo-message away-notify invite-notify extended-join', 'CAP END');
    await witness.login('witness', witnessUser.password);
    witness.keepLines = false;
    witness.onLine = (l) => {
      witnessStats.lines++;
      if (l.includes('\n') || l.includes('\0')) throw new Error(`witness got a line with LF or NUL: ${JSON.stringify(l.slice(0, 200))}`);
      if (l.includes('\r')) witnessStats.withCr++;
      if (bodyBytes(l) > 512) witnessStats.overlong++;
    };
  });

  after(async () => {
    witness?.close();
    const withDaemons = memory();
    await pre?.stop();
    await reg?.stop();
    // What the daemons held: the heap with them running minus the heap once they are gone.
    const without = memory();
    figure('fuzz: JS heap with both daemons → after stopping them', `${mib(withDaemons.heapUsed)} → ${mib(without.heapUsed)}`);
  });

  afterEach(() => {
    expect(handlerFailures, 'handlers that threw or rejected').to.deep.equal([]);
  });

  it('answers every command in the table, with missing and extra parameters, before and after registration', async () => {
    const tokens = ['#f', 'fuzzer', '+o', 'x', '*', '0', 'y', 'z', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
    const lines: Buffer[] = [];
    // QUIT last: it ends the connection.
    const names = [...Commands.keys()].sort((a, b) => (a === 'QUIT' ? 1 : b === 'QUIT' ? -1 : a.localeCompare(b)));
    for (const name of names) {
      const { minParams } = Commands.get(name)!;
      const counts = new Set([0, Math.max(0, minParams - 1), minParams, minParams + 1, minParams + 2, 15, 16, 40]);
      for (const n of counts) {
        const params = Array.from({ length: n }, (_, i) => tokens[i % tokens.length]);
        lines.push(Buffer.from([name, ...params].join(' ')));
        lines.push(Buffer.from([name.toLowerCase(), ...params.slice(0, -1), `:${params.at(-1) ?? ''} trailing text`].join(' ')));
      }
    }
    for (const [mode, t] of [['pre', pre], ['reg', reg]] as const) {
      const runner = new FuzzRunner({ port: t.port, mode, account: fuzzer, batchSize: 50 });
      await runner.run(lines);
      runner.close();
      expect(runner.stats.lines).to.equal(lines.length);
      figure(`command table sweep ${mode === 'pre' ? 'before' : 'after'} registration`, `${runner.stats.lines} lines, ${runner.stats.numericChecks} answered with their exact numeric, closes ${JSON.stringify(runner.stats.closes)}`);
    }
  });

  it(`answers ${(SOCKET_LINES / 2).toLocaleString('en')} generated lines before registration as the spec says`, async () => {
    const runner = new FuzzRunner({ port: pre.port, mode: 'pre' });
    await fuzz(runner, SOCKET_LINES / 2, 2);
    runner.close();
    report('fuzz before registration', runner.stats);
    expect(runner.stats.lines).to.be.at.least(SOCKET_LINES / 2);
    expectWellFormedReplies(runner.stats);
  });

  it(`answers ${(SOCKET_LINES / 2).toLocaleString('en')} generated lines after registration as the spec says, relaying only well-formed lines`, async () => {
    const join = async (c: LineConn): Promise<void> => {
      c.send('JOIN #f');
      await c.waitLine(/ 366 /);
    };
    witness.send('JOIN #f');
    const runner = new FuzzRunner({ port: reg.port, mode: 'reg', account: fuzzer, afterLogin: join });
    await fuzz(runner, SOCKET_LINES / 2, 0); // QUITs here would mostly measure argon2 re-logins
    // The witness received the relayed traffic: it must still be connected and answering.
    witness.keepLines = true;
    await witness.ping('witness-alive');
    runner.close();
    report('fuzz after registration', runner.stats);
    figure('witness (channel member): lines received / with a bare CR / over 512 bytes', `${witnessStats.lines} / ${witnessStats.withCr} / ${witnessStats.overlong}`);
    expect(runner.stats.lines).to.be.at.least(SOCKET_LINES / 2);
    expectWellFormedReplies(runner.stats);
    // What other members received of the fuzzer's traffic: no forged lines, nothing oversized.
    expect(witnessStats.withCr, 'relayed lines with a bare CR').to.equal(0);
    expect(witnessStats.overlong, 'relayed lines over 512 bytes').to.equal(0);
  });

  it('survives a raw byte stream with arbitrary framing (LF, CR, NUL, invalid UTF-8 anywhere)', async () => {
    const chunks = fc.sample(chaosChunk, { numRuns: size(400, 20_000), seed: SEED });
    let bytes = 0;
    for (const [mode, t] of [['pre', pre], ['reg', reg]] as const) {
      let conn = await LineConn.connect(t.port);
      if (mode === 'reg') await conn.login('fuzzer', fuzzer.password);
      for (let i = 0; i < chunks.length; i++) {
        bytes += chunks[i]!.length;
        // The CRLF ends whatever partial line the chunk left; the PING proves the link still works.
        conn.write(Buffer.concat([chunks[i]!, Buffer.from(`\r\nPING :chaos${i}\r\n`)]));
        try {
          await conn.waitLine(new RegExp(` PONG \\S+ :?chaos${i}$`), 10_000);
        } catch (err) {
          // Random bytes may spell QUIT or finish a (refused) registration; anything else is a failure.
          const error = conn.lines.find((l) => l.startsWith('ERROR :Closing link'));
          const reason = error ? /\(([^]*)\)$/.exec(error)?.[1] ?? '' : '';
          if (!conn.closed || !/^(Quit|Bad password|Too many login attempts)/.test(reason)) {
            throw new Error(`chaos chunk ${i} (${mode}) ${JSON.stringify(chunks[i]!.toString('latin1').slice(0, 300))}: ${(err as Error).message}`);
          }
          conn = await LineConn.connect(t.port);
          if (mode === 'reg') await conn.login('fuzzer', fuzzer.password);
        }
        for (const l of conn.lines) if (l.includes('\n') || l.includes('\0')) throw new Error(`bare LF or NUL in ${JSON.stringify(l)}`);
        conn.lines.length = 0;
      }
      conn.close();
    }
    figure('chaos stream', `${chunks.length * 2} chunks, ${bytes} bytes, every chunk followed by a successful PING`);
  });

  it('is still alive afterwards: a fresh client logs in and gets a PONG', async () => {
    for (const t of [pre, reg]) {
      const c = await LineConn.connect(t.port);
      const u = await t.addUser(`late${t === pre ? 'a' : 'b'}`);
      await c.login(u.name, u.password);
      const rtt = await c.ping('alive');
      figure(`fresh login + PING after the fuzz (${t === pre ? 'pre' : 'reg'} daemon)`, `PONG in ${rtt.toFixed(1)} ms`);
      c.close();
    }
    const after = memory();
    figure('fuzz: process RSS before → after', `${mib(memBefore.rss)} → ${mib(after.rss)}`);
    figure('fuzz: JS heap used before → after', `${mib(memBefore.heapUsed)} → ${mib(after.heapUsed)}`);
    figure('fuzz: daemon sessions / channels left (reg daemon)', `${reg.daemon.server.sessions.size} / ${reg.daemon.server.channels.size}`);
    // Nobody monitors anything any more: every entry left is the MONITOR leak (handlers.test.ts BUG).
    figure('fuzz: MONITOR entries left with no watcher (pre / reg daemon)', `${[...pre.daemon.server.monitoredBy.values()].filter((s) => s.size === 0).length} / ${[...reg.daemon.server.monitoredBy.values()].filter((s) => s.size === 0).length}`);
  });
});
