/**
 * Fault: keybot is killed with SIGKILL while rooms are in use, under `sealchatd serve` (a child
 * process here, with its own supervised keybot child). serve restarts keybot; every room gets a
 * new epoch; the members keep talking. In the gap, text is never silently lost: while the
 * room's membership is what the current epoch was issued for, that key is still good and the
 * text goes out under it at once; once a member has gone, the key is not sent under any more,
 * and the text is held and goes out under the new epoch (docs/PROTOCOL.md "Faults").
 */
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { SealClient } from '../../src/client/client.js';
import { ControlClient } from '../../src/protocol/control-client.js';
import { keyFor } from '../helpers/daemon.js';
import { next, record } from '../client/helpers.js';
import { companion, roomIn, sameEpoch, spawnServe, until, type ServeProcess } from './helpers.js';

describe('faults: kill -9 of keybot under sealchatd serve', function () {
  this.timeout(90_000);
  let dataDir: string;
  let serve: ServeProcess | undefined;
  let control: ControlClient | undefined;
  const clients: SealClient[] = [];

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-fault-kill-'));
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
    control?.close();
    await serve?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('restarts keybot, rekeys every room, and nothing said in the gap is lost', async () => {
    const t0 = Date.now();
    serve = await spawnServe(dataDir);
    const fingerprint = serve.fingerprint()!;
    const [firstPid] = serve.keybotPids();
    expect(firstPid, 'serve prints the pid of its keybot child').to.be.a('number');
    control = await ControlClient.connect(serve.controlPath);
    const users: Record<string, { password: string; privateKey: string }> = {};
    for (const name of ['alice', 'bob', 'carol']) {
      const k = await keyFor(name);
      const password = `pw-${name}-fault`;
      await control.call('user.add', { name, password, publicKey: k.publicArmored });
      users[name] = { password, privateKey: k.privateArmored };
    }
    const connect = async (name: string): Promise<SealClient> => {
      const c = await companion({ port: serve!.port, nick: name, password: users[name]!.password, privateKeyArmored: users[name]!.privateKey, keybotFingerprint: fingerprint });
      clients.push(c);
      return c;
    };
    const [alice, bob, carol] = await Promise.all([connect('alice'), connect('bob'), connect('carol')]);

    // Two rooms: alice+bob+carol, and alice+bob.
    const big = roomIn(await alice.invite(['bob', 'carol']));
    const small = roomIn(await bob.invite(['alice']));
    const e1 = await until(() => sameEpoch([alice, bob, carol], big, ['alice', 'bob', 'carol']), `one epoch of ${big}`);
    const s1 = await until(() => sameEpoch([alice, bob], small, ['alice', 'bob']), `one epoch of ${small}`);
    let got = next(bob, 'message', (m) => m.room === big);
    await alice.send(big, 'before the crash');
    expect(await got).to.include({ from: 'alice', text: 'before the crash', epoch: e1 });
    const tReady = Date.now();

    // kill -9: the room keys die with keybot; the daemon QUITs it out of both rooms.
    const keybotGone = next(alice, 'quit', (q) => q.nick === 'keybot');
    process.kill(firstPid!, 'SIGKILL');
    await keybotGone;

    // In the gap, membership unchanged: the current key is still the room's key. Sent at once,
    // under epoch e1, and read by the others.
    const bobSaw = record(bob, 'message');
    const carolSaw = record(carol, 'message');
    const sent = await alice.send(big, 'keybot is down, but we are all still here');
    expect(sent).to.deep.equal({ epoch: e1, lines: 1 });
    await until(() => bobSaw.some((m) => m.text === 'keybot is down, but we are all still here') && carolSaw.length > 0, 'the gap message at bob and carol');
    expect(bobSaw.find((m) => m.text.startsWith('keybot is down'))).to.include({ from: 'alice', epoch: e1 });

    // Still in the gap, carol is removed (a QUIT would not do: she would stay a member, offline;
    // docs/PROTOCOL.md "Rooms that outlive a connection"): carol holds e1, so e1 is no longer
    // sent under. alice's next text is held (and she is told so at once), not sent, not lost.
    const carolGone = next(alice, 'part', (p) => p.nick === 'carol' && p.room === big);
    await control.call('room.remove', { room: big, account: 'carol', reason: 'removed while keybot is down' });
    await carolGone;
    const held = next(alice, 'message-held');
    const unsent = record(alice, 'message-unsent');
    const bobGot = next(bob, 'message', (m) => m.text === 'carol has left, keybot is still down', 30_000);
    const pending = alice.send(big, 'carol has left, keybot is still down');
    const h = await held;
    expect(h.room).to.equal(big);
    expect(h.reason).to.match(/being replaced \(carol [^)]*\)\)?: held until the new key arrives/);
    expect(alice.heldMessages(big)).to.equal(1);

    // serve restarts keybot: a new process, a new epoch for each room, for those still there.
    const e2 = await until(() => sameEpoch([alice, bob], big, ['alice', 'bob'], e1), `a new epoch of ${big}`, 40_000);
    const s2 = await until(() => sameEpoch([alice, bob], small, ['alice', 'bob'], s1), `a new epoch of ${small}`, 10_000);
    const pids = serve.keybotPids();
    expect(pids.length).to.be.greaterThanOrEqual(2);
    expect(pids.at(-1)).to.not.equal(firstPid);

    // The held text went out under the new epoch, and only then.
    const done = await pending;
    expect(done.epoch).to.equal(e2);
    expect(done.held?.id).to.equal(h.id);
    expect(await bobGot).to.include({ from: 'alice', epoch: e2 });
    expect(unsent).to.deep.equal([]);
    expect(alice.heldMessages()).to.equal(0);

    // And the talk goes on in both rooms.
    got = next(alice, 'message', (m) => m.room === big);
    await bob.send(big, 'keybot is back');
    expect(await got).to.include({ from: 'bob', text: 'keybot is back', epoch: e2 });
    got = next(bob, 'message', (m) => m.room === small);
    await alice.send(small, 'here too');
    expect(await got).to.include({ from: 'alice', text: 'here too', epoch: s2 });
    // eslint-disable-next-line no-console
    console.log(`      (serve + keybot up in ${tReady - t0} ms; keybot killed and the rooms rekeyed in ${Date.now() - tReady} ms)`);
  });
});
