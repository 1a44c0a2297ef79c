/**
 * Attack 4: reading outside one's membership. Members with hostile clients keep every room key
 * they were ever given (the Insider never forgets one) and try each of them, ignoring the epoch a
 * line names, on the room's ciphertext; a second session of alice's account records that
 * ciphertext (what the ircd, or a network without TLS, carries).
 *
 * - eve leaves with `leave #room`; frank disconnects (QUIT: he stays a member, offline, as rooms
 *   outlive a connection) and is then removed while offline (`room.remove`, what deleting his
 *   account does too): neither can read anything said after.
 * - dave is invited into the ongoing room: he cannot read anything said before.
 *
 * The attacker here decrypts with AES-GCM directly (room, sender and header as the AAD; the
 * signature is ignored), so "cannot read" means no key she holds opens the ciphertext at all.
 *
 * Already proven elsewhere, end to end: test/e2e/rooms.test.ts "dave, invited into the ongoing
 * room, reads what is said now but not what was said before" and "bob leaves and cannot decrypt
 * what is said after" (with the companion's own, wiped, state); an operator's KICK starts a new
 * epoch: test/bot/membership.test.ts "rekeys when an operator kicks a member over the control
 * socket" (a ping timeout does not: the member stays, offline).
 */
import { expect } from 'chai';
import type { SealClient } from '../../src/client/client.js';
import { ControlClient } from '../../src/protocol/control-client.js';
import { casefold } from '../../src/protocol/names.js';
import { insiderHas, next, openRoom, readable, sameEpoch, startSecWorld, until, type Insider, type Line, type SecWorld } from './world.js';

const epochOf = (l: Line): number => Buffer.from(l.params[1]!.slice(5), 'base64').readUInt32BE(2);

