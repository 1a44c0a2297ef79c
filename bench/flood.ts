/**
 * `npm run bench:flood`: one client floods a busy room as fast as its socket takes it, under the
 * daemon's DEFAULT flood limits (fakelag 16-line burst then 4 lines/s, 16 KiB recvq), while 100
 * other members talk at 2 messages/s each. Reports the members' delivery latency (p50/p99) with
 * and without the flooder, what became of the flooder, and how much of its flood got through.
 * Target (hardening issue): p99 <= 10 ms for the 100 members while the flooder floods.
 */
import net from 'node:net';
import { quantileMs, bucketOf, HIST_BUCKETS } from './lib/hist.js';
import { machineInfo } from './lib/proc.js';
import { startSealchat, type Target } from './lib/targets.js';

const MEMBERS = 100;
const RATE_PER_MEMBER = 2; // messages/s
const SECONDS = Number(process.argv.includes('--quick') ? 4 : 10);
const ROOM = '#busy';
const now = (): number => performance.timeOrigin + performance.now();

interface Conn {
  nick: string;
  socket: net.Socket;
  lines: (line: string) => void;
  closedWith: string | null;
}

function connect(t: Target, i: number, onLine: (c: Conn, line: string) => void): Promise<Conn> {
  const spec = t.conn(i, 'bench');
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port: t.port });
    socket.setNoDelay(true);
    const c: Conn = { nick: spec.nick, socket, lines: () => undefined, closedWith: null };
    let buf = '';
    let registered = false;
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      buf += d;
      let k: number;
      while ((k = buf.indexOf('\r\n')) !== -1) {
        const line = buf.slice(0, k);
        buf = buf.slice(k + 2);
        if (line.startsWith('PING ')) socket.write(`PONG ${line.slice(5)}\r\n`);
        else if (line.startsWith('ERROR ')) c.closedWith = line;
        else if (!registered && / 001 /.test(line)) {
          registered = true;
          resolve(c);
        } else onLine(c, line);
      }
    });
    socket.on('error', (e) => (registered ? undefined : reject(e)));
    // A flooder's ERROR line can be lost to the reset that follows it: the close says enough.
    socket.on('close', () => (c.closedWith ??= 'disconnected by the server'));
    socket.write(`PASS ${spec.pass}\r\nNICK ${spec.nick}\r\nUSER ${spec.nick} 0 * :bench\r\n`);
  });
}

async function scenario(t: Target, withFlooder: boolean): Promise<{ p50: number; p99: number; delivered: number; expected: number; floodThrough: number; floodSent: number; flooderFate: string }> {
  const hist = new Uint32Array(HIST_BUCKETS);
  let delivered = 0;
  let floodThrough = 0;
  const joined = new Set<string>();
  const onLine = (c: Conn, line: string): void => {
    if (line.includes(` JOIN ${ROOM}`) && line.startsWith(`:${c.nick}!`)) joined.add(c.nick);
    if (c === conns[0]) return; // only the 100 members' receipts are counted
    const m = / PRIVMSG #busy :m (\d+(?:\.\d+)?)$/.exec(line);
    if (m) {
      delivered++;
      hist[bucketOf((now() - Number(m[1])) * 1000)]!++;
    } else if (line.includes(' PRIVMSG #busy :flood')) floodThrough++;
  };
  const conns: Conn[] = [];
  for (let i = 0; i <= MEMBERS; i++) conns.push(await connect(t, i, onLine));
  for (const c of conns) c.socket.write(`JOIN ${ROOM}\r\n`);
  while (joined.size < conns.length) await new Promise((r) => setTimeout(r, 20));
  const [flooder, ...members] = conns;
  let floodSent = 0;
  let flooding = withFlooder;
  const flood = (): void => {
    while (flooding && !flooder!.socket.destroyed) {
      floodSent++;
      if (!flooder!.socket.write(`PRIVMSG ${ROOM} :flood ${floodSent} ${'x'.repeat(200)}\r\n`)) {
        flooder!.socket.once('drain', flood);
        return;
      }
    }
  };
  flooder!.socket.on('error', () => undefined);
  flood();
  const end = Date.now() + SECONDS * 1000;
  let sentByMembers = 0;
  const timers = members.map((c, i) =>
    setTimeout(function tick() {
      if (Date.now() >= end) return;
      c.socket.write(`PRIVMSG ${ROOM} :m ${now()}\r\n`);
      sentByMembers++;
      timers[i] = setTimeout(tick, 1000 / RATE_PER_MEMBER);
    }, (i * 1000) / RATE_PER_MEMBER / members.length),
  );
  await new Promise((r) => setTimeout(r, SECONDS * 1000 + 1500));
  flooding = false;
  timers.forEach(clearTimeout);
  // Each member message must reach the 99 other members (the flooder's receipts are not counted).
  const expectedPerMsg = members.length - 1;
  const fate = flooder!.closedWith ?? (withFlooder ? 'still connected (slowed by fakelag)' : '-');
  const floodedFor = flooder!.closedWith ? 'until it was dropped' : `for ${SECONDS} s`;
  for (const c of conns) c.socket.destroy();
  await new Promise((r) => setTimeout(r, 500));
  return {
    p50: quantileMs(hist, 0.5),
    p99: quantileMs(hist, 0.99),
    delivered,
    expected: sentByMembers * expectedPerMsg,
    floodThrough: floodThrough / Math.max(1, members.length),
    floodSent,
    flooderFate: `${fate} (${floodedFor})`,
  };
}

async function main(): Promise<void> {
  const m = machineInfo();
  console.log(`# flood — ${new Date().toISOString()} — ${m.cpu}, ${m.cores} cores, load ${m.load}`);
  // Default limits except the login throttle (101 logins from one address in seconds).
  const t = await startSealchat(MEMBERS + 1, 0, undefined, { loginAttemptsPerIpPerMinute: 1_000_000, loginAttemptsPerAccountPerMinute: 1_000_000 });
  try {
    const base = await scenario(t, false);
    const flood = await scenario(t, true);
    console.log(`\n| ${MEMBERS} members at ${RATE_PER_MEMBER}/s each, ${SECONDS} s | p50 ms | p99 ms | member messages delivered |`);
    console.log('|---|---|---|---|');
    console.log(`| no flooder | ${base.p50.toFixed(2)} | ${base.p99.toFixed(2)} | ${base.delivered} of ${base.expected} |`);
    console.log(`| one flooder | ${flood.p50.toFixed(2)} | ${flood.p99.toFixed(2)} | ${flood.delivered} of ${flood.expected} |`);
    console.log(`\nflooder: wrote ${flood.floodSent} lines; ${flood.floodThrough.toFixed(0)} of them reached the room; ${flood.flooderFate}`);
    const ok = flood.delivered >= flood.expected && base.delivered >= base.expected;
    console.log(`delivery check: ${ok ? 'OK (every member message reached every other member)' : 'FAIL'}`);
    console.log(`target p99 <= 10 ms while flooded: ${flood.p99.toFixed(2)} ms ${flood.p99 <= 10 ? 'MET' : 'MISSED'}`);
    if (!ok) process.exitCode = 1;
  } finally {
    await t.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
