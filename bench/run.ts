/**
 * `npm run bench [-- options]`: sealchat's daemon under load, and ngircd under the same load in
 * the same run when it is installed (docs/PERFORMANCE.md explains the method and the figures).
 *
 * Scenarios, per server:
 *   logins   N password logins (PASS), then the N connections stay registered and idle:
 *            memory per idle connection = RSS delta / N.
 *   rooms    those N connections as N/5 rooms of 5 members, every member sending: a blast
 *            (windowed, as fast as the server drains) and a paced run at 50 k deliveries/s.
 *   fan-out  one room of 50 members with 5 senders: blast and paced at 50 k deliveries/s.
 * Every run checks that each message reached every other member of its room exactly once.
 *
 * Options: --quick (smoke check, < 60 s: 250 logins, one 2 s round), --rounds N (repeat each
 * measured run; default 2), --seconds S (per measured run; default 8), --window N (blast: messages
 * in flight per sender; default 256), --workers N (load-generator processes; default 1),
 * --logins N, --only sealchat|ngircd, --scenarios rooms,fanout (which traffic scenarios; logins
 * and idle memory always run), --profile DIR (V8 CPU profile of the sealchat daemon into DIR).
 * Exit status 1 when a delivery check fails; missed targets are reported, not failed.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { mergeSparse, quantileMs } from './lib/hist.js';
import { IpcChild, machineInfo } from './lib/proc.js';
import { ngircdInstalled, NGIRCD, startNgircd, startSealchat, type MemoryReading, type Target } from './lib/targets.js';
import type { ConnSpec, FromWorker, RoomSpec, RunResult, RunSpec, ToWorker } from './lib/wire.js';

const { values: opts } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    workers: { type: 'string' },
    window: { type: 'string' },
    only: { type: 'string' },
    logins: { type: 'string' },
    seconds: { type: 'string' },
    profile: { type: 'string' },
    scenarios: { type: 'string' },
  },
  allowPositionals: false,
});

const QUICK = opts.quick;
const ROUNDS = Number(opts.rounds ?? (QUICK ? 1 : 2));
const WORKERS = Number(opts.workers ?? 1);
const WINDOW = Number(opts.window ?? 256);
const LOGINS = Number(opts.logins ?? (QUICK ? 250 : 1000));
const RUN_MS = Number(opts.seconds ?? (QUICK ? 2 : 8)) * 1000;
const WARM_MS = QUICK ? 500 : 1500;
const ROOM_SIZE = 5;
const FANOUT_SIZE = 50;
const FANOUT_SENDERS = 5;
const PACED_DELIVERIES = 50_000;
const LOGIN_CONCURRENCY = 64;
const WARM_LOGINS = 64;
const SCENARIOS = new Set((opts.scenarios ?? 'rooms,fanout').split(','));

if (LOGINS % (ROOM_SIZE * WORKERS) !== 0 || LOGINS / WORKERS < FANOUT_SIZE) {
  throw new Error(`--logins must be a multiple of ${ROOM_SIZE * WORKERS} and give each worker at least ${FANOUT_SIZE} connections`);
}

const TARGETS = {
  cpuPer1000: 0.2,
  roomsRate: 1.6e6,
  p99Ms: 6,
  idleKB: 12,
  loginsS: 15,
};

type Worker = IpcChild<ToWorker, FromWorker>;

async function expect<E extends FromWorker['ev']>(p: Promise<FromWorker>, ev: E): Promise<Extract<FromWorker, { ev: E }>> {
  const m = await p;
  if (m.ev !== ev) throw new Error(`expected ${ev}, got ${m.ev}`);
  return m as Extract<FromWorker, { ev: E }>;
}

/** One measured run, summed over the load generators. */
interface RunFigures {
  deliveries: number;
  perSecond: number;
  serverCpuMs: number;
  cpuPer1000: number;
  /** Server CPU as a share of one core over the run. */
  serverCore: number;
  loadgenCore: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  exactlyOnce: boolean;
  problems: string;
}

