/**
 * Slow readers: a member that stops reading while others flood its channel is dropped once its
 * send queue passes limits.sendqBytes, with `ERROR :Closing link ... (SendQ exceeded)`, and the
 * daemon's memory stays bounded. Memory is reported, not asserted (it would flake); the drop is
 * asserted.
 */
import { expect } from 'chai';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { useCrashGuard, figure, LineConn, memory, mib, size, sleep, waitUntil } from './harness.js';

const SENDQ = 64 * 1024;
const SLOW_READERS = size(1, 20);

describe('ircd with slow readers (sendq)', function () {
  this.timeout(size(30_000, 180_000));
  let t: TestDaemon;
  useCrashGuard();

  before(async () => {
    t = await startTestDaemon({
      limits: { sendqBytes: SENDQ, commandBurst: 1_000_000, commandsPerSecond: 1_000_000, recvqBytes: 4 * 1024 * 1024 },
    });
  });
  after(async () => {
    await t.stop();
  });

  it(`drops ${SLOW_READERS} member(s) that stop reading during a channel flood, with "SendQ exceeded", and keeps memory bounded`, async () => {
    const names = [...Array.from({ length: SLOW_READERS }, (_, i) => `slow${i}`), 'flooda', 'floodb', 'observer'];
    const conns = new Map<string, LineConn>();
    for (const name of names) {
      const u = await t.addUser(name);
      const c = await LineConn.connect(t.port);
      await c.login(name, u.password);
      c.send('JOIN #flood');
      await c.waitLine(/ 366 /);
      conns.set(name, c);
    }
    const slow = names.filter((n) => n.startsWith('slow')).map((n) => conns.get(n)!);
    const flooders = [conns.get('flooda')!, conns.get('floodb')!];
    const observer = conns.get('observer')!;
    // Readers that keep up should not hoard what they read (the flooders' lines are cleared below).
    observer.keepLines = false;
    const quits: string[] = [];
    observer.onLine = (l) => {
      if (/ QUIT /.test(l)) quits.push(l);
    };
    for (const c of slow) {
      c.autoPong = false;
      c.socket.pause(); // stops reading: the kernel buffers fill, then the daemon's queue
    }

    const memBefore = memory();
    let peakRss = memBefore.rss;
    let peakQueued = 0;
    const text = 'x'.repeat(400);
    // 50 lines (~22 KiB) per flooder and turn: what one turn queues for a reader stays well under
    // sendq, so only a reader that does not read accumulates a backlog. (Output queued within one
    // event-loop turn counts against sendq too: a burst larger than sendq drops even a fast reader.)
    const PER_WRITE = 50;
    const batch = Array.from({ length: PER_WRITE }, (_, i) => `PRIVMSG #flood :${i} ${text}`).join('\r\n') + '\r\n';
    let sent = 0;
    const t0 = performance.now();
    while (quits.length < SLOW_READERS) {
      for (const f of flooders) f.write(batch);
      sent += 2 * PER_WRITE;
      // Let the daemon and the readers keep up (flow control on our side, not a timing assumption).
      await Promise.all(flooders.map((f, i) => f.ping(`flood${sent}-${i}`, 20_000)));
      for (const f of flooders) f.lines.length = 0;
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      for (const s of t.daemon.server.sessions) peakQueued = Math.max(peakQueued, s.socket.writableLength);
      if (sent > 2_000_000) throw new Error(`no slow reader was dropped after ${sent} messages`);
    }
    const floodMs = performance.now() - t0;
    const memAtDrop = memory();

    // The slow readers resume at once: the end of their stream must be the ERROR line.
    for (const c of slow) {
      c.keepLines = true;
      c.socket.resume();
    }
    await waitUntil(() => slow.every((c) => c.closed), 10_000, 'the slow readers to be closed');
    for (const [i, c] of slow.entries()) {
      expect(c.lines.at(-1), `slow${i}'s last line`).to.equal('ERROR :Closing link: 127.0.0.1 (SendQ exceeded)');
      expect(t.daemon.server.findClient(`slow${i}`), `slow${i} is offline`).to.equal(undefined);
    }
    expect(quits.filter((q) => / QUIT :SendQ exceeded$/.test(q))).to.have.length(SLOW_READERS);

    // Everyone else is unaffected.
    for (const c of [...flooders, observer]) {
      c.keepLines = true;
      await c.ping('still-here');
    }
    const receivedBySlow = slow.reduce((n, c) => n + c.received, 0) / SLOW_READERS;
    for (const c of slow) c.lines.length = 0; // what the test kept is not the daemon's memory
    await sleep(100);
    const memAfter = memory();
    figure('slow reader: messages flooded before the drop', `${sent} PRIVMSGs of ~450 bytes in ${floodMs.toFixed(0)} ms`);
    figure('slow reader: bytes a slow reader got before the drop (kernel buffers + sendq)', mib(receivedBySlow));
    figure('slow reader: largest per-socket output queue seen in the daemon', `${(peakQueued / 1024).toFixed(0)} KiB (sendq ${SENDQ / 1024} KiB)`);
    figure('slow reader: process RSS before / peak during flood / after', `${mib(memBefore.rss)} / ${mib(peakRss)} / ${mib(memAfter.rss)}`);
    figure('slow reader: JS heap used before / at the drop / after', `${mib(memBefore.heapUsed)} / ${mib(memAtDrop.heapUsed)} / ${mib(memAfter.heapUsed)}`);
    for (const c of conns.values()) c.close();
  });
});
