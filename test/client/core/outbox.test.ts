/**
 * Attacks on when a companion may send (issue 12), with real crypto: the leaver race (an
 * envelope keybot sealed before a PART arriving after it), a key kept past its sending lifetime
 * by a daemon that hides later envelopes, and held text released to an epoch that adds people.
 * Each checks what a reader outside the intended group can decrypt, not only what was decided.
 */
import { expect } from 'chai';
import { CompanionSession, KeyTrust, Outbox, RoomCryptoEngine, type IncomingResult } from '../../../src/client/index.js';
import { generateRoomKey, peekRoomMessage } from '../../../src/crypto/index.js';
import { envelopeLines, memberOf, party, relayedOpLines, type Party } from '../fixtures.js';

const ROOM = '#sc-leaver';

describe('src/client/core/outbox.ts: who may read what is sent', function () {
  this.timeout(30_000);
  let alice: Party, bob: Party, carol: Party, keybot: Party;
  let t0: number;

  before(async () => {
    [alice, bob, carol, keybot] = await Promise.all(['alice', 'bob', 'carol', 'keybot'].map((n) => party(n)));
  });
  beforeEach(() => {
    t0 = Date.now();
  });

  function engineFor(p: Party): RoomCryptoEngine {
    return new RoomCryptoEngine({ account: p.name, privateKey: p.priv, keybotKey: keybot.pub });
  }

  /** Deliver an envelope for `members` to `to`'s engine; resolves with the last result. */
  async function keyUp(engine: RoomCryptoEngine, to: Party, epoch: number, members: Party[], key = generateRoomKey(), issuedAt = t0): Promise<IncomingResult> {
    const lines = await envelopeLines({ to, signer: keybot, room: ROOM, epoch, key, members: members.map((m) => memberOf(m)), issuedAt });
    let last: IncomingResult | undefined;
    for (const text of lines) last = await engine.handleIncoming({ from: 'keybot', target: to.name, command: 'NOTICE', text, now: issuedAt });
    return last!;
  }

  /** What bob (holding `bobEngine`'s keys) makes of lines alice sent. */
  async function bobReads(bobEngine: RoomCryptoEngine, lines: string[]): Promise<string[]> {
    const out: string[] = [];
    for (const text of lines) {
      const r = await bobEngine.handleIncoming({ from: 'alice', target: ROOM, command: 'PRIVMSG', text, now: t0 + 2000 });
      if (r.kind === 'message') out.push(r.text);
    }
    return out;
  }

  it('the leaver race: an epoch that still lists a member seen leaving is for reading only; the leaver cannot read what is sent next', async () => {
    const a = engineFor(alice);
    const b = engineFor(bob);
    const k100 = generateRoomKey();
    const k101 = generateRoomKey();
    await keyUp(a, alice, 100, [alice, bob], k100);
    await keyUp(b, bob, 100, [alice, bob], k100);
    const box = new Outbox(a);
    box.trust.left(ROOM, 'bob');
    // keybot sealed epoch 101 (a rotation) before it saw the PART; it arrives after, still listing bob.
    const r101 = await keyUp(a, alice, 101, [alice, bob], k101, t0 + 1000);
    expect(r101.kind).to.equal('key');
    box.trust.keyInstalled(ROOM);
    await keyUp(b, bob, 101, [alice, bob], k101, t0 + 1000);
    expect(box.trust.suspension(ROOM)).to.match(/still lists bob, who left; it is used for reading only/);
    const held = box.submit({ room: ROOM, text: 'said after bob left', mayHold: true, now: t0 + 1500 });
    expect(held.status).to.equal('held');
    // Epoch 102 without bob: only then does the text go out, under a key bob never got.
    await keyUp(a, alice, 102, [alice], generateRoomKey(), t0 + 2000);
    box.trust.keyInstalled(ROOM);
    const out = box.release(t0 + 2000);
    expect(out.map((x) => x.epoch)).to.deep.equal([102]);
    expect(peekRoomMessage({ payload: out[0]!.lines[0]! }).epoch).to.equal(102);
    expect(await bobReads(b, out[0]!.lines)).to.deep.equal([]);
  });

  it("suspends the key on a JOIN of someone the epoch does not list, not on a member's, keybot's or our own, and keeps the first reason", async () => {
    const a = engineFor(alice);
    await keyUp(a, alice, 100, [alice, bob]);
    const trust = new KeyTrust(a);
    for (const nick of ['bob', 'BOB', 'keybot', 'Alice']) trust.joined(ROOM, nick);
    expect(trust.suspension(ROOM, t0)).to.equal(undefined);
    trust.joined(ROOM, 'carol');
    expect(trust.suspension(ROOM, t0)).to.equal('carol joined');
    trust.left(ROOM, 'bob');
    expect(trust.suspension(ROOM, t0)).to.equal('carol joined');
    // A new key that lists carol lifts it (no one left was seen: nothing to check).
    const b = engineFor(alice);
    await keyUp(b, alice, 100, [alice, bob]);
    const t2 = new KeyTrust(b);
    t2.joined(ROOM, 'carol');
    await keyUp(b, alice, 101, [alice, bob, carol], generateRoomKey(), t0 + 1000);
    t2.keyInstalled(ROOM);
    expect(t2.suspension(ROOM, t0 + 1000)).to.equal(undefined);
  });

  it("suspends the key when a member leaves, not when someone the epoch does not list, keybot or we leave; our own PART clears the room", async () => {
    const a = engineFor(alice);
    await keyUp(a, alice, 100, [alice, bob, carol]);
    const trust = new KeyTrust(a);
    for (const nick of ['dave', 'keybot']) trust.left(ROOM, nick);
    expect(trust.suspension(ROOM, t0)).to.equal(undefined);
    trust.left(ROOM, 'Bob');
    trust.left(ROOM, 'carol');
    expect(trust.suspension(ROOM, t0)).to.equal('Bob left');
    // keybot's next key still lists both: read only, and the reason names them.
    await keyUp(a, alice, 101, [alice, bob, carol], generateRoomKey(), t0 + 1000);
    trust.keyInstalled(ROOM);
    expect(trust.suspension(ROOM, t0 + 1000)).to.equal('the new key still lists bob, carol, who left; it is used for reading only until keybot sends one without them');
    // We leave: nothing of the room is suspended any more (its keys are gone with us).
    trust.left(ROOM, 'ALICE');
    expect(trust.suspension(ROOM, t0 + 1000)).to.equal(undefined);
  });

  it('sends under a key exactly at its sending lifetime, and not a millisecond past', async () => {
    const a = engineFor(alice);
    await keyUp(a, alice, 100, [alice, bob], generateRoomKey(), t0);
    const trust = new KeyTrust(a, { sendLifetimeMs: 60_000 });
    expect(trust.suspension(ROOM, t0 + 60_000)).to.equal(undefined);
    expect(trust.suspension(ROOM, t0 + 60_001)).to.equal('its key (epoch 100) is older than 1 minutes and keybot sent no newer one');
    expect(new KeyTrust(a, { sendLifetimeMs: 60_000, clock: () => t0 + 60_001 }).suspension(ROOM)).to.match(/older than 1 minutes/);
  });

  it('a leaver who comes back (invited again) does not keep the room read-only', async () => {
    const a = engineFor(alice);
    await keyUp(a, alice, 100, [alice, bob]);
    const trust = new KeyTrust(a);
    trust.left(ROOM, 'bob');
    trust.joined(ROOM, 'bob');
    await keyUp(a, alice, 101, [alice, bob], generateRoomKey(), t0 + 1000);
    trust.keyInstalled(ROOM);
    expect(trust.suspension(ROOM)).to.equal(undefined);
  });

  it('a key past its sending lifetime is not sent under (a daemon hiding newer envelopes), and keybot is asked for the current key', async () => {
    const a = engineFor(alice);
    await keyUp(a, alice, 100, [alice, bob], generateRoomKey(), t0);
    const box = new Outbox(a, { sendLifetimeMs: 60_000 });
    const fresh = box.submit({ room: ROOM, text: 'early', mayHold: true, now: t0 + 59_000 });
    expect(fresh.status).to.equal('send');
    const late = box.submit({ room: ROOM, text: 'too late', mayHold: true, now: t0 + 61_000 });
    expect(late.status).to.equal('held');
    expect(late.status === 'held' && late.reason).to.match(/older than 1 minutes and keybot sent no newer one/);

    // The session asks keybot for the room's current key once its key is past the lifetime.
    const s = new CompanionSession({ account: 'alice', server: 'test:1', privateKey: alice.priv, keybotPublicKey: keybot.publicArmored, knownKeybotsFile: false, outbox: { sendLifetimeMs: 60_000 } });
    await s.start(t0);
    for (const text of await envelopeLines({ to: alice, signer: keybot, room: ROOM, epoch: 100, key: generateRoomKey(), members: [memberOf(alice), memberOf(bob)], issuedAt: t0 })) {
      await s.received({ from: 'keybot', target: 'alice', command: 'NOTICE', text, now: t0 });
    }
    const asks = (now: number): string[] => s.sweep(now).flatMap((x) => (x.type === 'send' && x.target === 'keybot' ? [x.text] : []));
    expect(asks(t0 + 30_000)).to.deep.equal([]);
    expect(asks(t0 + 61_000)).to.deep.equal([`key ${ROOM}`]);
    expect(asks(t0 + 62_000), 'at most once a minute').to.deep.equal([]);
  });

  it('held text is NOT SENT when the next epoch adds people who were not there when it was typed', async () => {
    const a = engineFor(alice);
    await keyUp(a, alice, 100, [alice, bob, carol]);
    const box = new Outbox(a);
    box.trust.left(ROOM, 'carol');
    const held = box.submit({ room: ROOM, text: 'for bob only', mayHold: true, now: t0 });
    expect(held.status).to.equal('held');
    // keybot merged carol's departure and dave's invite into one epoch: dave is new.
    const dave = await party('dave');
    for (const text of relayedOpLines({ actor: bob, room: ROOM, roster: [alice, bob, carol], targets: [dave], issuedAt: t0 + 900 })) {
      await a.handleIncoming({ from: 'keybot', target: ROOM, command: 'NOTICE', text, now: t0 + 900 });
    }
    expect(await keyUp(a, alice, 101, [alice, bob, dave], generateRoomKey(), t0 + 1000)).to.deep.include({ kind: 'key', changes: ['dave added by bob, verified'] });
    box.trust.keyInstalled(ROOM);
    expect(box.release(t0 + 1000)).to.deep.equal([]);
    const unsent = box.takeUnsent();
    expect(unsent.map((u) => u.reason)).to.deep.equal([`the new key of ${ROOM} adds dave, who joined after it was typed; nothing was sent`]);
    expect(box.size(ROOM)).to.equal(0);
    // What is typed now, with dave in the room, goes out as usual.
    expect(box.submit({ room: ROOM, text: 'hello dave', mayHold: true, now: t0 + 1100 }).status).to.equal('send');
  });
});
