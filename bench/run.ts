/**
 * `npm run bench [-- options]`: sealchat's daemon under load, and its peers under the same load in
 * the same run: a bare Node relay (the ceiling for a Node server, always), InspIRCd and ngircd
 * when installed, and sealchat again with guests for registration and idle memory
 * (docs/PERFORMANCE.md explains the method and the figures).
 *
 * Scenarios, per server:
 *   logins   N password logins (PASS), then the N connections stay registered and idle:
 *            memory per idle connection = RSS delta / N (both from /proc, as for every server).
 *   rooms    those N connections as N/5 rooms of 5 members, every member sending: a blast
 *            (windowed, as fast as the server drains) and a paced run at 50 k deliveries/s.
 *   fan-out  one room of 50 members with 5 senders: blast and paced at 50 k deliveries/s.
 * Every run checks that each message reached every other member of its room exactly once.
 *
 * Options: --quick (smoke check: 250 logins, one 2 s round, windows 50), --rounds N (repeat each
 * measured run; default 2), --seconds S (per measured run; default 8), --windows 1,50,256 (blast:
 * messages in flight per sender, each measured; --window N for one), --workers N (load-generator
 * processes; default 1), --logins N, --only sealchat,sealchat-rooms,relay,inspircd,ngircd,sealchat-guests (which
 * servers; default all that are installed), --scenarios rooms,fanout (which traffic scenarios;
 * logins and idle memory always run), --profile DIR (V8 CPU profile of the sealchat daemon).
 * Exit status 1 when a delivery check fails; missed targets are reported, not failed.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { mergeSparse, quantileMs } from './lib/hist.js';
import { IpcChild, machineInfo } from './lib/proc.js';
import { inspircdInstalled, ngircdInstalled, peerVersion, startInspircd, startNgircd, startRelay, startSealchat, SEALCHAT_BENCH_LIMITS, type Target, type TargetName } from './lib/targets.js';
import type { ConnSpec, FromWorker, RoomSpec, RunResult, RunSpec, ToWorker } from './lib/wire.js';

const { values: opts } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    workers: { type: 'string' },
    window: { type: 'string' },
    windows: { type: 'string' },
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
const WINDOWS = (opts.window ?? opts.windows ?? (QUICK ? '50' : '1,50,256')).split(',').map(Number);
if (WINDOWS.some((w) => !Number.isInteger(w) || w < 1)) throw new Error('--windows: positive whole numbers, comma-separated');
/** The window the paced runs' warm-up and the peer targets use (issue 14 measured at 50). */
const MAIN_WINDOW = WINDOWS.includes(50) ? 50 : WINDOWS[0]!;
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

/**
 * Issue 14's targets, as ratios to the peers measured in the same run (window 50): sealchat /
 * peer, and whether lower is better.
 */
const RATIO_TARGETS: Array<{ label: string; peer: TargetName; row: string; max?: number; min?: number }> = [
  { label: 'rooms, window 50: server CPU per delivery <= 1.0 x the bare relay', peer: 'relay', row: 'rooms-cpu-50', max: 1.0 },
  { label: 'rooms, window 50: deliveries/s >= 1.1 x InspIRCd', peer: 'inspircd', row: 'rooms-rate-50', min: 1.1 },
  { label: 'fan-out, window 50: server CPU per delivery <= InspIRCd', peer: 'inspircd', row: 'fanout-cpu-50', max: 1.0 },
  { label: 'idle: RSS per registered connection <= 0.8 x the bare relay (guests)', peer: 'relay', row: 'idle-rss', max: 0.8 },
  { label: 'registration: server CPU per login <= 1.5 x the bare relay (guests)', peer: 'relay', row: 'login-cpu', max: 1.5 },
  { label: 'fan-out paced: p99 <= the bare relay', peer: 'relay', row: 'fanout-p99', max: 1.0 },
  { label: 'rooms paced: p99 <= the bare relay', peer: 'relay', row: 'rooms-p99', max: 1.0 },
];

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
  /** Blast runs per window. */
  blast: Map<number, RunFigures[]>;
  paced: RunFigures[];
}

