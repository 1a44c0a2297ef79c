/**
 * Leaving and removing are operations the member signs (issue 11; docs/PROTOCOL.md "Room
 * operations", "Departures"). The real daemon, the real keybot, SealClient companions for alice,
 * bob and carol, and raw sessions for the rest:
 *  - a second session of alice's account (her password, not her key) asks keybot to remove bob
 *    and to make alice leave: alice's companion refuses to sign, a made-up signature is refused,
 *    an unsigned proposal expires, bob reads on and alice stays;
 *  - dave, a member with a client of his own (an Insider: he keeps every key he ever got), alters
 *    keybot's proposal before signing it (bob under another key, another room): refused;
 *  - alice removes dave the usual way: keybot KICKs him naming her, the members' companions show
 *    "dave removed by alice, verified", and no key dave ever held opens what is said next;
 *  - alice's signed remove, taken off the wire, is replayed: refused;
 *  - carol leaves the usual way: "carol left, verified".
 */
import { expect } from 'chai';
import type { SealClient } from '../../src/client/client.js';
import {
  FrameStatus,
  PartStatus,
  PartsReassembler,
  classifyLine,
  encodeRoomOp,
  frameParts,
  readProposedOp,
  signRoomOp,
  verifyEpochNotice,
  type RoomOp,
} from '../../src/crypto/index.js';
import { casefold } from '../../src/protocol/names.js';
import { channelMembers } from '../bot/helpers.js';
import { record } from '../client/helpers.js';
import { insiderHas, next, openRoom, readable, sameEpoch, startSecWorld, until, type Insider, type Line, type SecWorld } from './world.js';

