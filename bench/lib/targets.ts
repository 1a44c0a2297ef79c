/**
 * The servers under test: sealchat's daemon as shipped (`node dist/cli/sealchatd.js ircd`), the
 * bare Node relay (bench/peers/relay.ts, the ceiling a Node server is measured against) and, when
 * installed, InspIRCd and ngircd with throw-away configs. All run on 127.0.0.1 in a temporary
 * directory and are stopped by stop().
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as esbuild from 'esbuild';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateUserKey } from '../../src/crypto/index.js';
import { hashPassword } from '../../src/util/password.js';
import { ControlClient } from '../../src/protocol/control-client.js';
import { CONTROL_SOCKET_NAME, STORE_FILE_NAME } from '../../src/protocol/files.js';
import { openAccountStore, type AccountRecord } from '../../src/ircd/store/index.js';
import type { ConnSpec } from './wire.js';
import { cpuMsOf, freePort, rssOf, shippedSealchatd } from './proc.js';

export const NGIRCD = '/usr/sbin/ngircd';
export const INSPIRCD = '/usr/sbin/inspircd';

/**
 * glibc settings for the sealchat daemon's process, for measurement only. Each argon2 hash job
 * mallocs and frees a 19 MiB buffer on a libuv thread; by default glibc adapts its mmap and trim
 * thresholds at run time and now and then returns such a buffer to the OS, so the RSS of the
 * daemon moves by ±19 MiB steps at random while logins run (±19 KB per connection over 1000).
 * Pinning both thresholds keeps those buffers in their arenas after the warm-up logins, so RSS
 * deltas show what the connections cost. It does not change what the daemon allocates.
 */
export const PINNED_MALLOC = 'glibc.malloc.trim_threshold=1073741824:glibc.malloc.mmap_threshold=33554432';
const BENCH_PASSWORD = 'bench-password-0123456789';
const NGIRCD_PASSWORD = 'benchpass';

export type TargetName = 'sealchat' | 'sealchat-rooms' | 'sealchat-guests' | 'relay' | 'inspircd' | 'ngircd';

export interface Target {
  readonly name: TargetName;
  readonly port: number;
  readonly pid: number;
  /** Registration credentials for connection number i. */
  conn(i: number, kind: 'bench' | 'warm'): ConnSpec;
  cpuMs(): number;
  /** Resident set size in bytes, from /proc (the same reading for every server). */
  rss(): number;
  /**
   * sealchat-rooms only: make channels the connections have joined into rooms that outlive a
   * connection (issue 13), as keybot does, over the daemon's control socket (`room.add` with the
   * members' accounts). From then on every line relayed to them is kept as history.
   */
  makeRooms?(rooms: Array<{ name: string; members: number[] }>): Promise<void>;
  stop(): Promise<void>;
}

export function benchNick(i: number, kind: 'bench' | 'warm'): string {
  return `${kind === 'bench' ? 'b' : 'w'}${String(i).padStart(5, '0')}`;
}

/**
 * Throughput-relevant limits raised by the benchmark's own config (a JSON file loaded and
 * validated by loadConfig, as an operator's would be): fakelag, recvq/sendq, clones and login
 * throttles would otherwise cap the load generator, not measure the daemon.
 */
export const SEALCHAT_BENCH_LIMITS = {
  maxClients: 20_000,
  clonesPerIp: 0,
  commandBurst: 1_000_000,
  commandsPerSecond: 1_000_000,
  recvqBytes: 1 << 20,
  sendqBytes: 16 << 20,
  loginAttemptsPerIpPerMinute: 1_000_000,
  loginAttemptsPerAccountPerMinute: 1_000_000,
};

/**
 * Start sealchat with `count` bench accounts and `warm` warm-up accounts already in its store.
 *
 * Hashing 1000 passwords with argon2id (OWASP cost) takes ~12 s on this machine, so every bench
 * account gets the same precomputed hash of one password, written straight into the store
 * (src/ircd/store, openAccountStore) before the daemon starts. Logins still verify that hash in
 * full, once per login; only the setup is shortened. One real OpenPGP public key is shared too.
 */
