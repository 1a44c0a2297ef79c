/**
 * The rule behind "a message sent in the gap is not silently lost" (docs/PROTOCOL.md "Faults"),
 * on the engine alone: which key may still be sent under, what is held, when it goes out and
 * under which epoch, and what is reported as not sent. Plus the reconnect backoff.
 */
import { expect } from 'chai';
import { RoomCryptoEngine, type IncomingResult } from '../../src/client/index.js';
import { KeyTrust, Outbox } from '../../src/client/index.js';
import { generateRoomKey, peekRoomMessage } from '../../src/crypto/index.js';
import { envelopeLines, memberOf, party, type Party } from '../client/fixtures.js';

const ROOM = '#sc-faults';

describe('faults: src/client/outbox.ts (hold, resend, report)', function () {
  let alice: Party, bob: Party, carol: Party, keybot: Party;
  let t0: number;

  before(async function () {
    this.timeout(30_000);
    [alice, bob, carol, keybot] = await Promise.all(['alice', 'bob', 'carol', 'keybot'].map((n) => party(n)));
  });
  beforeEach(() => {
    t0 = Date.now();
  });

  function engineFor(p: Party): RoomCryptoEngine {
    return new RoomCryptoEngine({ account: p.name, privateKey: p.priv, keybotKey: keybot.pub });
  }

  async function keyUp(engine: RoomCryptoEngine, to: Party, epoch: number, members: Party[], now = t0): Promise<IncomingResult> {
    const lines = await envelopeLines({ to, signer: keybot, room: ROOM, epoch, key: generateRoomKey(), members: members.map((m) => memberOf(m)), issuedAt: now });
    let last: IncomingResult | undefined;
    for (const text of lines) last = await engine.handleIncoming({ from: 'keybot', target: to.name, command: 'NOTICE', text, now });
    return last!;
  }

  const epochOf = (line: string): number | undefined => peekRoomMessage({ payload: line }).epoch;

  it("keybot's departure leaves the key usable: text goes out at once under the current epoch", async function () {
    const engine = engineFor(alice);
    await keyUp(engine, alice, 100, [alice, bob]);
    const box = new Outbox(engine);
    box.trust.left(ROOM, 'keybot');
    box.trust.joined(ROOM, 'keybot');
    const r = box.submit({ room: ROOM, text: 'in the gap', mayHold: true, now: t0 });
    expect(r.status).to.equal('send');
    if (r.status !== 'send') return;
    expect(r.epoch).to.equal(100);
    expect(epochOf(r.lines[0]!)).to.equal(100);
  });

  it('a member of the epoch leaving suspends the key: text is held, then sent in order under the next epoch', async function () {
    const engine = engineFor(alice);
    await keyUp(engine, alice, 100, [alice, bob, carol]);
    const box = new Outbox(engine);
    box.trust.left(ROOM, 'carol');
    expect(box.trust.suspension(ROOM)).to.equal('carol left');
    const first = box.submit({ room: ROOM, text: 'one', mayHold: true, now: t0 });
    const second = box.submit({ room: ROOM, text: 'two', mayHold: true, now: t0 + 10 });
    expect(first).to.include({ status: 'held', room: ROOM });
    expect(second).to.include({ status: 'held' });
    expect((first as { reason: string }).reason).to.match(/being replaced \(carol left\): held until the new key arrives \(at most 30 s\)/);
    // Nothing leaves under the suspended key, however often it is tried.
    expect(box.release(t0 + 20)).to.deep.equal([]);
    expect(box.size(ROOM)).to.equal(2);
    // The new epoch (without carol) arrives: both go out under it, in order.
    await keyUp(engine, alice, 101, [alice, bob], t0 + 500);
    box.trust.keyInstalled(ROOM);
    const out = box.release(t0 + 600);
    expect(out.map((o) => o.id)).to.deep.equal([(first as { id: number }).id, (second as { id: number }).id]);
    for (const o of out) {
      expect(o.epoch).to.equal(101);
      expect(epochOf(o.lines[0]!)).to.equal(101);
    }
    expect(out[0]!.heldMs).to.equal(600);
    expect(box.size()).to.equal(0);
  });

  it('a non-member joining suspends the key too, and a new epoch lifts it; a member leaving does, and rejoining before the epoch does not lift it', async function () {
    const engine = engineFor(alice);
    await keyUp(engine, alice, 100, [alice, bob]);
    const trust = new KeyTrust(engine);
    trust.joined(ROOM, 'bob'); // already listed: nothing changes
    expect(trust.suspension(ROOM)).to.equal(undefined);
    trust.joined(ROOM, 'Mallory');
    expect(trust.suspension(ROOM)).to.equal('Mallory joined');
    trust.keyInstalled(ROOM);
    expect(trust.suspension(ROOM)).to.equal(undefined);
    trust.left(ROOM, 'BOB');
    expect(trust.suspension(ROOM)).to.equal('BOB left');
    trust.joined(ROOM, 'bob');
    expect(trust.suspension(ROOM)).to.equal('BOB left');
    trust.keyInstalled(ROOM);
    trust.left(ROOM, 'alice'); // we left ourselves: the keys go anyway, nothing to suspend
    expect(trust.suspension(ROOM)).to.equal(undefined);
  });

  it('gives up after holdMs and reports every held text of the room, in order, as not sent', async function () {
    const engine = engineFor(alice);
    await keyUp(engine, alice, 100, [alice, bob, carol]);
    const box = new Outbox(engine, { holdMs: 1000 });
    box.trust.left(ROOM, 'carol');
    const a = box.submit({ room: ROOM, text: 'a', mayHold: true, now: t0 });
    const b = box.submit({ room: ROOM, text: 'b', mayHold: true, now: t0 + 900 });
    expect(box.expire(t0 + 999)).to.deep.equal([]);
    const gone = box.expire(t0 + 1000);
    expect(gone.map((g) => g.id)).to.deep.equal([(a as { id: number }).id, (b as { id: number }).id]);
    expect(gone[0]!.reason).to.equal(`no key for ${ROOM} arrived within 1 s; nothing was sent`);
    expect(box.size()).to.equal(0);
  });

  it('without mayHold, or in a room it may not hold for, it refuses at once (fail closed, as before)', async function () {
    const engine = engineFor(alice);
    const box = new Outbox(engine);
    expect(box.submit({ room: ROOM, text: 'x', mayHold: false, now: t0 })).to.include({ status: 'refused', code: 'no-key' });
    expect(box.submit({ room: '#lobby', text: 'x', mayHold: true, now: t0 })).to.include({ status: 'refused', code: 'not-encrypted' });
    await keyUp(engine, alice, 100, [alice, bob]);
    box.trust.left(ROOM, 'bob');
    const r = box.submit({ room: ROOM, text: 'x', mayHold: false, now: t0 });
    expect(r).to.include({ status: 'refused', code: 'no-key' });
    expect((r as { reason: string }).reason).to.match(/being replaced \(bob left\); nothing was sent/);
    // Keys wiped with a lost connection: held when the caller expects the room back.
    engine.forgetRoom(ROOM);
    box.trust.reset();
    const held = box.submit({ room: ROOM, text: 'x', mayHold: true, why: 'the connection was lost', now: t0 });
    expect(held).to.include({ status: 'held' });
    expect((held as { reason: string }).reason).to.match(/^the connection was lost: held/);
    expect(box.drop('you left; nothing was sent', ROOM, t0)).to.have.length(1);
  });

  it('bounds what it holds', async function () {
    const engine = engineFor(alice);
    await keyUp(engine, alice, 100, [alice, bob]);
    const box = new Outbox(engine, { maxPerRoom: 2 });
    box.trust.left(ROOM, 'bob');
    expect(box.submit({ room: ROOM, text: '1', mayHold: true }).status).to.equal('held');
    expect(box.submit({ room: ROOM, text: '2', mayHold: true }).status).to.equal('held');
    const third = box.submit({ room: ROOM, text: '3', mayHold: true });
    expect(third).to.include({ status: 'refused', code: 'no-key' });
    expect((third as { reason: string }).reason).to.match(/too many messages are already waiting/);
  });

});
