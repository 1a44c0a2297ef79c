/**
 * `npm run bench:keys`: key distribution and client crypto (figures for docs/PERFORMANCE.md).
 *
 *   invite   alice invites N-1 users (N = 2, 10, 50) in one command when the names fit one IRC
 *            line (they do, up to MAX_INVITEES): wall time from the invite until every member's
 *            companion holds the key of an epoch listing all N members, and until every member
 *            had received that envelope completely (the rest is the members' decrypt+verify);
 *            keybot's CPU for it.
 *   rekey    one member leaves the 50-member room: keybot's CPU until the others hold the new key.
 *   crypto   encrypt+sign and verify+decrypt of 120-byte room messages on one core (msgs/s).
 *
 * keybot runs as its own process (`sealchatd keybot`) so that its CPU is read from /proc; the
 * daemon and the 50 companions (SealClient) share this process. Targets (issue): 50 members
 * <= 200 ms wall, a rekey <= 100 ms keybot CPU, >= 2,000 messages/s each way on one core.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  decryptRoomMessage, encryptRoomMessage, generateRoomKey, generateUserKey, readPublicKey,
  signingPublicKeyOf, unlockPrivateKey, MessageStatus,
} from '../src/crypto/index.js';
import type { Client as IrcClient } from 'irc-framework';
import { SealClient } from '../src/client/index.js';
import { loadConfig } from '../src/ircd/config.js';
import { startDaemon } from '../src/ircd/daemon.js';
import { setLogLevel } from '../src/util/log.js';
import { MAX_INVITEES } from '../src/bot/service.js';
import { cpuMsOf, machineInfo } from './lib/proc.js';

setLogLevel('warn');
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SIZES = [2, 10, 50];
const TARGETS = { wall50: 200, rekeyCpu: 100, msgsPerS: 2000 };

/** The invitees in as few `invite` commands as fit one IRC line each (at most MAX_INVITEES names). */
function inviteLines(invitees: string[]): string[][] {
  const budget = 510 - 'PRIVMSG keybot :invite #sc-xxxxxxxxxx '.length;
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

/**
 * Watch the members' raw IRC for keybot's SC1E parts; `stop()` returns the time (performance.now)
 * by which every member had completely received its last envelope so far. Reads SealClient's
 * irc-framework client (private) only to see lines as they come off the socket.
 */
function watchEnvelopes(members: SealClient[]): { stop(): number } {
  const last = new Map<SealClient, number>();
  const off: Array<() => void> = [];
  for (const c of members) {
    const irc = (c as unknown as { irc: IrcClient }).irc;
    const got = new Map<string, { count: number; seen: Set<number> }>();
    const f = (e: { nick?: string; message: string }): void => {
      if (e.nick?.toLowerCase() !== 'keybot') return;
      const m = /^SC1E (\S+) (\d+)\/(\d+) /.exec(e.message);
      if (!m) return;
      const entry = got.get(m[1]!) ?? { count: Number(m[3]), seen: new Set<number>() };
      got.set(m[1]!, entry);
      entry.seen.add(Number(m[2]));
      if (entry.seen.size === entry.count) {
        last.set(c, performance.now());
        got.delete(m[1]!);
      }
    };
    irc.on('notice', f);
    off.push(() => irc.off('notice', f));
  }
  return {
    stop() {
      for (const f of off) f();
      if (last.size !== members.length) throw new Error('a member received no envelope');
      return Math.max(...last.values());
    },
  };
}

function until(check: () => boolean, what: string, ms = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = (): void => {
      if (check()) return resolve();
      if (Date.now() - t0 > ms) return reject(new Error(`timed out: ${what}`));
      setTimeout(tick, 1);
    };
    tick();
  });
}

