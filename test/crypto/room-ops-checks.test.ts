/**
 * Room operations (src/crypto/room-ops.ts): the schema, canonical-encoding and roster checks the
 * mutation run (issue 18) showed untested. Real keys, no mocks.
 */
import { expect } from 'chai';
import {
  EMPTY_ROSTER_HASH,
  MAX_ROSTER,
  RoomOpStatus,
  applyRoomOp,
  encodeRoomOp,
  readProposedOp,
  readRoomOp,
  rosterHash,
  signRoomOp,
  verifyRoomOp,
  type EnvelopeMember,
  type RoomOp,
} from '../../src/crypto/index.js';
import { privateState } from '../../src/crypto/keys.js';
import { signRaw } from '../../src/crypto/primitives.js';
import { fixtures, memberOf as member, type Fixtures } from './fixtures.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

describe('src/crypto/room-ops.ts: schema, encoding and roster checks', function () {
  this.timeout(20_000);
  let f: Fixtures;
  let alice: EnvelopeMember;
  let bob: EnvelopeMember;
  let carol: EnvelopeMember;
  let mallory: EnvelopeMember;
  const now = 1_800_000_000_000;
  const t = (m: EnvelopeMember): { account: string; fingerprint: string } => ({ account: m.account, fingerprint: m.fingerprint });

  before(async () => {
    f = await fixtures();
    alice = member(f.ecc);
    bob = member(f.v6ids);
    carol = member(f.rsa);
    mallory = member(f.mallory);
  });

  function op(over: Partial<RoomOp> = {}): RoomOp {
    return {
      action: 'add',
      room: '#sc-test',
      roster: rosterHash([alice, bob]),
      actor: { account: 'alice', fingerprint: alice.fingerprint },
      targets: [t(carol)],
      issuedAt: now,
      nonce: new Uint8Array(16).fill(7),
      ...over,
    };
  }

  /** The wire JSON of `op` with its fields in the given order (canonical order by default). */
  function wire(o: RoomOp, order = ['v', 'a', 'room', 'r', 'by', 't', 'iat', 'n']): string {
    const w: Record<string, unknown> = {
      v: 1,
      a: o.action,
      room: o.room,
      r: b64(o.roster),
      by: [o.actor.account, o.actor.fingerprint],
      t: o.targets.map((x) => [x.account, x.fingerprint]),
      iat: o.issuedAt,
      n: b64(o.nonce),
    };
    return JSON.stringify(Object.fromEntries(order.map((k) => [k, w[k]])));
  }

  describe('the schema', function () {
    it('encodes and reads back each of the four actions', function () {
      const ops: RoomOp[] = [
        op({ action: 'create', roster: EMPTY_ROSTER_HASH, targets: [t(bob)] }),
        op(),
        op({ action: 'remove', targets: [t(bob)] }),
        op({ action: 'leave', targets: [] }),
      ];
      for (const o of ops) {
        const r = readProposedOp({ data: encodeRoomOp(o) });
        expect(r.status, o.action).to.equal(RoomOpStatus.OK);
        expect(r.op, o.action).to.deep.equal(o);
      }
    });

    it('refuses to encode an operation that breaks the schema, and says what is wrong', function () {
      const many = Array.from({ length: 101 }, (_, i) => ({ account: `user${i}`, fingerprint: carol.fingerprint }));
      const cases: Array<[Partial<RoomOp>, RegExp]> = [
        [{ action: 'invite' as never }, /action must be create, add, remove or leave/],
        [{ roster: rosterHash([alice]).subarray(0, 31) }, /roster must be a 32-byte hash/],
        [{ roster: [...rosterHash([alice])] as unknown as Uint8Array }, /roster must be a 32-byte hash/],
        [{ actor: undefined as never }, /actor must be an account and a fingerprint/],
        [{ actor: { account: 'al ice', fingerprint: alice.fingerprint } }, /actor must be an account and a fingerprint/],
        [{ actor: { account: 'alice', fingerprint: 'ABC' } }, /actor must be an account and a fingerprint/],
        [{ targets: 'carol' as never }, /targets must list at most 100 members/],
        [{ targets: many }, /targets must list at most 100 members/],
        [{ targets: [null as never] }, /a target must be an account and a fingerprint/],
        [{ targets: [{ account: 'ca rol', fingerprint: carol.fingerprint }] }, /a target must be an account and a fingerprint/],
        [{ targets: [{ account: 'carol', fingerprint: 'xyz' }] }, /a target must be an account and a fingerprint/],
        [{ targets: [t(carol), t(alice)] }, /the actor cannot be a target/],
        [{ issuedAt: -1 }, /issuedAt must be a time in ms/],
        [{ issuedAt: 1.5 }, /issuedAt must be a time in ms/],
      ];
      for (const [over, why] of cases) expect(() => encodeRoomOp(op(over)), String(why)).to.throw(TypeError, why);
      // The limits themselves are allowed.
      expect(() => encodeRoomOp(op({ targets: many.slice(0, 100) }))).to.not.throw();
      expect(() => encodeRoomOp(op({ issuedAt: 0 }))).to.not.throw();
      expect(() => encodeRoomOp(op({ action: 'leave', targets: [] }))).to.not.throw();
      for (const bad of [undefined, null, 'op']) expect(() => encodeRoomOp(bad as never)).to.throw(TypeError, /encodeRoomOp: expected an operation object/);
    });
  });

  describe('reading', function () {
    it('says MALFORMED, never throws, for JSON that is not an operation object', function () {
      for (const json of ['null', '[1,2]', '"op"', '7', 'true']) {
        expect(readProposedOp({ data: enc(json) }).status, json).to.equal(RoomOpStatus.MALFORMED);
        expect(readRoomOp({ data: enc(`${json}\0xx`) }).status, json).to.equal(RoomOpStatus.MALFORMED);
      }
      expect(readProposedOp({ data: enc('{"v":"1"}') }).status).to.equal(RoomOpStatus.MALFORMED);
      expect(readProposedOp({ data: enc('{"v":2}') }).status).to.equal(RoomOpStatus.UNSUPPORTED_VERSION);
    });

    it('says MALFORMED for a canonical encoding of an operation that breaks the schema (the actor as a target)', function () {
      const json = wire(op({ targets: [t(carol), t(alice)] }));
      expect(readProposedOp({ data: enc(json) }).status).to.equal(RoomOpStatus.MALFORMED);
      expect(readRoomOp({ data: enc(`${json}\0xx`) }).status).to.equal(RoomOpStatus.MALFORMED);
    });

    it('accepts only the canonical encoding: the same fields in another order, or with a space, are MALFORMED', function () {
      expect(readProposedOp({ data: enc(wire(op())) }).status).to.equal(RoomOpStatus.OK);
      const reordered = wire(op(), ['a', 'v', 'room', 'r', 'by', 't', 'iat', 'n']);
      expect(reordered).to.have.length(wire(op()).length);
      expect(readProposedOp({ data: enc(reordered) }).status).to.equal(RoomOpStatus.MALFORMED);
      expect(readProposedOp({ data: enc(wire(op()).replace('{"v":1,', '{"v":1, ')) }).status).to.equal(RoomOpStatus.MALFORMED);
    });

    it('refuses the canonical encoding with anything after it, even whitespace JSON allows', function () {
      for (const tail of [' ', '\n', '  \t']) {
        expect(readProposedOp({ data: enc(wire(op()) + tail) }).status, JSON.stringify(tail)).to.equal(RoomOpStatus.MALFORMED);
      }
    });

    it('an operation signed by its actor over a non-canonical encoding is MALFORMED, though the signature is good', function () {
      const reordered = enc(wire(op(), ['a', 'v', 'room', 'r', 'by', 't', 'iat', 'n']));
      const k = privateState(f.ecc.priv, 'test');
      const signature = signRaw(k.signingAlg, k.signingKeyObject, new Uint8Array([...enc('sealchat-op-v1\0'), ...reordered]));
      const data = new Uint8Array([...reordered, 0, ...signature]);
      expect(verifyRoomOp({ data, signingKey: alice.signingKey, fingerprint: alice.fingerprint, now }).status).to.equal(RoomOpStatus.MALFORMED);
      expect(readRoomOp({ data }).status).to.equal(RoomOpStatus.MALFORMED);
      // The same statement in canonical form, signed the same way, verifies.
      const canonical = enc(wire(op()));
      const good = signRaw(k.signingAlg, k.signingKeyObject, new Uint8Array([...enc('sealchat-op-v1\0'), ...canonical]));
      expect(verifyRoomOp({ data: new Uint8Array([...canonical, 0, ...good]), signingKey: alice.signingKey, fingerprint: alice.fingerprint, now }).status).to.equal(RoomOpStatus.OK);
    });

    it('needs JSON, one NUL and a signature: no JSON before the NUL, or no signature after it, is MALFORMED', function () {
      const signed = signRoomOp({ op: op(), signer: f.ecc.priv });
      const json = signed.subarray(0, signed.indexOf(0));
      expect(readRoomOp({ data: new Uint8Array([...json, 0]) }).status).to.equal(RoomOpStatus.MALFORMED);
      expect(readRoomOp({ data: new Uint8Array([0, ...json, 0, 1, 2]) }).status).to.equal(RoomOpStatus.MALFORMED);
      expect(readRoomOp({ data: json }).status).to.equal(RoomOpStatus.MALFORMED);
      expect(verifyRoomOp({ data: new Uint8Array([...json, 0]), signingKey: alice.signingKey, fingerprint: alice.fingerprint, now }).status).to.equal(RoomOpStatus.MALFORMED);
      expect(verifyRoomOp({ data: enc('not json\0xx'), signingKey: alice.signingKey, fingerprint: alice.fingerprint, now }).status).to.equal(RoomOpStatus.MALFORMED);
    });

    it('says MALFORMED, never throws, for data that is not bytes or a missing options object', function () {
      const signed = signRoomOp({ op: op(), signer: f.ecc.priv });
      expect(readRoomOp({ data: [...signed] as unknown as Uint8Array }).status).to.equal(RoomOpStatus.MALFORMED);
      expect(readRoomOp(undefined as never).status).to.equal(RoomOpStatus.MALFORMED);
      expect(readProposedOp(undefined as never).status).to.equal(RoomOpStatus.MALFORMED);
      expect(readProposedOp({ data: signed }).status).to.equal(RoomOpStatus.MALFORMED);
      expect(readProposedOp({ data: encodeRoomOp(op()) }).status).to.equal(RoomOpStatus.OK);
    });

    it('signRoomOp and verifyRoomOp throw a TypeError for a missing options object or a signer that is not an unlocked key', function () {
      for (const bad of [undefined, null, 'op']) {
        expect(() => signRoomOp(bad as never)).to.throw(TypeError, /signRoomOp: expected one options object/);
        expect(() => verifyRoomOp(bad as never)).to.throw(TypeError, /verifyRoomOp: expected one options object/);
      }
      expect(() => signRoomOp({ op: op(), signer: f.ecc.pub as never })).to.throw(TypeError, /^signRoomOp: expected a PrivateKeyHandle/);
    });
  });

  describe('applying', function () {
    it('hands back the roster sorted by account whatever order it came in', function () {
      const dave = { ...mallory, account: 'dave' };
      const orders = [
        [mallory, dave, bob, alice],
        [dave, alice, mallory, bob],
        [bob, mallory, alice, dave],
        [alice, bob, dave, mallory],
      ];
      for (const roster of orders) {
        expect(rosterHash(roster)).to.deep.equal(rosterHash(orders[0]!));
        const r = applyRoomOp({ op: op({ roster: rosterHash(roster) }), room: '#sc-test', roster, added: [carol] });
        expect(r.status).to.equal(RoomOpStatus.OK);
        expect(r.roster!.map((m) => m.account)).to.deep.equal(['alice', 'bob', 'carol', 'dave', 'mallory']);
      }
    });

    it('refuses an operation whose roster hash differs from the current one in a single byte', function () {
      const roster = rosterHash([alice, bob]);
      for (const i of [0, 17, 31]) {
        const close = Uint8Array.from(roster);
        close[i]! ^= 1;
        const r = applyRoomOp({ op: op({ roster: close }), room: '#sc-test', roster: [alice, bob], added: [carol] });
        expect(r.status, `byte ${i}`).to.equal(RoomOpStatus.STALE_ROSTER);
        expect(r.reason).to.equal('the operation was made for another roster');
      }
    });

    it('refuses a roster hash with an extra byte after the current one', function () {
      const longer = new Uint8Array([...rosterHash([alice, bob]), 0]);
      const r = applyRoomOp({ op: op({ roster: longer }), room: '#sc-test', roster: [alice, bob], added: [carol] });
      expect(r.status).to.equal(RoomOpStatus.STALE_ROSTER);
    });

    it('says why it refuses: another room, a missing or extra entry, a key other than the one named, a member already', function () {
      expect(applyRoomOp({ op: op(), room: '#sc-other', roster: [alice, bob] }).reason).to.equal('the operation is for #sc-test');
      expect(applyRoomOp({ op: op(), room: '#sc-test', roster: [alice, bob], added: [] }).reason).to.equal('the added entries do not match the targets');
      const other = { ...carol, fingerprint: mallory.fingerprint };
      expect(applyRoomOp({ op: op(), room: '#sc-test', roster: [alice, bob], added: [other] }).reason).to.equal('carol is not added with the key the operation names');
      const again = applyRoomOp({ op: op({ targets: [t(bob)] }), room: '#sc-test', roster: [alice, bob], added: [bob] });
      expect(again).to.deep.equal({ status: RoomOpStatus.BAD_TARGET, reason: 'bob is a member already' });
    });

    it('refuses an added entry whose signing key is not a key, even under the fingerprint named', function () {
      const broken = { ...carol, signingKey: { alg: 'ed25519' as const, key: 'AAAA' } };
      const r = applyRoomOp({ op: op(), room: '#sc-test', roster: [alice, bob], added: [broken] });
      expect(r.status).to.equal(RoomOpStatus.BAD_TARGET);
      expect(r.reason).to.match(/carol has a bad signing key/);
    });

    it("create: refused for a room that has members, and without the actor's own entry under the actor's account and key", function () {
      const exists = op({ action: 'create', roster: rosterHash([bob]), targets: [t(carol)] });
      expect(applyRoomOp({ op: exists, room: '#sc-test', roster: [bob], actorEntry: alice, added: [carol] })).to.deep.equal({
        status: RoomOpStatus.STALE_ROSTER,
        reason: 'the room exists already',
      });
      const create = op({ action: 'create', roster: EMPTY_ROSTER_HASH, targets: [t(carol)] });
      const refused = { status: RoomOpStatus.NOT_A_MEMBER, reason: "create needs the actor's own roster entry" };
      expect(applyRoomOp({ op: create, room: '#sc-test', roster: [], actorEntry: { ...alice, account: 'mallory' }, added: [carol] })).to.deep.equal(refused);
      expect(applyRoomOp({ op: create, room: '#sc-test', roster: [], actorEntry: { ...alice, fingerprint: mallory.fingerprint }, added: [carol] })).to.deep.equal(refused);
      expect(applyRoomOp({ op: create, room: '#sc-test', roster: [], actorEntry: alice, added: [carol] }).status).to.equal(RoomOpStatus.OK);
    });

    it('remove and leave: refused when the actor is not a member, or is one under another key', function () {
      const roster = [alice, bob, carol];
      const hash = rosterHash(roster);
      const byMallory = { account: 'mallory', fingerprint: mallory.fingerprint };
      const aliceOtherKey = { account: 'alice', fingerprint: mallory.fingerprint };
      for (const actor of [byMallory, aliceOtherKey]) {
        for (const o of [op({ action: 'remove', roster: hash, actor, targets: [t(bob)] }), op({ action: 'leave', roster: hash, actor, targets: [] })]) {
          const r = applyRoomOp({ op: o, room: '#sc-test', roster });
          expect(r.status, `${o.action} by ${actor.account}`).to.equal(RoomOpStatus.NOT_A_MEMBER);
          expect(r.reason).to.equal(`${actor.account} is not a member with that key`);
        }
      }
      const wrongKey = applyRoomOp({ op: op({ action: 'remove', roster: hash, targets: [{ account: 'bob', fingerprint: mallory.fingerprint }] }), room: '#sc-test', roster });
      expect(wrongKey.reason).to.equal('bob is not a member with that key');
      const notAdded = applyRoomOp({ op: op({ roster: hash, actor: byMallory }), room: '#sc-test', roster, added: [carol] });
      expect(notAdded.reason).to.equal('mallory is not a member with that key');
    });

    it(`keeps a room to ${MAX_ROSTER} members`, function () {
      const crowd = (n: number): EnvelopeMember[] => Array.from({ length: n }, (_, i) => ({ ...alice, account: `m${i}` }));
      const full = [...crowd(MAX_ROSTER - 1), alice];
      const add = (roster: EnvelopeMember[]) => applyRoomOp({ op: op({ roster: rosterHash(roster) }), room: '#sc-test', roster, added: [carol] });
      expect(add(full.slice(1)).status).to.equal(RoomOpStatus.OK);
      expect(add(full)).to.deep.equal({ status: RoomOpStatus.BAD_TARGET, reason: `a room holds at most ${MAX_ROSTER} members` });
    });
  });
});
