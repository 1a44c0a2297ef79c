/**
 * The companion signs a departure only if its user typed it (src/client/core/operations.ts,
 * through the engine; issue 11): `leave <#room>` and `remove <#room> <user>...` typed in any
 * client, then keybot's proposal of exactly that. Real keys and envelopes, no mocks.
 */
import { expect } from 'chai';
import { FrameStatus, RoomOpStatus, encodeRoomOp, frameParts, rosterHash, signRoomOp, verifyRoomOp, type RoomOp } from '../../../src/crypto/index.js';
import { RoomCryptoEngine } from '../../../src/client/core/index.js';
import { envelopeLines, memberOf, party, type Party } from '../fixtures.js';

const ROOM = '#sc-departures';
const OTHER = '#sc-elsewhere';

describe('src/client/core/operations.ts: signing leave and remove', function () {
  let alice: Party, bob: Party, carol: Party, keybot: Party, mallory: Party;
  let t0: number;

  before(async function () {
    this.timeout(30_000);
    [alice, bob, carol, keybot, mallory] = await Promise.all(['alice', 'bob', 'carol', 'keybot', 'mallory'].map((n) => party(n)));
  });
  beforeEach(() => {
    t0 = Date.now();
  });

  /** alice's engine holding epoch 100 of ROOM with `members` (unless `members` is empty: no key at all). */
  async function aliceIn(members: Party[] = [alice, bob, carol]): Promise<RoomCryptoEngine> {
    const a = new RoomCryptoEngine({ account: alice.name, privateKey: alice.priv, keybotKey: keybot.pub });
    if (members.length === 0) return a;
    const lines = await envelopeLines({ to: alice, signer: keybot, room: ROOM, epoch: 100, members: members.map((m) => memberOf(m)), issuedAt: t0 });
    for (const text of lines) await a.handleIncoming({ from: 'keybot', target: alice.name, command: 'NOTICE', text, now: t0 });
    expect(a.roomInfo(ROOM)?.epoch).to.equal(100);
    return a;
  }

  const op = (over: Partial<RoomOp> = {}, roster: Party[] = [alice, bob, carol]): RoomOp => ({
    action: 'remove',
    room: ROOM,
    roster: rosterHash(roster.map((m) => memberOf(m))),
    actor: { account: alice.name, fingerprint: alice.fingerprint },
    targets: [{ account: bob.name, fingerprint: bob.fingerprint }],
    issuedAt: t0,
    nonce: new Uint8Array(16).fill(9),
    ...over,
  });
  const leaveOp = (over: Partial<RoomOp> = {}): RoomOp => op({ action: 'leave', targets: [], ...over });

  /** keybot's proposal of `o` to alice, as `SC1Q` NOTICE lines; the engine's answer to the last one. */
  async function propose(engine: RoomCryptoEngine, o: RoomOp): Promise<{ lines?: string[]; refused?: string }> {
    const framed = frameParts({ data: encodeRoomOp(o), kind: 'proposal' });
    expect(framed.status).to.equal(FrameStatus.OK);
    let last: unknown;
    for (const text of framed.parts) last = await engine.handleIncoming({ from: 'keybot', target: alice.name, command: 'NOTICE', text, now: t0 });
    expect(last).to.have.property('kind', 'proposal');
    return last as { lines?: string[]; refused?: string };
  }

  /** The operation in signed `SC1O` lines, verified under alice's key. */
  function signed(lines: string[]): RoomOp {
    const data = new Uint8Array(Buffer.from(lines.map((l) => l.split(' ')[3]).join(''), 'base64'));
    const v = verifyRoomOp({ data, signingKey: memberOf(alice).signingKey, fingerprint: alice.fingerprint, now: t0 });
    expect(v.status).to.equal(RoomOpStatus.OK);
    return v.op!;
  }

  describe('leave', function () {
    it("signs keybot's leave proposal, unchanged, when the user typed that leave", async function () {
      const a = await aliceIn();
      a.typedToKeybot(`leave ${ROOM.toUpperCase()}`, t0);
      const r = await propose(a, leaveOp());
      expect(r.refused).to.equal(undefined);
      expect(signed(r.lines!)).to.deep.equal(leaveOp());
    });

    it('refuses a leave nobody typed here, and says someone else has the password', async function () {
      const a = await aliceIn();
      const r = await propose(a, leaveOp());
      expect(r.lines).to.equal(undefined);
      expect(r.refused).to.equal(
        `refused to sign keybot's proposal (leave ${ROOM}): you did not ask for it. If you did not send "leave ${ROOM}", ` +
          'someone else is logged in with your password; keybot does nothing without your signature',
      );
    });

    it('a leave typed for another room, an invite or a remove typed for this one, signs no leave', async function () {
      const a = await aliceIn();
      for (const text of [`leave ${OTHER}`, `invite ${ROOM} bob`, `remove ${ROOM} bob`, 'leave', `leave ${ROOM} now`]) a.typedToKeybot(text, t0);
      expect((await propose(a, leaveOp())).refused).to.include('you did not ask for it');
    });

    it('one typed leave signs one proposal: keybot asking twice gets one signature', async function () {
      const a = await aliceIn();
      a.typedToKeybot(`leave ${ROOM}`, t0);
      expect((await propose(a, leaveOp())).lines).to.be.an('array').that.is.not.empty;
      expect((await propose(a, leaveOp({ nonce: new Uint8Array(16).fill(10) }))).refused).to.include('you did not ask for it');
    });

    it('a leave made for another roster than the one held is refused; with no roster held it is signed', async function () {
      const a = await aliceIn();
      a.typedToKeybot(`leave ${ROOM}`, t0);
      expect((await propose(a, leaveOp({ roster: rosterHash([alice, bob].map((m) => memberOf(m))) }))).refused).to.include('it is for another membership');
      const fresh = await aliceIn([]);
      fresh.typedToKeybot(`leave ${ROOM}`, t0);
      expect(signed((await propose(fresh, leaveOp())).lines!)).to.deep.equal(leaveOp());
    });

    it("a leave in the user's name under another key, or in another name, is not the user's", async function () {
      const a = await aliceIn();
      a.typedToKeybot(`leave ${ROOM}`, t0);
      expect((await propose(a, leaveOp({ actor: { account: 'alice', fingerprint: mallory.fingerprint } }))).refused).to.include('it is not in your name and key');
      expect((await propose(a, leaveOp({ actor: { account: 'bob', fingerprint: alice.fingerprint } }))).refused).to.include('it is not in your name and key');
      expect((await propose(a, leaveOp({ issuedAt: t0 - 6 * 60_000 }))).refused).to.include('its time is off');
    });
  });

  describe('remove', function () {
    it("signs keybot's remove proposal, unchanged, when the user typed that remove", async function () {
      const a = await aliceIn();
      a.typedToKeybot(`remove ${ROOM} Bob carol`, t0);
      const both = op({ targets: [{ account: 'bob', fingerprint: bob.fingerprint }, { account: 'carol', fingerprint: carol.fingerprint }] });
      expect(signed((await propose(a, both)).lines!)).to.deep.equal(both);
    });

    it('refuses a remove nobody typed here, naming whom it would remove', async function () {
      const a = await aliceIn();
      const r = await propose(a, op());
      expect(r.lines).to.equal(undefined);
      expect(r.refused).to.equal(
        `refused to sign keybot's proposal (remove bob from ${ROOM}): you did not ask for it. If you did not send that remove, ` +
          'someone else is logged in with your password; keybot does nothing without your signature',
      );
    });

    it('a remove typed for bob signs no remove of carol, none in another room, and a leave or an invite typed signs no remove', async function () {
      const a = await aliceIn();
      a.typedToKeybot(`remove ${ROOM} bob`, t0);
      expect((await propose(a, op({ targets: [{ account: 'carol', fingerprint: carol.fingerprint }] }))).refused).to.include('you did not ask for it');
      expect((await propose(a, op({ room: OTHER }))).refused).to.include('you did not ask for it');
      const b = await aliceIn();
      for (const text of [`leave ${ROOM}`, `invite ${ROOM} bob`, 'remove bob', `remove ${ROOM}`]) b.typedToKeybot(text, t0);
      expect((await propose(b, op())).refused).to.include('you did not ask for it');
    });

    it('a remove naming bob with another fingerprint than the roster holds is refused', async function () {
      const a = await aliceIn();
      a.typedToKeybot(`remove ${ROOM} bob`, t0);
      const r = await propose(a, op({ targets: [{ account: 'bob', fingerprint: mallory.fingerprint }] }));
      expect(r.refused).to.equal(`refused to sign keybot's proposal (remove bob from ${ROOM}): bob is not a member with that key`);
    });

    it('a remove of someone not in the roster held, or for another roster, or for a room whose key is not held, is refused', async function () {
      const a = await aliceIn([alice, bob]);
      a.typedToKeybot(`remove ${ROOM} carol`, t0);
      a.typedToKeybot(`remove ${ROOM} bob`, t0);
      expect((await propose(a, op({ targets: [{ account: 'carol', fingerprint: carol.fingerprint }] }, [alice, bob]))).refused).to.include('carol is not a member with that key');
      expect((await propose(a, op())).refused).to.include('it is for another membership');
      const fresh = await aliceIn([]);
      fresh.typedToKeybot(`remove ${ROOM} bob`, t0);
      expect((await propose(fresh, op())).refused).to.include(`you hold no key for ${ROOM}`);
    });
  });
});