function summarise(results: RunResult[], serverCpuMs: number): RunFigures {
  const sum = (f: (r: RunResult) => number): number => results.reduce((a, r) => a + f(r), 0);
  const deliveries = sum((r) => r.delivered);
  const elapsed = Math.max(...results.map((r) => r.elapsedMs));
  const hist = mergeSparse(results.map((r) => r.hist));
  const dup = sum((r) => r.duplicates);
  const miss = sum((r) => r.missing);
  const self = sum((r) => r.selfDeliveries);
  const bad = sum((r) => r.badPairs);
  const expected = sum((r) => r.expected);
  const closed = sum((r) => r.closed);
  const exactlyOnce = dup === 0 && miss === 0 && self === 0 && bad === 0 && closed === 0 && deliveries === expected && deliveries > 0;
  return {
    deliveries,
    perSecond: deliveries / (elapsed / 1000),
    serverCpuMs,
    cpuPer1000: (serverCpuMs / deliveries) * 1000,
    serverCore: serverCpuMs / elapsed,
    loadgenCore: sum((r) => r.cpuMs) / elapsed,
    p50: quantileMs(hist, 0.5),
    p99: quantileMs(hist, 0.99),
    p999: quantileMs(hist, 0.999),
    max: quantileMs(hist, 1),
    exactlyOnce,
    problems: exactlyOnce ? '' : `expected ${expected}, delivered ${deliveries}, missing ${miss}, duplicates ${dup}, self ${self}, bad pairs ${bad}` +
      (closed ? `, ${closed} connection(s) closed by the server (${results.find((r) => r.closeReason)?.closeReason ?? 'no ERROR line'})` : ''),
  };
}

async function runOn(target: Target, active: Worker[], spec: RunSpec): Promise<RunFigures> {
  const cpu0 = target.cpuMs();
  const replies = await Promise.all(active.map((w) => expect(w.request({ cmd: 'run', spec }), 'ran')));
  const cpu1 = target.cpuMs();
  return summarise(replies.map((r) => r.result), cpu1 - cpu0);
}

interface ScenarioFigures {
  blast: RunFigures[];
  paced: RunFigures[];
}

interface TargetFigures {
  name: string;
  logins: number;
  loginSeconds: number;
  loginFailures: string;
  loginServerCpuMs: number;
  idleBytesPerConn: number;
  idleHeapPerConn: number | null;
  rooms: ScenarioFigures;
  fanout: ScenarioFigures;
}

const log = (s: string): void => void process.stderr.write(s + '\n');

async function scenario(target: Target, active: Worker[], label: string, pacedRate: () => number): Promise<ScenarioFigures> {
  const warm = await runOn(target, active, { mode: 'blast', durationMs: WARM_MS, window: WINDOW, rate: 0 });
  if (!warm.exactlyOnce) log(`  ${label} warm-up: delivery check FAILED: ${warm.problems}`);
  const out: ScenarioFigures = { blast: [], paced: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const b = await runOn(target, active, { mode: 'blast', durationMs: RUN_MS, window: WINDOW, rate: 0 });
    log(`  ${label} blast #${round + 1}: ${fmtRate(b.perSecond)} deliveries/s, server ${b.cpuPer1000.toFixed(3)} ms CPU/1000 (${pct(b.serverCore)} of a core), load gen ${pct(b.loadgenCore)}, ${b.exactlyOnce ? 'exactly once' : 'FAIL ' + b.problems}`);
    out.blast.push(b);
    const p = await runOn(target, active, { mode: 'paced', durationMs: RUN_MS, window: 0, rate: pacedRate() });
    log(`  ${label} paced #${round + 1}: ${fmtRate(p.perSecond)} deliveries/s, p50 ${p.p50.toFixed(3)} ms, p99 ${p.p99.toFixed(3)} ms, p99.9 ${p.p999.toFixed(2)} ms, max ${p.max.toFixed(1)} ms, server ${p.cpuPer1000.toFixed(3)} ms CPU/1000, ${p.exactlyOnce ? 'exactly once' : 'FAIL ' + p.problems}`);
    out.paced.push(p);
  }
  return out;
}