describe('security: leavers cannot read what follows, joiners cannot read what preceded', function () {
  this.timeout(30_000);
  let w: SecWorld;
  let eve: Insider, frank: Insider, dave: Insider, tap: Insider;
  let alice: SealClient, bob: SealClient;
  let room: string;
  let e1: number;

  before(async function () {
    w = await startSecWorld(['alice', 'bob', 'dave', 'eve', 'frank']);
    [eve, frank, dave, tap] = await Promise.all([w.insider('eve'), w.insider('frank'), w.insider('dave'), w.insider('alice')]);
    [alice, bob] = await Promise.all([w.member('alice'), w.member('bob')]);
    room = await openRoom(alice, ['bob', 'eve', 'frank']);
    e1 = await sameEpoch(room, [alice, bob], ['alice', 'bob', 'eve', 'frank']);
    await Promise.all([insiderHas(eve, room, e1), insiderHas(frank, room, e1)]);
  });
  after(async () => w?.stop());

  /** Send `texts` (alternating alice, bob) and return the room lines the tap saw for them. */
  async function talk(texts: string[]): Promise<Line[]> {
    const from = tap.lines.length;
    for (const [i, text] of texts.entries()) {
      const speaker = i % 2 === 0 ? alice : bob;
      const listener = i % 2 === 0 ? bob : alice;
      const got = next(listener, 'message', (m) => m.text === text);
      await speaker.send(room, text);
      await got;
    }
    await tap.sync();
    return tap.since(from, (l) => l.command === 'PRIVMSG' && casefold(l.params[0]!) === casefold(room) && l.params[1]!.startsWith('SC1M '));
  }

  it('(control) while a member, a key she holds opens what is said', async function () {
    const early = await talk(['before anyone left', 'agreed']);
    expect(early.map(epochOf)).to.deep.equal([e1, e1]);
    expect(readable(eve.keys, early)).to.deep.equal(['before anyone left', 'agreed']);
  });

  it('eve leaves: no key she ever held opens anything said after, nothing more reaches her, and her old key expires', async function () {
    const from = eve.lines.length;
    eve.typed(`leave ${room}`);
    await eve.waitFor((l) => l.command === 'KICK' && casefold(l.params[1] ?? '') === 'eve', 'her removal', from);
    const e2 = await sameEpoch(room, [alice, bob], ['alice', 'bob', 'frank'], e1);
    await insiderHas(frank, room, e2);
    const after = await talk(['eve is gone', 'now we can talk about eve']);
    expect(after.map(epochOf)).to.deep.equal([e2, e2]);

    await eve.sync();
    expect(eve.keys.map((k) => k.epoch)).to.deep.equal([e1]);
    expect(readable(eve.keys, after)).to.deep.equal([]);
    // She is out of the channel: the daemon sent her no room line after the KICK.
    const removed = eve.lines.findIndex((l, i) => i >= from && l.command === 'KICK');
    expect(eve.lines.slice(removed + 1).filter((l) => casefold(l.params[0] ?? '') === casefold(room)).map((l) => l.raw)).to.deep.equal([]);
    // And she cannot come back on her own, nor get the new key.
    eve.send(`JOIN ${room}`);
    await eve.waitFor((l) => l.command === '473', '473', removed);
    const asked = eve.lines.length;
    eve.say('keybot', `key ${room}`);
    await eve.waitFor((l) => l.nick === 'keybot' && l.params[1] === `you are not in ${room}`, 'the refusal', asked);
    await eve.sync();
    expect(eve.keys.map((k) => k.epoch)).to.deep.equal([e1]);

    // Writing with the key she kept: the daemon does not relay it (she is not in the room). A
    // daemon that did would have it accepted only while the members keep the old key (120 s).
    const [late] = eve.seal(room, 'still here', { key: eve.keys[0]! }) as [string];
    const said = eve.lines.length;
    eve.say(room, late);
    await eve.waitFor((l) => l.command === '403', '403', said);
    expect(await alice.crypto!.handleIncoming({ from: 'eve', target: room, command: 'PRIVMSG', text: late })).to.include({ kind: 'message', epoch: e1 });
    expect(await alice.crypto!.handleIncoming({ from: 'eve', target: room, command: 'PRIVMSG', text: late, now: Date.now() + 121_000 })).to.include({
      kind: 'undecryptable',
      code: 'epoch-discarded',
    });
  });

  it('frank disconnects, then is removed while offline: the keys he kept open nothing said after', async function () {
    const held = frank.keys.map((k) => k.epoch);
    expect(held.length).to.equal(2);
    frank.close();
    await until(() => (w.t.daemon.server.findClient('frank') === undefined ? true : undefined), 'frank offline');
    // Offline, he is still a member (rooms outlive a connection); removing him ends that.
    const control = await ControlClient.connect(w.t.daemon.controlPath);
    try {
      await control.call('room.remove', { room, account: 'frank', reason: 'removed while away' });
    } finally {
      control.close();
    }
    const e3 = await sameEpoch(room, [alice, bob], ['alice', 'bob'], Math.max(...held));
    const after = await talk(['frank dropped off', 'good']);
    expect(after.map(epochOf)).to.deep.equal([e3, e3]);
    expect(readable(frank.keys, after)).to.deep.equal([]);
  });

  it('dave, invited later, opens nothing said before his first key, and reads from then on', async function () {
    await tap.sync();
    const history = tap.since(0, (l) => l.command === 'PRIVMSG' && casefold(l.params[0]!) === casefold(room) && l.params[1]!.startsWith('SC1M '));
    expect(history.length).to.equal(6);
    const oldEpoch = alice.crypto!.roomInfo(room)!.epoch!;
    expect(await alice.inviteTo(room, ['dave'])).to.include(`added dave to ${room}`);
    const e4 = await sameEpoch(room, [alice, bob], ['alice', 'bob', 'dave'], oldEpoch);
    await insiderHas(dave, room, e4);
    expect(dave.keys.map((k) => k.epoch)).to.deep.equal([e4]);
    expect(readable(dave.keys, history)).to.deep.equal([]);
    // The old lines are not even sent to him (he was not in the channel); and from now on he reads.
    expect(dave.lines.filter((l) => l.command === 'PRIVMSG' && l.params[1]?.startsWith('SC1M ')).map((l) => l.raw)).to.deep.equal([]);
    const now = await talk(['welcome dave']);
    expect(readable(dave.keys, now)).to.deep.equal(['welcome dave']);
    await until(() => dave.lines.some((l) => l.nick === 'alice' && l.command === 'PRIVMSG') || undefined, 'dave to receive the line');
  });
});
