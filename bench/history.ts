/**
 * `npm run bench:history`: rooms that outlive a connection (issue 13), measured as a user meets
 * them. The daemon and keybot run as shipped (`sealchatd serve`, its own process, keybot its
 * child) on a fresh sqlite store; the companions are SealClients in this process.
 *
 *   catch-up   bob's network goes down (a TCP relay between him and the daemon cuts his
 *              connection and refuses new ones); alice writes N messages (default 1000) into
 *              their room; the network comes back and bob's companion (the same SealClient,
 *              reconnecting by itself) logs in again: wall time from the network's return to the
 *              last history message shown, decrypted and verified; the daemon's CPU over it.
 *   store      bytes the sqlite store grew by (file + WAL) per stored message while alice wrote.
 *   live p99   in another room, dave writes to carol at a steady rate, and carol's delivery
 *              latency (send to decrypted) is measured before and during bob's catch-up.
 *              carol and dave run in a process of their own (this file, forked with
 *              `--live-pair`), so bob's decrypting does not count in their latency: what is
 *              measured is the daemon's, as another user on another machine would see it.
 *
 * The daemon's config raises only its flood limits (fakelag), as bench/run.ts does.
 * Targets (issue 13): N = 1000 caught up in <= 2 s; live p99 during the catch-up <= 1.2 x
 * before. Options: --messages N, --live-rate R (messages/s, default 100). Exit 1 when anything fails.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SealClient } from '../src/client/client.js';
import { generateUserKey } from '../src/crypto/index.js';
import { STORE_FILE_NAME } from '../src/protocol/files.js';
import { setLogLevel } from '../src/util/log.js';
import { cpuMsOf, freePort, machineInfo, sealchatd, until } from './lib/proc.js';

setLogLevel('warn');
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'src/cli/sealchatd.ts');
const { values: opts } = parseArgs({ options: { messages: { type: 'string' }, 'live-rate': { type: 'string' }, 'live-pair': { type: 'boolean' } } });
const N = Number(opts.messages ?? 1000);
const LIVE_RATE = Number(opts['live-rate'] ?? 100);
const TARGETS = { catchUpMs: 2000, p99Ratio: 1.2 };
const PASSWORD = 'bench-history-password-1';

const log = (s: string): void => void process.stderr.write(s + '\n');

/** A TCP relay to the daemon that can cut every connection through it and refuse new ones. */
async function relayTo(port: number): Promise<{ port: number; down(): void; up(): void; close(): void }> {
  let open = true;
  const pairs = new Set<[net.Socket, net.Socket]>();
  const server = net.createServer((client) => {
    if (!open) return client.destroy();
    const upstream = net.connect({ host: '127.0.0.1', port });
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    client.pipe(upstream).pipe(client);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    down: () => {
      open = false;
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      pairs.clear();
    },
    up: () => (open = true),
    close: () => server.close(),
  };
}


function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

async function storeBytes(dataDir: string): Promise<number> {
  let n = 0;
  for (const f of [STORE_FILE_NAME, `${STORE_FILE_NAME}-wal`]) n += await stat(path.join(dataDir, f)).then((s) => s.size, () => 0);
  return n;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-bench-history-'));
  const dataDir = path.join(dir, 'data');
  const names = ['alice', 'bob', 'carol', 'dave'] as const;
  const keys = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await generateUserKey({ name: n })] as const)));
  for (const n of names) {
    const file = path.join(dir, `${n}.pub.asc`);
    await writeFile(file, keys[n]!.publicArmored);
    await sealchatd(['user', 'add', n, '--key', file, '--password-stdin', '--data', dataDir], `${PASSWORD}\n`);
  }
  const port = await freePort();
  // The daemon as shipped, with only its flood limits raised (fakelag would pace alice's 1000
  // messages at a few per second, as it paces a person; the bench measures history, not that).
  const config = path.join(dir, 'sealchat.json');
  await writeFile(config, JSON.stringify({ limits: { commandBurst: 1_000_000, commandsPerSecond: 1_000_000, recvqBytes: 1 << 20, sendqBytes: 16 << 20 } }));
  const daemon: ChildProcess = spawn(process.execPath, ['--import', 'tsx', cli, 'serve', '--config', config, '--data', dataDir, '--listen', `127.0.0.1:${port}`], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, SEALCHAT_LOG: 'warn' },
  });
  let out = '';
  daemon.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const clients: SealClient[] = [];
  let pair: ChildProcess | undefined;
  let net1: Awaited<ReturnType<typeof relayTo>> | undefined;
  try {
    await until(() => (/keybot started/.test(out) ? true : undefined), 'the daemon and keybot to start', 30_000);
    net1 = await relayTo(port);
    const bobNet = net1;
    const connect = async (n: (typeof names)[number]): Promise<SealClient> => {
      const c = await connectAs(n, n === 'bob' ? bobNet.port : port, dir, keys[n]!.privateArmored, n === 'bob');
      clients.push(c);
      return c;
    };

    const [alice, bob] = [await connect('alice'), await connect('bob')];
    await keybotAnswers(alice);
    const bobKeyed = keyOf(bob);
    const aliceKeyed = keyOf(alice);
    await alice.invite(['bob']);
    const room = await aliceKeyed;
    await bobKeyed;
    log(`room ${room} (alice, bob) keyed`);

    // The live pair, carol and dave, in a process of their own.
    pair = fork(fileURLToPath(import.meta.url), ['--live-pair', '--live-rate', String(LIVE_RATE)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const pairProc = pair;
    const fromPair = (type: string): Promise<PairMessage> =>
      new Promise((resolve, reject) => {
        const onMessage = (m: PairMessage): void => {
          if (m.type !== type) return;
          pairProc.off('message', onMessage);
          resolve(m);
        };
        pairProc.on('message', onMessage);
        pairProc.once('exit', (code) => reject(new Error(`the live pair exited (${code}) before '${type}'`)));
      });
    const pairReady = fromPair('ready');
    pairProc.send({ type: 'start', port, dir, carol: keys.carol!.privateArmored, dave: keys.dave!.privateArmored });
    await pairReady;

    // bob's network goes down (he keeps trying); alice writes N messages.
    let shown = 0;
    let verified = 0;
    bob.on('message', (m: { room: string; history?: true; text: string }) => {
      if (m.room === room && m.history) {
        shown++;
        if (/^message \d+ of/.test(m.text)) verified++;
      }
    });
    let summary = '';
    bob.on('history', (h: { room: string; summary: string }) => {
      if (h.room === room) summary = h.summary;
    });
    bobNet.down();
    for (let gone = false; !gone; ) {
      gone = (await alice.command('status bob')).some((l) => /offline/i.test(l));
      if (!gone) await new Promise((r) => setTimeout(r, 50));
    }
    const before = await storeBytes(dataDir);
    for (let i = 0; i < N; i++) await alice.send(room, `message ${i + 1} of ${N} while bob is away`);
    await new Promise((r) => setTimeout(r, 1500)); // the store writes behind (<= 50 ms) and sqlite checkpoints
    const perMessage = ((await storeBytes(dataDir)) - before) / N;

    // Baseline live p99 over 3 s, then the catch-up with live traffic going on.
    pairProc.send({ type: 'phase', phase: 'baseline' });
    await new Promise((r) => setTimeout(r, 3000));

    const pid = daemon.pid!;
    const cpu0 = cpuMsOf(pid);
    pairProc.send({ type: 'phase', phase: 'during' });
    const t0 = performance.now();
    bobNet.up();
    await until(() => (shown >= N ? true : undefined), `bob to catch up on ${N} messages`, 120_000).catch((err: Error) => {
      throw new Error(`${err.message} (${shown} shown)`);
    });
    const catchUpMs = performance.now() - t0;
    const cpuMs = cpuMsOf(pid) - cpu0;
    const samples = fromPair('samples');
    pairProc.send({ type: 'phase', phase: 'stop' });
    const got = await samples;
    const { baseline, during } = got.type === 'samples' ? got : { baseline: [], during: [] };

    const p99Base = quantile(baseline, 0.99);
    const p99During = quantile(during, 0.99);
    const ratio = p99During / p99Base;
    const { cpu, cores, load } = machineInfo();
    const lines = [
      '',
      `sealchat history benchmark — ${new Date().toISOString()}`,
      `machine: ${cpu}, ${cores} cores, node ${process.version}; load average ${load}`,
      `daemon: sealchatd serve (sqlite store, keybot as its child), companions: SealClients, alice and bob in the bench process, carol and dave (the live pair) in a process of their own`,
      '',
      `catch-up: ${shown} messages shown to bob from history (${verified} verified texts), ${catchUpMs.toFixed(0)} ms from the network's return to the last (bob's reconnect backoff included); daemon CPU ${cpuMs.toFixed(0)} ms (${((cpuMs / N) * 1000).toFixed(0)} us per message)`,
      `  summary: "${summary}"`,
      `store: ${perMessage.toFixed(0)} bytes per stored message (sqlite file + WAL growth while alice wrote ${N})`,
      `live p99 in another room (dave → carol, ${LIVE_RATE}/s, send to decrypted): before ${p99Base.toFixed(1)} ms (${baseline.length} samples), during the catch-up ${p99During.toFixed(1)} ms (${during.length} samples): ${ratio.toFixed(2)} x`,
      '',
      `target: ${N} messages caught up in <= ${TARGETS.catchUpMs} ms: ${N === 1000 ? (catchUpMs <= TARGETS.catchUpMs ? 'MET' : 'MISSED') : `(only with --messages 1000)`}`,
      `target: live p99 during the catch-up <= ${TARGETS.p99Ratio} x before: ${ratio <= TARGETS.p99Ratio ? 'MET' : 'MISSED'}${during.length < 20 ? ' (few samples: the catch-up was short)' : ''}`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
    if (verified !== N || shown !== N) {
      process.stdout.write(`FAIL: expected ${N} messages shown once each, got ${shown} (${verified} with the text sent)\n`);
      process.exitCode = 1;
    }
  } finally {
    for (const c of clients) await c.quit().catch(() => undefined);
    net1?.close();
    pair?.kill('SIGTERM');
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  }
}

type Phase = 'idle' | 'baseline' | 'during' | 'stop';
type PairMessage =
  | { type: 'start'; port: number; dir: string; carol: string; dave: string }
  | { type: 'phase'; phase: Phase }
  | { type: 'ready' }
  | { type: 'samples'; baseline: number[]; during: number[] };

/** A companion logged in to the daemon (bob's reconnects by itself: his network goes down). */
async function connectAs(n: string, port: number, dir: string, privateKeyArmored: string, reconnects = false): Promise<SealClient> {
  const c = new SealClient();
  c.on('error', () => undefined);
  await c.connect({
    host: '127.0.0.1', port, nick: n, password: PASSWORD, privateKeyArmored,
    knownKeybotsFile: path.join(dir, `${n}.known_keybots.json`),
    reconnect: reconnects ? { initialMs: 100, maxMs: 200, jitter: 0 } : false,
  });
  return c;
}

const keyOf = (c: SealClient): Promise<string> => new Promise((resolve) => c.once('key', (k: { room: string }) => resolve(k.room)));

/** keybot's process is up; wait until it is logged in and answers. */
async function keybotAnswers(c: SealClient): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (await c.command('fingerprint').then((r) => r.length > 0, () => false)) return;
    if (Date.now() > deadline) throw new Error('keybot did not come online');
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * The live pair (`--live-pair`, forked by main): carol opens a room with dave, dave writes to it
 * at LIVE_RATE/s with his send time in the text, and carol's delivery latency is recorded under
 * the phase the message was sent in, which the parent sets. At 'stop' the samples go back.
 */
async function livePair(): Promise<void> {
  const send = (m: PairMessage): void => void process.send!(m);
  const start = await new Promise<Extract<PairMessage, { type: 'start' }>>((resolve) =>
    process.once('message', (m: PairMessage) => m.type === 'start' && resolve(m)),
  );
  let phase: Phase = 'idle';
  const stopped = new Promise<void>((resolve) =>
    process.on('message', (m: PairMessage) => {
      if (m.type !== 'phase') return;
      phase = m.phase;
      if (m.phase === 'stop') resolve();
    }),
  );
  const carol = await connectAs('carol', start.port, start.dir, start.carol);
  const dave = await connectAs('dave', start.port, start.dir, start.dave);
  await keybotAnswers(carol);
  const carolKeyed = keyOf(carol);
  const daveKeyed = keyOf(dave);
  await carol.invite(['dave']);
  const room = await carolKeyed;
  await daveKeyed;
  const samples: Record<'baseline' | 'during', number[]> = { baseline: [], during: [] };
  let outstanding = 0;
  carol.on('message', (m: { room: string; text: string }) => {
    const sent = /^live (\d+(?:\.\d+)?) (baseline|during|idle|stop)$/.exec(m.text);
    if (m.room !== room || !sent) return;
    outstanding--;
    const p = sent[2];
    if (p === 'baseline' || p === 'during') samples[p].push(performance.now() - Number(sent[1]));
  });
  let live = true;
  const loop = (async () => {
    while (live) {
      outstanding++;
      await dave.send(room, `live ${performance.now()} ${phase}`).catch(() => void outstanding--);
      await new Promise((r) => setTimeout(r, 1000 / LIVE_RATE));
    }
  })();
  send({ type: 'ready' });
  await stopped;
  live = false;
  await loop;
  // What was sent before 'stop' is still on its way: wait for it (at most 5 s).
  for (const until = Date.now() + 5000; outstanding > 0 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 20));
  send({ type: 'samples', baseline: samples.baseline, during: samples.during });
  await Promise.all([carol.quit().catch(() => undefined), dave.quit().catch(() => undefined)]);
  process.disconnect();
}

(opts['live-pair'] ? livePair() : main()).catch((err: unknown) => {
  console.error((err as Error)?.stack ?? String(err));
  process.exit(1);
});