interface TargetFigures {
  name: string;
  logins: number;
  loginSeconds: number;
  loginFailures: string;
  loginServerCpuMs: number;
  idleBytesPerConn: number;
  rooms: ScenarioFigures;
  fanout: ScenarioFigures;
}

const log = (s: string): void => void process.stderr.write(s + '\n');

async function scenario(target: Target, active: Worker[], label: string, pacedRate: () => number): Promise<ScenarioFigures> {
  const warm = await runOn(target, active, { mode: 'blast', durationMs: WARM_MS, window: MAIN_WINDOW, rate: 0 });
  if (!warm.exactlyOnce) log(`  ${label} warm-up: delivery check FAILED: ${warm.problems}`);
  const out: ScenarioFigures = { blast: new Map(WINDOWS.map((w) => [w, []])), paced: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const window of WINDOWS) {
      const b = await runOn(target, active, { mode: 'blast', durationMs: RUN_MS, window, rate: 0 });
      log(`  ${label} blast w${window} #${round + 1}: ${fmtRate(b.perSecond)} deliveries/s, server ${b.cpuPer1000.toFixed(3)} ms CPU/1000 (${pct(b.serverCore)} of a core), load gen ${pct(b.loadgenCore)}, ${b.exactlyOnce ? 'exactly once' : 'FAIL ' + b.problems}`);
      out.blast.get(window)!.push(b);
    }
    const p = await runOn(target, active, { mode: 'paced', durationMs: RUN_MS, window: 0, rate: pacedRate() });
    log(`  ${label} paced #${round + 1}: ${fmtRate(p.perSecond)} deliveries/s, p50 ${p.p50.toFixed(3)} ms, p99 ${p.p99.toFixed(3)} ms, p99.9 ${p.p999.toFixed(2)} ms, max ${p.max.toFixed(1)} ms, server ${p.cpuPer1000.toFixed(3)} ms CPU/1000, ${p.exactlyOnce ? 'exactly once' : 'FAIL ' + p.problems}`);
    out.paced.push(p);
  }
  return out;
}

async function benchTarget(make: () => Promise<Target>, scenarios: Set<string> = SCENARIOS): Promise<TargetFigures> {
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
    const rss0 = target.rss();

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
    const idle = memoryFigures(rss0, target.rss(), LOGINS);
    log(`  idle: ${idle.text}`);

    const empty: ScenarioFigures = { blast: new Map(), paced: [] };
    let rooms = empty;
    let fanout = empty;
    if (scenarios.has('rooms')) {
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
      await target.makeRooms?.(Array.from({ length: roomsPerWorker * WORKERS }, (_, g) => ({
        name: `#room-${g}`,
        members: Array.from({ length: ROOM_SIZE }, (_, m) => g * ROOM_SIZE + m),
      })));
      rooms = await scenario(target, workers, `rooms ${roomsPerWorker * WORKERS}x${ROOM_SIZE}`,
        () => PACED_DELIVERIES / (ROOM_SIZE - 1) / WORKERS);
      await Promise.all(workers.map((w) => expect(w.request({ cmd: 'part' }), 'parted')));
    }
    if (scenarios.has('fanout')) {
      // One room of 50 with 5 senders, in the first worker, measured alone: the other
      // connections log out first (an idle crowd costs ngircd a scan per loop, not sealchat).
      await Promise.all(workers.map((w, k) => expect(w.request({ cmd: 'trim', count: k === 0 ? FANOUT_SIZE : 0 }), 'trimmed')));
      const fan: RoomSpec = { name: '#fanout', members: Array.from({ length: FANOUT_SIZE }, (_, i) => i), senders: FANOUT_SENDERS };
      await expect(workers[0]!.request({ cmd: 'join', rooms: [fan] }), 'joined');
      await target.makeRooms?.([{ name: fan.name, members: fan.members }]);
      fanout = await scenario(target, [workers[0]!], `fan-out ${FANOUT_SIZE}/${FANOUT_SENDERS}`,
        () => PACED_DELIVERIES / (FANOUT_SIZE - 1));
      await expect(workers[0]!.request({ cmd: 'part' }), 'parted');
    }

    await Promise.all(workers.map((w) => expect(w.request({ cmd: 'close' }), 'closed')));
    return {
      name: target.name, logins: LOGINS, loginSeconds, loginFailures, loginServerCpuMs,
      idleBytesPerConn: idle.rssPerConn, rooms, fanout,
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await target.stop();
  }
}

