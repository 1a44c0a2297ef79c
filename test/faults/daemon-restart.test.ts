/**
 * Fault: the daemon restarts under connected companions (same port, same data dir). keybot
 * (in process, with its own reconnect) and the SealClient companions reconnect with backoff;
 * the daemon lost its channels, so keybot re-creates each room it remembers under the same name
 * for the remembered members who came back, drops those who did not, and issues a new epoch;
 * text typed while the server was away is held and goes out under it (docs/PROTOCOL.md "Faults").
 */
import { expect } from 'chai';
import { rename } from 'node:fs/promises';
import path from 'node:path';
import { startKeybot, type Keybot, type KeybotOptions } from '../../src/bot/main.js';
import type { SealClient } from '../../src/client/client.js';
import { startTestDaemon, type TestDaemon, type TestUser } from '../helpers/daemon.js';
import { loginAs, testKeybotOptions } from '../helpers/keybot.js';
import { channelMembers, startWorld, waitUntil, type BotWorld } from '../bot/helpers.js';
import { next, record } from '../client/helpers.js';
import { companion, restartDaemon, roomIn, sameEpoch, until } from './helpers.js';

describe('faults: daemon restart under connected companions', function () {
  this.timeout(60_000);
  let t: TestDaemon;
  let bot: Keybot;
  let users: Record<string, TestUser>;
  const clients: SealClient[] = [];
  const botOptions = (): KeybotOptions =>
    testKeybotOptions(t, {
      reconnect: { initialMs: 100, maxMs: 400 },
    });

  before(async () => {
    t = await startTestDaemon();
    users = {};
    for (const n of ['alice', 'bob', 'carol', 'dave', 'erin']) users[n] = await t.addUser(n);
    bot = await startKeybot(botOptions());
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
    await bot?.close();
    // t.stop() closes the daemon it started; the one restartDaemon started is t.daemon now.
    await t?.daemon.close();
    await t?.stop();
  });

  const FAST = { initialMs: 100, maxMs: 400, jitter: 0.5 };
  const connect = async (name: string, reconnect: false | typeof FAST): Promise<SealClient> => {
    const c = await companion({
      ...loginAs(t, users[name]!),
      keybotFingerprint: bot.fingerprint,
      reconnect,
    });
    clients.push(c);
    return c;
  };

  it('companions and keybot reconnect, the room comes back under its name with every member (those still away offline), with a new epoch', async () => {
    const alice = await connect('alice', FAST);
    const bob = await connect('bob', FAST);
    // carol's companion does not reconnect: she stays a member, offline.
    const carol = await connect('carol', false);
    const room = roomIn(await alice.invite(['bob', 'carol']));
    const e1 = await until(() => sameEpoch([alice, bob, carol], room, ['alice', 'bob', 'carol']), `one epoch of ${room}`);
    let got = next(bob, 'message', (m) => m.room === room);
    await alice.send(room, 'before the restart');
    expect(await got).to.include({ text: 'before the restart', epoch: e1 });

    const events = { alice: record(alice, 'reconnected'), bob: record(bob, 'reconnected') };
    const bobSaw = record(bob, 'message');
    const aliceDown = next(alice, 'disconnected');
    const carolClosed = next(carol, 'close');
    const t0 = Date.now();
    let heldWhileDown: Promise<{ epoch: number; held?: { id: number; ms: number } }> | undefined;
    let heldEvent: Promise<{ id: number; room: string; reason: string }> | undefined;
    await restartDaemon(t, async () => {
      // While the server is away: keys are gone, text for the room is held, not refused.
      expect(await aliceDown).to.deep.equal({ reason: 'the connection to the server was lost', reconnecting: true });
      expect(alice.reconnecting).to.equal(true);
      expect(alice.localRooms().every((r) => !r.hasKey)).to.equal(true);
      heldEvent = next(alice, 'message-held');
      heldWhileDown = alice.send(room, 'typed while the server was down');
      const h = await heldEvent;
      expect(h.reason).to.match(/connection to the server was lost/);
      await carolClosed; // reconnect off: her client is finished
    });

    // The same room (same name), kept by the daemon; carol is offline and still listed.
    const e2 = await until(() => sameEpoch([alice, bob], room, ['alice', 'bob', 'carol'], e1), `a new epoch of ${room} for alice, bob and the offline carol`, 20_000);
    const recovered = Date.now() - t0;
    expect(events.alice.length).to.equal(1);
    expect(events.bob.length).to.equal(1);
    expect(alice.joinedRooms()).to.deep.equal([room]);
    expect(channelMembers(t, room)).to.deep.equal(['alice', 'bob', 'keybot']);
    const ch = t.daemon.server.channels.get(room)!;
    expect([...ch.flags]).to.include.members(['i', 's']);
    expect(alice.keybot).to.include({ status: 'pinned', fingerprint: bot.fingerprint });

    // What alice typed while the server was away went out under the new epoch.
    const sent = await heldWhileDown!;
    expect(sent.epoch).to.equal(e2);
    expect(sent.held?.ms).to.be.greaterThan(0);
    const atBob = await until(() => bobSaw.find((m) => m.text === 'typed while the server was down'), 'the held text at bob');
    expect(atBob).to.include({ from: 'alice', room, epoch: e2 });
    // Messages flow again, both ways.
    got = next(alice, 'message', (m) => m.room === room);
    await bob.send(room, 'back again');
    expect(await got).to.include({ from: 'bob', text: 'back again', epoch: e2 });
    got = next(bob, 'message', (m) => m.room === room);
    await alice.send(room, 'welcome back');
    expect(await got).to.include({ from: 'alice', text: 'welcome back', epoch: e2 });

    // carol comes back much later: the daemon puts her back in the room, and keybot gives her the current key.
    const late = await connect('carol', false);
    await until(() => sameEpoch([alice, bob, late], room, ['alice', 'bob', 'carol']), `carol on the current epoch of ${room}`);
    expect(late.joinedRooms()).to.deep.equal([room]);
    expect(channelMembers(t, room)).to.deep.equal(['alice', 'bob', 'carol', 'keybot']);
    // eslint-disable-next-line no-console
    console.log(`      (daemon restarted; room ${room} back with epoch ${e2} after ${recovered} ms)`);
    await Promise.all(clients.splice(0).map((c) => c.quit()));
  });

  it('keybot back before a member: its first epoch includes them (offline, still a member), and they read under it once back', async () => {
    const dave = await connect('dave', FAST);
    // erin's companion comes back only after 1 s, well after keybot and dave.
    const erin = await connect('erin', { initialMs: 1000, maxMs: 1000, jitter: 0 });
    const room = roomIn(await dave.invite(['erin']));
    const e1 = await until(() => sameEpoch([dave, erin], room, ['dave', 'erin']), `one epoch of ${room}`);
    const keys = record(dave, 'key');
    const erinBack = next(erin, 'reconnected', () => true, 15_000);
    await restartDaemon(t);
    await erinBack;
    const e2 = await until(() => sameEpoch([dave, erin], room, ['dave', 'erin'], e1), `a new epoch of ${room}`, 15_000);
    // One epoch after the restart, for both: dave did not get a key for a room of one first.
    const after = keys.filter((k) => k.room === room);
    expect(after.map((k) => k.epoch)).to.deep.equal([e2]);
    expect([...after[0]!.members].sort()).to.deep.equal(['dave', 'erin']);
    const got = next(dave, 'message', (m) => m.room === room);
    await erin.send(room, 'I was slow to come back');
    expect(await got).to.include({ from: 'erin', epoch: e2 });
  });

  it('a keybot with another key after the restart is reported loudly, and its keys are refused', async () => {
    const dave = clients.find((c) => c.nick === 'dave')!;
    const erin = clients.find((c) => c.nick === 'erin')!;
    const pinned = bot.fingerprint;
    await bot.close();
    const back = Promise.all([next(dave, 'reconnected', () => true, 15_000), next(erin, 'reconnected', () => true, 15_000)]);
    const changed = next(dave, 'keybot-key-changed', () => true, 15_000);
    // The operator lost keybot's key file: the next keybot makes a new key pair.
    await restartDaemon(t, () => rename(path.join(t.dataDir, 'keybot.key.asc'), path.join(t.dataDir, 'keybot.key.asc.lost')));
    bot = await startKeybot(botOptions());
    expect(bot.fingerprint).to.not.equal(pinned);
    await back;
    expect(await changed).to.deep.equal({ server: `127.0.0.1:${t.port}`, expected: pinned, got: bot.fingerprint, source: 'configured' });
    expect(dave.keybot).to.include({ status: 'mismatch', expected: pinned, got: bot.fingerprint });
    // The new keybot's envelopes are not signed by the pinned key: refused, no key installed.
    const rejected = next(dave, 'envelope-rejected', () => true, 15_000);
    roomIn(await dave.invite(['erin']));
    expect(await rejected).to.include({ from: 'keybot', code: 'bad-signature' });
    expect(dave.localRooms().filter((r) => r.hasKey)).to.deep.equal([]);
  });
});

