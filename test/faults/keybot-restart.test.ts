/**
 * Fault: keybot's process restarts, and takes its memory with it. The daemon keeps the rooms and
 * their members by account (docs/PROTOCOL.md "Rooms that outlive a connection"); what keybot
 * remembers itself (pins and pending invites; never keys) is in <dataDir>/keybot.rooms.json
 * (src/bot/room-memory.ts).
 * - Under `sealchatd serve` a daemon restart restarts keybot too: the rooms come back.
 * - keybot killed while the members are away: the next one takes the room over from the daemon.
 * - keybot alone restarted, the daemon kept running: the rooms are re-entered with their pins
 *   (a swapped key is refused), and a room emptied meanwhile stays gone.
 * - A corrupt file: keybot starts, says so, and takes the daemon's rooms as they are.
 * - The file is 0600 and holds no key.
 */
import { expect } from 'chai';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ROOM_MEMORY_FILE } from '../../src/protocol/files.js';
import type { SealClient } from '../../src/client/client.js';
import { ControlClient } from '../../src/protocol/control-client.js';
import { keyFor } from '../helpers/daemon.js';
import { captureWarnings, channelMembers, startWorld, type BotWorld } from '../bot/helpers.js';
import { next } from '../client/helpers.js';
import { companion, restartDaemon, roomIn, sameEpoch, sleep, spawnServe, until, type ServeProcess } from './helpers.js';