const MiB = 1048576;

/** Memory per idle connection: the RSS delta (from /proc) over n registered idle connections, divided by n. */
function memoryFigures(a: number, b: number, n: number): { rssPerConn: number; text: string } {
  const rssPerConn = (b - a) / n;
  return { rssPerConn, text: `RSS ${(a / MiB).toFixed(1)} → ${(b / MiB).toFixed(1)} MiB = ${(rssPerConn / 1024).toFixed(2)} KB per connection` };
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
  /** Key for the ratio targets (RATIO_TARGETS.row). */
  key?: string;
  label: string;
  get: (t: TargetFigures) => number[];
  fmt: (x: number) => string;
  /** Lower is better (for the ratio's reading and the target check). */
  lower: boolean;
  target?: number;
}

const blastOf = (sc: ScenarioFigures, w: number): RunFigures[] => sc.blast.get(w) ?? [];

function rowsFor(): Row[] {
  const ms = (x: number): string => x.toFixed(3);
  const rooms = `rooms ${LOGINS / ROOM_SIZE}x5`;
  const rows: Row[] = [];
  for (const w of WINDOWS) {
    rows.push(
      { key: `fanout-cpu-${w}`, label: `fan-out 50/5, window ${w}: server CPU per 1000 deliveries (ms)`, get: (t) => blastOf(t.fanout, w).map((r) => r.cpuPer1000), fmt: ms, lower: true, target: w === 256 ? TARGETS.cpuPer1000 : undefined },
      { label: `fan-out 50/5, window ${w}: deliveries/s`, get: (t) => blastOf(t.fanout, w).map((r) => r.perSecond), fmt: fmtRate, lower: false },
    );
  }
  rows.push(
    { label: 'fan-out 50/5 @ 50k/s: p50 latency (ms)', get: (t) => t.fanout.paced.map((r) => r.p50), fmt: ms, lower: true },
    { key: 'fanout-p99', label: 'fan-out 50/5 @ 50k/s: p99 latency (ms)', get: (t) => t.fanout.paced.map((r) => r.p99), fmt: ms, lower: true, target: TARGETS.p99Ms },
    { label: 'fan-out 50/5 @ 50k/s: server CPU per 1000 (ms)', get: (t) => t.fanout.paced.map((r) => r.cpuPer1000), fmt: ms, lower: true },
  );
  for (const w of WINDOWS) {
    rows.push(
      { key: `rooms-rate-${w}`, label: `${rooms}, window ${w}: deliveries/s`, get: (t) => blastOf(t.rooms, w).map((r) => r.perSecond), fmt: fmtRate, lower: false, target: LOGINS === 1000 && w === 256 ? TARGETS.roomsRate : undefined },
      { key: `rooms-cpu-${w}`, label: `${rooms}, window ${w}: server CPU per 1000 deliveries (ms)`, get: (t) => blastOf(t.rooms, w).map((r) => r.cpuPer1000), fmt: ms, lower: true },
      { label: `${rooms}, window ${w}: server / load-generator share of a core`, get: (t) => blastOf(t.rooms, w).map((r) => r.serverCore), fmt: pct, lower: false },
    );
  }
  rows.push(
    { label: `${rooms} @ 50k/s: p50 latency (ms)`, get: (t) => t.rooms.paced.map((r) => r.p50), fmt: ms, lower: true },
    { key: 'rooms-p99', label: `${rooms} @ 50k/s: p99 latency (ms)`, get: (t) => t.rooms.paced.map((r) => r.p99), fmt: ms, lower: true, target: TARGETS.p99Ms },
    { key: 'idle-rss', label: `idle: memory per registered connection (KB RSS)`, get: (t) => [t.idleBytesPerConn / 1024], fmt: (x) => x.toFixed(2), lower: true, target: LOGINS === 1000 ? TARGETS.idleKB : undefined },
    { label: `logins: ${LOGINS} logins (s)`, get: (t) => [t.loginSeconds], fmt: (x) => x.toFixed(2), lower: true, target: LOGINS === 1000 ? TARGETS.loginsS : undefined },
    { label: `logins per second`, get: (t) => [t.logins / t.loginSeconds], fmt: (x) => x.toFixed(1), lower: false },
    { key: 'login-cpu', label: `logins: server CPU per login (ms)`, get: (t) => [t.loginServerCpuMs / t.logins], fmt: (x) => x.toFixed(3), lower: true },
  );
  return rows;
}

