/**
 * Load generator: a child process that holds a slice of the benchmark's connections and speaks
 * IRC over raw sockets (an IRC library costs more CPU per line than the daemon under test).
 *
 * The orchestrator (bench/run.ts) drives it over IPC: connect + register, join rooms, run a
 * blast (windowed, as fast as the server drains) or a paced (open-loop, fixed rate) phase,
 * part, close. A room lives entirely inside one load generator, so its senders and receivers
 * share one clock and one set of counters.
 *
 * Delivery accounting: per room, next[r * size + s] is the next sequence number receiver r
 * expects from sender s. TCP keeps order per connection and the server relays a sender's
 * lines in order, so an in-order check catches both loss (a gap) and duplication (a repeat);
 * at the end every (receiver, sender) pair must have seen exactly what the sender sent.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { bucketOf, HIST_BUCKETS, toSparse } from './lib/hist.js';
import {
  FILLER_BYTES, MARKER, MEMBER_DIGITS, SEQ_DIGITS, TIME_DIGITS, TRAIL_BYTES,
  type ConnectResult, type ConnSpec, type FromWorker, type RoomSpec, type RunResult, type RunSpec, type ToWorker,
} from './lib/wire.js';

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
const DIGIT0 = 0x30;
const M0 = MARKER.charCodeAt(0);
const M1 = MARKER.charCodeAt(1);
const M2 = MARKER.charCodeAt(2);
const M3 = MARKER.charCodeAt(3);
// Offsets of the fields, counted back from the CR that ends the line.
const OFF_TIME = TIME_DIGITS;
const OFF_SEQ = OFF_TIME + SEQ_DIGITS;
const OFF_MEMBER = OFF_SEQ + MEMBER_DIGITS;
const OFF_MARKER = TRAIL_BYTES;

const FILLER = Buffer.from(randomBytes(Math.ceil((FILLER_BYTES * 3) / 4) + 3).toString('base64').replace(/[+/=]/g, 'A').slice(0, FILLER_BYTES), 'latin1');

function send(msg: FromWorker): void {
  process.send!(msg);
}

function nowUs(): number {
  return Math.round(performance.now() * 1000);
}

function readDigits(buf: Buffer, at: number, n: number): number {
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 10 + (buf[at + i]! - DIGIT0);
  return v;
}

function writeDigits(buf: Buffer, at: number, n: number, value: number): void {
  for (let i = at + n - 1; i >= at; i--) {
    buf[i] = DIGIT0 + (value % 10);
    value = Math.floor(value / 10);
  }
}

interface Waiter {
  match: (line: string) => 'ok' | 'fail' | null;
  resolve: (ok: boolean, line: string) => void;
}

class Room {
  readonly size: number;
  readonly next: Int32Array;
  readonly sent: Int32Array;
  /** Per sender: the lowest next[] over its receivers, as last computed. */
  readonly acked: Int32Array;
  /** Per sender: `PRIVMSG #room :SC1M <filler><member>` as bytes. */
  readonly prefixes: Buffer[];
  readonly lineBytes: number;

  constructor(
    readonly name: string,
    readonly members: Conn[],
    readonly senders: number,
  ) {
    this.size = members.length;
    this.next = new Int32Array(this.size * this.size);
    this.sent = new Int32Array(this.size);
    this.acked = new Int32Array(this.size);
    this.prefixes = [];
    for (let m = 0; m < this.size; m++) {
      const head = Buffer.from(`PRIVMSG ${name} :${MARKER}`, 'latin1');
      const member = Buffer.alloc(MEMBER_DIGITS);
      writeDigits(member, 0, MEMBER_DIGITS, m);
      this.prefixes.push(Buffer.concat([head, FILLER, member]));
    }
    this.lineBytes = this.prefixes[0]!.length + SEQ_DIGITS + TIME_DIGITS + 2;
    members.forEach((c, i) => {
      c.room = this;
      c.member = i;
    });
  }

  reset(): void {
    this.next.fill(0);
    this.sent.fill(0);
    this.acked.fill(0);
  }

  /** Recompute how far every receiver has got with sender s. */
  minAcked(s: number): number {
    let min = this.sent[s]!;
    const size = this.size;
    for (let r = 0; r < size; r++) {
      if (r === s) continue;
      const v = this.next[r * size + s]!;
      if (v < min) min = v;
    }
    this.acked[s] = min;
    return min;
  }

  /** Send `count` messages from sender s in one write. */
  sendBatch(s: number, count: number): void {
    const prefix = this.prefixes[s]!;
    const lineBytes = this.lineBytes;
    const buf = Buffer.allocUnsafe(lineBytes * count);
    const t = nowUs();
    let seq = this.sent[s]!;
    for (let k = 0, at = 0; k < count; k++, at += lineBytes) {
      prefix.copy(buf, at);
      let p = at + prefix.length;
      writeDigits(buf, p, SEQ_DIGITS, seq++);
      p += SEQ_DIGITS;
      writeDigits(buf, p, TIME_DIGITS, t);
      p += TIME_DIGITS;
      buf[p] = CR;
      buf[p + 1] = LF;
    }
    this.sent[s] = seq;
    stats.sent += count;
    stats.expected += count * (this.size - 1);
    this.members[s]!.socket.write(buf);
  }
}

