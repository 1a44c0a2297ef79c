/**
 * Who controls membership cannot add a reader (issue 11; docs/PROTOCOL.md "Room operations").
 * The real daemon, the real keybot, SealClient companions for alice and bob, and raw sessions for
 * the attackers:
 *  - a second session of alice's account that has her password but not her key (what a sniffed
 *    PASS, a phished password or the daemon operator yields) asks keybot to invite mallory;
 *  - the daemon operator puts trudy into the room with the control socket's `channel.join`;
 *  - a signed invite seen on the wire is replayed; a forged signature is sent.
 * Each must leave mallory and trudy without any key of the room, and the members told.
 */
import { expect } from 'chai';
import path from 'node:path';
import type { SealClient } from '../../src/client/client.js';
import { classifyLine, frameParts, FrameStatus, readProposedOp, PartsReassembler, PartStatus, verifyEpochNotice, type RoomOp } from '../../src/crypto/index.js';
import { CONTROL_SOCKET_NAME } from '../../src/protocol/files.js';
import { ControlClient } from '../../src/protocol/control-client.js';
import { casefold } from '../../src/protocol/names.js';
import { channelMembers } from '../bot/helpers.js';
import { record } from '../client/helpers.js';
import { openRoom, sameEpoch, startSecWorld, until, type Insider, type Line, type SecWorld } from './world.js';

