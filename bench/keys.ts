/**
 * `npm run bench:keys [-- --sizes 50,500,2000] [--member-procs N]`: key distribution and client
 * crypto (figures for docs/PERFORMANCE.md). `npm run bench:keys -- --service [--sizes …]` runs the
 * key service alone in one process instead (bench/lib/keys-service.ts: keybot's CPU and the lines
 * it addresses to each member, without the daemon or member processes).
 *
 *   figures  for each size (issue 11): the room opening (one invite naming everyone who fits an
 *            IRC line, then the rest) until every member holds the key, and one member leaving
 *            until the others hold the new key: keybot's CPU and the bytes it wrote
 *            (/proc/<pid>/io wchar), and the bytes and lines each member read from keybot (whole
 *            IRC lines off the member's socket); the growth exponent between the sizes; the
 *            issue's targets with MET/MISSED.
 *
 *   invite   alice invites N-1 users (N = 2, 10, 50) in one command when the names fit one IRC
 *            line (they do, up to MAX_INVITEES): wall time from the moment alice's invite is sent
 *            until every member's companion holds the key of an epoch listing all N members (the
 *            last member's install), and until every member had received that envelope
 *            completely (the last SC1E part read off the wire; the rest is the members'
 *            decrypt+verify); keybot's CPU for it, and the members' (summed over their processes).
 *   rekey    one member leaves the 50-member room: keybot's CPU until the others hold the new key.
 *   crypto   encrypt+sign and verify+decrypt of 120-byte room messages on one core (msgs/s).
 *
 * Where each part runs:
 *   - the daemon runs in this (the bench's) process;
 *   - keybot runs as its own process (`sealchatd keybot`), so that its CPU is read from /proc;
 *   - the 50 member companions (SealClient, each with its own private key, logging in with PASS)
 *     run in W member processes (bench/lib/members-proc.ts; W = --member-procs N or
 *     BENCH_MEMBER_PROCS, default 2), spread round-robin: user<i> in process i mod W, so alice
 *     (user00, the inviter) lives in the first member process like any other member.
 * In a real deployment every member runs on its own machine. Sharing the daemon's event loop
 * made the daemon's answers to keybot wait behind 50 clients parsing 2,500 JOINs, ~1,250 envelope
 * parts and 50 openEnvelope calls, one after another; in their own processes the members' work
 * neither sits in the daemon's loop nor is serialised through one loop (it still shares the
 * machine's cores). The member processes report key installs and received envelopes over the
 * fork IPC channel, stamped with performance.timeOrigin + performance.now() so that times compare
 * across processes, and the CPU they used (process.cpuUsage deltas).
 *
 * Targets (issue): 50 members <= 200 ms wall, a rekey <= 100 ms keybot CPU, >= 2,000 messages/s
 * each way on one core. Exit status 0 on success, 1 (with the reason) when anything fails.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  decryptRoomMessage, encryptRoomMessage, generateRoomKey, generateUserKey, readPublicKey,
  signingPublicKeyOf, unlockPrivateKey, MessageStatus,
} from '../src/crypto/index.js';
import { loadConfig } from '../src/ircd/config.js';
import { startDaemon } from '../src/ircd/daemon.js';
import { setLogLevel } from '../src/util/log.js';
import { MAX_INVITEES } from '../src/bot/service.js';
import { MemberProcs, wallNow, type MemberLogin } from './lib/members.js';
import { SEALCHATD_CLI, cpuMsOf, freePort, machineInfo, writtenBytesOf } from './lib/proc.js';

/** One workload's keybot CPU, bytes keybot wrote, and what the members read from keybot. */
interface Io { cpu: number; wrote: number; maxB: number; meanB: number; maxL: number; meanL: number }

setLogLevel('warn');
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/**
 * Room sizes: --sizes a,b,c, else BENCH_KEY_SIZES, else 2,10,50 (what `npm run bench` runs: a
 * few minutes). The issue's large-room run is `--sizes 50,500,2000` (the 2,000 room alone takes
 * ~15 minutes on 2 cores: 2,000 accounts, logins and companions).
 */