export async function startSealchat(count: number, warm: number, profileDir?: string, limits: Record<string, number> = SEALCHAT_BENCH_LIMITS, guests = false, rooms = false): Promise<Target> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-bench-'));
  const dataDir = path.join(dir, 'data');
  const storeUrl = `sqlite://${path.join(dataDir, STORE_FILE_NAME)}`;
  const passwordHash = await hashPassword(BENCH_PASSWORD);
  const key = await generateUserKey({ name: 'bench' });
  const store = await openAccountStore(storeUrl);
  try {
    const now = new Date().toISOString();
    // Guests log in under nicks no account holds (a registered nick is refused to a guest).
    const names = guests ? [] : [
      ...Array.from({ length: count }, (_, i) => benchNick(i, 'bench')),
      ...Array.from({ length: warm }, (_, i) => benchNick(i, 'warm')),
    ];
    for (const name of names) {
      const record: AccountRecord = { name, passwordHash, publicKey: key.publicArmored, fingerprint: key.fingerprint, createdAt: now, updatedAt: now };
      await store.put(record);
    }
  } finally {
    await store.close();
  }
  const configFile = path.join(dir, 'sealchat.json');
  await writeFile(configFile, JSON.stringify({
    serverName: 'sealchat.bench.local',
    dataDir,
    listen: [{ host: '127.0.0.1', port: 0 }],
    limits,
    // Guests (no PASS): what a relay or a server without accounts does at registration.
    ...(guests ? { requireAccount: false } : {}),
  }, null, 2));

  // The daemon as shipped: `sealchatd ircd` from dist/ under plain node, as `npm start` runs it
  // (no tsx, no wrapper); its log lines go to a file, as an operator's go to a journal.
  const logFd = openSync(path.join(dir, 'sealchatd.log'), 'w');
  const proc = spawn(process.execPath, [...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), shippedSealchatd(), 'ircd', '--config', configFile], {
    stdio: ['ignore', 'pipe', logFd],
    env: process.env.BENCH_NO_PIN ? process.env : { ...process.env, GLIBC_TUNABLES: PINNED_MALLOC },
  });
  closeSync(logFd);
  const port = await printedPort(proc, /^listening on [^\n]*:(\d+)$/m, `sealchatd ircd (its log: ${path.join(dir, 'sealchatd.log')})`);
  const pid = proc.pid!;
  let control: ControlClient | null = null;
  return {
    name: guests ? 'sealchat-guests' : rooms ? 'sealchat-rooms' : 'sealchat',
    port,
    pid,
    ...(rooms ? {
      async makeRooms(specs: Array<{ name: string; members: number[] }>): Promise<void> {
        control ??= await ControlClient.connect(path.join(dataDir, CONTROL_SOCKET_NAME));
        for (const spec of specs) {
          const out = await control.call('room.add', { room: spec.name, accounts: spec.members.map((i) => benchNick(i, 'bench')) });
          if (out.some((o) => !o.joined)) throw new Error(`room.add ${spec.name}: not every member placed`);
        }
      },
    } : {}),
    conn: (i, kind) => {
      const nick = benchNick(i, kind);
      return { nick, pass: guests ? null : `${nick}:${BENCH_PASSWORD}` };
    },
    cpuMs: () => cpuMsOf(pid),
    rss: () => rssOf(pid),
    async stop() {
      control?.close();
      await stopProcess(proc, dir);
    },
  };
}

async function waitForPort(port: number, proc: ChildProcess, ms: number, name = 'ngircd'): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${name} exited with code ${proc.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${name} did not listen on port ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The port a server we spawned prints on its stdout (the first match of `re`, group 1); the rest
 * of its stdout is drained unread. Rejects, naming `what`, if it exits first.
 */
function printedPort(proc: ChildProcess, re: RegExp, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d: string): void => {
      out += d;
      const m = re.exec(out);
      if (!m) return;
      proc.stdout!.off('data', onData);
      proc.stdout!.resume();
      resolve(Number(m[1]));
    };
    proc.stdout!.setEncoding('utf8').on('data', onData);
    proc.once('exit', (code) => reject(new Error(`${what} exited with code ${code} before it listened`)));
  });
}

export function ngircdInstalled(): boolean {
  return existsSync(NGIRCD);
}

/**
 * ngircd in the foreground (-n) with its own config in a temp dir. Its flood protection is off
 * (MaxPenaltyTime 0) and per-IP limits are lifted, as for sealchat. ngircd has no accounts: the
 * login scenario uses its server password (PASS, compared in plain text).
 */
