// The cost of room history (issue 13, item 8), not a test: relay N lines through a room and an
// ordinary channel, then the bytes per line in the store. Run: N=10000 REPS=5 npx tsx test/ircd/history-cost.measure.ts
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';

import sqlite3 from 'sqlite3';
import { ControlClient } from '../../src/protocol/control-client.js';
import { RawClient, startTestDaemon } from '../helpers/daemon.js';

const N = Number(process.env.N ?? 3000);
const limits = { commandBurst: 100000, commandsPerSecond: 100000, recvqBytes: 1 << 24, sendqBytes: 1 << 26 };

async function run(room: boolean): Promise<{ ms: number; rows?: number; bytes?: number; file?: number }> {
  const t = await startTestDaemon({ limits });
  const alice = await t.addUser('alice');
  const bob = await t.addUser('bob');
  const control = await ControlClient.connect(t.daemon.controlPath);
  const a = await RawClient.connect(t.port);
  await a.login('alice', alice.password);
  const b = await RawClient.connect(t.port);
  await b.login('bob', bob.password);
  const name = room ? '#sc-measure' : '#measure';
  if (room) await control.call('room.add', { room: name, accounts: ['alice', 'bob'] });
  else {
    a.send(`JOIN ${name}`);
    await a.waitLine(/ 366 /);
    b.send(`JOIN ${name}`);
  }
  await b.waitLine(new RegExp(` 366 bob ${name}`));
  // A realistic room line: "SC1M " + ~360 bytes of base64 ciphertext.
  const lines = Array.from({ length: N }, (_, i) => `PRIVMSG ${name} :SC1M ${randomBytes(270).toString('base64')}${i}`);
  const start = process.hrtime.bigint();
  a.send(...lines);
  await b.waitLine(new RegExp(`${N - 1}$`), 60000);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  await t.daemon.server.rooms.flush();
  const file = t.config.store.slice('sqlite://'.length);
  let out: { ms: number; rows?: number; bytes?: number; file?: number } = { ms };
  if (room) {
    const db = new sqlite3.Database(file);
    const row = await new Promise<{ rows: number; bytes: number }>((res, rej) =>
      db.get("SELECT COUNT(*) AS rows, SUM(LENGTH(key) + LENGTH(value)) AS bytes FROM keyv WHERE key LIKE 'history:%'", (e, r) => (e ? rej(e) : res(r as never))));
    db.close();
    const sizes = await Promise.all(['', '-wal'].map((s) => stat(file + s).then((x) => x.size, () => 0)));
    out = { ms, rows: row.rows, bytes: row.bytes, file: sizes[0]! + sizes[1]! };
  }
  a.close();
  b.close();
  control.close();
  await t.stop();
  return out;
}

const results: Record<string, unknown[]> = { channel: [], room: [] };
for (let i = 0; i < Number(process.env.REPS ?? 3); i++) {
  results.channel!.push(await run(false));
  results.room!.push(await run(true));
}
const r = results.room![0] as { rows: number; bytes: number; file: number };
console.log(JSON.stringify(results));
console.log(`N=${N} lines of ${lines0()} bytes: history rows=${r.rows}, bytes in history rows=${r.bytes}, per message=${(r.bytes / N).toFixed(1)} B; sqlite file+wal=${r.file}`);
function lines0(): number {
  return Buffer.byteLength(`:alice!alice@127.0.0.1 PRIVMSG #sc-measure :SC1M ${'x'.repeat(360)}0\r\n`);
}