describe('faults: keybot loses its IRC connection while the daemon keeps running', function () {
  this.timeout(30_000);
  let w: BotWorld;
  before(async () => {
    w = await startWorld(['frank', 'gina', 'hank', 'ivy'], { bot: { commands: { burst: 100 }, reconnect: { initialMs: 800, maxMs: 800 } } });
  });
  after(async () => w?.stop());

  it('recovers the rooms that still exist, and does not bring back one its members emptied meanwhile', async () => {
    const [frank, gina, hank, ivy] = await Promise.all(['frank', 'gina', 'hank', 'ivy'].map((n) => w.login(n)));
    const emptied = roomIn([await frank!.ask('invite gina', /^opened /)]);
    await gina!.envelopeFor(emptied);
    const kept = roomIn([await hank!.ask('invite ivy', /^opened /)]);
    const k1 = (await ivy!.envelopeFor(kept)).payload.epoch;
    await hank!.envelopeFor(kept);

    w.t.daemon.server.disconnectAccount('keybot', 'test: keybot loses its connection');
    await waitUntil(() => !channelMembers(w.t, kept).includes('keybot'), 'keybot out of its rooms');
    // While keybot is away, frank and gina leave: their room is gone from the daemon.
    frank!.client.part(emptied);
    gina!.client.part(emptied);
    await waitUntil(() => channelMembers(w.t, emptied).length === 0, 'the emptied room to vanish');

    const [i2, h2] = await Promise.all([ivy!.envelopeFor(kept, k1, 10_000), hank!.envelopeFor(kept, k1, 10_000)]);
    expect(i2.payload.epoch).to.equal(h2.payload.epoch);
    expect(channelMembers(w.t, kept)).to.deep.equal(['hank', 'ivy', 'keybot']);
    // The marker: keybot, back and done recovering, answers frank: he is in no room.
    expect(await frank!.ask('rooms', /rooms/)).to.equal('you are in no rooms; open one with: invite <user>...');
    expect(channelMembers(w.t, emptied)).to.deep.equal([]);
    expect(w.bot.service!.rooms.get(emptied)).to.equal(undefined);
    expect(w.bot.service!.snapshot().map((r) => r.name)).to.deep.equal([kept]);
    expect(frank!.envelopes.filter((e) => e.payload.room === emptied)).to.have.length(1);
  });
});
