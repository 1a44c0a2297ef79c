/**
 * Rooms that outlive a connection (docs/PROTOCOL.md), keybot's side, through the real daemon:
 * the roster is by account, a QUIT makes a member offline, envelopes to offline members wait in
 * their mailbox, offline invitees are pending until their login, `cancel`, and a keybot restart.
 */
import { expect } from 'chai';
import { PartStatus, PartsReassembler, readRoomOp, RoomOpStatus, verifyRoomOp, classifyLine } from '../../src/crypto/index.js';
import { ControlClient } from '../../src/protocol/control-client.js';
import { channelMembers, loginPerTest, startWorld, waitUntil, type BotWorld, type TestMember } from './helpers.js';
import { ROOM_RE } from '../helpers/poll.js';

describe('src/bot rooms that outlive a connection (real daemon, real keybot, real crypto)', function () {
  this.timeout(30_000);
  let w: BotWorld;
  const login = loginPerTest(() => w);

  before(async () => {
    w = await startWorld(['alice', 'bob', 'carol', 'dave', 'erin', 'trudy'], { bot: { commands: { burst: 100 } } });
  });
  after(async () => w.stop());

  const roomIn = (line: string): string => ROOM_RE.exec(line)![0];
  const offline = (m: TestMember): Promise<void> => {
    m.quit();
    return waitUntil(() => w.t.daemon.server.findClient(m.name) === undefined, `${m.name} offline`);
  };
  const keyEvent = (m: TestMember, room: string, epoch: number): Promise<string> =>
    m.until(() => m.channelNotices.find((n) => n.target === room && n.text.startsWith(`new key: epoch ${epoch} `))?.text, `key event ${epoch}`);
  /** The signed operations keybot sent with the epochs of `room` (join envelopes, epoch notices), as `m` saw them. */
  function relayedOps(m: TestMember, room: string): Uint8Array[] {
    return m.opsSeen.filter((o) => o.room === room).map((o) => o.data);
  }

  it('a new epoch made while bob is offline is sealed for him and reaches him at login from his mailbox', async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    const dave = await login('dave');
    const room = roomIn(await alice.ask('invite bob', /^opened /));
    const e1 = (await bob.envelopeFor(room)).payload.epoch;
    await offline(bob);
    // Two epochs while bob is away: dave added, then dave leaves.
    await alice.ask(`invite ${room} dave`, /^added /);
    const e2 = (await alice.envelopeFor(room, e1)).payload;
    expect(e2.members.map((m) => m.account).sort()).to.deep.equal(['alice', 'bob', 'dave']);
    dave.client.part(room);
    const e3 = (await alice.envelopeFor(room, e2.epoch)).payload;
    expect(e3.members.map((m) => m.account).sort()).to.deep.equal(['alice', 'bob']);
    const back = await login('bob');
    // e2 is not current any more: only the mailbox can bring it. Both open with bob's own key.
    const got2 = await back.until(() => back.envelopes.find((e) => e.payload.room === room && e.payload.epoch === e2.epoch), 'epoch 2 from the mailbox');
    expect(Buffer.from(got2.payload.key).equals(Buffer.from(e2.key))).to.equal(true);
    const got3 = await back.envelopeFor(room, e2.epoch);
    expect(Buffer.from(got3.payload.key).equals(Buffer.from(e3.key))).to.equal(true);
    expect(back.failures).to.deep.equal([]);
    expect(channelMembers(w.t, room)).to.deep.equal(['alice', 'bob', 'keybot']);
  });

  it('an offline invitee becomes pending: the requester is told, she gets no key before she logs in, then the signed operation is relayed and a new epoch includes her', async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    const room = roomIn(await alice.ask('invite bob', /^opened /));
    const e1 = (await alice.envelopeFor(room)).payload.epoch;
    expect(await alice.ask(`invite ${room} carol`, /carol/)).to.equal(`carol is offline: they join ${room} when they next log in`);
    expect(w.t.daemon.server.channels.get(room)).to.not.equal(undefined);
    // A rekey while she is pending (bob leaves): it is not for her, and nothing for her waits in her mailbox.
    bob.client.part(room);
    const e2 = (await alice.envelopeFor(room, e1)).payload;
    expect(e2.members.map((m) => m.account)).to.deep.equal(['alice']);
    const carol = await login('carol');
    const got = await carol.envelopeFor(room);
    expect(got.payload.epoch).to.be.greaterThan(e2.epoch);
    expect(got.payload.members.map((m) => m.account).sort()).to.deep.equal(['alice', 'carol']);
    expect(carol.envelopes.filter((e) => e.payload.room === room && e.payload.epoch <= e2.epoch)).to.deep.equal([]);
    expect(await keyEvent(alice, room, got.payload.epoch)).to.match(/\(carol added by alice\)$/);
    await alice.envelopeFor(room, e2.epoch); // the plain key event can overtake the decryption of what carried the ops
    // The operation alice signed was relayed to the room before that epoch: it adds carol, by alice's key.
    // (The other one is the `create` of the room with bob.)
    const ops = relayedOps(alice, room).filter((d) => readRoomOp({ data: d }).op?.action === 'add');
    expect(ops).to.have.length(1);
    const read = readRoomOp({ data: ops[0]! });
    expect(read.status).to.equal(RoomOpStatus.OK);
    expect(read.op!.targets.map((t) => [t.account, t.fingerprint])).to.deep.equal([['carol', w.users.carol!.fingerprint]]);
    expect(read.op!.actor.account).to.equal('alice');
    const aliceEntry = got.payload.members.find((m) => m.account === 'alice')!;
    expect(verifyRoomOp({ data: ops[0]!, signingKey: aliceEntry.signingKey, fingerprint: aliceEntry.fingerprint, now: read.op!.issuedAt }).status).to.equal(RoomOpStatus.OK);
  });

  it('a new room whose invitees are all offline opens with the requester alone; each invitee is keyed at login under the create operation', async () => {
    const alice = await login('alice');
    const line = await alice.ask('invite dave', /^opened /);
    expect(line).to.match(/^opened #sc-[a-z2-7]{10}; keys follow$/);
    const room = roomIn(line);
    expect(alice.notices).to.include(`dave is offline: they join ${room} when they next log in`);
    const e1 = (await alice.envelopeFor(room)).payload;
    expect(e1.members.map((m) => m.account)).to.deep.equal(['alice']);
    const dave = await login('dave');
    const got = await dave.envelopeFor(room);
    expect(got.payload.members.map((m) => m.account).sort()).to.deep.equal(['alice', 'dave']);
    expect(await keyEvent(alice, room, got.payload.epoch)).to.match(/\(dave added by alice\)$/);
    // The key event is plain text and can overtake the decryption of alice's envelope: wait for it.
    await alice.envelopeFor(room, e1.epoch);
    // The create alice signed, with the room's first epoch and again with dave's (a join envelope for everyone: the create is older than the roster).
    const ops = relayedOps(alice, room).map((d) => readRoomOp({ data: d }).op!);
    expect(ops.map((o) => o.action)).to.deep.equal(['create', 'create']);
    expect(ops[1]!.targets.map((t) => t.account)).to.deep.equal(['dave']);
  });

  it('cancel drops a pending invite: she is not placed at login and gets no key', async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    const room = roomIn(await alice.ask('invite bob', /^opened /));
    await alice.envelopeFor(room);
    await alice.ask(`invite ${room} erin`, /erin is offline/);
    expect(await bob.ask(`cancel ${room} dave`, /dave/)).to.equal(`dave has no pending invite to ${room}`);
    const accountsOf = async (): Promise<string[]> => {
      const control = await ControlClient.connect(w.t.daemon.controlPath);
      try {
        return ((await control.call('channel.get', { channel: room }))?.accounts ?? []).map((a) => `${a.account}:${a.state}`).sort();
      } finally {
        control.close();
      }
    };
    expect(await accountsOf()).to.include('erin:pending');
    expect(await bob.ask(`cancel ${room} erin`, /erin/)).to.equal(`cancelled the invite of erin to ${room}`);
    // The daemon dropped her too: nobody will place her.
    expect(await accountsOf()).to.not.include('erin:pending');
    await alice.until(() => alice.channelNotices.find((n) => n.target === room && n.text.startsWith('the invite of erin (by alice) was cancelled by bob')), 'the notice');
    const erin = await login('erin');
    // The marker: keybot answers erin after anything it might have sent her.
    await erin.ask('fingerprint', /fingerprint/);
    expect(channelMembers(w.t, room)).to.not.include('erin');
    expect(erin.envelopes.filter((e) => e.payload.room === room)).to.deep.equal([]);
    expect(await erin.ask(`cancel ${room} bob`, /./)).to.equal(`you are not in ${room}`);
  });

  it("a non-member the operator joins to the room (control channel.join) is still an intruder: removed, never keyed", async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    const trudy = await login('trudy');
    const room = roomIn(await alice.ask('invite bob', /^opened /));
    const e1 = (await alice.envelopeFor(room)).payload.epoch;
    const control = await ControlClient.connect(w.t.daemon.controlPath);
    try {
      await control.call('channel.join', { channel: room, nick: 'trudy' });
    } finally {
      control.close();
    }
    await alice.until(() => alice.channelNotices.find((n) => n.target === room && n.text.startsWith('trudy joined without an invite signed by a member')), 'the notice');
    await waitUntil(() => !channelMembers(w.t, room).includes('trudy'), 'trudy removed');
    const e2 = (await alice.envelopeFor(room, e1)).payload;
    expect(e2.members.map((m) => m.account).sort()).to.deep.equal(['alice', 'bob']);
    await trudy.ask('fingerprint', /fingerprint/);
    expect(trudy.envelopes.filter((e) => e.payload.room === room)).to.deep.equal([]);
  });

  it('a room the operator puts keybot into (one keybot neither opened nor recovered) is left, and nobody in it is keyed', async () => {
    const trudy = await login('trudy');
    const rogue = '#sc-rogueroom1';
    const control = await ControlClient.connect(w.t.daemon.controlPath);
    try {
      await control.call('channel.join', { channel: rogue, nick: 'trudy' });
      await control.call('channel.join', { channel: rogue, nick: 'keybot' });
    } finally {
      control.close();
    }
    await waitUntil(() => !channelMembers(w.t, rogue).includes('keybot'), 'keybot out of the room');
    expect(w.bot.service!.rooms.get(rogue)).to.equal(undefined);
    // The marker: keybot answers trudy after anything it might have sent her.
    await trudy.ask('fingerprint', /fingerprint/);
    expect(trudy.envelopes.filter((e) => e.payload.room === rogue)).to.deep.equal([]);
  });

  it('a keybot restart keeps a room with an offline member and a pending invite: both come back, the invitee is keyed at her login', async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    const room = roomIn(await alice.ask('invite bob', /^opened /));
    const e1 = (await alice.envelopeFor(room)).payload.epoch;
    await alice.ask(`invite ${room} dave`, /dave is offline/);
    await offline(bob);
    await w.restartBot();
    const e2 = (await alice.envelopeFor(room, e1)).payload;
    expect(e2.members.map((m) => m.account).sort()).to.deep.equal(['alice', 'bob']);
    expect(await keyEvent(alice, room, e2.epoch)).to.match(/\(keybot restarted\)$/);
    const dave = await login('dave');
    const got = await dave.envelopeFor(room);
    expect(got.payload.members.map((m) => m.account).sort()).to.deep.equal(['alice', 'bob', 'dave']);
    expect(await keyEvent(alice, room, got.payload.epoch)).to.match(/\(dave added by alice\)$/);
    const back = await login('bob');
    await back.until(() => back.envelopes.find((e) => e.payload.room === room && e.payload.epoch === got.payload.epoch), 'the current epoch');
  });
});
