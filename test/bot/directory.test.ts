/**
 * ControlSocketDirectory against a real daemon's control socket: the batch placement
 * (`room.add`: offline accounts become pending) next to keybot's own join, removals
 * (`room.remove`) and the rooms with their accounts (`channel.list`).
 */
import { expect } from 'chai';
import path from 'node:path';
import type { Client as IrcClient } from 'irc-framework';
import { ControlSocketDirectory, DirectoryError } from '../../src/bot/directory.js';
import { CONTROL_SOCKET_NAME } from '../../src/protocol/files.js';
import { ControlCallError, ControlClient } from '../../src/protocol/control-client.js';
import { connectClient, quitAll, startTestDaemon, waitFor, type TestDaemon } from '../helpers/daemon.js';

describe('src/bot/directory.ts ControlSocketDirectory (real daemon)', function () {
  this.timeout(20_000);
  let t: TestDaemon;
  let dir: ControlSocketDirectory;
  const clients: IrcClient[] = [];

  before(async () => {
    t = await startTestDaemon();
    for (const n of ['alice', 'bob', 'carol', 'dave']) await t.addUser(n);
    dir = await ControlSocketDirectory.connect(path.join(t.dataDir, CONTROL_SOCKET_NAME));
    for (const n of ['alice', 'bob', 'dave']) {
      clients.push(await connectClient(t.port, { nick: n, password: `pw-${n}-secret` }));
    }
  });
  after(async () => {
    quitAll(...clients);
    dir.close();
    await t.stop();
  });

  const members = (room: string): string[] => {
    const ch = t.daemon.server.channels.get(room);
    return ch ? [...ch.members.keys()].map((c) => c.nick).sort() : [];
  };

  it('places many users in one call: an offline one becomes pending, an unknown one is refused by name, the others join', async () => {
    const joined = waitFor(clients[2]!, 'join', (e: { channel: string; nick: string }) => e.channel === '#sc-batchtest1' && e.nick === 'dave');
    const out = await dir.putManyInRoom('#sc-batchtest1', ['alice', 'carol', 'bob', 'ghost', 'dave']);
    expect(out.map((o) => [o.nick, o.ok, o.ok && o.pending === true])).to.deep.equal([
      ['alice', true, false],
      ['carol', true, true],
      ['bob', true, false],
      ['ghost', false, false],
      ['dave', true, false],
    ]);
    const ghost = out[3]!;
    expect(!ghost.ok && ghost.error).to.be.instanceOf(DirectoryError);
    expect(!ghost.ok && ghost.error.message).to.match(/ghost/);
    expect(members('#sc-batchtest1')).to.deep.equal(['alice', 'bob', 'dave']);
    await joined;
    const listed = (await dir.listRooms()).find((r) => r.name === '#sc-batchtest1')!;
    expect(listed.accounts!.map((a) => `${a.account}:${a.state}`).sort()).to.deep.equal(['alice:joined', 'bob:joined', 'carol:pending', 'dave:joined']);
    // room.remove: the pending one is dropped, a member removed (a KICK); someone without a place is kicked from the channel.
    await dir.removeFromRoom('#sc-batchtest1', 'carol', 'cancelled');
    await dir.removeFromRoom('#sc-batchtest1', 'dave', 'removed');
    const after = (await dir.listRooms()).find((r) => r.name === '#sc-batchtest1')!;
    expect(after.accounts!.map((a) => `${a.account}:${a.state}`).sort()).to.deep.equal(['alice:joined', 'bob:joined']);
    expect(members('#sc-batchtest1')).to.deep.equal(['alice', 'bob']);
  });

  it('placing someone already in the room is no error, and the single form still works', async () => {
    await dir.putInRoom('#sc-batchtest2', 'alice');
    const out = await dir.putManyInRoom('#sc-batchtest2', ['alice', 'bob']);
    expect(out).to.deep.equal([{ nick: 'alice', ok: true }, { nick: 'bob', ok: true }]);
    expect(members('#sc-batchtest2')).to.deep.equal(['alice', 'bob']);
    let err: unknown;
    await dir.putInRoom('#sc-batchtest2', 'carol').catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(DirectoryError).and.to.include({ code: 'offline' });
    expect(dir.persistentRooms).to.equal(true);
  });

  it('refuses the whole call for a bad channel name; the daemon refuses a malformed nick list', async () => {
    let err: unknown;
    await dir.putManyInRoom('no-hash', ['alice']).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(DirectoryError).and.to.include({ code: 'refused' });
    const raw = await ControlClient.connect(path.join(t.dataDir, CONTROL_SOCKET_NAME));
    try {
      let bad: unknown;
      await raw.call('channel.joinmany', { channel: '#sc-batchtest3', nicks: 'alice' as unknown as string[] }).catch((e: unknown) => (bad = e));
      expect(bad).to.be.instanceOf(ControlCallError).and.to.include({ code: 'bad_request' });
      bad = undefined;
      await raw.call('channel.joinmany', { channel: '#sc-batchtest3', nicks: ['alice', 7] as unknown as string[] }).catch((e: unknown) => (bad = e));
      expect(bad).to.be.instanceOf(ControlCallError).and.to.include({ code: 'bad_request' });
      expect(members('#sc-batchtest3')).to.deep.equal([]);
    } finally {
      raw.close();
    }
  });
});
