/**
 * Attack 3: replayed, reordered and re-attributed room messages. alice, bob and carol use
 * SealClient; eve is a member with a hostile client (she holds the room key and signs with her
 * own key, any sequence number, any text). A second session of bob's account (the tap) sees what
 * the ircd delivers to bob, envelopes included.
 *
 * Replays under the original sender's nick can only come from the daemon or the network (the
 * daemon stamps the sender's nick on every line), so those go into bob's engine directly; what a
 * member can do herself goes over the real daemon.
 *
 * Already proven elsewhere, end to end, and not repeated here: a member forging another
 * member's message (signed with her own key, claiming the other as sender), delivered by the real
 * daemon under her nick (`decrypt-failed`) and under the victim's nick (`bad-signature`):
 * test/e2e/rooms.test.ts "a message forged in bob's name fails verification"; tampered bytes:
 * test/client/engine.test.ts "rejects a tampered message"; the crypto bindings (room, epoch,
 * sender, header): test/crypto/message.test.ts "rejections".
 */
import { expect } from 'chai';
import type { SealClient } from '../../src/client/client.js';
import { RoomCryptoEngine, type IncomingResult } from '../../src/client/index.js';
import { insiderHas, next, openRoom, record, sameEpoch, startSecWorld, until, type Insider, type SecWorld } from './world.js';

