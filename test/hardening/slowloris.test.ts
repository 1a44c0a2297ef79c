/**
 * Slowloris: many connections that never finish registering (silent, dribbling a partial line
 * byte by byte, stuck in CAP negotiation, or keeping the link busy with PINGs) are closed at the
 * registration timeout, and meanwhile the daemon still serves a new client promptly.
 */
import { expect } from 'chai';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { useCrashGuard, figure, LineConn, memory, mib, size, sleep, waitUntil } from './harness.js';

const SOCKETS = size(200, 1000);
const REGISTRATION_TIMEOUT_MS = 1000;

type Style = 'silent' | 'dribble' | 'cap' | 'pinger';
const STYLES: Style[] = ['silent', 'dribble', 'cap', 'pinger'];

describe('ircd against slowloris (connections that never register)', function () {
  this.timeout(size(30_000, 120_000));
  let t: TestDaemon;
  useCrashGuard();

  before(async () => {
    t = await startTestDaemon({ limits: { registrationTimeoutMs: REGISTRATION_TIMEOUT_MS } });
  });
  after(async () => {
    await t.stop();
  });

  it(`closes ${SOCKETS} never-registering sockets at the registration timeout and serves a new client meanwhile`, async () => {
    const alice = await t.addUser('alice');
    const memBefore = memory();
    const conns: Array<{ conn: LineConn; style: Style; openedAt: number; closedAt?: number }> = [];
    // Open them in waves so the accept backlog is not the thing under test.
    for (let i = 0; i < SOCKETS; i += 100) {
      const wave = await Promise.all(
        Array.from({ length: Math.min(100, SOCKETS - i) }, async (_, j) => {
          const conn = await LineConn.connect(t.port);
          const style = STYLES[(i + j) % STYLES.length]!;
          if (style === 'cap') conn.send('CAP LS 302', 'NICK slow' + (i + j), 'USER s 0 * :s');
          return { conn, style, openedAt: Date.now() };
        }),
      );
      conns.push(...wave);
    }
    for (const c of conns) c.conn.socket.once('close', () => (c.closedAt = Date.now()));
    // The daemon has accepted them all (the client side's connect can finish first).
    await waitUntil(() => t.daemon.server.sessions.size === SOCKETS, 5000, `${SOCKETS} sessions on the daemon`);
    figure('slowloris: unregistered sessions held at peak', [...t.daemon.server.sessions].filter((s) => !s.client).length);

    // Keep the dribblers and pingers busy while a real user logs in.
    let ticking = true;
    const ticker = (async () => {
      let n = 0;
      while (ticking) {
        for (const c of conns) {
          if (c.conn.closed) continue;
          if (c.style === 'dribble') c.conn.write('NICK dribbler'[n % 13]!);
          if (c.style === 'pinger') c.conn.send(`PING :keepalive${n}`);
        }
        n++;
        await sleep(100);
      }
    })();

    const t0 = performance.now();
    const user = await LineConn.connect(t.port);
    await user.login('alice', alice.password);
    const loginMs = performance.now() - t0;
    const rtt = await user.ping('during');
    figure(`slowloris: login of a real user while ${SOCKETS} sockets hang`, `${loginMs.toFixed(0)} ms (argon2 included), then PING round trip ${rtt.toFixed(1)} ms`);

    await waitUntil(() => conns.every((c) => c.conn.closed), REGISTRATION_TIMEOUT_MS + 8000, 'every slowloris socket to be closed');
    ticking = false;
    await ticker;

    const lifetimes = conns.map((c) => c.closedAt! - c.openedAt);
    figure('slowloris: socket lifetime min / max', `${Math.min(...lifetimes)} / ${Math.max(...lifetimes)} ms (timeout ${REGISTRATION_TIMEOUT_MS} ms, swept every second)`);
    const told = conns.filter((c) => c.conn.lines.some((l) => l === 'ERROR :Closing link: 127.0.0.1 (Registration timed out)')).length;
    figure('slowloris: closed with "ERROR :Closing link: 127.0.0.1 (Registration timed out)"', `${told} of ${SOCKETS}`);
    for (const style of STYLES) {
      const mine = conns.filter((c) => c.style === style);
      const ok = mine.filter((c) => c.conn.lines.includes('ERROR :Closing link: 127.0.0.1 (Registration timed out)')).length;
      expect(ok, `${style} sockets told why they were closed`).to.equal(mine.length);
    }
    // None outlived the timeout by more than the sweep period plus scheduling slack.
    expect(Math.min(...lifetimes)).to.be.at.least(REGISTRATION_TIMEOUT_MS);

    // The real user is still there and answering; only it remains.
    await user.ping('after');
    expect([...t.daemon.server.sessions].filter((s) => !s.client)).to.have.length(0);
    expect(t.daemon.server.sessions.size).to.equal(1);
    const memAfter = memory();
    figure('slowloris: process RSS / heap before → after', `${mib(memBefore.rss)} / ${mib(memBefore.heapUsed)} → ${mib(memAfter.rss)} / ${mib(memAfter.heapUsed)}`);
    user.close();
  });
});