async function main(): Promise<void> {
  const m = machineInfo();
  console.log(`# key distribution and client crypto — ${new Date().toISOString()} — ${m.cpu}, ${m.cores} cores, load ${m.load}`);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-bench-keys-'));
  const base = await loadConfig({ dataDir, listen: ['127.0.0.1:0'] });
  const config = {
    ...base,
    limits: { ...base.limits, loginAttemptsPerIpPerMinute: 0, loginAttemptsPerAccountPerMinute: 0, commandBurst: 1000, commandsPerSecond: 1000 },
  };
  const daemon = await startDaemon(config);
  const port = daemon.listeners[0]!.port;
  const names = Array.from({ length: 50 }, (_, i) => `user${String(i).padStart(2, '0')}`);
  const keys = new Map<string, { priv: string }>();
  for (const name of names) {
    const k = await generateUserKey({ name });
    keys.set(name, { priv: k.privateArmored });
    await daemon.accounts.add({ name, password: `pw-${name}`, publicKey: k.publicArmored });
  }

  // BENCH_PROFILE_DIR=dir writes a V8 CPU profile of keybot there.
  const prof = process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE_DIR] : [];
  const bot = spawn(process.execPath, [...prof, '--import', 'tsx', path.join(root, 'src/bin/sealchatd.ts'), 'keybot', '--data', dataDir, '--irc', `127.0.0.1:${port}`], {
    cwd: root,
    env: { ...process.env, SEALCHAT_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let botOut = '';
  bot.stdout!.on('data', (d: Buffer) => (botOut += d.toString()));
  const clients: SealClient[] = [];
  try {
    await until(() => /logged in/.test(botOut), 'keybot login');
    const rec = await daemon.accounts.get('keybot');
    for (const name of names) {
      const c = new SealClient();
      c.on('error', () => undefined);
      await c.connect({
        host: '127.0.0.1', port, nick: name, password: `pw-${name}`, privateKeyArmored: keys.get(name)!.priv,
        keybotPublicKey: rec!.publicKey!, keybotFingerprint: rec!.fingerprint!, knownKeybotsFile: false, reconnect: false,
      });
      clients.push(c);
    }
    console.log('\n| members | invite commands | invite → all envelopes received, wall ms | invite → all keys installed, wall ms | keybot CPU ms | rekey after a leave, keybot CPU ms | wall ms |');
    console.log('|---|---|---|---|---|---|---|');
    const results: Record<number, { wall: number; cpu: number; rekeyCpu: number; rekeyWall: number }> = {};
    for (const n of SIZES) {
      const members = clients.slice(0, n);
      const epochs = new Map<SealClient, number>();
      let room = '';
      const onKey = (c: SealClient) => (e: { room: string; epoch: number }) => {
        if (!room || e.room === room) epochs.set(c, e.epoch);
      };
      const listeners = members.map((c) => {
        const f = onKey(c);
        c.on('key', f);
        return f;
      });
      // When every member's envelope of the final epoch was completely received, at the socket
      // (the last SC1E part of an envelope read off the wire), as opposed to installed: the
      // difference is the members' own decrypt+verify (openEnvelope), which keybot does not do.
      const delivered = watchEnvelopes(members);
      const cpu0 = cpuMsOf(bot.pid!);
      const t0 = performance.now();
      // One invite command when the names fit one IRC line (keybot takes as many as fit, up to
      // MAX_INVITEES), as a person would type them; otherwise one line's worth per command, the
      // first opening the room and the rest adding to it (keybot coalesces the rekeys).
      // The room's name comes from alice's own JOIN; invite()'s reply resolves only after 300 ms
      // of keybot silence (SealClient's reply heuristic), which must not count as latency.
      const invitees = names.slice(1, n);
      const commands = inviteLines(invitees);
      const joined = new Promise<string>((resolve) => {
        const f = (e: { room: string; self: boolean }): void => {
          if (!e.self) return;
          members[0]!.off('join', f);
          resolve(e.room);
        };
        members[0]!.on('join', f);
      });
      const replyP = members[0]!.invite(commands[0]!);
      room = await joined;
      const adds: Array<Promise<string[]>> = [replyP];
      for (const more of commands.slice(1)) adds.push(members[0]!.inviteTo(room, more));
      await until(() => members.every((c) => c.crypto?.roomInfo(room)?.epoch !== undefined && c.crypto!.roomInfo(room)!.members.length === n), `${n} keys`);
      const wall = performance.now() - t0;
      const deliveredWall = delivered.stop() - t0;
      const replies = (await Promise.all(adds)).flat();
      if (!replies.some((l) => l.startsWith('opened '))) throw new Error(`invite of ${n}: ${replies.join(' | ')}`);
      await new Promise((r) => setTimeout(r, 200)); // let keybot's CPU accounting settle
      const cpu = cpuMsOf(bot.pid!) - cpu0;
      // Rekey: the last member leaves; the others must get a new epoch for n-1 members.
      const before = members[0]!.crypto!.roomInfo(room)!.epoch ?? 0;
      const cpu1 = cpuMsOf(bot.pid!);
      const t1 = performance.now();
      if (n > 2) {
        await members[n - 1]!.leave(room);
        await until(() => members.slice(0, n - 1).every((c) => (c.crypto!.roomInfo(room)?.epoch ?? 0) > before), `rekey of ${n}`);
      }
      const rekeyWall = performance.now() - t1;
      await new Promise((r) => setTimeout(r, 200));
      const rekeyCpu = n > 2 ? cpuMsOf(bot.pid!) - cpu1 : NaN;
      members.forEach((c, i) => c.off('key', listeners[i]!));
      results[n] = { wall, cpu, rekeyCpu, rekeyWall };
      console.log(
        `| ${n} | ${commands.length} | ${deliveredWall.toFixed(0)} | ${wall.toFixed(0)} | ${cpu.toFixed(0)} | ${n > 2 ? rekeyCpu.toFixed(0) : '-'} | ${n > 2 ? rekeyWall.toFixed(0) : '-'} |`,
      );
      for (const c of members.slice(0, n - 1)) await c.leave(room).catch(() => undefined);
    }

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

    const r50 = results[50]!;
    console.log('\nTargets:');
    console.log(`- 50 members, invite to all keys <= ${TARGETS.wall50} ms wall: ${r50.wall.toFixed(0)} ms ${r50.wall <= TARGETS.wall50 ? 'MET' : 'MISSED'}`);
    console.log(`- rekey (50 members) <= ${TARGETS.rekeyCpu} ms keybot CPU: ${r50.rekeyCpu.toFixed(0)} ms ${r50.rekeyCpu <= TARGETS.rekeyCpu ? 'MET' : 'MISSED'}`);
    console.log(`- >= ${TARGETS.msgsPerS} messages/s each way: ${encRate.toFixed(0)} / ${decRate.toFixed(0)} ${Math.min(encRate, decRate) >= TARGETS.msgsPerS ? 'MET' : 'MISSED'}`);
  } finally {
    for (const c of clients) c.quit();
    bot.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    await daemon.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