const stats = {
  sent: 0,
  expected: 0,
  delivered: 0,
  duplicates: 0,
  missing: 0,
  selfDeliveries: 0,
  lastDeliveryUs: 0,
  hist: new Uint32Array(HIST_BUCKETS),
};

function resetStats(): void {
  stats.sent = 0;
  stats.expected = 0;
  stats.delivered = 0;
  stats.duplicates = 0;
  stats.missing = 0;
  stats.selfDeliveries = 0;
  stats.lastDeliveryUs = 0;
  stats.hist.fill(0);
}

/** Called once per event-loop turn after deliveries arrived (blast mode tops senders up). */
let onProgress: (() => void) | null = null;
let progressScheduled = false;

function scheduleProgress(): void {
  if (progressScheduled || !onProgress) return;
  progressScheduled = true;
  setImmediate(() => {
    progressScheduled = false;
    onProgress?.();
  });
}

class Conn {
  room: Room | null = null;
  member = 0;
  registered = false;
  closed = false;
  private rest: Buffer | null = null;
  private waiters: Waiter[] = [];

  constructor(
    readonly spec: ConnSpec,
    readonly socket: net.Socket,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      const w = this.waiters;
      this.waiters = [];
      for (const x of w) x.resolve(false, 'connection closed');
    });
  }

  write(text: string): void {
    if (!this.closed) this.socket.write(text);
  }

  /** Wait for a line the matcher accepts ('ok') or rejects ('fail'); false on close or timeout. */
  waitLine(match: Waiter['match'], ms: number): Promise<{ ok: boolean; line: string }> {
    return new Promise((resolve) => {
      if (this.closed) return resolve({ ok: false, line: 'connection closed' });
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve({ ok: false, line: 'timed out' });
      }, ms);
      const waiter: Waiter = {
        match,
        resolve: (ok, line) => {
          clearTimeout(timer);
          resolve({ ok, line });
        },
      };
      this.waiters.push(waiter);
    });
  }

  private onData(chunk: Buffer): void {
    const data = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    const room = this.room;
    let start = 0;
    let nl: number;
    let got = 0;
    let t = 0;
    while ((nl = data.indexOf(LF, start)) !== -1) {
      const cr = nl - 1; // the servers under test end lines with CRLF
      if (
        room !== null && cr - start > OFF_MARKER && data[cr - OFF_MARKER - 1] === COLON &&
        data[cr - OFF_MARKER] === M0 && data[cr - OFF_MARKER + 1] === M1 &&
        data[cr - OFF_MARKER + 2] === M2 && data[cr - OFF_MARKER + 3] === M3
      ) {
        if (t === 0) t = nowUs();
        const s = readDigits(data, cr - OFF_MEMBER, MEMBER_DIGITS);
        const seq = readDigits(data, cr - OFF_SEQ, SEQ_DIGITS);
        const sentAt = readDigits(data, cr - OFF_TIME, TIME_DIGITS);
        if (s === this.member) {
          stats.selfDeliveries++;
        } else {
          const k = this.member * room.size + s;
          const want = room.next[k]!;
          if (seq === want) {
            room.next[k] = want + 1;
            got++;
            stats.hist[bucketOf(t - sentAt)]!++;
          } else if (seq < want) {
            stats.duplicates++;
          } else {
            stats.missing += seq - want;
            room.next[k] = seq + 1;
            got++;
            stats.hist[bucketOf(t - sentAt)]!++;
          }
        }
      } else {
        this.onLine(data.toString('latin1', start, data[cr] === CR ? cr : nl));
      }
      start = nl + 1;
    }
    this.rest = start === data.length ? null : data.subarray(start);
    if (got > 0) {
      stats.delivered += got;
      stats.lastDeliveryUs = t;
      scheduleProgress();
    }
  }

  /** Anything that is not a benchmark message: registration replies, PING, JOIN, ... */
  private onLine(line: string): void {
    if (line.startsWith('ERROR ')) lastError = line;
    if (line.startsWith('PING ')) {
      this.write(`PONG ${line.slice(5)}\r\n`);
      return;
    }
    if (this.waiters.length === 0) return;
    for (const w of [...this.waiters]) {
      const r = w.match(line);
      if (r === null) continue;
      this.waiters = this.waiters.filter((x) => x !== w);
      w.resolve(r === 'ok', line);
    }
  }
}