/** Figures of one row for a target; sealchat's guest run stands in for sealchat's idle and login figures in ratio targets. */
function valuesOf(row: Row, t: TargetFigures | undefined): number[] {
  return t ? row.get(t) : [];
}

function printReport(results: TargetFigures[], started: Date, loadBefore: string): boolean {
  const { cpu, cores, load } = machineInfo();
  const byName = new Map(results.map((r) => [r.name, r]));
  const seal = byName.get('sealchat');
  const names = results.map((r) => r.name);
  const peers = names.filter((n) => n === 'relay' || n === 'inspircd');
  const rows = rowsFor();

  const out: string[] = [];
  out.push('');
  out.push(`sealchat benchmark — ${started.toISOString()}${QUICK ? ' (--quick: smaller and shorter; not the reference figures)' : ''}`);
  out.push(`machine: ${cpu}, ${cores} cores, node ${process.version}; load average before ${loadBefore}, after ${load}`);
  out.push(`runs: ${ROUNDS} round(s) of ${RUN_MS / 1000} s per measured run, windows ${WINDOWS.join(', ')}, ${WORKERS} load-generator process(es); values are median [min–max] over rounds`);
  out.push(`servers, in the order run: ${names.map((n) => (n.startsWith('sealchat') ? n : peerVersion(n as TargetName))).join('; ')}`);
  out.push('sealchat runs as shipped (`node dist/cli/sealchatd.js ircd`, its own config file) with accounts (PASS checks an argon2id hash); sealchat-rooms is the same with every bench channel made a room (room.add: history kept and');
  out.push('  written to the store); sealchat-guests is the same daemon with requireAccount false (logins and idle only);');
  out.push('  InspIRCd and ngircd check a server password in plain text; the relay (compiled to JavaScript, plain node) checks nothing. Limits are raised on every');
  out.push('  server (see docs/PERFORMANCE.md). Memory is RSS from /proc for every server.');
  out.push('');
  const head = ['figure', ...names, ...peers.map((p) => `sealchat/${p}`), 'target', 'met'];
  const table: string[][] = [head];
  let allMet = true;
  for (const row of rows) {
    const vals = results.map((t) => valuesOf(row, t));
    if (vals.every((v) => v.length === 0)) continue;
    const line = [row.label, ...vals.map((v) => (v.length ? spread(v, row.fmt) : '-'))];
    // The ratio uses the guest run for registration and idle figures (the peers have no accounts).
    const mine = (row.key === 'idle-rss' || row.key === 'login-cpu') && byName.has('sealchat-guests') ? byName.get('sealchat-guests') : seal;
    for (const p of peers) {
      const a = valuesOf(row, mine);
      const b = valuesOf(row, byName.get(p));
      const ratio = a.length && b.length ? median(a) / median(b) : NaN;
      line.push(Number.isFinite(ratio) ? ratio.toFixed(2) : '-');
    }
    const sv = valuesOf(row, seal);
    if (row.target !== undefined && sv.length) {
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

  // Issue 14: ratios to the peers measured in this run.
  out.push('');
  out.push('targets against the peers (same run):');
  let unmeasured = 0;
  for (const t of RATIO_TARGETS) {
    const row = rows.find((r) => r.key === t.row);
    const mine = (t.row === 'idle-rss' || t.row === 'login-cpu') ? byName.get('sealchat-guests') : seal;
    const a = row ? valuesOf(row, mine) : [];
    const b = row ? valuesOf(row, byName.get(t.peer)) : [];
    if (!a.length || !b.length) {
      out.push(`  ${t.label}: not measured (${!b.length ? `no ${t.peer} figure` : 'no sealchat figure'} in this run)`);
      unmeasured++;
      continue;
    }
    const ratio = median(a) / median(b);
    const met = t.max !== undefined ? ratio <= t.max : ratio >= t.min!;
    allMet &&= met;
    out.push(`  ${t.label}: ${ratio.toFixed(2)} — ${met ? 'MET' : 'MISSED'}`);
  }

  // Issue 13's rooms: what keeping history costs per delivery, same run.
  const withRooms = byName.get('sealchat-rooms');
  if (seal && withRooms) {
    out.push('');
    out.push('room history (sealchat-rooms / sealchat, same run):');
    for (const row of rows.filter((r) => r.key?.startsWith('rooms-cpu-') || r.key?.startsWith('fanout-cpu-'))) {
      const a = valuesOf(row, withRooms);
      const b = valuesOf(row, seal);
      if (a.length && b.length) out.push(`  ${row.label}: ${(median(a) / median(b)).toFixed(2)}`);
    }
  }

  out.push('');
  let allOk = true;
  for (const t of results) {
    for (const [name, sc] of [['rooms', t.rooms], ['fan-out', t.fanout]] as const) {
      const runs = [...[...sc.blast.entries()].flatMap(([w, rs]) => rs.map((r) => [`blast w${w}`, r] as const)), ...sc.paced.map((r) => ['paced', r] as const)];
      for (const [mode, r] of runs) {
        allOk &&= r.exactlyOnce;
        if (!r.exactlyOnce) out.push(`exactly-once ${t.name} ${name} ${mode}: ${r.deliveries} deliveries — FAIL: ${r.problems}`);
      }
      if (runs.length && runs.every(([, r]) => r.exactlyOnce)) out.push(`exactly-once ${t.name} ${name}: ${runs.length} runs, ${runs.reduce((a, [, r]) => a + r.deliveries, 0)} deliveries — OK`);
    }
    if (t.loginFailures) {
      allOk = false;
      out.push(`logins ${t.name}: FAIL ${t.loginFailures}`);
    }
  }
  if (LOGINS !== 1000) out.push(`(${LOGINS} connections, not 1000: memory per connection divides one-off pool growth by ${LOGINS}; rooms are ${LOGINS / ROOM_SIZE}, not 200)`);
  out.push(`delivery checks: ${allOk ? 'OK' : 'FAIL'}; targets: ${allMet ? 'all met' : 'not all met'}${unmeasured ? ` (${unmeasured} not measured in this run)` : ''}`);
  process.stdout.write(out.join('\n') + '\n');
  return allOk;
}

async function main(): Promise<void> {
  const started = new Date();
  const loadBefore = machineInfo().load;
  const wanted = new Set((opts.only ?? 'sealchat,sealchat-rooms,sealchat-guests,relay,inspircd,ngircd').split(','));
  const plan: Array<{ name: TargetName; make: () => Promise<Target>; scenarios?: Set<string>; installed?: boolean }> = [
    { name: 'sealchat', make: () => startSealchat(LOGINS, WARM_LOGINS, opts.profile) },
    // The same daemon with every bench channel made a room (room.add, as keybot does): each
    // relayed line is also kept as history and written behind to the store (issue 13).
    { name: 'sealchat-rooms', make: () => startSealchat(LOGINS, WARM_LOGINS, opts.profile, SEALCHAT_BENCH_LIMITS, false, true) },
    { name: 'relay', make: startRelay },
    { name: 'inspircd', make: startInspircd, installed: inspircdInstalled() },
    { name: 'ngircd', make: startNgircd, installed: ngircdInstalled() },
    // Registration and idle memory without argon2: what the relay and the password-less peers do.
    { name: 'sealchat-guests', make: () => startSealchat(LOGINS, WARM_LOGINS, opts.profile, SEALCHAT_BENCH_LIMITS, true), scenarios: new Set() },
  ];
  const results: TargetFigures[] = [];
  for (const t of plan) {
    if (!wanted.has(t.name)) continue;
    if (t.installed === false) {
      log(`${t.name} not installed: no ${t.name} figures (apt-get install ${t.name})`);
      continue;
    }
    log(`== ${t.name} ==`);
    results.push(await benchTarget(t.make, t.scenarios));
  }
  const ok = printReport(results, started, loadBefore);
  process.exitCode = ok ? 0 : 1;
}

main().catch((err: unknown) => {
  console.error((err as Error)?.stack ?? String(err));
  process.exit(1);
});