describe('src/client/core/operations.ts: a signed departure that comes with a join envelope', function () {
  let alice: Party, bob: Party, carol: Party, keybot: Party;
  let t0: number;
  before(async function () {
    this.timeout(30_000);
    [alice, bob, carol, keybot] = await Promise.all(['alice', 'bob', 'carol', 'keybot'].map((n) => party(n)));
  });
  beforeEach(() => {
    t0 = Date.now();
  });

  async function keyUp(engine: RoomCryptoEngine, epoch: number, members: Party[]): Promise<unknown> {
    let last: unknown;
    for (const text of await envelopeLines({ to: alice, signer: keybot, room: ROOM, epoch, members: members.map((m) => memberOf(m)), issuedAt: t0 })) {
      last = await engine.handleIncoming({ from: 'keybot', target: alice.name, command: 'NOTICE', text, now: t0 });
    }
    return last;
  }

  /** `actor`'s signed `action` (of `targets`) for the roster `roster`, relayed by keybot to the room. */
  async function relay(engine: RoomCryptoEngine, actor: Party, action: 'leave' | 'remove', roster: Party[], targets: Party[] = []): Promise<void> {
    const data = signRoomOp({
      signer: actor.priv,
      op: {
        action,
        room: ROOM,
        roster: rosterHash(roster.map((m) => memberOf(m))),
        actor: { account: actor.name, fingerprint: actor.fingerprint },
        targets: targets.map((t) => ({ account: t.name, fingerprint: t.fingerprint })),
        issuedAt: t0,
        nonce: crypto.getRandomValues(new Uint8Array(16)),
      },
    });
    const framed = frameParts({ data, kind: 'op' });
    for (const text of framed.parts) await engine.handleIncoming({ from: 'keybot', target: ROOM, command: 'NOTICE', text, now: t0 });
  }

  const engine = (): RoomCryptoEngine => new RoomCryptoEngine({ account: alice.name, privateKey: alice.priv, keybotKey: keybot.pub });

  it('is shown with the epoch that carries it out: "bob removed by carol, verified", "carol left, verified"', async function () {
    const a = engine();
    await keyUp(a, 100, [alice, bob, carol]);
    await relay(a, carol, 'remove', [alice, bob, carol], [bob]);
    expect(await keyUp(a, 101, [alice, carol])).to.deep.include({ kind: 'key', epoch: 101, changes: ['bob removed by carol, verified'] });
    await relay(a, carol, 'leave', [alice, carol]);
    expect(await keyUp(a, 102, [alice])).to.deep.include({ kind: 'key', epoch: 102, changes: ['carol left, verified'] });
  });

  it('is not shown when signed by a non-member, for another roster, or when the epoch still lists who it takes out', async function () {
    const a = engine();
    await keyUp(a, 100, [alice, bob, carol]);
    await relay(a, keybot, 'remove', [alice, bob, carol], [bob]);
    await relay(a, carol, 'remove', [alice, carol], [bob]);
    await relay(a, carol, 'remove', [alice, bob, carol], [alice]);
    const r = (await keyUp(a, 101, [alice, carol])) as { kind: string; changes?: string[] };
    expect(r.kind).to.equal('key');
    expect(r.changes).to.equal(undefined);
  });
});