function numericOf(line: string): string | null {
  // `:server 376 nick :...`
  const sp = line.indexOf(' ');
  if (sp === -1 || line[0] !== ':') return null;
  const end = line.indexOf(' ', sp + 1);
  return line.slice(sp + 1, end === -1 ? undefined : end);
}

let conns: Conn[] = [];
/** The last ERROR line a server sent (why it closed a connection). */
let lastError: string | null = null;
let rooms: Room[] = [];

async function connectOne(port: number, spec: ConnSpec, keep: boolean): Promise<{ conn: Conn | null; error: string | null }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  const conn = new Conn(spec, socket);
  const ok = await new Promise<boolean>((resolve) => {
    socket.once('connect', () => resolve(true));
    socket.once('error', () => resolve(false));
  });
  if (!ok) return { conn: null, error: `${spec.nick}: connect failed` };
  const done = conn.waitLine((line) => {
    const n = numericOf(line);
    if (n === '376' || n === '422') return 'ok';
    if (n === '464' || n === '432' || n === '433' || line.startsWith('ERROR')) return 'fail';
    return null;
  }, 60_000);
  conn.write(`${spec.pass !== null ? `PASS ${spec.pass}\r\n` : ''}NICK ${spec.nick}\r\nUSER ${spec.nick} 0 * :${spec.nick}\r\n`);
  const r = await done;
  if (!r.ok) {
    socket.destroy();
    return { conn: null, error: `${spec.nick}: ${r.line}` };
  }
  conn.registered = true;
  if (!keep) {
    conn.write('QUIT :bye\r\n');
    socket.end();
  }
  return { conn, error: null };
}

async function connectAll(port: number, specs: ConnSpec[], concurrency: number, keep: boolean): Promise<ConnectResult> {
  const t0 = performance.now();
  const out: Conn[] = new Array(specs.length);
  let nextIdx = 0;
  let failed = 0;
  let error: string | null = null;
  const lane = async (): Promise<void> => {
    for (;;) {
      const i = nextIdx++;
      if (i >= specs.length) return;
      const r = await connectOne(port, specs[i]!, keep);
      if (r.conn) out[i] = r.conn;
      else {
        failed++;
        error ??= r.error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, specs.length) }, lane));
  const ms = performance.now() - t0;
  if (keep) conns = conns.concat(out.filter(Boolean));
  return { ok: specs.length - failed, failed, error, ms };
}

let syncCounter = 0;

/**
 * A PING round trip on every connection: all output the server queued before has arrived.
 * Connections the server already closed are skipped: the run that lost them has counted them
 * in its delivery check (`closed`), and the rest of the benchmark goes on without them.
 */
async function syncAll(all: Conn[]): Promise<void> {
  const list = all.filter((c) => !c.closed);
  const token = `sync${++syncCounter}`;
  const waits = list.map((c) => c.waitLine((l) => (l.includes(' PONG ') && l.endsWith(token) ? 'ok' : null), 30_000));
  for (const c of list) c.write(`PING :${token}\r\n`);
  const res = await Promise.all(waits);
  const bad = res.find((r) => !r.ok);
  if (bad) throw new Error(`sync failed: ${bad.line}`);
}

async function joinRooms(specs: RoomSpec[]): Promise<number> {
  const t0 = performance.now();
  rooms = specs.map((r) => new Room(r.name, r.members.map((i) => conns[i]!), r.senders));
  const waits: Array<Promise<{ ok: boolean; line: string }>> = [];
  for (const room of rooms) {
    const folded = room.name.toLowerCase();
    for (const c of room.members) {
      waits.push(c.waitLine((l) => {
        const n = numericOf(l);
        if (n === '366' && l.toLowerCase().includes(` ${folded} `)) return 'ok';
        if (n !== null && /^4\d\d$/.test(n)) return 'fail';
        return null;
      }, 30_000));
      c.write(`JOIN ${room.name}\r\n`);
    }
  }
  const res = await Promise.all(waits);
  const bad = res.find((r) => !r.ok);
  if (bad) throw new Error(`join failed: ${bad.line}`);
  await syncAll(rooms.flatMap((r) => r.members));
  return performance.now() - t0;
}

