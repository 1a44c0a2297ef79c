import { expect } from 'chai';
import path from 'node:path';
import { startKeybot } from '../../src/bot/main.js';
import { ControlClient } from '../../src/protocol/control-client.js';
import { CONTROL_SOCKET_NAME } from '../../src/protocol/files.js';
import { channelFlags, channelMembers, loginPerTest, startWorld, waitUntil, type BotWorld } from './helpers.js';
import { ROOM_RE } from '../helpers/poll.js';

function roomOf(line: string): string {
  const m = ROOM_RE.exec(line);
  if (!m) throw new Error(`no room name in "${line}"`);
  return m[0];
}

describe('src/bot keybot (real daemon, real keybot, irc-framework members, real crypto)', function () {
  this.timeout(30_000);
  let w: BotWorld;
  const login = loginPerTest(() => w);

  before(async () => {
    // A generous command budget: these tests fire commands faster than people type.
    w = await startWorld(['alice', 'bob', 'carol', 'dave', 'erin', 'frank'], { bot: { commands: { burst: 100 } } });
  });
  after(async () => w.stop());

  it('registers its own public key with the daemon, so users can fetch and pin it', async () => {
    const rec = await w.t.daemon.accounts.get('keybot');
    expect(rec!.fingerprint).to.equal(w.bot.fingerprint);
  });

  it('refuses to start a second keybot while one is logged in', async () => {
    let err: Error | undefined;
    await startKeybot(w.keybotOptions()).catch((e: Error) => (err = e));
    expect(err?.message).to.match(/another keybot is running/);
  });

  it('invite with an offline and an unknown invitee: opens the room for the online ones, refuses the unknown one, and says the offline one joins at login', async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    const opened = alice.ask('invite bob carol ghost', /^opened /);
    const [offline, unknown] = await Promise.all([
      alice.until(() => alice.notices.find((n) => /carol/.test(n)), 'carol pending'),
      alice.until(() => alice.notices.find((n) => /ghost/.test(n)), 'ghost refusal'),
    ]);
    expect(unknown).to.equal('cannot invite ghost: no such account');
    const line = await opened;
    expect(line).to.match(/^opened #sc-[a-z2-7]{10} with bob; keys follow$/);
    const room = roomOf(line);
    expect(offline).to.equal(`carol is offline: they join ${room} when they next log in`);
    // In the room without typing /join, and the room is invite-only and secret.
    expect(channelMembers(w.t, room)).to.deep.equal(['alice', 'bob', 'keybot']);
    expect(channelFlags(w.t, room)).to.include('i').and.to.include('s');
    const op = w.t.daemon.server.channels.get(room)!;
    expect([...op.members].filter(([, m]) => m.op).map(([c]) => c.nick)).to.deep.equal(['keybot']);
    await bob.envelopeFor(room);
  });

  it('sends every member an envelope that opens with their own key, verifies against keybot, and carries the same epoch and key', async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    const carol = await login('carol');
    const room = roomOf(await alice.ask('invite bob carol', /^opened /));
    const envs = await Promise.all([alice, bob, carol].map((m) => m.envelopeFor(room)));
    const [a, b, c] = envs.map((e) => e.payload);
    // The same payload for all (envelope version 2): each finds itself listed under its own key.
    expect(a!.members).to.deep.equal(b!.members).and.to.deep.equal(c!.members);
    expect(a!.issuedAt).to.equal(b!.issuedAt);
    expect(a!.members.find((m) => m.account === 'alice')!.fingerprint).to.equal(w.users.alice!.fingerprint);
    expect(a!.epoch).to.equal(b!.epoch).and.to.equal(c!.epoch);
    expect(Buffer.from(a!.key).equals(Buffer.from(b!.key))).to.equal(true);
    expect(Buffer.from(a!.key).equals(Buffer.from(c!.key))).to.equal(true);
    expect(a!.key.length).to.equal(32);
    expect(a!.members.map((m) => m.account).sort()).to.deep.equal(['alice', 'bob', 'carol']);
    expect(a!.members.find((m) => m.account === 'bob')!.fingerprint).to.equal(w.users.bob!.fingerprint);
    // Several IRC lines per envelope, each within the line budget, and no envelope failed.
    expect(envs[0]!.parts).to.be.greaterThan(1);
    for (const m of [alice, bob, carol]) expect(m.failures).to.deep.equal([]);
    // The room hears why the key changed.
    const announce = await alice.until(() => alice.channelNotices.find((n) => n.target === room && n.text.startsWith('new key')), 'key event');
    expect(announce.text).to.equal(`new key: epoch ${a!.epoch} for alice, bob, carol (room opened)`);
    // The members' join burst made one epoch, not one per join. The marker: a later change (carol
    // leaves). keybot makes a room's epochs one after another, so another epoch from the burst
    // would come before it, or be merged into it and named in its announcement.
    carol.client.part(room, 'bye');
    const next = (await alice.envelopeFor(room, a!.epoch)).payload;
    expect(next.members.map((m) => m.account).sort()).to.deep.equal(['alice', 'bob']);
    expect(alice.envelopes.filter((e) => e.payload.room === room).map((e) => e.payload.epoch)).to.deep.equal([a!.epoch, next.epoch]);
    const second = await alice.until(() => alice.channelNotices.find((n) => n.target === room && n.text.includes(`epoch ${next.epoch}`)), 'the second key event');
    expect(second.text).to.equal(`new key: epoch ${next.epoch} for alice, bob (carol left)`);
  });

  it("a member's PART brings a new epoch to the remaining members only", async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    const carol = await login('carol');
    const room = roomOf(await alice.ask('invite bob carol', /^opened /));
    const first = (await carol.envelopeFor(room)).payload.epoch;
    await alice.envelopeFor(room);
    await bob.envelopeFor(room);
    const carolParts = carol.partsReceived;
    carol.client.part(room, 'bye');
    const [a2, b2] = await Promise.all([alice.envelopeFor(room, first), bob.envelopeFor(room, first)]);
    expect(a2.payload.epoch).to.be.greaterThan(first);
    expect(a2.payload.epoch).to.equal(b2.payload.epoch);
    expect(Buffer.from(a2.payload.key).equals(Buffer.from(b2.payload.key))).to.equal(true);
    expect(a2.payload.members.map((m) => m.account).sort()).to.deep.equal(['alice', 'bob']);
    // The marker: keybot answers carol after everything it sent her before (bob already has the
    // new epoch, so any envelope of it for carol was sent before this answer).
    await carol.ask('fingerprint', /fingerprint/);
    expect(carol.partsReceived, 'envelope parts carol got after she left').to.equal(carolParts);
    expect(carol.envelopes.filter((e) => e.payload.room === room && e.payload.epoch > first)).to.deep.equal([]);
  });

  it('refuses key <#room> to a non-member and re-sends the current epoch to a member', async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    const dave = await login('dave');
    const room = roomOf(await alice.ask('invite bob', /^opened /));
    const e1 = await bob.envelopeFor(room);
    expect(await dave.ask(`key ${room}`, /./)).to.equal(`you are not in ${room}`);
    expect(dave.envelopes).to.deep.equal([]);
    // Same answer for a room that does not exist: non-members learn nothing.
    expect(await dave.ask('key #sc-doesnotexist', /./)).to.equal('you are not in #sc-doesnotexist');
    const before = bob.envelopes.length;
    expect(await bob.ask(`key ${room}`, /key of/)).to.equal(`sent you the key of ${room} again (epoch ${e1.payload.epoch})`);
    const again = await bob.until(() => bob.envelopes[before], 're-sent envelope');
    expect(again.payload.epoch).to.equal(e1.payload.epoch);
    expect(Buffer.from(again.payload.key).equals(Buffer.from(e1.payload.key))).to.equal(true);
  });

  it('refuses invite <#room> to a non-member, and adds users for a member with a new epoch', async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    const dave = await login('dave');
    const erin = await login('erin');
    const room = roomOf(await alice.ask('invite bob', /^opened /));
    const first = (await alice.envelopeFor(room)).payload.epoch;
    expect(await dave.ask(`invite ${room} erin`, /./)).to.equal(`you are not in ${room}`);
    expect(channelMembers(w.t, room)).to.deep.equal(['alice', 'bob', 'keybot']);
    expect(await bob.ask(`invite ${room} erin alice`, /^added /)).to.equal(`added erin to ${room}`);
    expect(bob.notices).to.include(`cannot invite alice: already in ${room}`);
    const e = await erin.envelopeFor(room);
    expect(e.payload.epoch).to.be.greaterThan(first);
    expect(e.payload.members.map((m) => m.account).sort()).to.deep.equal(['alice', 'bob', 'erin']);
    expect((await alice.envelopeFor(room, first)).payload.epoch).to.equal(e.payload.epoch);
  });

  it('leave <#room> takes the requester out and rekeys for the rest; a QUIT does not: the member stays, offline, and is keyed at login', async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    const carol = await login('carol');
    const dave = await login('dave');
    const room = roomOf(await alice.ask('invite bob carol', /^opened /));
    const e1 = (await alice.envelopeFor(room)).payload.epoch;
    await bob.envelopeFor(room);
    expect(await carol.ask(`leave ${room}`, /./)).to.equal(`you left ${room}`);
    const e2 = (await alice.envelopeFor(room, e1)).payload;
    expect(e2.members.map((m) => m.account).sort()).to.deep.equal(['alice', 'bob']);
    const announce = await alice.until(() => alice.channelNotices.find((n) => n.target === room && n.text.includes(`epoch ${e2.epoch}`)), 'key event');
    expect(announce.text).to.match(/\(carol left\)$/);
    bob.quit();
    await waitUntil(() => w.t.daemon.server.findClient('bob') === undefined, 'bob offline');
    // The marker: alice adds dave. A QUIT epoch would come before his, or be merged into it.
    await alice.ask(`invite ${room} dave`, /^added /);
    const e3 = (await alice.envelopeFor(room, e2.epoch)).payload;
    expect(e3.members.map((m) => m.account).sort()).to.deep.equal(['alice', 'bob', 'dave']);
    const why = await alice.until(() => alice.channelNotices.find((n) => n.target === room && n.text.includes(`epoch ${e3.epoch}`)), 'key event');
    expect(why.text).to.match(/\(dave added by alice\)$/);
    // bob logs in: the daemon puts him back; keybot explains his JOIN by his membership and sends
    // him the current key (no new epoch, nobody removed).
    const back = await login('bob');
    const got = await back.envelopeFor(room, e2.epoch);
    expect(got.payload.epoch).to.equal(e3.epoch);
    expect(Buffer.from(got.payload.key).equals(Buffer.from((await alice.envelopeFor(room, e2.epoch)).payload.key))).to.equal(true);
    await alice.ask('fingerprint', /fingerprint/);
    expect(alice.channelNotices.filter((n) => n.target === room && /bob (joined without|was removed)/.test(n.text))).to.deep.equal([]);
    expect(alice.envelopes.filter((e) => e.payload.room === room && e.payload.epoch > e3.epoch)).to.deep.equal([]);
    expect(channelMembers(w.t, room)).to.deep.equal(['alice', 'bob', 'dave', 'keybot']);
    // The last member leaves: keybot leaves too and the room is gone.
    for (const m of [alice, back, dave]) m.client.part(room);
    await waitUntil(() => channelMembers(w.t, room).length === 0, 'the room to close');
    expect(w.bot.service!.rooms.get(room)).to.equal(undefined);
  });

  it('answers online, status, rooms, fingerprint, help, and hints at help for unknown commands', async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    expect(await alice.ask('online', /^online/)).to.equal('online (2): alice, bob');
    expect(await alice.ask('status bob', /^bob/)).to.match(/^bob is online; key [0-9A-F]{4}( [0-9A-F]{4}){9}$/);
    expect(await alice.ask('status frank', /^frank/)).to.match(/^frank is offline; key /);
    expect(await alice.ask('status ghost', /^ghost/)).to.equal('ghost: no such account');
    expect(await alice.ask('status nobody', /nobody/)).to.equal('nobody: no such account');
    // frank has never been invited anywhere (the others' rooms outlive the earlier tests).
    const frank = await login('frank');
    expect(await frank.ask('rooms', /rooms|#sc-/)).to.equal('you are in no rooms; open one with: invite <user>...');
    const room = roomOf(await frank.ask('invite bob', /^opened /));
    const e = await frank.envelopeFor(room);
    expect(await frank.ask('rooms', /#sc-/)).to.equal(`${room} (epoch ${e.payload.epoch}): bob, frank`);
    const fp = await alice.ask('fingerprint', /fingerprint/);
    expect(fp.replace(/ /g, '')).to.include(w.bot.fingerprint.toUpperCase());
    await alice.ask('help', /^keybot opens/);
    await alice.until(() => alice.notices.some((n) => /^\s+invite \[#room\] <user>\.\.\./.test(n)), 'help lines');
    expect(await alice.ask('frobnicate', /unknown/)).to.equal('unknown command "frobnicate"; send "help" for the list');
    expect(await alice.ask('status', /usage/)).to.equal('usage: status <user>');
  });

  it('says so and opens nothing when no invitee can join', async () => {
    const alice = await login('alice');
    const before = new Set(w.bot.service!.rooms.all().map((r) => r.name));
    expect(await alice.ask('invite ghost keybot', /^no room/)).to.equal('no room opened: none of the users you invited can join now');
    expect(alice.notices).to.include('cannot invite ghost: no such account');
    expect(w.bot.service!.rooms.all().filter((r) => !before.has(r.name))).to.deep.equal([]);
  });

  it('rekeys existing rooms after a restart (a new instance re-enters them and gets op)', async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    const room = roomOf(await alice.ask('invite bob', /^opened /));
    const e1 = (await alice.envelopeFor(room)).payload.epoch;
    await bob.envelopeFor(room);
    await w.restartBot();
    const [a, b] = await Promise.all([alice.envelopeFor(room, e1), bob.envelopeFor(room, e1)]);
    expect(a.payload.epoch).to.equal(b.payload.epoch).and.to.be.greaterThan(e1);
    expect(Buffer.from(a.payload.key).equals(Buffer.from(b.payload.key))).to.equal(true);
    expect(channelMembers(w.t, room)).to.deep.equal(['alice', 'bob', 'keybot']);
    const ch = w.t.daemon.server.channels.get(room)!;
    expect([...ch.members].find(([c]) => c.nick === 'keybot')![1].op).to.equal(true);
    const announce = await alice.until(() => alice.channelNotices.find((n) => n.target === room && n.text.includes(`epoch ${a.payload.epoch}`)), 'key event');
    expect(announce.text).to.match(/\(keybot restarted\)$/);
  });

  it('after a restart, removes whoever got into a remembered room while keybot was away, and keys only the members', async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    const carol = await login('carol');
    const room = roomOf(await alice.ask('invite bob', /^opened /));
    const e1 = (await alice.envelopeFor(room)).payload.epoch;
    // While keybot is down, the daemon operator puts carol into the room.
    await w.restartBot(undefined, async () => {
      const control = await ControlClient.connect(path.join(w.t.dataDir, CONTROL_SOCKET_NAME));
      try {
        await control.call('channel.join', { channel: room, nick: 'carol' });
      } finally {
        control.close();
      }
      expect(channelMembers(w.t, room)).to.include('carol');
    });
    const [a] = await Promise.all([alice.envelopeFor(room, e1), bob.envelopeFor(room, e1)]);
    expect(a.payload.members.map((m) => m.account).sort()).to.deep.equal(['alice', 'bob']);
    const told = await alice.until(() => alice.channelNotices.find((n) => n.target === room && n.text.startsWith('carol joined without an invite signed by a member')), 'the notice');
    expect(told.text).to.include('removed, they get no key');
    await waitUntil(() => !channelMembers(w.t, room).includes('carol'), 'carol removed');
    expect(carol.envelopes.filter((e) => e.payload.room.toLowerCase() === room.toLowerCase())).to.deep.equal([]);
  });
});
