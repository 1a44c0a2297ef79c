/**
 * Rooms that outlive a connection, the daemon side (docs/PROTOCOL.md): membership by account,
 * placement at login, leaving, removal — over real sockets, the control socket and the store.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ControlClient } from '../../../src/protocol/control-client.js';
import { keybotPassword, RawClient, startTestDaemon, type TestDaemon, type TestUser } from '../../helpers/daemon.js';
import { HISTORY_CHUNK, openAccountStore, openRoomStore } from '../../../src/ircd/store/index.js';

const ROOM = '#sc-roomroomro';

describe('src/ircd/server/placement.ts: rooms that outlive a connection', function () {
  this.timeout(20000);
  let t: TestDaemon;
  let control: ControlClient;
  const users: Record<string, TestUser> = {};
  const open: RawClient[] = [];
  let roomN = 0;
  let room = ROOM;

  const login = async (name: string): Promise<RawClient> => {
    const c = await RawClient.connect(t.port);
    open.push(c);
    await c.login(name, users[name]!.password);
    return c;
  };
  const accountsOf = async (r = room): Promise<Record<string, string>> => {
    const info = await control.call('channel.get', { channel: r });
    return Object.fromEntries((info?.accounts ?? []).map((a) => [a.account, a.state]));
  };
  /** Lines after index `from` that match `re`, once the server answered a PING sent now. */
  const seenUntilSync = async (c: RawClient, re: RegExp, from = 0): Promise<string[]> => {
    const end = await c.sync();
    return c.lines.slice(from, end).filter((l) => re.test(l));
  };

  before(async () => {
    t = await startTestDaemon();
    for (const n of ['alice', 'bob', 'carol', 'dave']) users[n] = await t.addUser(n);
    control = await ControlClient.connect(t.daemon.controlPath);
  });
  beforeEach(() => {
    room = `${ROOM}${++roomN}`;
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });
  after(async () => {
    control.close();
    await t.stop();
  });

  it('room.add joins an online account now and makes an offline one pending', async () => {
    const alice = await login('alice');
    const out = await control.call('room.add', { room, accounts: ['alice', 'bob', 'nobody'] });
    expect(out).to.deep.equal([
      { account: 'alice', joined: true },
      { account: 'bob', joined: false },
      { account: 'nobody', joined: false, error: { code: 'not_found', message: 'no account named nobody' } },
    ]);
    await alice.waitLine(new RegExp(`^:alice!\\S+ JOIN ${room}$`));
    await alice.waitLine(new RegExp(` 366 alice ${room} `));
    expect(await accountsOf()).to.deep.equal({ alice: 'joined', bob: 'pending' });
    const info = await control.call('channel.get', { channel: room });
    expect(info!.modes).to.match(/i/).and.to.match(/s/);
  });

  it('a member who QUITs stays a member, and is joined again at the next login after the MOTD', async () => {
    const alice = await login('alice');
    await control.call('room.add', { room, accounts: ['alice'] });
    await alice.waitLine(new RegExp(`JOIN ${room}$`));
    alice.send('QUIT :bye');
    await alice.waitClose();
    // The room stays, with nobody present in it.
    const info = await control.call('channel.get', { channel: room });
    expect(info?.members).to.deep.equal([]);
    expect(await accountsOf()).to.deep.equal({ alice: 'offline' });

    const again = await login('alice');
    await again.waitLine(new RegExp(` 366 alice ${room} `));
    const motdEnd = again.lines.findIndex((l) => / (376|422) alice /.test(l));
    const join = again.lines.findIndex((l) => new RegExp(`JOIN ${room}$`).test(l));
    expect(motdEnd).to.be.greaterThan(-1);
    expect(join).to.be.greaterThan(motdEnd);
    expect(await accountsOf()).to.deep.equal({ alice: 'joined' });
  });

  it('a pending account is joined at its first login and becomes a member', async () => {
    const [first] = await control.call('room.add', { room, accounts: ['carol'] });
    expect(first).to.deep.equal({ account: 'carol', joined: false });
    const carol = await login('carol');
    await carol.waitLine(new RegExp(`^:carol!\\S+ JOIN ${room}$`));
    expect(await accountsOf()).to.deep.equal({ carol: 'joined' });
  });

  it('PART ends the membership: the account is not joined again at its next login', async () => {
    const bob = await login('bob');
    await control.call('room.add', { room, accounts: ['bob'] });
    await bob.waitLine(new RegExp(`JOIN ${room}$`));
    bob.send(`PART ${room}`);
    await bob.waitLine(new RegExp(`PART ${room}`));
    expect(await accountsOf()).to.deep.equal({});
    bob.close();
    const again = await login('bob');
    expect(await seenUntilSync(again, new RegExp(`JOIN ${room}`))).to.deep.equal([]);
  });

  it('room.remove of an online member is a server KICK with the reason, to every session', async () => {
    const [a1, a2] = [await login('alice'), await login('alice')];
    const dave = await login('dave');
    await control.call('room.add', { room, accounts: ['dave', 'alice'] });
    await a2.waitLine(new RegExp(`JOIN ${room}$`));
    await dave.waitLine(new RegExp(`^:alice!\\S+ JOIN ${room}$`));
    await control.call('room.remove', { room, account: 'alice', reason: 'removed by bob' });
    for (const c of [a1, a2, dave]) await c.waitLine(new RegExp(`^:sealchat.local KICK ${room} alice :removed by bob$`));
    expect(await accountsOf()).to.deep.equal({ dave: 'joined' });
  });

  it('room.remove of an offline member sends the KICK to the members present, and the member is not joined again', async () => {
    const bob = await login('bob');
    const carol = await login('carol');
    await control.call('room.add', { room, accounts: ['bob', 'carol'] });
    await carol.waitLine(new RegExp(`^:bob!\\S+ JOIN ${room}$|JOIN ${room}$`));
    bob.send('QUIT');
    await bob.waitClose();
    await carol.waitLine(/^:bob!\S+ QUIT/);
    expect(await control.call('room.remove', { room, account: 'bob', reason: 'left the company' })).to.deep.equal({ ok: true });
    await carol.waitLine(new RegExp(`^:sealchat.local KICK ${room} bob :left the company$`));
    expect(await accountsOf()).to.deep.equal({ carol: 'joined' });
    const again = await login('bob');
    expect(await seenUntilSync(again, new RegExp(`JOIN ${room}`))).to.deep.equal([]);
  });

  it('room.remove of a pending account drops it silently', async () => {
    const carol = await login('carol');
    await control.call('room.add', { room, accounts: ['carol', 'dave'] });
    await carol.waitLine(new RegExp(`JOIN ${room}$`));
    const from = carol.lines.length;
    await control.call('room.remove', { room, account: 'dave' });
    expect(await seenUntilSync(carol, /KICK/, from)).to.deep.equal([]);
    expect(await accountsOf()).to.deep.equal({ carol: 'joined' });
    const err = await control.call('room.remove', { room, account: 'dave' }).catch((e: Error & { code?: string }) => e.code);
    expect(err).to.equal('not_found');
  });

  it('deleting an account removes it from every room with "account deleted"', async () => {
    await t.addUser('erin');
    users.erin = { ...users.alice!, name: 'erin', password: 'pw-erin-secret' };
    const erin = await login('erin');
    const carol = await login('carol');
    const room2 = `${room}x`;
    await control.call('room.add', { room, accounts: ['carol', 'erin'] });
    await control.call('room.add', { room: room2, accounts: ['carol', 'erin'] });
    await carol.waitLine(new RegExp(`^:erin!\\S+ JOIN ${room2}$`));
    await control.call('user.del', { name: 'erin' });
    for (const r of [room, room2]) await carol.waitLine(new RegExp(`^:sealchat.local KICK ${r} erin :account deleted$`));
    await erin.waitClose();
    expect(await accountsOf()).to.deep.equal({ carol: 'joined' });
    expect(await accountsOf(room2)).to.deep.equal({ carol: 'joined' });
  });

  it('room.add places an online keybot in the room first, with op, so that it sees every JOIN', async () => {
    const kb = await RawClient.connect(t.port);
    open.push(kb);
    await kb.login('keybot', await keybotPassword(t));
    const alice = await login('alice');
    await control.call('room.add', { room, accounts: ['alice'] });
    await kb.waitLine(new RegExp(`^:alice!\\S+ JOIN ${room}$`));
    await alice.waitLine(new RegExp(` 353 alice @ ${room} :?.*@keybot`));
    expect(await accountsOf()).to.deep.equal({ alice: 'joined' });
    kb.send('QUIT');
    await kb.waitClose(); // one keybot at a time: the next test logs it in again
  });

  it('keybot is placed in every room, with op, at each of its logins', async () => {
    await control.call('room.add', { room, accounts: ['dave'] });
    const kb = await RawClient.connect(t.port);
    open.push(kb);
    await kb.login('keybot', await keybotPassword(t));
    await kb.waitLine(new RegExp(` 353 keybot @ ${room} :?.*@keybot`));
    const info = await control.call('channel.get', { channel: room });
    expect(info!.operators).to.include('keybot');
    // keybot is not one of the room's accounts.
    expect(await accountsOf()).to.deep.equal({ dave: 'pending' });
  });

  it('an ordinary channel still vanishes when its last member leaves, and has no accounts', async () => {
    const alice = await login('alice');
    alice.send('JOIN #plain');
    await alice.waitLine(/ 366 alice #plain /);
    expect((await control.call('channel.get', { channel: '#plain' }))!.accounts).to.equal(undefined);
    alice.send('PART #plain');
    await alice.sync();
    expect(await control.call('channel.get', { channel: '#plain' })).to.equal(null);
  });
});