export async function startNgircd(): Promise<Target> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ngircd-bench-'));
  const port = await freePort();
  const conf = path.join(dir, 'ngircd.conf');
  await writeFile(conf, [
    '[Global]',
    '  Name = irc.bench.local',
    '  Info = sealchat benchmark reference',
    '  Listen = 127.0.0.1',
    `  Ports = ${port}`,
    '  MotdPhrase = "bench"',
    `  Password = ${NGIRCD_PASSWORD}`,
    '  ServerUID = nobody',
    '  ServerGID = nogroup',
    '[Limits]',
    '  MaxNickLength = 30',
    '  MaxPenaltyTime = 0',
    '  MaxConnectionsIP = 0',
    '  MaxConnections = 0',
    '  MaxJoins = 0',
    '[Options]',
    '  PAM = no',
    '  DNS = no',
    '  Ident = no',
    '',
  ].join('\n'));
  const logFd = openSync(path.join(dir, 'ngircd.log'), 'w');
  const proc = spawn(NGIRCD, ['-n', '-f', conf], { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  await waitForPort(port, proc, 10_000);
  return spawnedTarget('ngircd', proc, port, NGIRCD_PASSWORD, dir);
}

/** A server this benchmark spawned, measured from /proc; every connection sends `pass` (null: none). */
function spawnedTarget(name: TargetName, proc: ChildProcess, port: number, pass: string | null, dir?: string): Target {
  const pid = proc.pid!;
  return {
    name,
    port,
    pid,
    conn: (i, kind) => ({ nick: benchNick(i, kind), pass }),
    cpuMs: () => cpuMsOf(pid),
    rss: () => rssOf(pid),
    stop: () => stopProcess(proc, dir),
  };
}

/** Stop a spawned server by SIGTERM (SIGKILL after 3 s) and remove its directory. */
async function stopProcess(proc: ChildProcess, dir?: string): Promise<void> {
  if (proc.exitCode === null && proc.signalCode === null) {
    const done = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
    await done;
    clearTimeout(t);
  }
  if (dir) await rm(dir, { recursive: true, force: true });
}

/**
 * The bare relay (bench/peers/relay.ts), compiled to one JavaScript file and run by plain node,
 * as the daemon is (neither pays for a TypeScript loader); any PASS is accepted.
 */
export async function startRelay(): Promise<Target> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'relay-bench-'));
  const script = path.join(dir, 'relay.mjs');
  await esbuild.build({ entryPoints: [fileURLToPath(new URL('../peers/relay.ts', import.meta.url))], outfile: script, format: 'esm', platform: 'node', target: 'node20', logLevel: 'warning' });
  const proc = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  return spawnedTarget('relay', proc, await printedPort(proc, /^(\d+)\n/, 'the relay'), null, dir);
}

export function inspircdInstalled(): boolean {
  return existsSync(INSPIRCD);
}

/**
 * InspIRCd 3 in the foreground with its own config in a temp dir. Its limits are raised as
 * sealchat's are (no fakelag, command rate and queues far above the load, no clone or
 * connection limits); logins use a connect-class password, checked in plain text (it has no
 * accounts without services).
 */
export async function startInspircd(): Promise<Target> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'inspircd-bench-'));
  const port = await freePort();
  await writeFile(path.join(dir, 'motd.txt'), 'bench\n');
  await writeFile(path.join(dir, 'inspircd.conf'), [
    '<server name="irc.bench.local" description="sealchat benchmark reference" network="bench" id="002">',
    '<admin name="bench" nick="bench" email="bench@example.org">',
    `<bind address="127.0.0.1" port="${port}" type="clients">`,
    `<connect allow="*" password="${NGIRCD_PASSWORD}" hash="plaintext" timeout="60" pingfreq="600" threshold="1000000" commandrate="100000000" fakelag="no" ` +
      'hardsendq="16777216" softsendq="1048576" recvq="1048576" localmax="100000" globalmax="100000" limit="100000" maxchans="100" useident="no" resolvehostnames="no">',
    `<files motd="${dir}/motd.txt">`,
    `<pid file="${dir}/inspircd.pid">`,
    '<options prefixquit="Quit: ">',
    '<performance softlimit="20000" somaxconn="1024" netbuffersize="65536" clonesonconnect="no">',
    `<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="${dir}/ircd.log">`,
    '',
  ].join('\n'));
  const asRoot = process.getuid?.() === 0 ? ['--runasroot'] : [];
  const proc = spawn(INSPIRCD, [...asRoot, '--nofork', `--config=${path.join(dir, 'inspircd.conf')}`], { stdio: ['ignore', 'ignore', 'ignore'] });
  await waitForPort(port, proc, 15_000, 'inspircd');
  return spawnedTarget('inspircd', proc, port, NGIRCD_PASSWORD, dir);
}

/** A peer's version line for the report. */
export function peerVersion(name: TargetName): string {
  try {
    if (name === 'ngircd') return execFileSync(NGIRCD, ['--version'], { encoding: 'utf8' }).split('\n')[0]!.trim();
    if (name === 'inspircd') return execFileSync(INSPIRCD, ['--version'], { encoding: 'utf8' }).split('\n')[0]!.trim();
  } catch {
    // Not fatal: the name is enough.
  }
  return name === 'relay' ? `bare Node relay (bench/peers/relay.ts), node ${process.version}` : name;
}
