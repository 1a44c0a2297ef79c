/**
 * The companion's half of member-signed room operations (src/client/core/operations.ts, through
 * the engine): the limits of what it signs and what it believes, beyond operations.test.ts. Found
 * untested by the mutation run (issue 18). Real keys and envelopes, no mocks.
 */
import { expect } from 'chai';
import {
  EMPTY_ROSTER_HASH,
  FrameStatus,
  RoomOpStatus,
  encodeRoomOp,
  frameParts,
  readRoomOp,
  rosterHash,
  signRoomOp,
  verifyRoomOp,
  type RoomOp,
} from '../../../src/crypto/index.js';
import { RoomCryptoEngine, type IncomingResult } from '../../../src/client/core/index.js';
import { envelopeLines, memberOf, party, relayedOpLines, type Party } from '../fixtures.js';

const ROOM = '#sc-proposals';

describe('src/client/core/operations.ts: what a companion signs and believes', function () {
  let alice: Party, bob: Party, carol: Party, dave: Party, keybot: Party, mallory: Party;
  let t0: number;

  before(async function () {
    this.timeout(30_000);
    [alice, bob, carol, dave, keybot, mallory] = await Promise.all(['alice', 'bob', 'carol', 'dave', 'keybot', 'mallory'].map((n) => party(n)));
  });
  beforeEach(() => {
    t0 = Date.now();
  });

  const engineFor = (p: Party): RoomCryptoEngine => new RoomCryptoEngine({ account: p.name, privateKey: p.priv, keybotKey: keybot.pub });

  async function keyUp(engine: RoomCryptoEngine, to: Party, epoch: number, members: Party[], now = t0): Promise<IncomingResult> {
    const lines = await envelopeLines({ to, signer: keybot, room: ROOM, epoch, members: members.map((m) => memberOf(m)), issuedAt: now });
    let last!: IncomingResult;
    for (const text of lines) last = await engine.handleIncoming({ from: 'keybot', target: to.name, command: 'NOTICE', text, now });
    return last;
  }

  async function relay(engine: RoomCryptoEngine, lines: string[], now = t0): Promise<void> {
    for (const text of lines) expect(await engine.handleIncoming({ from: 'keybot', target: ROOM, command: 'NOTICE', text, now })).to.deep.equal({ kind: 'hidden' });
  }

  /** keybot's proposal `data` as `SC1Q` lines fed to `engine`; the answer to each line. */
  async function proposeLines(engine: RoomCryptoEngine, to: Party, lines: string[], now = t0): Promise<IncomingResult[]> {
    const out: IncomingResult[] = [];
    for (const text of lines) out.push(await engine.handleIncoming({ from: 'keybot', target: to.name, command: 'NOTICE', text, now }));
    return out;
  }

  async function propose(engine: RoomCryptoEngine, to: Party, op: RoomOp, now = t0): Promise<{ kind: string; lines?: string[]; refused?: string }> {
    const framed = frameParts({ data: encodeRoomOp(op), kind: 'proposal' });
    expect(framed.status).to.equal(FrameStatus.OK);
    const out = await proposeLines(engine, to, framed.parts, now);
    return out[out.length - 1] as { kind: string; lines?: string[]; refused?: string };
  }

  const addOp = (over: Partial<RoomOp> = {}, roster: Party[] = [alice, bob], targets: Party[] = [carol]): RoomOp => ({
    action: 'add',
    room: ROOM,
    roster: rosterHash(roster.map((m) => memberOf(m))),
    actor: { account: alice.name, fingerprint: alice.fingerprint },
    targets: targets.map((t) => ({ account: t.name, fingerprint: t.fingerprint })),
    issuedAt: t0,
    nonce: new Uint8Array(16).fill(5),
    ...over,
  });

  /** The operation in signed `SC1O` lines, verified under `who`'s key. */
  function signedOp(lines: string[], who: Party): RoomOp {
    const data = new Uint8Array(Buffer.from(lines.map((l) => l.split(' ')[3]).join(''), 'base64'));
    const v = verifyRoomOp({ data, signingKey: memberOf(who).signingKey, fingerprint: who.fingerprint, now: t0 });
    expect(v.status).to.equal(RoomOpStatus.OK);
    return v.op!;
  }

  async function aliceWithKey(): Promise<RoomCryptoEngine> {
    const a = engineFor(alice);
    await keyUp(a, alice, 100, [alice, bob]);
    return a;
  }

  describe('what counts as a typed invite', function () {
    it('an invite typed with formatting codes and control characters is still the invite, and its signature is the user\'s', async function () {
      const a = await aliceWithKey();
      a.typedToKeybot(`\x02invite\x02 \x0304,01${ROOM}\x03  \x1fcarol\x1f\x07`, t0);
      const r = await propose(a, alice, addOp());
      expect(r.refused).to.equal(undefined);
      expect(signedOp(r.lines!, alice)).to.deep.equal(addOp());
    });

    it('spaces around a typed invite do not matter', async function () {
      const a = await aliceWithKey();
      a.typedToKeybot(`   invite ${ROOM} carol   `, t0);
      expect(signedOp((await propose(a, alice, addOp())).lines!, alice)).to.deep.equal(addOp());
    });

    it('only the people typed are invited: not the words "invite" or the room, and a colour code without a background is no part of a name', async function () {
      const a = await aliceWithKey();
      a.typedToKeybot(`invite ${ROOM} \x0304carol`, t0);
      for (const account of ['invite', ROOM.slice(1)]) {
        const r = await propose(a, alice, addOp({ targets: [{ account, fingerprint: carol.fingerprint }] }));
        expect(r.refused, account).to.include('you did not ask for it');
      }
      expect((await propose(a, alice, addOp())).lines).to.be.an('array');
    });

    it('a proposal made for a roster one byte off the one held is refused', async function () {
      const a = await aliceWithKey();
      a.typedToKeybot(`invite ${ROOM} carol`, t0);
      const roster = rosterHash([alice, bob].map((m) => memberOf(m)));
      roster[31]! ^= 1;
      expect((await propose(a, alice, addOp({ roster }))).refused).to.include('it is for another membership');
    });

    it('a line that is not an invite, or an invite naming nobody, lets nothing be signed', async function () {
      const a = await aliceWithKey();
      for (const text of ['hello carol', `invites ${ROOM} carol`, 'invite', `invite ${ROOM}`, `  `]) a.typedToKeybot(text, t0);
      expect((await propose(a, alice, addOp())).refused).to.include('you did not ask for it');
    });

    it('an invite typed without a room is for a new room only, and one naming a room is not for a new room', async function () {
      const a = await aliceWithKey();
      a.typedToKeybot('invite carol', t0);
      expect((await propose(a, alice, addOp())).refused).to.include('you did not ask for it');
      const b = await aliceWithKey();
      b.typedToKeybot(`invite ${ROOM} carol`, t0);
      const create = addOp({ action: 'create', room: '#sc-brandnew', roster: EMPTY_ROSTER_HASH });
      expect((await propose(b, alice, create)).refused).to.include('you did not ask for it');
    });

    it('a typed invite is good for a minute', async function () {
      const a = await aliceWithKey();
      a.typedToKeybot(`invite ${ROOM} carol`, t0 - 60_000);
      expect((await propose(a, alice, addOp())).refused).to.include('you did not ask for it');
      a.typedToKeybot(`invite ${ROOM} carol`, t0 - 59_000);
      expect((await propose(a, alice, addOp())).lines).to.be.an('array').that.is.not.empty;
    });

    it('the 16 most recent typed invites are remembered, not more', async function () {
      const others = (n: number): void => {
        for (let i = 0; i < n; i++) aliceEngine.typedToKeybot(`invite ${ROOM} user${i}`, t0);
      };
      let aliceEngine = await aliceWithKey();
      aliceEngine.typedToKeybot(`invite ${ROOM} carol`, t0);
      others(15);
      expect((await propose(aliceEngine, alice, addOp())).lines, 'with 15 after it').to.be.an('array');
      aliceEngine = await aliceWithKey();
      aliceEngine.typedToKeybot(`invite ${ROOM} carol`, t0);
      others(16);
      expect((await propose(aliceEngine, alice, addOp())).refused, 'with 16 after it').to.include('you did not ask for it');
    });
  });

  describe('what is refused even when typed', function () {
    it('a removal or a departure is not an invite: a typed invite signs neither', async function () {
      const a = await aliceWithKey();
      for (const op of [addOp({ action: 'remove', targets: [{ account: 'bob', fingerprint: bob.fingerprint }] }), addOp({ action: 'leave', targets: [] })]) {
        a.typedToKeybot(`invite ${ROOM} bob`, t0);
        const r = await propose(a, alice, op);
        expect(r.lines, op.action).to.equal(undefined);
        expect(r.refused, op.action).to.include('you did not ask for it');
      }
    });

    it("the user's account with another key is not the user", async function () {
      const a = await aliceWithKey();
      a.typedToKeybot(`invite ${ROOM} carol`, t0);
      const r = await propose(a, alice, addOp({ actor: { account: 'ALICE', fingerprint: mallory.fingerprint } }));
      expect(r.refused).to.include('it is not in your name and key');
    });

    it("another account under the user's own key is not the user either", async function () {
      const a = await aliceWithKey();
      a.typedToKeybot(`invite ${ROOM} carol`, t0);
      const r = await propose(a, alice, addOp({ actor: { account: 'bob', fingerprint: alice.fingerprint } }));
      expect(r.lines).to.equal(undefined);
      expect(r.refused).to.equal(`refused to sign keybot's proposal (${ROOM} with carol): it is not in your name and key`);
    });

    it('the refusal names what keybot proposed: the room or "a new room", and the people', async function () {
      const a = await aliceWithKey();
      a.typedToKeybot('invite carol dave', t0);
      const create = addOp({ action: 'create', room: '#lobby', roster: EMPTY_ROSTER_HASH, targets: [{ account: 'carol', fingerprint: carol.fingerprint }, { account: 'dave', fingerprint: dave.fingerprint }] });
      expect((await propose(a, alice, create)).refused).to.equal("refused to sign keybot's proposal (a new room with carol, dave): it is not a new room");
    });

    it('signing one typed invite leaves the others typed', async function () {
      const a = await aliceWithKey();
      a.typedToKeybot(`invite ${ROOM} carol`, t0);
      a.typedToKeybot(`invite ${ROOM} dave`, t0);
      expect((await propose(a, alice, addOp())).lines).to.be.an('array');
      const forDave = addOp({ targets: [{ account: 'dave', fingerprint: dave.fingerprint }] });
      expect(signedOp((await propose(a, alice, forDave)).lines!, alice)).to.deep.equal(forDave);
    });

    it('a proposal more than 5 minutes old or more than a minute ahead is refused; the bounds themselves are fine', async function () {
      const a = await aliceWithKey();
      for (const [issuedAt, ok] of [
        [t0 - 300_001, false],
        [t0 + 60_001, false],
        [t0 - 300_000, true],
        [t0 + 60_000, true],
      ] as const) {
        a.typedToKeybot(`invite ${ROOM} carol`, t0);
        const r = await propose(a, alice, addOp({ issuedAt }));
        if (ok) expect(r.lines, String(issuedAt - t0)).to.be.an('array');
        else expect(r.refused, String(issuedAt - t0)).to.include('its time is off');
      }
    });

    it('a new room must be an #sc- room we hold no key for, made for the empty roster', async function () {
      const a = await aliceWithKey();
      const create = (over: Partial<RoomOp>): RoomOp => addOp({ action: 'create', room: '#sc-brandnew', roster: EMPTY_ROSTER_HASH, ...over });
      const cases: Array<[string, RoomOp, string | undefined]> = [
        ['not an #sc- room', create({ room: '#lobby' }), 'it is not a new room'],
        ['a room we hold', create({ room: ROOM.toUpperCase() }), 'it is not a new room'],
        ['a roster with people in it', create({ roster: rosterHash([memberOf(alice)]) }), 'a new room starts with nobody in it'],
        ['a new room', create({}), undefined],
      ];
      for (const [what, op, why] of cases) {
        a.typedToKeybot('invite carol', t0);
        const r = await propose(a, alice, op);
        if (why === undefined) expect(signedOp(r.lines!, alice), what).to.deep.equal(op);
        else expect(r.refused, what).to.include(why);
      }
    });

    it('an invite into a room we hold no key for is refused', async function () {
      const a = await aliceWithKey();
      a.typedToKeybot('invite #sc-elsewhere carol', t0);
      expect((await propose(a, alice, addOp({ room: '#sc-elsewhere' }))).refused).to.include('you hold no key for #sc-elsewhere');
    });
  });

  describe('proposals that do not arrive whole', function () {
    it('parts in between are hidden, a duplicate too; a broken part or a whole that is not an operation is refused and nothing is signed', async function () {
      const a = await aliceWithKey();
      a.typedToKeybot(`invite ${ROOM} carol`, t0);
      const framed = frameParts({ data: encodeRoomOp(addOp()), kind: 'proposal', maxChars: 120 });
      expect(framed.parts.length).to.be.greaterThan(2);
      const first = await proposeLines(a, alice, [framed.parts[0]!, framed.parts[0]!]);
      expect(first).to.deep.equal([{ kind: 'hidden' }, { kind: 'hidden' }]);
      const broken = (await proposeLines(a, alice, ['SC1Q zz 3/2 AAAA']))[0] as { kind: string; refused?: string };
      expect(broken.kind).to.equal('proposal');
      expect(broken.refused).to.include("keybot's proposal did not arrive whole (malformed)");
      const junk = frameParts({ data: new TextEncoder().encode('{"v":1,"a":"add"}'), kind: 'proposal' });
      const notOp = (await proposeLines(a, alice, junk.parts)).pop() as { refused?: string };
      expect(notOp.refused).to.include('keybot sent a proposal that is not a room operation (malformed)');
      // The rest of the first proposal still completes, and is signed once.
      const rest = await proposeLines(a, alice, framed.parts.slice(1));
      expect((rest.pop() as { lines?: string[] }).lines).to.be.an('array');
    });
  });

  describe('what a relayed operation explains', function () {
    it('an addition relayed before an epoch that does not carry it yet waits for the epoch that does', async function () {
      const a = await aliceWithKey();
      await relay(a, relayedOpLines({ actor: bob, room: ROOM, roster: [alice, bob], targets: [carol], issuedAt: t0 }));
      // A rekey without changes (someone's rotation) comes first: nothing to explain, the operation is kept.
      expect(await keyUp(a, alice, 101, [alice, bob])).to.deep.include({ kind: 'key', epoch: 101 }).and.not.have.property('changes');
      expect(await keyUp(a, alice, 102, [alice, bob, carol])).to.deep.include({ kind: 'key', epoch: 102, changes: ['carol added by bob, verified'] });
    });

    it('a relayed operation is used once: a later epoch adding the same person again needs a new one', async function () {
      const a = await aliceWithKey();
      await relay(a, relayedOpLines({ actor: bob, room: ROOM, roster: [alice, bob], targets: [carol], issuedAt: t0 }));
      expect(await keyUp(a, alice, 101, [alice, bob, carol])).to.deep.include({ kind: 'key', changes: ['carol added by bob, verified'] });
      expect(await keyUp(a, alice, 102, [alice, bob])).to.include({ kind: 'key' });
      expect(await keyUp(a, alice, 103, [alice, bob, carol])).to.include({ kind: 'envelope-rejected', code: 'unexplained-member' });
    });

    it('an addition signed by a member who left by the epoch that carries it is still believed: the signer is checked against the roster it was made for', async function () {
      const a = engineFor(alice);
      await keyUp(a, alice, 100, [alice, bob, dave]);
      await relay(a, relayedOpLines({ actor: bob, room: ROOM, roster: [alice, bob, dave], targets: [carol], issuedAt: t0 }));
      expect(await keyUp(a, alice, 101, [alice, dave, carol])).to.deep.include({ kind: 'key', epoch: 101, changes: ['carol added by bob, verified'] });
    });

    it('an operation adding two people names both in the change shown', async function () {
      const a = await aliceWithKey();
      await relay(a, relayedOpLines({ actor: bob, room: ROOM, roster: [alice, bob], targets: [carol, dave], issuedAt: t0 }));
      expect(await keyUp(a, alice, 101, [alice, bob, carol, dave])).to.deep.include({ kind: 'key', changes: ['carol, dave added by bob, verified'] });
    });

    it('on a first key, an addition relayed for the room is shown as an addition, not as an opening, and nobody is called unexplained', async function () {
      const a = engineFor(alice);
      await relay(a, relayedOpLines({ actor: bob, room: ROOM, roster: [alice, bob, dave], targets: [carol], issuedAt: t0 }));
      expect(await keyUp(a, alice, 100, [alice, bob, carol, dave])).to.deep.include({ kind: 'key', epoch: 100, changes: ['carol added by bob, verified'] });
    });

    it('two members inviting the same person: the addition is shown once, and the second invite waits', async function () {
      const a = engineFor(alice);
      await keyUp(a, alice, 100, [alice, bob, dave]);
      await relay(a, relayedOpLines({ actor: bob, room: ROOM, roster: [alice, bob, dave], targets: [carol], issuedAt: t0 }));
      await relay(a, relayedOpLines({ actor: dave, room: ROOM, roster: [alice, bob, dave], targets: [carol], issuedAt: t0 }));
      expect(await keyUp(a, alice, 101, [alice, bob, dave, carol])).to.deep.include({ kind: 'key', epoch: 101, changes: ['carol added by bob, verified'] });
    });

    it('a relayed operation is kept for 10 minutes, not longer', async function () {
      for (const [age, ok] of [
        [599_000, true],
        [600_000, false],
      ] as const) {
        const a = engineFor(alice);
        await keyUp(a, alice, 100, [alice, bob], t0 + age - 1000);
        await relay(a, relayedOpLines({ actor: bob, room: ROOM, roster: [alice, bob], targets: [carol], issuedAt: t0 + age - 120_000 }));
        const r = await keyUp(a, alice, 101, [alice, bob, carol], t0 + age);
        expect(r.kind, String(age)).to.equal(ok ? 'key' : 'envelope-rejected');
      }
    });

    it('only the 32 most recent relayed operations of a room are kept', async function () {
      const a = await aliceWithKey();
      await relay(a, relayedOpLines({ actor: bob, room: ROOM, roster: [alice, bob], targets: [carol], issuedAt: t0 }));
      for (let i = 0; i < 32; i++) await relay(a, relayedOpLines({ actor: bob, room: ROOM, roster: [alice, bob], targets: [dave], issuedAt: t0 }));
      expect(await keyUp(a, alice, 101, [alice, bob, carol])).to.include({ kind: 'envelope-rejected', code: 'unexplained-member' });
      const b = await aliceWithKey();
      await relay(b, relayedOpLines({ actor: bob, room: ROOM, roster: [alice, bob], targets: [carol], issuedAt: t0 }));
      for (let i = 0; i < 31; i++) await relay(b, relayedOpLines({ actor: bob, room: ROOM, roster: [alice, bob], targets: [dave], issuedAt: t0 }));
      expect(await keyUp(b, alice, 101, [alice, bob, carol])).to.include({ kind: 'key' });
    });

    it('a removal explains no addition; an opening relayed for a room we already hold explains its invitee only as a pending invite', async function () {
      const signed = (op: RoomOp, who: Party): string[] => {
        const framed = frameParts({ data: signRoomOp({ op, signer: who.priv }), kind: 'op' });
        return framed.parts;
      };
      const base = {
        room: ROOM,
        actor: { account: bob.name, fingerprint: bob.fingerprint },
        targets: [{ account: carol.name, fingerprint: carol.fingerprint }],
        issuedAt: t0,
        nonce: new Uint8Array(16).fill(9),
      };
      const removal = await aliceWithKey();
      await relay(removal, signed({ ...base, action: 'remove', roster: rosterHash([memberOf(alice), memberOf(bob)]) } as RoomOp, bob));
      expect(await keyUp(removal, alice, 101, [alice, bob, carol])).to.include({ kind: 'envelope-rejected', code: 'unexplained-member' });
      const opening = await aliceWithKey();
      await relay(opening, signed({ ...base, action: 'create', roster: EMPTY_ROSTER_HASH } as RoomOp, bob));
      const r = await keyUp(opening, alice, 101, [alice, bob, carol]);
      expect(r).to.include({ kind: 'key', epoch: 101 });
      expect((r as { changes: string[] }).changes[0]).to.match(/^carol added by bob \(invited \d+ \w+ ago, while offline\), verified$/);
    });

    it('an opening is believed only from the opener in the first roster, and shows who opened it even with nobody else named', async function () {
      const c = engineFor(carol);
      // mallory claims to have opened the room: she is not in the roster, so it explains nothing; alice's does.
      await relay(c, relayedOpLines({ actor: mallory, action: 'create', room: ROOM, roster: [], targets: [carol], issuedAt: t0 }));
      await relay(c, relayedOpLines({ actor: alice, action: 'create', room: ROOM, roster: [], targets: [carol], issuedAt: t0 }));
      expect(await keyUp(c, carol, 100, [alice, carol])).to.deep.include({ kind: 'key', changes: ['room opened by alice with you, verified'] });
      // An opening naming only someone the first epoch does not list: just the opener is shown.
      const d = engineFor(carol);
      await relay(d, relayedOpLines({ actor: alice, action: 'create', room: ROOM, roster: [], targets: [dave], issuedAt: t0 }));
      expect(await keyUp(d, carol, 100, [alice, carol])).to.deep.include({ kind: 'key', changes: ['room opened by alice, verified'] });
    });

    it('the operations of a room are forgotten when we leave it', async function () {
      const a = await aliceWithKey();
      await relay(a, relayedOpLines({ actor: bob, room: ROOM, roster: [alice, bob], targets: [carol], issuedAt: t0 }));
      a.forgetRoom(ROOM);
      await keyUp(a, alice, 101, [alice, bob]);
      // Without a previous roster nothing is called unexplained; and the forgotten operation is not shown.
      expect(await keyUp(a, alice, 102, [alice, bob, carol])).to.include({ kind: 'envelope-rejected', code: 'unexplained-member' });
    });
  });
});
