/**
 * keybot's signed `leave` and `remove` against the real daemon (src/bot/operations.ts,
 * src/bot/removals.ts; docs/PROTOCOL.md "Departures"): the members are irc-framework users whose
 * companion half (RoomOperations) signs only what they typed. keybot waits 1.5 s after a change
 * before the next epoch here, so what happens between a removal and the epoch without the removed
 * member can be looked at.
 */
import { expect } from 'chai';
import {
  FrameStatus,
  PartStatus,
  PartsReassembler,
  classifyLine,
  frameParts,
  readProposedOp,
  signRoomOp,
  unlockPrivateKey,
  type RoomOp,
} from '../../src/crypto/index.js';
import { casefold } from '../../src/protocol/names.js';
import { channelMembers, loginPerTest, startWorld, waitUntil, type BotWorld, type TestMember } from './helpers.js';

const roomOf = (reply: string): string => /#sc-[a-z2-7]{10}/.exec(reply)![0];

describe('keybot: signed leave and remove (real daemon)', function () {
  this.timeout(30_000);
  let w: BotWorld;
  before(async () => {
    w = await startWorld(['alice', 'bob', 'carol', 'dave'], { bot: { tuning: { settleMs: 1500, maxSettleMs: 2000, proposalTtlMs: 2000 } } });
  });
  after(async () => w?.stop());
  const login = loginPerTest(() => w);

  /** alice opens a room with `others`; resolves once everyone holds its first epoch. */
  async function roomWith(alice: TestMember, others: TestMember[]): Promise<{ room: string; epoch: number }> {
    const room = roomOf(await alice.ask(`invite ${others.map((o) => o.name).join(' ')}`, /^opened /));
    const epoch = (await alice.envelopeFor(room)).payload.epoch;
    await Promise.all(others.map((o) => o.envelopeFor(room)));
    return { room, epoch };
  }

  /** keybot's proposals to `m` (raw `SC1Q` parts), whatever m's companion half made of them. */
  function proposalsTo(m: TestMember): () => RoomOp[] {
    const parts = new PartsReassembler();
    const ops: RoomOp[] = [];
    m.client.on('notice', (e: { nick?: string; target: string; message: string }) => {
      if (e.nick?.toLowerCase() !== 'keybot' || e.target.startsWith('#') || classifyLine(e.message) !== 'proposal-part') return;
      const r = parts.accept({ sender: 'keybot', line: e.message, now: Date.now() });
      if (r.status === PartStatus.COMPLETE) ops.push(readProposedOp({ data: r.data! }).op!);
    });
    return () => ops;
  }

  it('a member removed by a signed remove cannot carry out a proposal he got while still a member, not even before the epoch without him', async function () {
    const [alice, bob, carol, dave] = await Promise.all(['alice', 'bob', 'carol', 'dave'].map((n) => login(n)));
    const { room, epoch } = await roomWith(alice!, [bob!, carol!, dave!]);
    const proposals = proposalsTo(dave!);
    // dave asks keybot to remove carol without his client knowing (said, not typed): he keeps the proposal.
    dave!.client.say('keybot', `remove ${room} carol`);
    await dave!.until(() => dave!.refusals.find((r) => r.includes(`remove carol from ${room}`)), "keybot's proposal");
    const kept = proposals().at(-1)!;
    expect(kept).to.include({ action: 'remove', room });

    expect(await alice!.ask(`remove ${room} dave`, /^removed /)).to.equal(`removed dave from ${room}; the others get a new key`);
    // keybot's roster no longer has dave, its current epoch still lists him (the next one waits 1.5 s):
    const r = w.bot.service!.rooms.get(room)!;
    expect(r.hasMember('dave')).to.equal(false);
    expect(r.current!.epoch).to.equal(epoch);
    expect(r.current!.members.map((m) => m.account)).to.include('dave');
    // dave signs the proposal he kept, with his own key, and sends it.
    const key = (await unlockPrivateKey({ armored: w.users.dave!.privateKey })).key!;
    const framed = frameParts({ data: signRoomOp({ op: kept, signer: key }), kind: 'op' });
    expect(framed.status).to.equal(FrameStatus.OK);
    const from = dave!.notices.length;
    for (const part of framed.parts) dave!.client.say('keybot', part);
    const refused = await dave!.until(() => dave!.notices.slice(from).find((n) => n.startsWith('remove refused:')), "keybot's refusal");
    expect(refused).to.equal(`remove refused: you are not a keyed member of ${room}`);
    expect(r.current!.epoch, 'still before the next epoch').to.equal(epoch);
    expect(r.hasMember('carol')).to.equal(true);
    // The next epoch: alice, bob and carol; carol's key event names dave's removal by alice.
    const next = (await carol!.envelopeFor(room, epoch)).payload;
    expect(next.members.map((m) => m.account).sort()).to.deep.equal(['alice', 'bob', 'carol']);
    const why = await alice!.until(() => alice!.channelNotices.find((n) => n.target === room && n.text.includes(`epoch ${next.epoch}`)), 'key event');
    expect(why.text).to.match(/\(dave removed by alice\)$/);
  });

  it('a member removed while offline is not put back at her next login and gets no key of the room', async function () {
    const [alice, bob] = await Promise.all(['alice', 'bob'].map((n) => login(n)));
    const carol = await login('carol');
    const { room, epoch } = await roomWith(alice!, [bob!, carol]);
    carol.quit();
    await waitUntil(() => w.t.daemon.server.findClient('carol') === undefined, 'carol offline');
    // Offline is still a member (rooms outlive a connection): alice removes her, signed.
    expect(w.bot.service!.rooms.get(room)!.hasMember('carol')).to.equal(true);
    expect(await alice!.ask(`remove ${room} carol`, /^removed /)).to.equal(`removed carol from ${room}; the others get a new key`);
    const next = (await alice!.envelopeFor(room, epoch)).payload;
    expect(next.members.map((m) => m.account).sort()).to.deep.equal(['alice', 'bob']);
    // carol logs in again: the daemon no longer has a place for her in the room (keybot had it
    // removed there too), so she is not put back, not even as an intruder keybot must remove.
    const back = await login('carol');
    await back.ask('rooms', /./);
    // (keybot's "you were removed from …" may wait for her in her mailbox; nothing else names the room.)
    expect(back.notices.filter((n) => n.includes(room) && !n.startsWith(`you were removed from ${room} by alice`))).to.deep.equal([]);
    expect(channelMembers(w.t, room).map(casefold)).to.not.include('carol');
    await alice!.ask('fingerprint', /fingerprint/); // the marker: keybot answered after anything it did at her login
    expect(alice!.channelNotices.filter((n) => n.target === room && /carol (joined|was removed)/.test(n.text)).map((n) => n.text)).to.deep.equal([]);
    expect(back.envelopes.filter((e) => casefold(e.payload.room) === casefold(room) && e.payload.epoch >= next.epoch)).to.deep.equal([]);
  });

  it('a plain IRC client cannot sign a leave: it expires with a notice that names /part; a PART takes the member out unsigned, and the key event says "left" only', async function () {
    const [alice, bob] = await Promise.all(['alice', 'bob'].map((n) => login(n)));
    const carol = await login('carol');
    const { room, epoch } = await roomWith(alice!, [bob!, carol]);
    // bob's client sends the line but signs nothing (a plain IRC client).
    const from = bob!.notices.length;
    bob!.client.say('keybot', `leave ${room}`);
    const expired = await bob!.until(() => bob!.notices.slice(from).find((n) => n.startsWith(`leave of ${room} not done`)), 'the expiry notice');
    expect(expired).to.include(`/part ${room} takes you out too (the others see it unsigned)`);
    expect(w.bot.service!.rooms.get(room)!.hasMember('bob')).to.equal(true);
    expect(w.bot.service!.rooms.get(room)!.current!.epoch).to.equal(epoch);
    // PART: the daemon ends bob's membership; keybot rekeys without him, no operation is carried.
    bob!.client.part(room, 'bye');
    const next = (await alice!.envelopeFor(room, epoch)).payload;
    expect(next.members.map((m) => m.account).sort()).to.deep.equal(['alice', 'carol']);
    const why = await alice!.until(() => alice!.channelNotices.find((n) => n.target === room && n.text.includes(`epoch ${next.epoch}`)), 'key event');
    expect(why.text).to.match(/\(bob left\)$/);
    expect(channelMembers(w.t, room).map(casefold)).to.not.include('bob');
  });
});