async function benchTarget(make: () => Promise<Target>): Promise<TargetFigures> {
  const target = await make();
  const script = fileURLToPath(new URL('./loadgen.ts', import.meta.url));
  const workers: Worker[] = [];
  try {
    for (let i = 0; i < WORKERS; i++) {
      const w = new IpcChild<ToWorker, FromWorker>(script, []);
      await expect(w.next(), 'ready');
      workers.push(w);
    }
    log(`${target.name}: pid ${target.pid}, port ${target.port}`);

    // Warm-up logins (JIT, allocator arenas of the hash jobs), then the baseline.
    const warmSpecs = Array.from({ length: WARM_LOGINS }, (_, i) => target.conn(i, 'warm'));
    const warm = await expect(workers[0]!.request({ cmd: 'connect', port: target.port, conns: warmSpecs, concurrency: WARM_LOGINS, keep: false }), 'connected');
    if (warm.result.failed) throw new Error(`warm-up logins failed: ${warm.result.error}`);
    await sleep(500);
    const mem0 = await target.memory();

    // Logins: each worker logs in its slice; wall time from the first connect to the last end
    // of MOTD. Then the connections stay registered and idle for the memory reading.
    const per = LOGINS / WORKERS;
    const cpu0 = target.cpuMs();
    const t0 = performance.now();
    const logins = await Promise.all(workers.map((w, k) => {
      const conns: ConnSpec[] = Array.from({ length: per }, (_, i) => target.conn(k * per + i, 'bench'));
      return expect(w.request({ cmd: 'connect', port: target.port, conns, concurrency: Math.ceil(LOGIN_CONCURRENCY / WORKERS), keep: true }), 'connected');
    }));
    const loginSeconds = (performance.now() - t0) / 1000;
    const loginServerCpuMs = target.cpuMs() - cpu0;
    const failed = logins.reduce((a, l) => a + l.result.failed, 0);
    const loginFailures = failed ? `${failed} failed (${logins.find((l) => l.result.error)?.result.error})` : '';
    log(`  logins: ${LOGINS - failed}/${LOGINS} in ${loginSeconds.toFixed(2)} s${loginFailures ? ', ' + loginFailures : ''}`);
    if (failed) throw new Error(`logins failed: ${loginFailures}`);
    await sleep(1000);
    const idle = memoryFigures(mem0, await target.memory(), LOGINS);
    log(`  idle: ${idle.text}`);

    const empty: ScenarioFigures = { blast: [], paced: [] };
    let rooms = empty;
    let fanout = empty;
    if (SCENARIOS.has('rooms')) {
      // LOGINS/5 rooms of 5: each worker's connections, 5 by 5; every member sends.
      const roomsPerWorker = per / ROOM_SIZE;
      await Promise.all(workers.map((w, k) => {
        const specs: RoomSpec[] = Array.from({ length: roomsPerWorker }, (_, r) => ({
          name: `#room-${k * roomsPerWorker + r}`,
          members: Array.from({ length: ROOM_SIZE }, (_, m) => r * ROOM_SIZE + m),
          senders: ROOM_SIZE,
        }));
        return expect(w.request({ cmd: 'join', rooms: specs }), 'joined');
      }));
      rooms = await scenario(target, workers, `rooms ${roomsPerWorker * WORKERS}x${ROOM_SIZE}`,
        () => PACED_DELIVERIES / (ROOM_SIZE - 1) / WORKERS);
      await Promise.all(workers.map((w) => expect(w.request({ cmd: 'part' }), 'parted')));
    }
    if (SCENARIOS.has('fanout')) {
      // One room of 50 with 5 senders, in the first worker, measured alone: the other
      // connections log out first (an idle crowd costs ngircd a scan per loop, not sealchat).
      await Promise.all(workers.map((w, k) => expect(w.request({ cmd: 'trim', count: k === 0 ? FANOUT_SIZE : 0 }), 'trimmed')));
      const fan: RoomSpec = { name: '#fanout', members: Array.from({ length: FANOUT_SIZE }, (_, i) => i), senders: FANOUT_SENDERS };
      await expect(workers[0]!.request({ cmd: 'join', rooms: [fan] }), 'joined');
      fanout = await scenario(target, [workers[0]!], `fan-out ${FANOUT_SIZE}/${FANOUT_SENDERS}`,
        () => PACED_DELIVERIES / (FANOUT_SIZE - 1));
      await expect(workers[0]!.request({ cmd: 'part' }), 'parted');
    }

    await Promise.all(workers.map((w) => expect(w.request({ cmd: 'close' }), 'closed')));
    return {
      name: target.name, logins: LOGINS, loginSeconds, loginFailures, loginServerCpuMs,
      idleBytesPerConn: idle.rssPerConn, idleHeapPerConn: idle.heapPerConn, rooms, fanout,
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await target.stop();
  }
}

const MiB = 1048576;

/** Memory per idle connection: the RSS delta over n registered idle connections, divided by n. */
function memoryFigures(a: MemoryReading, b: MemoryReading, n: number): { rssPerConn: number; heapPerConn: number | null; text: string } {
  const rssPerConn = (b.rss - a.rss) / n;
  const heapPerConn = a.heapUsed !== undefined && b.heapUsed !== undefined ? (b.heapUsed - a.heapUsed) / n : null;
  const kb = (x: number): string => (x / 1024).toFixed(2);
  let text = `RSS ${(a.rss / MiB).toFixed(1)} → ${(b.rss / MiB).toFixed(1)} MiB = ${kb(rssPerConn)} KB per connection`;
  if (heapPerConn !== null) text += ` (of which V8 heap in use after a full GC: ${kb(heapPerConn)} KB)`;
  return { rssPerConn, heapPerConn, text };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function fmtRate(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${(n / 1e3).toFixed(1)} k`;
}

function pct(x: number): string {
  return `${Math.round(x * 100)}%`;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** "median [min-max]" over the rounds, or the single value. */
function spread(xs: number[], f: (x: number) => string): string {
  if (xs.length === 1) return f(xs[0]!);
  return `${f(median(xs))} [${f(Math.min(...xs))}–${f(Math.max(...xs))}]`;
}

interface Row {
  label: string;
  get: (t: TargetFigures) => number[];
  fmt: (x: number) => string;
  /** Lower is better (for the ratio's reading and the target check). */
  lower: boolean;
  target?: number;
}

function printReport(results: TargetFigures[], started: Date, loadBefore: string): boolean {
  const { cpu, cores, load } = machineInfo();
  const seal = results.find((r) => r.name === 'sealchat');
  const ng = results.find((r) => r.name === 'ngircd');
  const ms = (x: number): string => x.toFixed(3);
  const rows: Row[] = [
    { label: 'fan-out 50/5: server CPU per 1000 deliveries (ms)', get: (t) => t.fanout.blast.map((r) => r.cpuPer1000), fmt: ms, lower: true, target: TARGETS.cpuPer1000 },
    { label: 'fan-out 50/5: deliveries/s (blast)', get: (t) => t.fanout.blast.map((r) => r.perSecond), fmt: fmtRate, lower: false },
    { label: 'fan-out 50/5 @ 50k/s: p50 latency (ms)', get: (t) => t.fanout.paced.map((r) => r.p50), fmt: ms, lower: true },
    { label: 'fan-out 50/5 @ 50k/s: p99 latency (ms)', get: (t) => t.fanout.paced.map((r) => r.p99), fmt: ms, lower: true, target: TARGETS.p99Ms },
    { label: 'fan-out 50/5 @ 50k/s: server CPU per 1000 (ms)', get: (t) => t.fanout.paced.map((r) => r.cpuPer1000), fmt: ms, lower: true },
    { label: `rooms ${LOGINS / ROOM_SIZE}x5: deliveries/s (blast)`, get: (t) => t.rooms.blast.map((r) => r.perSecond), fmt: fmtRate, lower: false, target: LOGINS === 1000 ? TARGETS.roomsRate : undefined },
    { label: `rooms ${LOGINS / ROOM_SIZE}x5: server CPU per 1000 deliveries (ms)`, get: (t) => t.rooms.blast.map((r) => r.cpuPer1000), fmt: ms, lower: true },
    { label: `rooms ${LOGINS / ROOM_SIZE}x5: server share of a core (blast)`, get: (t) => t.rooms.blast.map((r) => r.serverCore), fmt: pct, lower: false },
    { label: `rooms ${LOGINS / ROOM_SIZE}x5: load-generator share of a core`, get: (t) => t.rooms.blast.map((r) => r.loadgenCore), fmt: pct, lower: false },
    { label: `rooms ${LOGINS / ROOM_SIZE}x5 @ 50k/s: p50 latency (ms)`, get: (t) => t.rooms.paced.map((r) => r.p50), fmt: ms, lower: true },
    { label: `rooms ${LOGINS / ROOM_SIZE}x5 @ 50k/s: p99 latency (ms)`, get: (t) => t.rooms.paced.map((r) => r.p99), fmt: ms, lower: true, target: TARGETS.p99Ms },
    { label: `idle: memory per registered connection (KB RSS)`, get: (t) => [t.idleBytesPerConn / 1024], fmt: (x) => x.toFixed(2), lower: true, target: LOGINS === 1000 ? TARGETS.idleKB : undefined },
    { label: `idle: JS heap per connection (KB)`, get: (t) => (t.idleHeapPerConn === null ? [] : [t.idleHeapPerConn / 1024]), fmt: (x) => x.toFixed(2), lower: true },
    { label: `logins: ${LOGINS} PASS logins (s)`, get: (t) => [t.loginSeconds], fmt: (x) => x.toFixed(2), lower: true, target: LOGINS === 1000 ? TARGETS.loginsS : undefined },
    { label: `logins per second`, get: (t) => [t.logins / t.loginSeconds], fmt: (x) => x.toFixed(1), lower: false },
    { label: `logins: server CPU per login (ms)`, get: (t) => [t.loginServerCpuMs / t.logins], fmt: (x) => x.toFixed(2), lower: true },
  ];

  const out: string[] = [];
  out.push('');
  out.push(`sealchat benchmark — ${started.toISOString()}${QUICK ? ' (--quick: smaller and shorter; not the reference figures)' : ''}`);
  out.push(`machine: ${cpu}, ${cores} cores, node ${process.version}; load average before ${loadBefore}, after ${load}`);
  out.push(`runs: ${ROUNDS} round(s) of ${RUN_MS / 1000} s per measured run, window ${WINDOW}, ${WORKERS} load-generator process(es); values are median [min–max] over rounds`);
  if (ng) {
    out.push(`reference: ${ngircdVersion()}; it has no accounts, so its logins check a server password in plain text,`);
    out.push('  and it does not set TCP_NODELAY, so its small writes wait for the client\'s delayed ACK (see docs/PERFORMANCE.md)');
  }
  out.push('');
  const head = ['figure', 'sealchat', ...(ng ? ['ngircd', 'sealchat/ngircd'] : []), 'target', 'met'];
  const table: string[][] = [head];
  let allMet = true;
  for (const row of rows) {
    const sv = seal ? row.get(seal) : [];
    if (seal && sv.length === 0) continue;
    const nv = ng ? row.get(ng) : [];
    const line = [row.label, seal ? spread(sv, row.fmt) : '-'];
    if (ng) {
      line.push(nv.length ? spread(nv, row.fmt) : '-');
      const ratio = sv.length && nv.length ? median(sv) / median(nv) : NaN;
      line.push(Number.isFinite(ratio) ? ratio.toFixed(2) : '-');
    }
    if (row.target !== undefined && seal) {
      const v = median(sv);
      const met = row.lower ? v <= row.target : v >= row.target;
      allMet &&= met;
      line.push(`${row.lower ? '<=' : '>='} ${row.fmt(row.target)}`, met ? 'MET' : 'MISSED');
    } else {
      line.push('', '');
    }
    table.push(line);
  }
  const widths = head.map((_, i) => Math.max(...table.map((r) => (r[i] ?? '').length)));
  for (const [i, r] of table.entries()) {
    out.push(r.map((c, j) => (j === 0 ? c.padEnd(widths[j]!) : c.padStart(widths[j]!))).join('  '));
    if (i === 0) out.push(widths.map((w) => '-'.repeat(w)).join('  '));
  }

  out.push('');
  let allOk = true;
  for (const t of results) {
    for (const [name, sc] of [['rooms', t.rooms], ['fan-out', t.fanout]] as const) {
      const runs = [...sc.blast.map((r) => ['blast', r] as const), ...sc.paced.map((r) => ['paced', r] as const)];
      for (const [mode, r] of runs) {
        allOk &&= r.exactlyOnce;
        out.push(`exactly-once ${t.name} ${name} ${mode}: ${r.deliveries} deliveries — ${r.exactlyOnce ? 'OK' : 'FAIL: ' + r.problems}`);
      }
    }
    if (t.loginFailures) {
      allOk = false;
      out.push(`logins ${t.name}: FAIL ${t.loginFailures}`);
    }
  }
  if (LOGINS !== 1000) out.push(`(${LOGINS} connections, not 1000: memory per connection divides one-off pool growth by ${LOGINS}; rooms are ${LOGINS / ROOM_SIZE}, not 200)`);
  out.push(`delivery checks: ${allOk ? 'OK' : 'FAIL'}; targets: ${allMet ? 'all met' : 'not all met'}`);
  process.stdout.write(out.join('\n') + '\n');
  return allOk;
}

function ngircdVersion(): string {
  try {
    return execFileSync(NGIRCD, ['--version'], { encoding: 'utf8' }).split('\n')[0]!.trim();
  } catch {
    return 'ngircd';
  }
}

async function main(): Promise<void> {
  const started = new Date();
  const loadBefore = machineInfo().load;
  const results: TargetFigures[] = [];
  if (opts.only !== 'ngircd') {
    log('== sealchat ==');
    results.push(await benchTarget(() => startSealchat(LOGINS, WARM_LOGINS, opts.profile)));
  }
  if (opts.only !== 'sealchat') {
    if (ngircdInstalled()) {
      log('== ngircd ==');
      results.push(await benchTarget(startNgircd));
    } else {
      log(`ngircd not installed (${NGIRCD}): no reference figures`);
    }
  }
  const ok = printReport(results, started, loadBefore);
  process.exitCode = ok ? 0 : 1;
}

main().catch((err: unknown) => {
  console.error((err as Error)?.stack ?? String(err));
  process.exit(1);
});
