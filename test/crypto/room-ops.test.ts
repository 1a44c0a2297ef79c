import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import {
  EMPTY_ROSTER_HASH,
  RoomOpStatus,
  applyRoomOp,
  encodeRoomOp,
  readRoomOp,
  rosterHash,
  signRoomOp,
  verifyRoomOp,
  type EnvelopeMember,
  type RoomOp,
} from '../../src/crypto/index.js';
import { createPrivateKey, sign } from 'node:crypto';
import { fixtures, memberOf as member, type Fixtures, type TestKey } from './fixtures.js';
import { hex, vector } from './vectors.js';


/** An operation's target: the account and the fingerprint the actor saw. */
function t(m: EnvelopeMember): { account: string; fingerprint: string } {
  return { account: m.account, fingerprint: m.fingerprint };
}

describe('src/crypto/room-ops.ts', function () {
  this.timeout(20_000);
  let f: Fixtures;
  let alice: EnvelopeMember;
  let bob: EnvelopeMember;
  let carol: EnvelopeMember;
  let mallory: EnvelopeMember;
  const now = 1_800_000_000_000;

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

  describe('rosterHash', () => {
    it('does not depend on order or on the case of account names, and changes with any key', () => {
      expect(rosterHash([alice, bob])).to.deep.equal(rosterHash([bob, alice]));
      expect(rosterHash([alice, bob])).to.deep.equal(rosterHash([{ ...alice, account: 'ALICE' }, bob]));
      expect(rosterHash([alice, bob])).not.to.deep.equal(rosterHash([alice]));
      expect(rosterHash([alice, bob])).not.to.deep.equal(rosterHash([alice, { ...bob, fingerprint: mallory.fingerprint }]));
      expect(rosterHash([alice, bob])).not.to.deep.equal(rosterHash([alice, { ...bob, signingKey: mallory.signingKey }]));
      expect(EMPTY_ROSTER_HASH).to.deep.equal(rosterHash([]));
      expect(() => rosterHash([alice, { ...alice, account: 'Alice' }])).to.throw(/listed twice/);
    });
  });

  describe('sign and verify', () => {
    it('verifies an operation signed by its actor, and reads it back field for field', () => {
      const data = signRoomOp({ op: op(), signer: f.ecc.priv });
      const r = verifyRoomOp({ data, signingKey: alice.signingKey, fingerprint: alice.fingerprint, now });
      expect(r.status).to.equal(RoomOpStatus.OK);
      expect(r.op).to.deep.equal(op());
      expect(readRoomOp({ data }).op).to.deep.equal(op());
    });

    it('works with RSA and RFC 9580 Ed25519 actors', () => {
      for (const [k, m] of [
        [f.rsa, carol],
        [f.v6ids, bob],
      ] as const) {
        const o = op({ actor: { account: m.account, fingerprint: m.fingerprint }, targets: [t(mallory)] });
        const data = signRoomOp({ op: o, signer: k.priv });
        expect(verifyRoomOp({ data, signingKey: m.signingKey, fingerprint: m.fingerprint, now }).status, k.name).to.equal(RoomOpStatus.OK);
      }
    });

    it('refuses a signature by anyone but the actor, and a signer that is not the actor', () => {
      // mallory signs an operation naming alice as its actor: the signature cannot verify under alice's key.
      const forged = signRoomOp({ op: op({ actor: { account: 'alice', fingerprint: mallory.fingerprint } }), signer: f.mallory.priv });
      expect(verifyRoomOp({ data: forged, signingKey: alice.signingKey, fingerprint: alice.fingerprint, now }).status).to.equal(RoomOpStatus.WRONG_SIGNER);
      expect(verifyRoomOp({ data: forged, signingKey: alice.signingKey, fingerprint: mallory.fingerprint, now }).status).to.equal(RoomOpStatus.BAD_SIGNATURE);
      expect(() => signRoomOp({ op: op(), signer: f.mallory.priv })).to.throw(/not the actor/);
    });

    it('refuses any change to the signed bytes, and a second encoding of the same operation', () => {
      const data = signRoomOp({ op: op(), signer: f.ecc.priv });
      const json = new TextDecoder().decode(data.subarray(0, data.indexOf(0)));
      const sig = data.subarray(data.indexOf(0));
      const variants = [
        json.replace('"a":"add"', '"a":"remove"'),
        json.replace('#sc-test', '#sc-other'),
        json.replace(`"iat":${now}`, `"iat":${now + 1}`),
        json.replace('{"v":1,', '{"v":1, '),
      ];
      for (const v of variants) {
        const tampered = new Uint8Array([...new TextEncoder().encode(v), ...sig]);
        expect(verifyRoomOp({ data: tampered, signingKey: alice.signingKey, fingerprint: alice.fingerprint, now }).status, v).to.be.oneOf([RoomOpStatus.BAD_SIGNATURE, RoomOpStatus.MALFORMED]);
      }
      const flipped = Uint8Array.from(data);
      flipped[flipped.length - 1] ^= 1;
      expect(verifyRoomOp({ data: flipped, signingKey: alice.signingKey, fingerprint: alice.fingerprint, now }).status).to.equal(RoomOpStatus.BAD_SIGNATURE);
    });

    it('keeps to its time window', () => {
      const data = signRoomOp({ op: op(), signer: f.ecc.priv });
      const at = (t: number): RoomOpStatus => verifyRoomOp({ data, signingKey: alice.signingKey, fingerprint: alice.fingerprint, now: t }).status;
      expect(at(now + 5 * 60_000)).to.equal(RoomOpStatus.OK);
      expect(at(now + 5 * 60_000 + 1)).to.equal(RoomOpStatus.EXPIRED);
      expect(at(now - 60_000)).to.equal(RoomOpStatus.OK);
      expect(at(now - 60_001)).to.equal(RoomOpStatus.NOT_YET_VALID);
    });

    it('says MALFORMED for junk, a missing signature and schema breaks, and refuses to sign a bad operation', () => {
      for (const data of [new Uint8Array(0), new TextEncoder().encode('{"v":1}\0xx'), new TextEncoder().encode('not json\0xx'), signRoomOp({ op: op(), signer: f.ecc.priv }).subarray(0, 50)]) {
        expect(readRoomOp({ data }).status).to.equal(RoomOpStatus.MALFORMED);
      }
      expect(readRoomOp({ data: new TextEncoder().encode('{"v":2}\0xx') }).status).to.equal(RoomOpStatus.UNSUPPORTED_VERSION);
      expect(() => encodeRoomOp(op({ action: 'leave' }))).to.throw(/leave names no targets/);
      expect(() => encodeRoomOp(op({ targets: [] }))).to.throw(/at least one target/);
      expect(() => encodeRoomOp(op({ targets: [t(alice)] }))).to.throw(/actor cannot be a target/);
      expect(() => encodeRoomOp(op({ targets: [t(bob), { ...t(bob), account: 'BOB' }] }))).to.throw(/named twice/);
      expect(() => encodeRoomOp(op({ nonce: randomBytes(8) }))).to.throw(/nonce/);
      expect(() => encodeRoomOp(op({ room: 'sc-test' }))).to.throw(/channel/);
    });
  });

  describe('applyRoomOp', () => {
    it('adds, removes and lets the actor leave, and hands back the sorted new roster', () => {
      const roster = [bob, alice];
      const added = applyRoomOp({ op: op(), room: '#SC-Test', roster, added: [carol] });
      expect(added.status).to.equal(RoomOpStatus.OK);
      expect(added.roster!.map((m) => m.account)).to.deep.equal(['alice', 'bob', 'carol']);
      const removed = applyRoomOp({ op: op({ action: 'remove', targets: [t(bob)] }), room: '#sc-test', roster });
      expect(removed.roster!.map((m) => m.account)).to.deep.equal(['alice']);
      const left = applyRoomOp({ op: op({ action: 'leave', targets: [] }), room: '#sc-test', roster });
      expect(left.roster!.map((m) => m.account)).to.deep.equal(['bob']);
    });

    it('creates a room from the empty roster with the actor and the targets', () => {
      const create = op({ action: 'create', roster: EMPTY_ROSTER_HASH, targets: [t(bob), t(carol)] });
      const r = applyRoomOp({ op: create, room: '#sc-test', roster: [], actorEntry: alice, added: [carol, bob] });
      expect(r.roster!.map((m) => m.account)).to.deep.equal(['alice', 'bob', 'carol']);
      expect(applyRoomOp({ op: create, room: '#sc-test', roster: [], added: [bob, carol] }).status).to.equal(RoomOpStatus.NOT_A_MEMBER);
      expect(applyRoomOp({ op: create, room: '#sc-test', roster: [alice], actorEntry: alice, added: [bob, carol] }).status).to.equal(RoomOpStatus.STALE_ROSTER);
    });

    it('refuses an operation replayed into another room, onto another roster, or by a non-member', () => {
      expect(applyRoomOp({ op: op(), room: '#sc-other', roster: [alice, bob] }).status).to.equal(RoomOpStatus.WRONG_ROOM);
      // Replayed after the roster moved on (reordered or stale): the hash no longer matches.
      expect(applyRoomOp({ op: op(), room: '#sc-test', roster: [alice, bob, mallory] }).status).to.equal(RoomOpStatus.STALE_ROSTER);
      // A former member (not in the roster) cannot act, even with a roster hash they made up to match.
      const former = op({ actor: { account: 'mallory', fingerprint: mallory.fingerprint }, roster: rosterHash([alice, bob]) });
      expect(applyRoomOp({ op: former, room: '#sc-test', roster: [alice, bob] }).status).to.equal(RoomOpStatus.NOT_A_MEMBER);
      // A member whose listed fingerprint is not the one that signed.
      const swapped = op({ actor: { account: 'alice', fingerprint: mallory.fingerprint } });
      expect(applyRoomOp({ op: swapped, room: '#sc-test', roster: [alice, bob] }).status).to.equal(RoomOpStatus.NOT_A_MEMBER);
    });

    it('refuses adding a member twice and removing someone who is not a member under that key', () => {
      expect(applyRoomOp({ op: op({ targets: [t(bob)] }), room: '#sc-test', roster: [alice, bob], added: [bob] }).status).to.equal(RoomOpStatus.BAD_TARGET);
      const wrongKey = { account: 'bob', fingerprint: mallory.fingerprint };
      expect(applyRoomOp({ op: op({ action: 'remove', targets: [wrongKey] }), room: '#sc-test', roster: [alice, bob] }).status).to.equal(RoomOpStatus.BAD_TARGET);
    });

    it('keys only the key the operation names: an added entry with another fingerprint, or a missing or extra one, is refused', () => {
      const other = { ...carol, fingerprint: mallory.fingerprint, signingKey: mallory.signingKey };
      for (const added of [[other], [], [carol, mallory]]) {
        const r = applyRoomOp({ op: op(), room: '#sc-test', roster: [alice, bob], added });
        expect(r.status, JSON.stringify(added.map((a) => a.account))).to.equal(RoomOpStatus.BAD_TARGET);
      }
    });
  });
  it('matches the room-op test vector of docs/PROTOCOL.md', () => {
    const v = vector('room-op');
    const signingKey = { alg: 'ed25519' as const, key: v.ed25519_public_base64! };
    const roster = [
      { account: v.member_1!, fingerprint: v.fingerprint_1!, signingKey },
      { account: v.member_2!, fingerprint: v.fingerprint_2!, signingKey },
    ];
    expect(Buffer.from(rosterHash(roster)).toString('hex')).to.equal(v.roster_hash);
    const o: RoomOp = {
      action: 'add',
      room: v.room!,
      roster: hex(v.roster_hash!),
      actor: { account: v.member_1!, fingerprint: v.fingerprint_1! },
      targets: [{ account: v.target!, fingerprint: v.target_fingerprint! }],
      issuedAt: Number(v.iat),
      nonce: hex(v.nonce!),
    };
    const json = encodeRoomOp(o);
    expect(new TextDecoder().decode(json)).to.equal(v.op_json!.replace(/\n/g, ''));
    // Ed25519 is deterministic: the signature over the transcript is the vector's, byte for byte.
    const seed = Buffer.from(v.ed25519_seed!, 'hex');
    const key = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
    const signature = sign(null, Buffer.concat([Buffer.from('sealchat-op-v1\0'), json]), key);
    expect(signature.toString('hex')).to.equal(v.signature);
    const data = new Uint8Array([...json, 0, ...signature]);
    const r = verifyRoomOp({ data, signingKey, fingerprint: v.fingerprint_1!, now: Number(v.iat) });
    expect(r.status).to.equal(RoomOpStatus.OK);
    expect(applyRoomOp({ op: r.op!, room: v.room!, roster, added: [{ account: 'carol', fingerprint: v.target_fingerprint!, signingKey }] }).status).to.equal(RoomOpStatus.OK);
  });
});
