import { expect } from 'chai';
import {
  EnvelopeStatus,
  RoomOpStatus,
  advanceRoster,
  generateMemberKey,
  generateRoomKey,
  isEpochNotice,
  openJoinEnvelope,
  peekKeyLine,
  rosterHash,
  sealJoinEnvelope,
  signEpochNotice,
  signRoomOp,
  unwrapEpochKey,
  verifyEpochNotice,
  wrapEpochKey,
  type EnvelopeMember,
  type EpochNotice,
  type JoinPayload,
} from '../../src/crypto/index.js';
import { createMessage, decrypt, encrypt, readMessage } from '../../src/crypto/openpgp.js';
import { privateState, publicState } from '../../src/crypto/keys.js';
import { fixtures, memberOf as member, type Fixtures, type TestKey } from './fixtures.js';


describe('src/crypto/envelope-v3.ts', function () {
  this.timeout(30_000);
  let f: Fixtures;
  let alice: EnvelopeMember;
  let bob: EnvelopeMember;
  let carol: EnvelopeMember;
  let mallory: EnvelopeMember;
  const room = '#sc-v3test';
  const t0 = 1_800_000_000_000;

  before(async () => {
    f = await fixtures();
    alice = member(f.ecc);
    bob = member(f.v6ids);
    carol = member(f.rsa);
    mallory = member(f.mallory);
  });

  function join(over: Partial<JoinPayload> = {}): JoinPayload {
    return {
      room,
      epoch: 10,
      key: generateRoomKey(),
      issuedAt: t0,
      memberKey: generateMemberKey(),
      recipient: { account: 'bob', fingerprint: bob.fingerprint },
      roster: [alice, bob],
      ops: [],
      ...over,
    };
  }

  describe('join envelopes', () => {
    it('opens for its recipient with the pinned keybot key, and gives back the payload', async () => {
      const payload = join();
      const sealed = await sealJoinEnvelope({ signer: f.keybot.priv, recipientKey: f.v6ids.pub, payload });
      expect(sealed.status).to.equal(EnvelopeStatus.OK);
      expect(isEpochNotice(sealed.data!)).to.equal(false);
      const opened = await openJoinEnvelope({ data: sealed.data!, decryptionKey: f.v6ids.priv, keybotKey: f.keybot.pub, expectedAccount: 'bob', now: t0 });
      expect(opened.status).to.equal(EnvelopeStatus.OK);
      expect(opened.payload).to.deep.equal(payload);
    });

    it('is refused when anyone but the pinned keybot signed it, or for another account, or out of its time window', async () => {
      const forged = await sealJoinEnvelope({ signer: f.mallory.priv, recipientKey: f.v6ids.pub, payload: join() });
      const open = (data: Uint8Array, over: { account?: string; now?: number } = {}) =>
        openJoinEnvelope({ data, decryptionKey: f.v6ids.priv, keybotKey: f.keybot.pub, expectedAccount: over.account ?? 'bob', now: over.now ?? t0 });
      expect((await open(forged.data!)).status).to.equal(EnvelopeStatus.BAD_SIGNATURE);
      const good = (await sealJoinEnvelope({ signer: f.keybot.priv, recipientKey: f.v6ids.pub, payload: join() })).data!;
      expect((await open(good, { account: 'alice' })).status).to.equal(EnvelopeStatus.WRONG_RECIPIENT);
      expect((await open(good, { now: t0 + 15 * 60_000 + 1 })).status).to.equal(EnvelopeStatus.EXPIRED);
      expect((await open(good, { now: t0 - 5 * 60_000 - 1 })).status).to.equal(EnvelopeStatus.NOT_YET_VALID);
      expect((await openJoinEnvelope({ data: good, decryptionKey: f.ecc.priv, keybotKey: f.keybot.pub, expectedAccount: 'alice', now: t0 })).status).to.equal(EnvelopeStatus.NOT_FOR_ME);
    });

    it("cannot be re-wrapped by one member for another: bob's decrypted envelope, encrypted to carol, fails keybot's signature", async () => {
      const sealed = await sealJoinEnvelope({ signer: f.keybot.priv, recipientKey: f.v6ids.pub, payload: join() });
      // bob decrypts his own envelope (as any member can) and sends the same bytes on, encrypted to carol.
      const literal = (await decrypt({ message: await readMessage({ binaryMessage: sealed.data! }), decryptionKeys: privateState(f.v6ids.priv, 't').key, format: 'binary' })).data as Uint8Array;
      const rewrapped = (await encrypt({ message: await createMessage({ binary: literal }), encryptionKeys: publicState(f.rsa.pub, 't').key, format: 'binary' })) as Uint8Array;
      const r = await openJoinEnvelope({ data: rewrapped, decryptionKey: f.rsa.priv, keybotKey: f.keybot.pub, expectedAccount: 'carol', now: t0 });
      expect(r.status).to.equal(EnvelopeStatus.BAD_SIGNATURE);
    });

    it('refuses to seal for a recipient the roster does not list with that key', async () => {
      let err: unknown;
      try {
        await sealJoinEnvelope({ signer: f.keybot.priv, recipientKey: f.rsa.pub, payload: join({ recipient: { account: 'carol', fingerprint: carol.fingerprint } }) });
      } catch (e) {
        err = e;
      }
      expect(String(err)).to.match(/roster must list the recipient/);
    });
  });

  describe('epoch notices and rosters', () => {
    function addOp(by: TestKey, byEntry: EnvelopeMember, roster: EnvelopeMember[], target: EnvelopeMember, at = t0): Uint8Array {
      return signRoomOp({
        op: { action: 'add', room, roster: rosterHash(roster), actor: { account: byEntry.account, fingerprint: byEntry.fingerprint }, targets: [{ account: target.account, fingerprint: target.fingerprint }], issuedAt: at, nonce: new Uint8Array(16).fill(1) },
        signer: by.priv,
      });
    }
    function notice(over: Partial<EpochNotice> = {}): EpochNotice {
      return { room, epoch: 11, prev: 10, issuedAt: t0 + 1000, roster: rosterHash([alice, bob, carol]), ops: [addOp(f.ecc, alice, [alice, bob], carol)], added: [carol], gone: [], ...over };
    }
    function check(n: EpochNotice, roster: EnvelopeMember[] = [alice, bob]) {
      const signed = signEpochNotice({ signer: f.keybot.priv, notice: n });
      const v = verifyEpochNotice({ data: signed.data, keybotKey: f.keybot.pub, now: t0 });
      expect(v.status).to.equal(EnvelopeStatus.OK);
      return advanceRoster({ roster, notice: v.notice! });
    }

    it("derives the new roster from the member's own and the signed operations, and says who added whom", () => {
      const r = check(notice());
      expect(r.status).to.equal(RoomOpStatus.OK);
      expect(r.roster!.map((m) => m.account)).to.deep.equal(['alice', 'bob', 'carol']);
      expect(r.changes).to.deep.equal([{ action: 'add', actor: 'alice', targets: ['carol'] }]);
    });

    it('applies departures keybot saw without anyone signing them', () => {
      const r = check(notice({ ops: [], added: [], gone: ['bob'], roster: rosterHash([alice]) }));
      expect(r.status).to.equal(RoomOpStatus.OK);
      expect(r.roster!.map((m) => m.account)).to.deep.equal(['alice']);
      expect(r.changes).to.deep.equal([{ action: 'gone', targets: ['bob'] }]);
    });

    it('refuses an epoch that adds someone no operation names (the daemon or keybot adding a reader)', () => {
      const r = check(notice({ ops: [], added: [mallory], roster: rosterHash([alice, bob, mallory]) }));
      expect(r.status).to.equal(RoomOpStatus.BAD_TARGET);
      expect(r.reason).to.match(/mallory added without an operation/);
    });

    it('refuses an operation signed by someone who is not a member (a password-only session cannot sign as alice)', () => {
      // mallory signs an op naming herself as actor; she is not in the roster.
      const byMallory = addOp(f.mallory, mallory, [alice, bob], carol);
      expect(check(notice({ ops: [byMallory] })).status).to.equal(RoomOpStatus.NOT_A_MEMBER);
      // mallory signs an op claiming to be alice: alice's roster key does not verify it.
      const asAlice = signRoomOp({
        op: { action: 'add', room, roster: rosterHash([alice, bob]), actor: { account: 'alice', fingerprint: mallory.fingerprint }, targets: [{ account: 'carol', fingerprint: carol.fingerprint }], issuedAt: t0, nonce: new Uint8Array(16) },
        signer: f.mallory.priv,
      });
      expect(check(notice({ ops: [asAlice] })).status).to.equal(RoomOpStatus.WRONG_SIGNER);
    });

    it('refuses an operation replayed in a later epoch, and one for another room', () => {
      const op = addOp(f.ecc, alice, [alice, bob], carol);
      // The same op again after carol joined: it was made for the roster without her.
      const replay = check(notice({ epoch: 12, prev: 11, ops: [op], added: [carol], roster: rosterHash([alice, bob, carol]) }), [alice, bob, carol]);
      expect(replay.status).to.equal(RoomOpStatus.STALE_ROSTER);
      const otherRoom = signRoomOp({
        op: { action: 'add', room: '#sc-elsewhere', roster: rosterHash([alice, bob]), actor: { account: 'alice', fingerprint: alice.fingerprint }, targets: [{ account: 'carol', fingerprint: carol.fingerprint }], issuedAt: t0, nonce: new Uint8Array(16) },
        signer: f.ecc.priv,
      });
      expect(check(notice({ ops: [otherRoom] })).status).to.equal(RoomOpStatus.WRONG_ROOM);
    });

    it('refuses an operation too old for the epoch that carries it', () => {
      const old = addOp(f.ecc, alice, [alice, bob], carol, t0 - 10 * 60_000);
      expect(check(notice({ ops: [old] })).status).to.equal(RoomOpStatus.EXPIRED);
    });

    it("refuses an epoch whose announced roster is not the one the member derives (the member's roster differs)", () => {
      expect(check(notice(), [alice, bob, mallory]).status).to.equal(RoomOpStatus.STALE_ROSTER);
      expect(check(notice({ roster: rosterHash([alice, bob, carol, mallory]) })).status).to.equal(RoomOpStatus.STALE_ROSTER);
    });

    it("is refused when keybot's signature does not verify", () => {
      const signed = signEpochNotice({ signer: f.mallory.priv, notice: notice() });
      expect(verifyEpochNotice({ data: signed.data, keybotKey: f.keybot.pub, now: t0 }).status).to.equal(EnvelopeStatus.BAD_SIGNATURE);
      const good = signEpochNotice({ signer: f.keybot.priv, notice: notice() }).data;
      const tampered = Uint8Array.from(good);
      tampered[10] ^= 1;
      expect(verifyEpochNotice({ data: tampered, keybotKey: f.keybot.pub, now: t0 }).status).to.equal(EnvelopeStatus.BAD_SIGNATURE);
      expect(isEpochNotice(good)).to.equal(true);
    });
  });

  describe('key lines', () => {
    it('open only with the member key, account, room, epoch and notice they were made for', () => {
      const mkBob = generateMemberKey();
      const mkLeaver = generateMemberKey();
      const key = generateRoomKey();
      const digest = new Uint8Array(32).fill(9);
      const line = wrapEpochKey({ memberKey: mkBob, key, room, epoch: 11, account: 'bob', digest });
      expect(line.length).to.be.lessThan(200);
      expect(peekKeyLine(line)).to.deep.equal({ room, epoch: 11 });
      expect(unwrapEpochKey({ line, memberKey: mkBob, account: 'Bob', digest })).to.deep.equal({ room, epoch: 11, key });
      // A member who left holds only their own member key: it opens no one else's line.
      expect(unwrapEpochKey({ line, memberKey: mkLeaver, account: 'bob', digest })).to.equal(undefined);
      expect(unwrapEpochKey({ line, memberKey: mkBob, account: 'alice', digest })).to.equal(undefined);
      expect(unwrapEpochKey({ line, memberKey: mkBob, account: 'bob', digest: new Uint8Array(32) })).to.equal(undefined);
      expect(unwrapEpochKey({ line: line.replace(' 11 ', ' 12 '), memberKey: mkBob, account: 'bob', digest })).to.equal(undefined);
      expect(unwrapEpochKey({ line: line.replace(room, '#sc-other'), memberKey: mkBob, account: 'bob', digest })).to.equal(undefined);
      expect(unwrapEpochKey({ line: 'SC1K junk', memberKey: mkBob, account: 'bob', digest })).to.equal(undefined);
    });
  });
});
