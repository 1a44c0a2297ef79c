/**
 * The daemon's relay hot path without the network: the real IrcServer, Sessions and command
 * handlers, fed PRIVMSG lines through fake sockets that only count bytes. It measures the
 * JavaScript cost per relayed message (parse, dispatch, fan-out, flush) without syscalls or a
 * load generator, so before/after comparisons of a daemon change are far less noisy than the
 * end-to-end benchmark on a shared machine.
 *
 * With --history the same runs go to rooms (issue 13): every channel is made a room with
 * room.add's own code (server/placement.ts), so each line is also kept as history and written
 * behind to a real sqlite store in a temporary directory; its CPU counts the store's threads too.
 *
 *   node --import tsx bench/hotpath.ts [--seconds S] [--rounds N] [--history]
 */
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Socket } from 'node:net';
import { parseArgs } from 'node:util';
import type { Accounts } from '../src/ircd/accounts.js';
import { DEFAULT_CONFIG, type Config } from '../src/ircd/config.js';
import { makeDispatcher } from '../src/ircd/commands/dispatch.js';
import { Commands } from '../src/ircd/commands/table.js';
import { addToRoom } from '../src/ircd/server/placement.js';
import { RoomRegistry } from '../src/ircd/server/rooms.js';
import { IrcServer } from '../src/ircd/server/server.js';
import { openRoomStore, type RoomStore } from '../src/ircd/store/index.js';
import { Session } from '../src/ircd/server/session.js';
import { createLogger, setLogLevel } from '../src/util/log.js';
import { SEALCHAT_BENCH_LIMITS } from './lib/targets.js';

setLogLevel('warn');

const { values: opts } = parseArgs({ options: { seconds: { type: 'string' }, rounds: { type: 'string' }, history: { type: 'boolean', default: false } } });
const SECONDS = Number(opts.seconds ?? 2);
const ROUNDS = Number(opts.rounds ?? 3);
const BATCH = 64; // lines per simulated read, like a pipelined sender

class FakeSocket extends EventEmitter {
  remoteAddress = '127.0.0.1';
  destroyed = false;
  writableLength = 0;
  bytes = 0;
  writes = 0;
  setNoDelay(): this {
    return this;
  }
  write(buf: Buffer | string): boolean {
    this.bytes += buf.length;
    this.writes++;
    return true;
  }
  end(): this {
    return this;
  }
  destroy(): this {
    this.destroyed = true;
    return this;
  }
}

const config: Config = {
  ...DEFAULT_CONFIG,
  dataDir: '/nonexistent',
  store: 'memory:',
  limits: { ...DEFAULT_CONFIG.limits, ...SEALCHAT_BENCH_LIMITS },
};

async function setup(rooms: number, size: number, registry?: RoomRegistry): Promise<{ server: IrcServer; sockets: FakeSocket[]; names: string[] }> {
  const server = new IrcServer(config, {} as Accounts, makeDispatcher(Commands), registry);
  const sockets: FakeSocket[] = [];
  const names: string[] = [];
  for (let r = 0; r < rooms; r++) {
    const name = `#room-${r}`;
    names.push(name);
    for (let m = 0; m < size; m++) {
      const sock = new FakeSocket();
      const session = new Session(server, sock as unknown as Socket, '127.0.0.1', false);
      server.sessions.add(session);
      const nick = `u${r}x${m}`;
      server.attach(session, { nick, account: nick, isService: false });
      const { channel, created } = server.getOrCreateChannel(name);
      server.join(session.client!, channel, created, () => undefined);
      sockets.push(sock);
    }
    if (registry) {
      const accounts = Array.from({ length: size }, (_, m) => `u${r}x${m}`);
      addToRoom(server, name, accounts.map((a) => ({ asked: a, name: a })));
    }
  }
  if (registry) await registry.flush();
  return { server, sockets, names };
}

function payload(): string {
  return 'SC1M ' + 'Q'.repeat(204);
}

async function measure(label: string, rooms: number, size: number, senders: number): Promise<void> {
  let store: RoomStore | null = null;
  let dir = '';
  let registry: RoomRegistry | undefined;
  if (opts.history) {
    dir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-hotpath-'));
    store = await openRoomStore(`sqlite://${path.join(dir, 'store.sqlite')}`);
    registry = await RoomRegistry.open(store, config.history, server0Log);
  }
  const { server, sockets, names } = await setup(rooms, size, registry);
  await new Promise((r) => setImmediate(r)); // flush the JOIN bursts
  const text = payload();
  const chunks = names.map((n) => Buffer.from(`PRIVMSG ${n} :${text}\r\n`.repeat(BATCH)));
  const results: number[] = [];
  for (let round = 0; round < ROUNDS + 1; round++) {
    let messages = 0;
    const t0 = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    const deadline = performance.now() + SECONDS * 1000;
    while (performance.now() < deadline) {
      // One event-loop turn: every sender's read arrives, then the server flushes.
      for (let r = 0; r < rooms; r++) {
        for (let s = 0; s < senders; s++) sockets[r * size + s]!.emit('data', chunks[r]!);
      }
      messages += rooms * senders * BATCH;
      await new Promise((res) => setImmediate(res));
    }
    const ns = Number(process.hrtime.bigint() - t0);
    const cpu = process.cpuUsage(cpu0);
    const deliveries = messages * (size - 1);
    if (round > 0) results.push(((cpu.user + cpu.system) * 1000) / deliveries); // round 0 warms up
    void ns;
  }
  for (const s of server.sessions) s.close('done');
  if (registry) {
    await registry.close();
    await store!.close();
    await rm(dir, { recursive: true, force: true });
  }
  results.sort((a, b) => a - b);
  const med = results[results.length >> 1]!;
  console.log(`${label}: ${(med).toFixed(1)} ns CPU per delivery (${(med * (size - 1)).toFixed(0)} ns per message), rounds ${results.map((x) => x.toFixed(1)).join(' ')}`);
}

const server0Log = createLogger('hotpath');
const tag = opts.history ? ', rooms with history' : '';
await measure(`rooms 200x5 (all send)${tag}`, 200, 5, 5);
await measure(`fan-out 50/5${tag}`, 1, 50, 5);