const { values: argv } = parseArgs({ options: { 'member-procs': { type: 'string' }, sizes: { type: 'string' }, service: { type: 'boolean' } }, allowPositionals: false });
if (argv.service) {
  // The key service alone (keybot's src/bot in one process, a recording transport, members' cores
  // reading what they would receive): bench/lib/keys-service.ts, in a process of its own.
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib/keys-service.ts')], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_V3_SIZES: argv.sizes ?? process.env.BENCH_V3_SIZES ?? '50,500,2000' },
  });
  process.exit(r.status ?? 1);
}
/** Rooms larger than this open paced (below); BENCH_PACE_ABOVE overrides it, to try the paced path on a small room. */
const PACE_ABOVE = Number(process.env.BENCH_PACE_ABOVE ?? 500);
const SIZES = (argv.sizes ?? process.env.BENCH_KEY_SIZES ?? '2,10,50').split(',').map(Number);
if (SIZES.some((n) => !Number.isInteger(n) || n < 2 || n > 5000)) throw new Error('--sizes: sizes 2..5000');
const MEMBERS = Math.max(...SIZES);
const TARGETS = { wall50: 200, rekeyCpu: 100, msgsPerS: 2000, bigChangeCpu: 1000, bigChangeRead: 2048 };

/** The invitees in as few `invite` commands as fit one IRC line each (at most MAX_INVITEES names). */
function inviteLines(invitees: string[]): string[][] {
  // SealClient sends a command as one PRIVMSG through irc-framework, whose say() cuts a message
  // at 350 bytes (message_max_length): a longer invite arrives as two commands, the second
  // "unknown command user044" to keybot. With 6-character names 49 fit under 350 by chance; with
  // the 7-character names of a 100+ member run they did not, and the run waited forever for the
  // cut-off invitees (the 100/200-member runs of issue 11 that never finished).
  const budget = 350 - 'invite #sc-xxxxxxxxxx '.length;
  const out: string[][] = [];
  let cur: string[] = [];
  let len = 0;
  for (const name of invitees) {
    if (cur.length > 0 && (cur.length >= MAX_INVITEES || len + 1 + name.length > budget)) {
      out.push(cur);
      cur = [];
      len = 0;
    }
    len += (cur.length > 0 ? 1 : 0) + name.length;
    cur.push(name);
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

function until(check: () => boolean, what: string, ms = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = (): void => {
      try {
        if (check()) return resolve();
      } catch (err) {
        return reject(err as Error);
      }
      if (Date.now() - t0 > ms) return reject(new Error(`timed out: ${what}`));
      setTimeout(tick, 1);
    };
    tick();
  });
}

/** --member-procs N, else BENCH_MEMBER_PROCS, else 2. */
function memberProcsOption(): number {
  const raw = argv['member-procs'] ?? process.env.BENCH_MEMBER_PROCS ?? '2';
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MEMBERS) throw new Error(`--member-procs / BENCH_MEMBER_PROCS: want an integer 1..${MEMBERS}, got '${raw}'`);
  return n;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
async function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(t);
}

