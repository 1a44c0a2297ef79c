/**
 * The room history's write-behind on its own (issue 13's rooms, issue 14): 200 rooms over a real
 * sqlite store, N lines recorded per room between two write-behinds (RoomRegistry.flush, as its
 * 50 ms timer would), 100 write-behinds; prints the process CPU per line (the sqlite work on
 * libuv's threads included) and the store's size. 3 lines per room per write-behind is the paced
 * 200-room run of `npm run bench` (12,500 lines/s), 44 its window-50 blast.
 *
 *   npx tsx bench/history-writes.ts [lines per room per write-behind, default 3]
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_CONFIG } from '../src/ircd/config.js';
import { RoomRegistry } from '../src/ircd/server/rooms.js';
import { openRoomStore } from '../src/ircd/store/index.js';
import { createLogger, setLogLevel } from '../src/util/log.js';
setLogLevel('warn');
const ROOMS = 200;
const PER = Number(process.argv[2] ?? 3);
const FLUSHES = 100;
const dir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-history-writes-'));
const store = await openRoomStore(`sqlite://${path.join(dir, 's.sqlite')}`);
const reg = await RoomRegistry.open(store, DEFAULT_CONFIG.history, createLogger('history-writes'));
for (let r = 0; r < ROOMS; r++) reg.ensure(`#room-${r}`);
await reg.flush();
const text = 'SC1M ' + 'Q'.repeat(360);
const cpu0 = process.cpuUsage();
const t0 = performance.now();
for (let f = 0; f < FLUSHES; f++) {
  for (let r = 0; r < ROOMS; r++) for (let k = 0; k < PER; k++) reg.record(`#room-${r}`, { s: 0, t: Date.now(), id: `m${f}-${k}`, src: 'alice!alice@127.0.0.1', cmd: 'PRIVMSG', params: [`#room-${r}`, text], a: 'alice' });
  await reg.flush();
}
const cpu = process.cpuUsage(cpu0);
const lines = ROOMS * PER * FLUSHES;
const wal = await stat(path.join(dir, 's.sqlite-wal')).then((s) => s.size, () => 0);
const db = await stat(path.join(dir, 's.sqlite')).then((s) => s.size);
console.log(`${PER} lines/room/flush: ${lines} lines, CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms (${((cpu.user + cpu.system) / lines).toFixed(1)} us/line), wall ${(performance.now() - t0).toFixed(0)} ms, store file and WAL ${((db + wal) / 1e6).toFixed(1)} MB`);
await reg.close();
await store.close();
await rm(dir, { recursive: true, force: true });