describe('security: leaving and removing need the member\'s own signature', function () {
  this.timeout(60_000);
  let w: SecWorld;
  let alice: SealClient, bob: SealClient, carol: SealClient;
  let aliceWarnings: Array<{ text: string }>;
  let room: string;
  /** A second room of alice and dave, for operations moved from one room to the other. */
  let other: string;
  let epoch: number;
  let dave: Insider;
  /** A second session of alice's account: her password, not her key; it also taps what the daemon sends alice. */
  let thief: Insider;
  const bobKeys: Array<{ room: string; epoch: number; changes?: string[] }> = [];

  before(async function () {
    w = await startSecWorld(['alice', 'bob', 'carol', 'dave', 'erin'], { bot: { tuning: { proposalTtlMs: 3000 } } });
    dave = await w.insider('dave');
    [alice, bob, carol] = await Promise.all([w.member('alice'), w.member('bob'), w.member('carol')]);
    aliceWarnings = record(alice, 'warning');
    bob.on('key', (k) => bobKeys.push(k));
    other = await openRoom(alice, ['dave']);
    room = await openRoom(alice, ['bob', 'carol', 'dave']);
    epoch = await sameEpoch(room, [alice, bob, carol], ['alice', 'bob', 'carol', 'dave']);
    await insiderHas(dave, room, epoch);
    thief = await w.insider('alice');
  });
  after(async () => w?.stop());

  const isIn = (nick: string, r = room): boolean => channelMembers(w.t, r).some((n) => casefold(n) === casefold(nick));
  const keybotRoom = (r = room) => w.bot.service!.rooms.get(r)!;
  const keybotSaid = (who: Insider, re: RegExp, from: number, what: string): Promise<Line> =>
    who.waitFor((l) => l.nick === 'keybot' && l.command === 'NOTICE' && !(l.params[0] ?? '').startsWith('#') && re.test(l.params[1] ?? ''), what, from);

  /** alice says `text`; resolves once bob read it, with the epoch it came under. */
  async function aliceToBob(text: string): Promise<number> {
    const got = next(bob, 'message', (m) => m.text === text);
    await alice.send(room, text);
    return (await got).epoch;
  }

  it("a session with only alice's password asks keybot to remove bob: alice's companion refuses to sign, a made-up signature is refused, bob reads on", async function () {
    const from = thief.lines.length;
    thief.say('keybot', `remove ${room} bob`);
    await until(() => aliceWarnings.find((x) => x.text.includes(`(remove bob from ${room})`)), "alice's companion refusing");
    expect(aliceWarnings.at(-1)!.text).to.include('you did not ask for it').and.include('someone else is logged in with your password');
    const op = proposalOf(thief, from);
    expect(op).to.include({ action: 'remove', room });
    expect(op.actor.account).to.equal('alice');
    expect(op.targets.map((t) => t.account)).to.deep.equal(['bob']);
    // The thief answers keybot's exact proposal with a signature it made up: keybot refuses (the marker).
    const forged = frameParts({ data: concat(encodeRoomOp(op), new Uint8Array([0]), new Uint8Array(64).fill(7)), kind: 'op' });
    expect(forged.status).to.equal(FrameStatus.OK);
    const before = thief.lines.length;
    for (const part of forged.parts) thief.say('keybot', part);
    const refused = await keybotSaid(thief, /^remove refused:/, before, "keybot's refusal");
    expect(refused.params[1]).to.equal('remove refused: the signature does not verify under your key (bad_signature)');
    expect(isIn('bob')).to.equal(true);
    expect(keybotRoom().hasMember('bob')).to.equal(true);
    expect(alice.crypto!.roomInfo(room)?.members.sort()).to.deep.equal(['alice', 'bob', 'carol', 'dave']);
    expect(await aliceToBob('bob is still here')).to.equal(epoch);
  });

  it("the same session's leave: alice's companion refuses, the proposal expires with a notice that the leave needs her client's signature, and alice stays", async function () {
    const from = thief.lines.length;
    thief.say('keybot', `leave ${room}`);
    await until(() => aliceWarnings.find((x) => x.text.includes(`(leave ${room})`)), "alice's companion refusing");
    expect(aliceWarnings.at(-1)!.text).to.include(`If you did not send "leave ${room}", someone else is logged in with your password`);
    const expired = await keybotSaid(thief, /^leave of /, from, 'the expiry notice');
    expect(expired.params[1]).to.equal(
      `leave of ${room} not done: your client did not sign it within 3 s. Rooms change only with the signature of a member's own key; ` +
        `use a sealchat companion (sealchat chat, sealchat proxy, or the WeeChat/irssi plugin with sealchat agent). Without one, /part ${room} takes you out too (the others see it unsigned)`,
    );
    expect(isIn('alice')).to.equal(true);
    expect(keybotRoom().hasMember('alice')).to.equal(true);
    expect(await aliceToBob('alice is still here')).to.equal(epoch);
  });

  it("dave alters keybot's proposal before signing it with his own key (bob under another key, another room): refused, nothing changes", async function () {
    const from = dave.lines.length;
    // Said, not typed: dave's own client signs nothing for it; he signs the altered copies himself.
    dave.say('keybot', `remove ${room} bob`);
    await until(() => dave.refusedProposals.find((r) => r.includes(`remove bob from ${room}`)), "keybot's proposal to dave");
    const op = proposalOf(dave, from);
    const altered: Array<[string, RoomOp]> = [
      ['bob under erin\'s key', { ...op, targets: [{ account: 'bob', fingerprint: w.users.erin!.party.fingerprint }] }],
      ['the other room', { ...op, room: other }],
      ['carol instead of bob', { ...op, targets: [{ account: 'carol', fingerprint: w.users.carol!.party.fingerprint }] }],
    ];
    for (const [what, o] of altered) {
      const before = dave.lines.length;
      for (const part of opParts(signRoomOp({ op: o, signer: w.users.dave!.party.priv }))) dave.say('keybot', part);
      const refused = await keybotSaid(dave, /^remove refused:/, before, `the refusal of ${what}`);
      expect(refused.params[1], what).to.equal('remove refused: it is not a remove I proposed to you, or it was changed, expired or used already; remove again');
    }
    // The marker: keybot's own proposal, never signed, expires.
    await keybotSaid(dave, /^removal of bob from /, from, 'the expiry notice');
    expect(isIn('bob')).to.equal(true);
    expect(isIn('bob', other)).to.equal(false);
    expect(keybotRoom().hasMember('bob') && keybotRoom().hasMember('carol')).to.equal(true);
    expect(keybotRoom().current!.epoch).to.equal(epoch);
  });

  it('alice removes dave the usual way: keybot kicks him naming her, the companions show "dave removed by alice, verified", and no key dave holds opens what is said next', async function () {
    const daveFrom = dave.lines.length;
    const tapFrom = thief.lines.length;
    expect(await alice.command(`remove ${room} dave`)).to.deep.equal([`removed dave from ${room}; the others get a new key`]);
    const kick = await dave.waitFor((l) => l.command === 'KICK' && casefold(l.params[1] ?? '') === 'dave', 'his removal', daveFrom);
    expect(kick.params[2]).to.equal("removed by alice (signed with alice's key)");
    await keybotSaid(dave, new RegExp(`^you were removed from ${room} by alice, who signed it with their key`), daveFrom, 'the notice to him');
    const removedAt = await sameEpoch(room, [alice, bob, carol], ['alice', 'bob', 'carol'], epoch);
    // bob's companion verified alice's signature on the operation in keybot's epoch notice.
    const k = await until(() => bobKeys.find((x) => casefold(x.room) === casefold(room) && x.epoch === removedAt), "bob's key event");
    expect(k.changes).to.deep.equal(['dave removed by alice, verified']);
    // What is said now: dave, keeping every key he ever got, opens none of it, and the daemon sends him nothing of it.
    const text = 'said after dave was removed';
    expect(await aliceToBob(text)).to.equal(removedAt);
    await Promise.all([thief.sync(), dave.sync()]);
    const said = thief.since(tapFrom, (l) => l.command === 'PRIVMSG' && casefold(l.params[0]!) === casefold(room) && l.params[1]!.startsWith('SC1M '));
    expect(said.length).to.be.greaterThan(0);
    expect(readable(dave.keys, said)).to.deep.equal([]);
    expect(dave.keys.filter((x) => casefold(x.room) === casefold(room)).map((x) => x.epoch)).to.deep.equal([epoch]);
    expect(dave.since(dave.lines.indexOf(kick) + 1, (l) => casefold(l.params[0] ?? '') === casefold(room)).map((l) => l.raw)).to.deep.equal([]);
    epoch = removedAt;
  });

  it("alice's signed remove, taken off the wire, cannot be replayed: keybot used it once", async function () {
    // The thief saw keybot's epoch notice (version 3) carrying alice's signed operation.
    const parts = new PartsReassembler();
    const ops: Uint8Array[] = [];
    for (const l of thief.lines) {
      if (l.nick !== 'keybot' || l.command !== 'NOTICE' || casefold(l.params[0]!) !== casefold(room) || classifyLine(l.params[1] ?? '') !== 'envelope-part') continue;
      const r = parts.accept({ sender: 'keybot', line: l.params[1]!, now: Date.now() });
      if (r.status === PartStatus.COMPLETE) ops.push(...(verifyEpochNotice({ data: r.data!, keybotKey: w.keybotPub, now: Date.now() }).notice?.ops ?? []));
    }
    const removal = ops.find((o) => readProposedOp({ data: o.subarray(0, o.indexOf(0)) }).op?.action === 'remove');
    expect(removal, "alice's signed remove in the epoch notice").to.not.equal(undefined);
    const before = thief.lines.length;
    for (const part of opParts(removal!)) thief.say('keybot', part);
    const refused = await keybotSaid(thief, /^remove refused:/, before, "keybot's refusal");
    expect(refused.params[1]).to.include('it is not a remove I proposed to you');
    expect(keybotRoom().current!.epoch).to.equal(epoch);
  });

  it('carol leaves the usual way: her companion signs it, the others read "carol left, verified"', async function () {
    expect(await carol.leave(room)).to.deep.equal([`you left ${room}`]);
    const left = await sameEpoch(room, [alice, bob], ['alice', 'bob'], epoch);
    const k = await until(() => bobKeys.find((x) => casefold(x.room) === casefold(room) && x.epoch === left), "bob's key event");
    expect(k.changes).to.deep.equal(['carol left, verified']);
    expect(isIn('carol')).to.equal(false);
    epoch = left;
  });
});

/** The JSON of keybot's latest proposal to `who` (reassembled from its `SC1Q` parts) after line `from`. */
function proposalOf(who: Insider, from: number): RoomOp {
  const parts = new PartsReassembler();
  let data: Uint8Array | undefined;
  for (const l of who.lines.slice(from) as Line[]) {
    if (l.nick !== 'keybot' || classifyLine(l.params[1] ?? '') !== 'proposal-part') continue;
    const r = parts.accept({ sender: 'keybot', line: l.params[1]!, now: Date.now() });
    if (r.status === PartStatus.COMPLETE) data = r.data;
  }
  if (!data) throw new Error('no complete proposal');
  return readProposedOp({ data }).op!;
}

/** A signed operation as the `SC1O` lines a companion sends keybot. */
function opParts(data: Uint8Array): string[] {
  const framed = frameParts({ data, kind: 'op' });
  if (framed.status !== FrameStatus.OK) throw new Error(`cannot frame: ${framed.status}`);
  return framed.parts;
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