async function partRooms(): Promise<void> {
  const members = rooms.flatMap((r) => r.members);
  for (const room of rooms) for (const c of room.members) c.write(`PART ${room.name}\r\n`);
  await syncAll(members);
  for (const c of members) c.room = null;
  rooms = [];
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

async function run(spec: RunSpec): Promise<RunResult> {
  for (const r of rooms) r.reset();
  resetStats();
  const cpu0 = cpuMs();
  const t0 = nowUs();
  let sending = true;
  let timer: NodeJS.Timeout | null = null;

  if (spec.mode === 'blast') {
    // Each sender keeps up to `window` messages in flight; refill in batches of at least half a
    // window, so the server sees pipelined input the way a busy room produces it.
    const half = Math.max(1, Math.ceil(spec.window / 2));
    const top = (): void => {
      if (!sending) return;
      for (const room of rooms) {
        for (let s = 0; s < room.senders; s++) {
          let inflight = room.sent[s]! - room.acked[s]!;
          if (spec.window - inflight < half) inflight = room.sent[s]! - room.minAcked(s);
          const allowance = spec.window - inflight;
          if (allowance >= half) room.sendBatch(s, allowance);
        }
      }
    };
    onProgress = top;
    top();
  } else {
    // Open loop: messages due by now go out at once, senders in rotation (no coordinated omission:
    // a slow server does not slow the offered load down).
    const senders: Array<[Room, number]> = [];
    for (const room of rooms) for (let s = 0; s < room.senders; s++) senders.push([room, s]);
    const counts = new Int32Array(senders.length);
    let cursor = 0;
    let issued = 0;
    const tick = (): void => {
      if (!sending) return;
      const due = Math.floor(((nowUs() - t0) / 1e6) * spec.rate) - issued;
      if (due > 0) {
        counts.fill(0);
        for (let k = 0; k < due; k++) {
          counts[cursor]!++;
          cursor = cursor + 1 === senders.length ? 0 : cursor + 1;
        }
        for (let i = 0; i < senders.length; i++) {
          if (counts[i]! > 0) senders[i]![0].sendBatch(senders[i]![1], counts[i]!);
        }
        issued += due;
      }
      timer = setTimeout(tick, 1);
    };
    tick();
  }

  await new Promise((r) => setTimeout(r, spec.durationMs));
  sending = false;
  onProgress = null;
  if (timer) clearTimeout(timer);

  // Drain: wait until everything sent has been delivered, or nothing moves for 5 s.
  let last = stats.delivered;
  let still = performance.now();
  while (stats.delivered + stats.missing < stats.expected) {
    await new Promise((r) => setTimeout(r, 10));
    if (stats.delivered !== last) {
      last = stats.delivered;
      still = performance.now();
    } else if (performance.now() - still > 5_000) break;
  }
  const cpu = cpuMs() - cpu0;

  let badPairs = 0;
  let closed = 0;
  for (const room of rooms) {
    for (const c of room.members) if (c.closed) closed++;
    for (let r = 0; r < room.size; r++) {
      for (let s = 0; s < room.size; s++) {
        if (r !== s && room.next[r * room.size + s] !== room.sent[s]) badPairs++;
      }
    }
  }
  return {
    sent: stats.sent,
    expected: stats.expected,
    delivered: stats.delivered,
    duplicates: stats.duplicates,
    missing: stats.expected - stats.delivered,
    selfDeliveries: stats.selfDeliveries,
    badPairs,
    closed,
    closeReason: closed ? lastError : null,
    elapsedMs: Math.max(0, stats.lastDeliveryUs - t0) / 1000,
    cpuMs: cpu,
    hist: toSparse(stats.hist),
  };
}

/** QUIT and wait for the server to close each connection (at most 5 s), then drop them. */
async function quitAll(list: Conn[]): Promise<void> {
  const closed = list.map((c) => (c.closed ? Promise.resolve() : new Promise<void>((r) => c.socket.once('close', () => r()))));
  for (const c of list) c.write('QUIT :done\r\n');
  await Promise.race([Promise.all(closed), new Promise((r) => setTimeout(r, 5000))]);
  for (const c of list) c.socket.destroy();
}

async function handle(msg: ToWorker): Promise<void> {
  switch (msg.cmd) {
    case 'connect':
      send({ ev: 'connected', result: await connectAll(msg.port, msg.conns, msg.concurrency, msg.keep) });
      return;
    case 'join':
      send({ ev: 'joined', ms: await joinRooms(msg.rooms) });
      return;
    case 'run':
      send({ ev: 'ran', result: await run(msg.spec) });
      return;
    case 'part':
      await partRooms();
      send({ ev: 'parted' });
      return;
    case 'trim':
      await quitAll(conns.slice(msg.count));
      conns = conns.slice(0, msg.count);
      send({ ev: 'trimmed' });
      return;
    case 'close':
      await quitAll(conns);
      conns = [];
      send({ ev: 'closed' });
      return;
  }
}

process.on('message', (msg: ToWorker) => {
  handle(msg).catch((err: unknown) => send({ ev: 'error', message: (err as Error)?.stack ?? String(err) }));
});
process.on('disconnect', () => process.exit(0));
send({ ev: 'ready' });