describe('security: replayed, reordered and re-attributed room messages', function () {
  this.timeout(30_000);
  let w: SecWorld;
  let eve: Insider, tap: Insider;
  let alice: SealClient, bob: SealClient, carol: SealClient;
  let room: string;
  let epoch: number;
  /** alice's lines m1..m3 as the room carried them. */
  let lines: string[];

  before(async function () {
    w = await startSecWorld(['alice', 'bob', 'carol', 'eve']);
    tap = await w.insider('bob');
    eve = await w.insider('eve');
    [alice, bob, carol] = await Promise.all([w.member('alice'), w.member('bob'), w.member('carol')]);
    room = await openRoom(alice, ['bob', 'eve']);
    epoch = await sameEpoch(room, [alice, bob], ['alice', 'bob', 'eve']);
    await insiderHas(eve, room, epoch);
    await insiderHas(tap, room, epoch);
    const from = eve.lines.length;
    const got = record(bob, 'message');
    for (const text of ['m1: transfer 10', 'm2: transfer 20', 'm3: transfer 30']) await alice.send(room, text);
    await until(() => got.length === 3 || undefined, 'bob to read m1..m3');
    expect(got.map((m) => m.text)).to.deep.equal(['m1: transfer 10', 'm2: transfer 20', 'm3: transfer 30']);
    await eve.sync();
    lines = eve.since(from, (l) => l.nick === 'alice' && l.command === 'PRIVMSG').map((l) => l.params[1]!);
    expect(lines).to.have.length(3);
  });
  after(async () => w?.stop());

  const asAlice = (engine: RoomCryptoEngine, text: string, target = room, now?: number): Promise<IncomingResult> =>
    engine.handleIncoming({ from: 'alice', target, command: 'PRIVMSG', text, ...(now !== undefined ? { now } : {}) });

  it('a replayed message is refused (replay), an older one delivered late is refused (stale)', async function () {
    const live = bob.crypto!;
    const again = await asAlice(live, lines[2]!);
    expect(again).to.include({ kind: 'undecryptable', from: 'alice', code: 'replay', epoch });
    expect((again as { reason: string }).reason).to.equal("a replay of alice's message 3");
    for (const l of [lines[0]!, lines[1]!]) {
      const old = await asAlice(live, l);
      expect(old).to.include({ kind: 'undecryptable', code: 'replay' });
      expect((old as { reason: string }).reason).to.match(/^an old message of alice \(seq [12]\) seen again$/);
    }
  });

  it('reordered delivery: a message that arrives after a later one of the same sender is refused', async function () {
    // A companion of bob's with only the key keybot sent him (from the tap), fed m1, m3, m2.
    const env = tap.envelopes.find((e) => e.payload?.epoch === epoch)!;
    const fresh = new RoomCryptoEngine({ account: 'bob', privateKey: w.users.bob!.party.priv, keybotKey: w.keybotPub });
    for (const l of env.lines) await fresh.handleIncoming({ from: 'keybot', target: 'bob', command: 'NOTICE', text: l });
    const r = [await asAlice(fresh, lines[0]!), await asAlice(fresh, lines[2]!), await asAlice(fresh, lines[1]!)];
    expect(r.map((x) => x.kind)).to.deep.equal(['message', 'message', 'undecryptable']);
    expect(r[2]).to.include({ code: 'replay' });
  });

  it("a member who re-sends another member's line under her own nick fails: the sender is bound", async function () {
    const bobBad = record(bob, 'undecryptable');
    const aliceBad = record(alice, 'undecryptable');
    // Live arrays (record pushes into the array it returns): what each companion shows from now on.
    const bobShown = record(bob, 'message');
    const aliceShown = record(alice, 'message');
    for (const l of lines) eve.say(room, l);
    // The marker: eve's own honest line, sent after the three and carried by the same path (the
    // daemon relays a sender's lines in order), so once both show it every re-sent line was handled.
    eve.say(room, eve.seal(room, 'marker after the re-sent lines')[0]!);
    const marked = (shown: { from: string; text: string }[]) => () => shown.some((m) => m.from === 'eve' && m.text === 'marker after the re-sent lines') || undefined;
    await until(marked(bobShown), 'bob to show the marker');
    await until(marked(aliceShown), 'alice to show the marker');
    for (const r of [...bobBad, ...aliceBad]) expect(r).to.include({ from: 'eve', code: 'decrypt-failed' });
    expect(bobBad).to.have.length(3);
    expect(aliceBad).to.have.length(3);
    for (const shown of [bobShown, aliceShown]) {
      expect(shown.map((m) => [m.from, m.text])).to.deep.equal([['eve', 'marker after the re-sent lines']]);
    }
  });

  it('a member replaying her own message, or reusing a sequence number, over the real daemon is refused', async function () {
    const got = record(bob, 'message');
    const bad = record(bob, 'undecryptable');
    const [vote] = eve.seal(room, 'vote yes', { seq: 5 }) as [string];
    eve.say(room, vote);
    eve.say(room, vote);
    // Same number, new text (a fresh nonce and signature): still refused.
    eve.say(room, eve.seal(room, 'vote no', { seq: 5 })[0]!);
    eve.say(room, eve.seal(room, 'vote no', { seq: 4 })[0]!);
    const fine = next(bob, 'message', (m) => m.text === 'vote maybe');
    eve.say(room, eve.seal(room, 'vote maybe', { seq: 6 })[0]!);
    await fine;
    expect(got.map((m) => [m.from, m.text])).to.deep.equal([
      ['eve', 'vote yes'],
      ['eve', 'vote maybe'],
    ]);
    expect(bad.map((b) => [b.from, b.code])).to.deep.equal([
      ['eve', 'replay'],
      ['eve', 'replay'],
      ['eve', 'replay'],
    ]);
  });

  it('after a rekey the old epoch\'s messages stay replays, and die with the old key', async function () {
    expect(await alice.inviteTo(room, ['carol'])).to.include(`added carol to ${room}`);
    const next2 = await sameEpoch(room, [alice, bob, carol], ['alice', 'bob', 'carol', 'eve'], epoch);
    const live = bob.crypto!;
    // Within the grace period the previous key still opens m3, and the guard still knows it.
    expect(await asAlice(live, lines[2]!)).to.include({ kind: 'undecryptable', code: 'replay', epoch });
    // After it (120 s by default) the old key is gone.
    expect(await asAlice(live, lines[2]!, room, Date.now() + 121_000)).to.include({ kind: 'undecryptable', code: 'epoch-discarded', epoch });
    expect(live.roomInfo(room)).to.include({ epoch: next2 });
    await insiderHas(eve, room, next2);
  });

  it('a message replayed into another room is refused', async function () {
    const other = await openRoom(alice, ['bob']);
    await sameEpoch(other, [alice, bob], ['alice', 'bob']);
    const r = await asAlice(bob.crypto!, lines[0]!, other);
    expect(r.kind).to.be.oneOf(['undecryptable', 'held']);
    if (r.kind === 'held') {
      const swept = bob.crypto!.sweep(Date.now() + 16_000);
      expect(swept.some((s) => s.room === other && s.from === 'alice')).to.equal(true);
    } else {
      expect((r as { code: string }).code).to.be.oneOf(['unknown-epoch', 'decrypt-failed']);
    }
  });
});