describe('src/ircd/store/rooms.ts: rooms survive a restart of the daemon (sqlite)', function () {
  this.timeout(30000);

  it('a member who quit is joined again at login after the daemon restarted', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-rooms-'));
    try {
      let t = await startTestDaemon({}, { dataDir });
      const alice = await t.addUser('alice');
      const control = await ControlClient.connect(t.daemon.controlPath);
      const c = await RawClient.connect(t.port);
      await c.login('alice', alice.password);
      await control.call('room.add', { room: ROOM, accounts: ['alice', 'bob'].slice(0, 1) });
      await c.waitLine(new RegExp(`JOIN ${ROOM}$`));
      c.close();
      control.close();
      await t.stop();

      t = await startTestDaemon({}, { dataDir });
      try {
        const again = await RawClient.connect(t.port);
        await again.login('alice', alice.password);
        await again.waitLine(new RegExp(`^:alice!\\S+ JOIN ${ROOM}$`));
        again.close();
      } finally {
        await t.stop();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it("a room's history and an account's mailbox survive a restart, within retention", async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-rooms-'));
    const history = { maxMessages: 100, maxAgeDays: 30, mailboxMax: 10 };
    const limits = { commandBurst: 1000, commandsPerSecond: 1000 };
    try {
      let t = await startTestDaemon({ history, limits }, { dataDir });
      const alice = await t.addUser('alice');
      await t.addUser('bob');
      const control = await ControlClient.connect(t.daemon.controlPath);
      const kb = await RawClient.connect(t.port);
      await kb.login('keybot', await keybotPassword(t));
      const c = await RawClient.connect(t.port);
      c.send('CAP LS 302', 'CAP REQ :echo-message', 'CAP END');
      await c.login('alice', alice.password);
      await control.call('room.add', { room: ROOM, accounts: ['alice', 'bob'] });
      await c.waitLine(new RegExp(` 366 alice ${ROOM} `));
      // More lines than fit: the oldest chunks are dropped from the store too.
      const count = history.maxMessages + 2 * HISTORY_CHUNK + 7;
      // In two bursts with a write in between, so that trimming must rewrite chunks already stored.
      c.send(...Array.from({ length: 90 }, (_, i) => `PRIVMSG ${ROOM} :line${i + 1}`));
      await c.waitLine(new RegExp(`PRIVMSG ${ROOM} :?line90$`));
      await t.daemon.server.rooms.flush();
      c.send(...Array.from({ length: count - 90 }, (_, i) => `PRIVMSG ${ROOM} :line${i + 91}`));
      await c.waitLine(new RegExp(`PRIVMSG ${ROOM} :?line${count}$`));
      kb.send('NOTICE bob :SC1E kept across a restart');
      await kb.sync();
      for (const x of [c, kb]) x.close();
      control.close();
      await t.stop();
      // The store itself holds no more than the bound and what trimming in chunks leaves.
      const store = await openRoomStore(t.config.store);
      const stored = (await store.load()).history.get(ROOM)!;
      await store.close();
      expect(stored.length).to.be.at.least(history.maxMessages).and.at.most(history.maxMessages + HISTORY_CHUNK);
      expect(stored.at(-1)!.params).to.deep.equal([ROOM, `line${count}`]);

      t = await startTestDaemon({ history, limits }, { dataDir });
      try {
        const again = await RawClient.connect(t.port);
        again.send('CAP LS 302', 'CAP REQ :batch draft/chathistory', 'CAP END');
        await again.login('alice', alice.password);
        await again.waitLine(new RegExp(` 366 alice ${ROOM} `));
        const from = again.lines.length;
        again.send(`CHATHISTORY LATEST ${ROOM} * 1000`);
        const start = await again.waitLine(/ BATCH \+\S+ chathistory /, 5000, from);
        const id = /BATCH \+(\S+)/.exec(start)![1]!;
        await again.waitLine(new RegExp(` BATCH -${id}$`), 5000, from);
        const got = again.lines.slice(from).filter((l) => / PRIVMSG /.test(l)).map((l) => l.replace(/^.* :?(line\d+)$/, '$1'));
        expect(got).to.deep.equal(Array.from({ length: history.maxMessages }, (_, i) => `line${count - history.maxMessages + i + 1}`));
        const bob = await RawClient.connect(t.port);
        await bob.login('bob', 'pw-bob-secret');
        await bob.waitLine(/:keybot!\S+ NOTICE bob :SC1E kept across a restart$/);
        again.close();
        bob.close();
      } finally {
        await t.stop();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('an account deleted while the daemon was down loses its rooms and its mailbox at the next start', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-rooms-'));
    try {
      let t = await startTestDaemon({}, { dataDir });
      await t.addUser('alice');
      await t.addUser('bob');
      await t.addUser('carol');
      const control = await ControlClient.connect(t.daemon.controlPath);
      await control.call('room.add', { room: ROOM, accounts: ['alice', 'carol'] });
      const kb = await RawClient.connect(t.port);
      await kb.login('keybot', await keybotPassword(t));
      kb.send('NOTICE bob :SC1E for bob');
      await kb.sync();
      kb.close();
      control.close();
      await t.stop();
      // The admin tool, with no daemon running, deletes bob straight from the store.
      const accounts = await openAccountStore(t.config.store);
      await accounts.delete('bob'); // a mailbox, no room
      await accounts.delete('carol'); // a room, no mailbox
      await accounts.close();

      t = await startTestDaemon({}, { dataDir });
      try {
        const c2 = await ControlClient.connect(t.daemon.controlPath);
        const info = await c2.call('channel.get', { channel: ROOM });
        c2.close();
        expect(info?.accounts).to.deep.equal([{ account: 'alice', state: 'pending' }]);
        expect(t.daemon.server.rooms.mailCount('bob')).to.equal(0);
      } finally {
        await t.stop();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