async function main(): Promise<void> {
  const procs = memberProcsOption();
  const m = machineInfo();
  console.log(`# key distribution and client crypto — ${new Date().toISOString()} — ${m.cpu}, ${m.cores} cores, load ${m.load}`);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-bench-keys-'));
  let bot: ChildProcess | undefined;
  let members: MemberProcs | undefined;
  let stopping = false;
  // A signal (Ctrl-C) must not leave keybot or the member processes behind.
  const onSignal = (sig: NodeJS.Signals): void => {
    members?.killNow();
    bot?.kill('SIGKILL');
    console.error(`bench:keys: interrupted (${sig}); child processes killed`);
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // The accounts go in through the daemon's own code in this process (2,000 `sealchatd user add`
    // runs would take half an hour); that daemon is closed before the run. The run's daemon is
    // `sealchatd serve` as shipped, in its own process, with keybot as its supervised child.
    const names = Array.from({ length: MEMBERS }, (_, i) => `user${String(i).padStart(MEMBERS > 1000 ? 4 : MEMBERS > 100 ? 3 : 2, '0')}`);
    const logins: MemberLogin[] = [];
    {
      const setup = await startDaemon(await loadConfig({ dataDir, listen: ['127.0.0.1:0'] }));
      try {
        for (const name of names) {
          const k = await generateUserKey({ name });
          logins.push({ name, password: `pw-${name}`, privateKeyArmored: k.privateArmored });
          await setup.accounts.add({ name, password: `pw-${name}`, publicKey: k.publicArmored });
        }
      } finally {
        await setup.close();
      }
    }
    // Limits raised for a room of N members on one address: no login throttling, N clients, flood
    // limits off, and a sendq that holds an opening (the roster pages, ~115 B per member, and N
    // JOINs to every member at once; the default 256 KiB does not past ~1,000 members), and a ping
    // timeout of 30 minutes: the harness hosts a thousand companions per process, each reading every
    // JOIN of the opening, so a member's PONG waits behind minutes of its process's backlog (at 2,000
    // members the default 60 s dropped 1,844 of them; a real member reads its own copy in ~0.6 s).
    const configFile = path.join(dataDir, 'bench-config.json');
    await writeFile(configFile, JSON.stringify({
      limits: {
        loginAttemptsPerIpPerMinute: 1_000_000, loginAttemptsPerAccountPerMinute: 1_000_000, commandBurst: 1_000_000, commandsPerSecond: 1_000_000,
        maxClients: Math.max(4096, MEMBERS + 100), sendqBytes: 16 << 20, recvqBytes: 1 << 20, pingTimeoutMs: 30 * 60_000,
      },
    }));
    const port = await freePort();
    // BENCH_PROFILE_DIR=dir writes V8 CPU profiles of the daemon and keybot there.
    const prof = process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE_DIR] : [];
    const daemonProc = spawn(process.execPath, [...prof, '--import', 'tsx', SEALCHATD_CLI, 'serve', '--config', configFile, '--data', dataDir, '--listen', `127.0.0.1:${port}`], {
      cwd: root,
      env: { ...process.env, SEALCHAT_LOG: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    bot = daemonProc;
    let botOut = '';
    let botGone: Error | undefined;
    daemonProc.stdout!.on('data', (d: Buffer) => (botOut += d.toString()));
    daemonProc.on('exit', (code, signal) => {
      if (stopping) return;
      botGone = new Error(`sealchatd serve (pid ${daemonProc.pid}) exited ${signal ? `on ${signal}` : `with code ${code}`}`);
      members?.fail(botGone);
    });
    await until(() => {
      if (botGone) throw botGone;
      return /keybot: logged in/.test(botOut);
    }, 'sealchatd serve, and keybot logged in', 120_000);
    const botPid = Number(/keybot started \(pid (\d+)\)/.exec(botOut)?.[1]);
    if (!Number.isInteger(botPid)) throw new Error(`no keybot pid in: ${botOut}`);
    const botProc = { pid: botPid };
    members = await MemberProcs.start(procs, names, { inviterAlone: MEMBERS > 500 });
    // Each member trusts the keybot key offered at its first login (trust on first use, in memory).
    await members.connect({ port, members: logins });
    // Wait out the login burst (each companion's first exchanges with keybot): until the member
    // processes use under 10% of a core for 3 s, plus what idle companions use anyway (each one's
    // once-a-second sweep, ~0.11 ms: 23% of a core for 2,000 members in 2 processes, measured at
    // 21:16 UTC 2026-12-07; under a fixed 10% the 2,000-member run waited its whole 10-minute cap),
    // so that the invites start on a settled room system, as a person's would, and within keybot's
    // 30 s for signing a proposal.
    const settleFrom = Date.now();
    const idleMs = 300 + 3 * 0.25 * MEMBERS;
    await members.cpuMs();
    for (;;) {
      await sleep(3000);
      if ((await members.cpuMs()) < idleMs || Date.now() - settleFrom > 600_000) break;
    }
    console.log(`# login burst settled ${((Date.now() - settleFrom) / 1000).toFixed(0)} s after the last login`);
    const alice = names[0]!;
    console.log(
      `# member companions: ${MEMBERS} in ${members.size} member process${members.size === 1 ? '' : 'es'} (pids ${members.pids.join(', ')}; round-robin, ` +
        `alice = ${alice} in process ${members.processOf(alice) + 1}); sealchatd serve pid ${daemonProc.pid}, keybot (its child) pid ${botProc.pid}`,
    );
    console.log(
      `\n| members | invite commands | invite → all envelopes received, wall ms | invite → all keys installed, wall ms | keybot CPU ms | members' CPU ms (sum of ${members.size} proc${members.size === 1 ? '' : 's'}) | rekey after a leave, keybot CPU ms | wall ms |`,
    );
    console.log('|---|---|---|---|---|---|---|---|');
    const results: Record<number, { wall: number; cpu: number; memberCpu: number; daemonCpu: number; rekeyCpu: number; rekeyWall: number }> = {};
    /** Per size: bytes keybot wrote and what each member read from keybot, for the opening and for one member leaving. */
    const io: Record<number, { open: Io; leave: Io; openLoad: string; leaveLoad: string }> = {};
    const readsOf = (r: Map<string, { bytes: number; lines: number }>, who: string[]): { maxB: number; meanB: number; maxL: number; meanL: number } => {
      const xs = who.map((n) => r.get(n.toLowerCase()) ?? { bytes: 0, lines: 0 });
      return {
        maxB: Math.max(...xs.map((x) => x.bytes)),
        meanB: xs.reduce((a, x) => a + x.bytes, 0) / xs.length,
        maxL: Math.max(...xs.map((x) => x.lines)),
        meanL: xs.reduce((a, x) => a + x.lines, 0) / xs.length,
      };
    };
    // The harness hosts every member on 2 cores, and each member's companion reads every other
    // member's JOIN: O(N²) member CPU over an opening (about 0.3 ms a JOIN line: 79 s at 500 members;
    // the 2,000-member opening ran out of 20 minutes at 1,546 keyed beside a mutation run).
    const long = (n: number): number => Math.max(120_000, n * 600, n * n * 0.6);
    for (const n of SIZES) {
      const group = names.slice(0, n);
      const cpu0 = cpuMsOf(botProc.pid!);
      const wrote0 = writtenBytesOf(botProc.pid!);
      await members.reads(); // starts the members' read window
      const daemonCpu0 = cpuMsOf(daemonProc.pid!); // the daemon's own threads (keybot, its child, is not counted)
      await members.cpuMs(); // starts the members' CPU window
      // Envelopes completely received from here on count (the last SC1E part of an envelope read
      // off the wire, in the member's process), as opposed to installed: the difference is the
      // members' own decrypt+verify (openEnvelope), which keybot does not do.
      const watchFrom = wallNow();
      // One invite command when the names fit one IRC line (keybot takes as many as fit, up to
      // MAX_INVITEES), as a person would type them; otherwise one line's worth per command, the
      // first opening the room and the rest adding to it (keybot coalesces the rekeys).
      // t0 is when alice's invite was sent, stamped in alice's process; the room's name comes
      // from her own JOIN (keybot's reply settles 300 ms later and must not count as latency).
      const commands = inviteLines(group.slice(1));
      // Past 500 members the opening is paced: each further invite waits until everyone invited so
      // far holds its epoch. Unpaced, the harness's members (a thousand companions per process, each
      // reading every JOIN) fall minutes behind keybot, and a companion refuses an operation it
      // judges more than 5 minutes old (docs/PROTOCOL.md), so at 2,000 members 745 of a process's
      // 1,000 companions never took their join envelope and 23 stopped following the notices (the
      // ninth session's run, looked at through the inspector). A member on its own machine reads
      // its copy of an invite in milliseconds; the pacing is the harness's, not the protocol's.
      const paced = n > PACE_ABOVE;
      const { room, sentAt: t0 } = await members.invite(alice, paced ? commands.slice(0, 1) : commands);
      if (paced) {
        let invited = 1 + commands[0]!.length;
        const holdAll = (count: number) => () => group.slice(0, count).every((name) => members!.firstInstall(name, room, (k) => k.count >= count && k.t >= t0) !== undefined);
        await members.until(holdAll(invited), `paced opening: ${invited} keys`, long(invited));
        for (const more of commands.slice(1)) {
          await members.inviteMore(alice, room, more);
          invited += more.length;
          await members.until(holdAll(invited), `paced opening: ${invited} keys`, 600_000);
        }
      }
      const allN = (name: string) => members!.firstInstall(name, room, (k) => k.count === n && k.t >= t0);
      await members.until(() => group.every((name) => allN(name) !== undefined), `${n} keys`, long(n)).catch(async (err: Error) => {
        // Say how far it got: who holds which epoch of the room, with how many members.
        const last = group.map((name) => members!.installs.get(name.toLowerCase())!.filter((k) => k.room.toLowerCase() === room.toLowerCase()).pop());
        const held = last.filter((k) => k !== undefined);
        const tally = new Map<string, number>();
        for (const k of held) tally.set(`epoch ${k!.epoch} of ${k!.count}`, (tally.get(`epoch ${k!.epoch} of ${k!.count}`) ?? 0) + 1);
        const replies = await Promise.race([members!.inviteReplies(alice), sleep(5000).then(() => ['(no reply yet)'])]);
        throw new Error(`${err.message}: ${held.length} of ${n} hold a key of ${room} (${[...tally].map(([k, v]) => `${v} at ${k}`).join(', ')}); keybot's replies to ${alice}: ${replies.join(' | ')}`);
      });
      // End: the last member's install of an epoch listing all N members.
      const wall = Math.max(...group.map((name) => allN(name)!.t)) - t0;
      await members.sync(); // every envelope event sent so far has arrived
      const watchTo = wallNow();
      const received = group.map((name) => {
        const got = members!.envelopes.get(name)!.filter((e) => e.t >= watchFrom && e.t <= watchTo);
        if (got.length === 0) throw new Error(`invite of ${n}: ${name} received no envelope`);
        return got[got.length - 1]!.t;
      });
      const deliveredWall = Math.max(...received) - t0;
      // keybot's "opened …" is in the replies SealClient collected for the invite commands unless it
      // came after their 300 ms window; a paced opening collects only the first command's, and
      // there a NOTICE from the room before ("you left …") can fill that window (the ninth
      // session's first paced 2,000-member run, every member keyed, failed here). Every member
      // holding an epoch of all N, checked above, is what shows the room opened.
      const replies = await members.inviteReplies(alice);
      if (!paced && !replies.some((l) => l.startsWith('opened '))) throw new Error(`invite of ${n}: ${replies.join(' | ')}`);
      await sleep(200); // let keybot's CPU accounting settle
      const cpu = cpuMsOf(botProc.pid!) - cpu0;
      const openWrote = writtenBytesOf(botProc.pid!) - wrote0;
      const openReads = readsOf(await members.reads(), group);
      const openLoad = machineInfo().load;
      const memberCpu = await members.cpuMs();
      const daemonCpu = cpuMsOf(daemonProc.pid!) - daemonCpu0;
      // Rekey: the last member leaves; the others must get a new epoch for n-1 members. As
      // before, the wall time runs until the leaver's command has its reply (SealClient's 300 ms
      // reply heuristic) and every other member installed the new epoch, whichever is later.
      const before = Math.max(...members.installs.get(alice)!.filter((k) => k.room.toLowerCase() === room.toLowerCase()).map((k) => k.epoch));
      await members.reads();
      const cpu1 = cpuMsOf(botProc.pid!);
      const wrote1 = writtenBytesOf(botProc.pid!);
      let rekeyWall = NaN;
      const stay = group.slice(0, n - 1);
      if (n > 2) {
        const left = await members.leave(room, [group[n - 1]!]);
        const newer = (name: string) => members!.firstInstall(name, room, (k) => k.epoch > before);
        await members.until(() => stay.every((name) => newer(name) !== undefined), `rekey of ${n}`, long(n));
        rekeyWall = Math.max(left.doneAt, ...stay.map((name) => newer(name)!.t)) - left.sentAt;
      }
      await sleep(200);
      const rekeyCpu = n > 2 ? cpuMsOf(botProc.pid!) - cpu1 : NaN;
      io[n] = {
        open: { cpu, wrote: openWrote, ...openReads },
        leave: { cpu: rekeyCpu, wrote: writtenBytesOf(botProc.pid!) - wrote1, ...readsOf(await members.reads(), stay) },
        openLoad,
        leaveLoad: machineInfo().load,
      };
      results[n] = { wall, cpu, memberCpu, daemonCpu, rekeyCpu, rekeyWall };
      console.log(
        `| ${n} | ${commands.length} | ${deliveredWall.toFixed(0)} | ${wall.toFixed(0)} | ${cpu.toFixed(0)} | ${memberCpu.toFixed(0)} | ${n > 2 ? rekeyCpu.toFixed(0) : '-'} | ${n > 2 ? rekeyWall.toFixed(0) : '-'} |`,
      );
      await members.leave(room, group.slice(0, n - 1));
    }
    // The issue's figures: keybot CPU and bytes written, bytes and lines each member reads from
    // keybot (whole IRC lines), for the room's opening and for one member leaving it.
    console.log('\n| members | workload | keybot CPU ms | keybot wrote, bytes | read per member, max / mean bytes | lines per member, max / mean | load (1, 5, 15 min) at its end |');
    console.log('|---|---|---|---|---|---|---|');
    for (const n of SIZES) {
      const x = io[n]!;
      const row = (what: string, v: Io, load: string): void =>
        console.log(`| ${n} | ${what} | ${v.cpu.toFixed(0)} | ${v.wrote} | ${v.maxB} / ${v.meanB.toFixed(0)} | ${v.maxL} / ${v.meanL.toFixed(1)} | ${load} |`);
      row(`opens (${inviteLines(names.slice(1, n)).length} invite commands), until all ${n} hold the key`, x.open, x.openLoad);
      if (n > 2) row(`one member leaves, until the other ${n - 1} hold the new key`, x.leave, x.leaveLoad);
    }
    // The curve: how each figure grows with N, from the smallest to the largest size measured.
    const sizes = SIZES.filter((n) => n > 2);
    if (sizes.length >= 2) {
      const a = sizes[0]!;
      const b = sizes[sizes.length - 1]!;
      const exp = (fa: number, fb: number): string => (fa > 0 && fb > 0 ? (Math.log(fb / fa) / Math.log(b / a)).toFixed(2) : '-');
      console.log(`\nGrowth from ${a} to ${b} members, as the exponent k of N^k (1 = linear, 0 = flat):`);
      console.log(
        `- opening: keybot CPU ${exp(io[a]!.open.cpu, io[b]!.open.cpu)}, keybot bytes ${exp(io[a]!.open.wrote, io[b]!.open.wrote)}, ` +
          `read per member ${exp(io[a]!.open.meanB, io[b]!.open.meanB)}`,
      );
      console.log(
        `- one leaving: keybot CPU ${exp(io[a]!.leave.cpu, io[b]!.leave.cpu)}, keybot bytes ${exp(io[a]!.leave.wrote, io[b]!.leave.wrote)}, ` +
          `read per member ${exp(io[a]!.leave.meanB, io[b]!.leave.meanB)}`,
      );
    }
    const r50 = results[50];
    if (r50) console.log(
      `\nMembers' CPU for the 50-member invite (JOINs, envelope parts, 50 × openEnvelope; summed over ${members.size} member process${members.size === 1 ? '' : 'es'}): ` +
        `${r50.memberCpu.toFixed(0)} ms; keybot's: ${r50.cpu.toFixed(0)} ms.`,
    );
    // Every process of the run shares this machine's cores, so their CPU for the invite bounds
    // the wall time from below, whatever the scheduling: total / cores.
    const total50 = r50 ? r50.cpu + r50.memberCpu + r50.daemonCpu : 0;
    if (r50) console.log(
      `CPU of every process for the 50-member invite: keybot ${r50.cpu.toFixed(0)} + members ${r50.memberCpu.toFixed(0)} + ` +
        `daemon ${r50.daemonCpu.toFixed(0)} = ${total50.toFixed(0)} ms; on ${os.cpus().length} cores no run can install ` +
        `all keys in less than ${(total50 / os.cpus().length).toFixed(0)} ms.`,
    );

    // Client crypto on one core.
    const k = await generateUserKey({ name: 'bench' });
    const priv = (await unlockPrivateKey({ armored: k.privateArmored })).key!;
    const pub = (await readPublicKey({ armored: k.publicArmored })).key!;
    const senderKey = signingPublicKeyOf({ key: pub });
    const roomKey = generateRoomKey();
    const text = 'x'.repeat(120); // one line: an Ed25519 message carries at most 132 bytes
    const payloads: string[] = [];
    let seq = 0;
    let t = performance.now();
    while (performance.now() - t < 2000) {
      const r = encryptRoomMessage({ roomKey, room: '#sc-bench', epoch: 1, sender: 'bench', seq: ++seq, plaintext: text, signer: priv });
      if (r.status !== MessageStatus.OK) throw new Error(`encrypt failed: ${r.status}`);
      if (payloads.length < 20000) payloads.push(r.payload);
    }
    const encRate = seq / ((performance.now() - t) / 1000);
    let n = 0;
    t = performance.now();
    while (performance.now() - t < 2000) {
      const r = decryptRoomMessage({ payload: payloads[n % payloads.length]!, roomKey, room: '#sc-bench', sender: 'bench', senderKey });
      if (r.status !== MessageStatus.OK) throw new Error(`decrypt failed: ${r.status}`);
      n++;
    }
    const decRate = n / ((performance.now() - t) / 1000);
    console.log(`\n| client crypto (120-byte messages, one line each, one core) | messages/s |`);
    console.log('|---|---|');
    console.log(`| encrypt + sign (Ed25519) | ${encRate.toFixed(0)} |`);
    console.log(`| verify + decrypt | ${decRate.toFixed(0)} |`);

    console.log('\nTargets:');
    if (r50) {
      console.log(`- 50 members, invite to all keys <= ${TARGETS.wall50} ms wall: ${r50.wall.toFixed(0)} ms ${r50.wall <= TARGETS.wall50 ? 'MET' : 'MISSED'}`);
      console.log(`- rekey (50 members) <= ${TARGETS.rekeyCpu} ms keybot CPU: ${r50.rekeyCpu.toFixed(0)} ms ${r50.rekeyCpu <= TARGETS.rekeyCpu ? 'MET' : 'MISSED'}`);
    }
    // Issue 11: a 500-member room opens (every member holds the key: the run would have failed
    // otherwise), and a one-member change in a 2,000-member room is cheap for keybot and members.
    if (io[500]) console.log(`- a 500-member room opens (one invite naming everyone who fits, then the rest), every member holding the key: MET`);
    else console.log('- a 500-member room opens: not measured (run with --sizes 50,500,2000)');
    const big = io[2000]?.leave;
    if (big) {
      console.log(`- one member leaving a 2,000-member room <= ${TARGETS.bigChangeCpu} ms keybot CPU: ${big.cpu.toFixed(0)} ms ${big.cpu <= TARGETS.bigChangeCpu ? 'MET' : 'MISSED'}`);
      console.log(`- ... <= ${TARGETS.bigChangeRead} bytes read per remaining member: max ${big.maxB} B ${big.maxB <= TARGETS.bigChangeRead ? 'MET' : 'MISSED'}`);
    } else console.log('- one-member change in a 2,000-member room: not measured (run with --sizes 50,500,2000)');
    console.log(`- >= ${TARGETS.msgsPerS} messages/s each way: ${encRate.toFixed(0)} / ${decRate.toFixed(0)} ${Math.min(encRate, decRate) >= TARGETS.msgsPerS ? 'MET' : 'MISSED'}`);
  } finally {
    stopping = true;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    const step = (what: string, p: Promise<unknown>): Promise<unknown> => p.catch((err: unknown) => console.error(`bench:keys cleanup (${what}):`, err));
    await step('member processes', members?.stop() ?? Promise.resolve());
    await step('sealchatd serve and keybot', bot ? stopChild(bot, 10_000) : Promise.resolve());
    await step('data dir', rm(dataDir, { recursive: true, force: true }));
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error('bench:keys FAILED:', err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