describe('faults: keybot restarts with its room memory (keybot.rooms.json)', function () {
  this.timeout(90_000);

  describe('under sealchatd serve, daemon and keybot restarted on the same data dir', () => {
    let dataDir: string;
    let serve: ServeProcess | undefined;
    let control: ControlClient | undefined;
    const clients: SealClient[] = [];
    before(async () => {
      dataDir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-fault-rooms-'));
    });
    after(async () => {
      await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
      control?.close();
      await serve?.stop();
      await rm(dataDir, { recursive: true, force: true });
    });

    it('brings the room back for alice and bob when they reconnect, with a new epoch, and places nobody else', async () => {
      serve = await spawnServe(dataDir);
      const { port } = serve;
      const fingerprint = serve.fingerprint()!;
      control = await ControlClient.connect(serve.controlPath);
      const firstInstance = (await control.call('server.info', {})).instance;
      const users: Record<string, { password: string; privateKey: string }> = {};
      for (const name of ['alice', 'bob', 'carol']) {
        const k = await keyFor(name);
        const password = `pw-${name}-rooms`;
        await control.call('user.add', { name, password, publicKey: k.publicArmored });
        users[name] = { password, privateKey: k.privateArmored };
      }
      const FAST = { initialMs: 100, maxMs: 400, jitter: 0.5 };
      const connect = async (name: string): Promise<SealClient> => {
        const c = await companion({ port, nick: name, password: users[name]!.password, privateKeyArmored: users[name]!.privateKey, keybotFingerprint: fingerprint, reconnect: FAST });
        clients.push(c);
        return c;
      };
      // carol is online throughout, and was never a member of the room.
      const [alice, bob, carol] = await Promise.all([connect('alice'), connect('bob'), connect('carol')]);
      const room = roomIn(await alice.invite(['bob']));
      const e1 = await until(() => sameEpoch([alice, bob], room, ['alice', 'bob']), `one epoch of ${room}`);
      control.close();
      control = undefined;

      // What `npm start` does on a restart: serve stops (keybot first, then the daemon), and a
      // new serve starts on the same data dir and port: a new daemon, a new keybot process.
      const back = Promise.all([next(alice, 'reconnected', () => true, 40_000), next(bob, 'reconnected', () => true, 40_000)]);
      await serve.stop();
      serve = await spawnServe(dataDir, { port });
      control = await ControlClient.connect(serve.controlPath);
      expect((await control.call('server.info', {})).instance).to.not.equal(firstInstance);
      await back;

      const e2 = await until(() => sameEpoch([alice, bob], room, ['alice', 'bob'], e1), `a new epoch of ${room} for alice and bob`, 30_000);
      expect(e2).to.be.greaterThan(e1);
      const info = await control.call('channel.get', { channel: room });
      expect([...info!.members].sort()).to.deep.equal(['alice', 'bob', 'keybot']);
      expect(info!.modes).to.include('i').and.to.include('s');
      expect(carol.joinedRooms()).to.deep.equal([]);
      expect(alice.joinedRooms()).to.deep.equal([room]);
      const got = next(bob, 'message', (m) => m.room === room);
      await alice.send(room, 'the room survived npm start being restarted');
      expect(await got).to.include({ from: 'alice', epoch: e2 });
    });
  });

  describe('under sealchatd serve, keybot killed while the members are away', () => {
    let dataDir: string;
    let serve: ServeProcess | undefined;
    const clients: SealClient[] = [];
    before(async () => {
      dataDir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-fault-pending-'));
    });
    after(async () => {
      await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
      await serve?.stop();
      await rm(dataDir, { recursive: true, force: true });
    });

    it('the next keybot takes the room over from the daemon: alice and bob get it back at login', async () => {
      serve = await spawnServe(dataDir);
      const { port } = serve;
      const fingerprint = serve.fingerprint()!;
      const control = await ControlClient.connect(serve.controlPath);
      const users: Record<string, { password: string; privateKey: string }> = {};
      for (const name of ['alice', 'bob']) {
        const k = await keyFor(name);
        const password = `pw-${name}-pending`;
        await control.call('user.add', { name, password, publicKey: k.publicArmored });
        users[name] = { password, privateKey: k.privateArmored };
      }
      control.close();
      const connect = async (name: string): Promise<SealClient> => {
        const c = await companion({ port, nick: name, password: users[name]!.password, privateKeyArmored: users[name]!.privateKey, keybotFingerprint: fingerprint, reconnect: false });
        clients.push(c);
        return c;
      };
      const [alice, bob] = await Promise.all([connect('alice'), connect('bob')]);
      const room = roomIn(await alice.invite(['bob']));
      await until(() => sameEpoch([alice, bob], room, ['alice', 'bob']), `one epoch of ${room}`);

      // A service restart; alice and bob (no reconnecting) stay away for now, and the new keybot
      // is killed once it has taken the room over.
      await serve.stop();
      serve = await spawnServe(dataDir, { port });
      const up = serve;
      await until(() => (up.stdout().match(/key fingerprint /g) ?? []).length >= 1, 'the first keybot to recover its rooms', 30_000);
      const first = serve.keybotPids()[0]!;
      process.kill(first, 'SIGKILL');
      // serve restarts keybot; the new one prints its fingerprint once it has recovered its rooms.
      const s = serve;
      await until(() => (s.stdout().match(/key fingerprint /g) ?? []).length >= 2, 'a second keybot to recover its rooms', 30_000);

      const [alice2, bob2] = await Promise.all([connect('alice'), connect('bob')]);
      const e = await until(() => sameEpoch([alice2, bob2], room, ['alice', 'bob']), `${room} back for alice and bob`, 30_000);
      expect(alice2.joinedRooms()).to.deep.equal([room]);
      const got = next(bob2, 'message', (m) => m.room === room);
      await alice2.send(room, 'back after two restarts');
      expect(await got).to.include({ from: 'alice', epoch: e });
    });
  });

  describe('keybot alone restarted while the daemon keeps running', () => {
    let w: BotWorld;
    before(async () => {
      w = await startWorld(['frank', 'gina', 'hank', 'ivy', 'judy'], { bot: { commands: { burst: 100 }, saveRoomsAfterMs: 50 } });
    });
    after(async () => w?.stop());

    it('saves the rooms to a 0600 file that holds no key', async () => {
      const [hank, ivy] = await Promise.all(['hank', 'ivy'].map((n) => w.login(n)));
      const room = roomIn([await hank!.ask('invite ivy', /^opened /)]);
      const env = await ivy!.envelopeFor(room);
      await hank!.envelopeFor(room);
      const file = path.join(w.t.dataDir, ROOM_MEMORY_FILE);
      // Saved after the change, without waiting for a shutdown.
      const text = await fileListing(file, room);
      expect((await stat(file)).mode & 0o777).to.equal(0o600);
      const doc = JSON.parse(text) as { rooms: Array<{ name: string; members: string[]; fingerprints: Record<string, string> }> };
      const saved = doc.rooms.find((r) => r.name === room)!;
      expect([...saved.members].sort()).to.deep.equal(['hank', 'ivy']);
      expect(saved.fingerprints).to.deep.equal({ hank: w.users.hank!.fingerprint, ivy: w.users.ivy!.fingerprint });
      const key = Buffer.from(env.payload.key);
      for (const form of [key.toString('base64'), key.toString('base64url'), key.toString('hex'), key.toString('hex').toUpperCase()]) {
        expect(text).to.not.include(form);
      }
      expect(text).to.not.match(/PGP|key"/);
      hank!.quit();
      ivy!.quit();
    });

    it('re-enters the rooms with their pins (a swapped key is refused), and does not re-create a room emptied meanwhile', async () => {
      const [frank, gina, hank, ivy, judy] = await Promise.all(['frank', 'gina', 'hank', 'ivy', 'judy'].map((n) => w.login(n)));
      const emptied = roomIn([await frank!.ask('invite gina', /^opened /)]);
      await gina!.envelopeFor(emptied);
      const kept = roomIn([await hank!.ask('invite ivy judy', /^opened /)]);
      const k1 = (await judy!.envelopeFor(kept)).payload.epoch;
      await Promise.all([hank!.envelopeFor(kept), ivy!.envelopeFor(kept)]);

      // keybot's process ends (cleanly: it saves its rooms on the way out).
      await w.bot.close();
      // While it is away: frank and gina leave their room (it vanishes), and judy's registered key is swapped.
      frank!.client.part(emptied);
      gina!.client.part(emptied);
      await until(() => channelMembers(w.t, emptied).length === 0, 'the emptied room to vanish');
      const mallory = await keyFor('mallory');
      await w.t.daemon.accounts.setKey('judy', mallory.publicArmored);

      // A new keybot, knowing only what the file says (nothing else of the old one is in this object).
      await w.restartBot();
      // start() resolves after recovery: keybot has dropped the emptied room by now (and leaves its channel).
      expect(w.bot.service!.rooms.get(emptied)).to.equal(undefined);
      await until(() => channelMembers(w.t, emptied).length === 0, 'keybot out of the emptied room');

      // The kept room: re-entered; judy is removed for her changed key, not keyed under mallory's.
      const [h2, i2] = await Promise.all([hank!.envelopeFor(kept, k1, 10_000), ivy!.envelopeFor(kept, k1, 10_000)]);
      const fresh = await until(() => {
        const e = hank!.latest(kept);
        return e && e.payload.members.length === 2 ? e : undefined;
      }, 'an epoch for hank and ivy only');
      expect(fresh.payload.members.map((m) => m.account).sort()).to.deep.equal(['hank', 'ivy']);
      expect(h2.payload.epoch).to.equal(i2.payload.epoch);
      await until(() => !channelMembers(w.t, kept).includes('judy'), 'judy removed from the room');
      expect(channelMembers(w.t, kept)).to.deep.equal(['hank', 'ivy', 'keybot']);
      expect(judy!.envelopes.filter((e) => e.payload.room === kept && e.payload.epoch > k1)).to.deep.equal([]);
      expect(frank!.envelopes.filter((e) => e.payload.room === emptied)).to.have.length(1);
    });
  });

  describe('a corrupt keybot.rooms.json', () => {
    let w: BotWorld;
    before(async () => {
      w = await startWorld(['kim', 'lee']);
    });
    after(async () => {
      // The daemon restartDaemon started is t.daemon now; stop() closes the first one.
      await w?.t.daemon.close();
      await w?.stop();
    });

    it('is reported with a warning and ignored: keybot starts and takes the rooms the daemon kept as they are', async () => {
      const [kim, lee] = await Promise.all(['kim', 'lee'].map((n) => w.login(n)));
      const room = roomIn([await kim!.ask('invite lee', /^opened /)]);
      await lee!.envelopeFor(room);
      await w.bot.close();
      const file = path.join(w.t.dataDir, ROOM_MEMORY_FILE);
      expect(await readFile(file, 'utf8')).to.include(room);
      // The daemon restarts (it keeps the room), and the file is damaged meanwhile.
      await restartDaemon(w.t, () => writeFile(file, '{"version": 1, "daemonInstance": "x", "rooms": [{"name": "#sc-', { mode: 0o600 }));
      const [kim2, lee2] = await Promise.all(['kim', 'lee'].map((n) => w.login(n)));
      const warnings = await captureWarnings(async () => {
        await w.restartBot();
      });
      expect(warnings.join('\n')).to.match(/keybot\.rooms\.json is corrupt \(.+\): ignoring it; no rooms are restored from it/);
      // Without its memory keybot cannot check the daemon's roster: it keys whom the daemon lists.
      const [k2, l2] = await Promise.all([kim2!.envelopeFor(room), lee2!.envelopeFor(room)]);
      expect(k2.payload.epoch).to.equal(l2.payload.epoch);
      expect(k2.payload.members.map((m) => m.account).sort()).to.deep.equal(['kim', 'lee']);
      expect(w.bot.service!.snapshot().map((r) => r.name)).to.deep.equal([room]);
      // keybot works: a new room opens.
      const fresh = roomIn([await kim2!.ask('invite lee', /^opened /)]);
      await lee2!.envelopeFor(fresh);
    });
  });
});

/** The file's text once it lists `room` (it is written a moment after the change). */
async function fileListing(file: string, room: string, ms = 10_000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const text = await readFile(file, 'utf8').catch(() => '');
    if (text.includes(room)) return text;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${file} to list ${room}`);
    await sleep(20);
  }
}