describe('security: whoever controls membership cannot add a reader', function () {
  this.timeout(60_000);
  let w: SecWorld;
  let alice: SealClient, bob: SealClient;
  let aliceWarnings: Array<{ text: string }>;
  let bobNotices: Array<{ target: string; text: string }>;
  let room: string;
  let epoch: number;
  let mallory: Insider;
  let trudy: Insider;
  /** A second session of alice's account: her password, not her key. */
  let thief: Insider;
  const bobKeys: Array<{ epoch: number; changes?: string[] }> = [];

  before(async function () {
    w = await startSecWorld(['alice', 'bob', 'mallory', 'trudy'], { bot: { tuning: { proposalTtlMs: 3000 } } });
    mallory = await w.insider('mallory');
    trudy = await w.insider('trudy');
    [alice, bob] = await Promise.all([w.member('alice'), w.member('bob')]);
    aliceWarnings = record(alice, 'warning');
    bobNotices = record(bob, 'bot-notice');
    bob.on('key', (k) => bobKeys.push(k));
    room = await openRoom(alice, ['bob']);
    epoch = await sameEpoch(room, [alice, bob], ['alice', 'bob']);
    thief = await w.insider('alice');
  });
  after(async () => w?.stop());

  /** Every room key `who` ever opened for the room. */
  const keysOf = (who: Insider): number[] => who.keys.filter((k) => casefold(k.room) === casefold(room)).map((k) => k.epoch);
  const isIn = (nick: string): boolean => channelMembers(w.t, room).some((n) => casefold(n) === casefold(nick));

  it("a session with only alice's password asks keybot to invite mallory: alice's companion refuses to sign, keybot does nothing, mallory gets no key", async function () {
    const from = thief.lines.length;
    thief.say('keybot', `invite ${room} mallory`);
    // keybot proposes the operation to alice's account: both of her sessions see the proposal.
    const proposal = await thief.waitFor((l) => l.nick === 'keybot' && classifyLine(l.params[1] ?? '') === 'proposal-part', "keybot's proposal", from);
    // alice's real companion did not ask for it: it refuses and says so.
    await until(() => aliceWarnings.find((x) => x.text.includes('you did not ask for it')), "alice's companion refusing");
    expect(aliceWarnings.at(-1)!.text).to.include('mallory').and.include('someone else is logged in with your password');
    // The thief cannot sign as alice: a made-up signature over keybot's exact proposal is refused.
    const op = proposalOf(thief, from);
    expect(op.targets.map((t) => t.account)).to.deep.equal(['mallory']);
    const forged = frameParts({ data: concat(opJson(thief, from), new Uint8Array([0]), new Uint8Array(64).fill(7)), kind: 'op' });
    expect(forged.status).to.equal(FrameStatus.OK);
    const before = thief.lines.length;
    for (const part of forged.parts) thief.say('keybot', part);
    const refused = await thief.waitFor((l) => l.nick === 'keybot' && (l.params[1] ?? '').startsWith('invite refused:'), "keybot's refusal", before);
    expect(refused.params[1]).to.include('the signature does not verify under your key');
    // The marker: the proposal was used up by the refusal, so it expires with no effect; the
    // room's roster, keybot's room and the channel never had mallory.
    expect(proposal).to.not.equal(undefined);
    expect(isIn('mallory')).to.equal(false);
    expect(w.bot.service!.rooms.get(room)!.hasMember('mallory')).to.equal(false);
    expect(keysOf(mallory)).to.deep.equal([]);
    expect(alice.crypto!.roomInfo(room)?.members.sort()).to.deep.equal(['alice', 'bob']);
  });

  it('an unsigned invite expires with a notice that says why, and changes nothing', async function () {
    const from = thief.lines.length;
    thief.say('keybot', `invite ${room} mallory`);
    const expired = await thief.waitFor((l) => l.nick === 'keybot' && /^invite of mallory not done: your client did not sign it/.test(l.params[1] ?? ''), 'the expiry notice', from, 10_000);
    expect(expired.params[1]).to.include("signature of a member's own key");
    expect(isIn('mallory')).to.equal(false);
    expect(keysOf(mallory)).to.deep.equal([]);
  });

  it('a signed invite seen on the wire cannot be replayed: keybot uses each proposal once', async function () {
    // alice invites trudy the usual way; her companion signs; the thief records the signed lines.
    const seenFrom = thief.lines.length;
    expect(await alice.inviteTo(room, ['trudy'])).to.include(`added trudy to ${room}`);
    const added = await sameEpoch(room, [alice, bob], ['alice', 'bob', 'trudy'], epoch);
    // The signed operation reached the room inside keybot's epoch notice (envelope version 3):
    // the thief takes it out and frames it as `SC1O` parts, as alice's companion sent it to keybot.
    const noticeParts = new PartsReassembler();
    const ops: Uint8Array[] = [];
    for (const l of thief.lines.slice(seenFrom)) {
      if (l.nick !== 'keybot' || l.command !== 'NOTICE' || casefold(l.params[0]!) !== casefold(room) || classifyLine(l.params[1] ?? '') !== 'envelope-part') continue;
      const r = noticeParts.accept({ sender: 'keybot', line: l.params[1]!, now: Date.now() });
      if (r.status === PartStatus.COMPLETE) ops.push(...(verifyEpochNotice({ data: r.data!, keybotKey: w.keybotPub, now: Date.now() }).notice?.ops ?? []));
    }
    expect(ops.length, 'keybot carried the signed invite to the room').to.equal(1);
    const framed = frameParts({ data: ops[0]!, kind: 'op' });
    const signed = framed.parts.map((text) => ({ params: ['keybot', text] }));
    // bob's companion verified it: the key event names who added whom.
    const keyEvent = await until(() => bobKeys.find((k) => k.epoch === added), "bob's key event");
    expect(keyEvent.changes).to.deep.equal(['trudy added by alice, verified']);
    // trudy leaves; the thief replays alice's signed invite to bring her back.
    trudy.typed(`leave ${room}`);
    epoch = await sameEpoch(room, [alice, bob], ['alice', 'bob'], added);
    const before = thief.lines.length;
    for (const l of signed) thief.say('keybot', l.params[1]!);
    const refused = await thief.waitFor((l) => l.nick === 'keybot' && (l.params[1] ?? '').startsWith('invite refused:'), "keybot's refusal", before);
    expect(refused.params[1]).to.include('not an invite I proposed to you');
    expect(isIn('trudy')).to.equal(false);
  });

  it("the daemon operator's server-side join puts trudy in the room: keybot removes her, she gets no key, the members are told and get a new one without her", async function () {
    const trudyKeysBefore = keysOf(trudy);
    const control = await ControlClient.connect(path.join(w.t.dataDir, CONTROL_SOCKET_NAME));
    try {
      await control.call('channel.join', { channel: room, nick: 'trudy' });
    } finally {
      control.close();
    }
    // keybot names the intruder to the room, removes her, and rekeys for the members (the marker).
    const told = await until(() => bobNotices.find((n) => n.text.startsWith('trudy joined without an invite signed by a member')), "the room's notice");
    expect(told.text).to.include('removed, they get no key');
    const next = await sameEpoch(room, [alice, bob], ['alice', 'bob'], epoch);
    expect(isIn('trudy')).to.equal(false);
    expect(keysOf(trudy)).to.deep.equal(trudyKeysBefore);
    expect(keysOf(trudy)).to.not.include(next);
    // What bob says now, trudy cannot read: she holds no key of this epoch (she saw the line while in the room, or not at all).
    await bob.send(room, 'after the intruder');
    expect(trudy.keys.some((k) => k.epoch === next)).to.equal(false);
  });
});

/** The JSON of keybot's latest proposal to the thief (reassembled from its `SC1Q` parts). */
function opJson(who: Insider, from: number): Uint8Array {
  const parts = new PartsReassembler();
  let data: Uint8Array | undefined;
  for (const l of who.lines.slice(from) as Line[]) {
    if (l.nick !== 'keybot' || classifyLine(l.params[1] ?? '') !== 'proposal-part') continue;
    const r = parts.accept({ sender: 'keybot', line: l.params[1]!, now: Date.now() });
    if (r.status === PartStatus.COMPLETE) data = r.data;
  }
  if (!data) throw new Error('no complete proposal');
  return data;
}

function proposalOf(who: Insider, from: number): RoomOp {
  return readProposedOp({ data: opJson(who, from) }).op!;
}

function concat(...xs: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(xs.reduce((n, x) => n + x.length, 0));
  let at = 0;
  for (const x of xs) {
    out.set(x, at);
    at += x.length;
  }
  return out;
}
