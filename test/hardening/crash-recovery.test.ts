/**
 * kill -9 during a burst of account changes: every account the daemon acknowledged over the
 * control socket must be there after a restart, intact (its password still logs in), and the
 * sqlite store (WAL mode) must pass its integrity check.
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { KeyvSqlite } from '@keyv/sqlite';
import { ControlClient } from '../../src/protocol/control-client.js';
import { keyFor } from '../helpers/daemon.js';
import { spawnDaemon, type ChildDaemon } from './child-daemon.js';
import { figure, LineConn, size } from './harness.js';

const ROUNDS = size(1, 5);
const BURST = size(80, 200);

describe('ircd killed with SIGKILL during a burst of account changes', function () {
  this.timeout(size(60_000, 600_000));
  let dataDir: string;
  let daemon: ChildDaemon | undefined;
  let control: ControlClient | undefined;

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-crash-'));
  });
  after(async () => {
    control?.close();
    await daemon?.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  });

  it(`keeps every acknowledged account across ${ROUNDS} kill -9 round(s), and the store stays readable`, async () => {
    const key = (await keyFor('crashtest')).publicArmored;
    const acked = new Map<string, string>(); // name → password, acknowledged by the daemon
    let attempted = 0;
    let lostAfterAck = 0;
    let committedUnacked = 0;
    for (let round = 0; round < ROUNDS; round++) {
      daemon = await spawnDaemon(dataDir);
      control = await ControlClient.connect(daemon.controlPath);
      // Everything acknowledged in earlier rounds must have survived the previous kill.
      const names = new Set((await control.call('user.list', {})).map((u) => u.name));
      const missing = [...acked.keys()].filter((n) => !names.has(n));
      lostAfterAck += missing.length;
      expect(missing, `acknowledged accounts missing after kill -9 (round ${round})`).to.deep.equal([]);

      // The burst: BURST adds in flight (32 on the wire at once), SIGKILL after a random number of acks.
      const killAfter = 10 + Math.floor(Math.random() * (BURST / 2));
      const victim = daemon;
      let acks = 0;
      const calls: Array<Promise<void>> = [];
      const pending = new Map<string, string>();
      for (let i = 0; i < BURST; i++) {
        const name = `r${round}u${i}`;
        const password = `pw-${round}-${i}-${Math.random().toString(36).slice(2)}`;
        pending.set(name, password);
        attempted++;
        calls.push(
          control.call('user.add', { name, password, publicKey: key }).then(
            () => {
              acked.set(name, password);
              if (++acks === killAfter) victim.child.kill('SIGKILL');
            },
            () => undefined, // lost with the connection when the daemon died
          ),
        );
      }
      await Promise.all(calls);
      const { signal } = await victim.exited;
      control.close();
      control = undefined;
      expect(signal).to.equal('SIGKILL');
      figure(`round ${round}: acknowledged before the kill`, `${acks} of ${BURST} requested (kill after ack #${killAfter})`);
      // WAL mode leaves the write-ahead log beside the database when the process dies.
      expect(existsSync(path.join(dataDir, 'sealchat.sqlite-wal')), 'the -wal file (journal_mode=WAL)').to.equal(true);

      daemon = await spawnDaemon(dataDir);
      control = await ControlClient.connect(daemon.controlPath);
      const after = new Map((await control.call('user.list', {})).map((u) => [u.name, u]));
      for (const name of pending.keys()) if (after.has(name) && !acked.has(name)) committedUnacked++;
      const lost = [...acked.keys()].filter((n) => !after.has(n));
      lostAfterAck += lost.length;
      expect(lost, 'acknowledged accounts missing after the restart').to.deep.equal([]);
      // Every record that is there is whole: fingerprint as registered, password hash that verifies.
      const fp = (await keyFor('crashtest')).fingerprint.toLowerCase();
      for (const name of pending.keys()) {
        const u = after.get(name);
        if (u) expect(u.fingerprint, name).to.equal(fp);
      }
      const sample = [...acked.keys()].filter((n) => n.startsWith(`r${round}u`)).slice(0, 3);
      for (const name of sample) {
        const c = await LineConn.connect(daemon.port);
        await c.login(name, acked.get(name)!);
        c.close();
      }
      control.close();
      control = undefined;
      await daemon.kill('SIGTERM');
      daemon = undefined;
    }

    // The database file on its own: sqlite's integrity check, and still in WAL mode.
    const db = new KeyvSqlite({ uri: `sqlite://${path.join(dataDir, 'sealchat.sqlite')}` });
    try {
      const integrity = (await db.query('PRAGMA integrity_check')) as Array<{ integrity_check: string }>;
      const mode = (await db.query('PRAGMA journal_mode')) as Array<{ journal_mode: string }>;
      const rows = (await db.query("SELECT count(*) AS n FROM keyv WHERE key LIKE 'accounts:%'")) as Array<{ n: number }>;
      expect(integrity[0]!.integrity_check).to.equal('ok');
      expect(mode[0]!.journal_mode).to.equal('wal');
      figure('store after the kills', `integrity_check=${integrity[0]!.integrity_check}, journal_mode=${mode[0]!.journal_mode}, ${rows[0]!.n} account rows`);
    } finally {
      await db.disconnect();
    }
    figure('kill -9 totals', `${attempted} adds requested, ${acked.size} acknowledged, ${lostAfterAck} acknowledged-but-lost, ${committedUnacked} committed but never acknowledged`);
  });
});
