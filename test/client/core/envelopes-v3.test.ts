/**
 * The companion core and envelope version 3 (docs/PROTOCOL.md "Envelope version 3"): keybot's
 * join envelope, its signed epoch notice to the room and each member's key line. What a
 * companion installs, what it refuses: an epoch whose roster adds someone no operation names, a
 * downgrade to version 2 for a room it holds under version 3, an epoch it cannot derive.
 */
import { expect } from 'chai';
import {
  generateMemberKey,
  generateRoomKey,
  rosterHash,
  sealJoinEnvelope,
  signEpochNotice,
  signRoomOp,
  wrapEpochKey,
  type EnvelopeMember,
  type EpochNotice,
} from '../../../src/crypto/index.js';
import { RoomCryptoEngine } from '../../../src/client/index.js';
import { envelopeLines, memberOf, party, type Party, envelopeParts, fromKeybot } from '../fixtures.js';

const ROOM = '#sc-v3room0001';

describe('src/client/core/envelopes.ts: envelope version 3', function () {
  this.timeout(20_000);
  let keybot: Party, alice: Party, bob: Party, mallory: Party, carol: Party;

  before(async () => {
    [keybot, alice, bob, mallory, carol] = await Promise.all(['keybot', 'alice', 'bob', 'mallory', 'carol'].map((n) => party(n)));
  });

  async function joinLines(to: Party, epoch: number, key: Uint8Array, mk: Uint8Array, roster: EnvelopeMember[], issuedAt = Date.now(), ops: Uint8Array[] = []): Promise<string[]> {
    const s = await sealJoinEnvelope({
      signer: keybot.priv,
      recipientKey: to.pub,
      payload: { room: ROOM, epoch, key, issuedAt, memberKey: mk, recipient: { account: to.name, fingerprint: to.fingerprint }, roster, ops },
    });
    return envelopeParts(s.data!);
  }
  function notice(n: Omit<EpochNotice, 'room' | 'issuedAt'> & { issuedAt?: number }, signer: Party = keybot): { lines: string[]; digest: Uint8Array } {
    const signed = signEpochNotice({ signer: signer.priv, notice: { room: ROOM, issuedAt: Date.now(), ...n } });
    return { lines: envelopeParts(signed.data), digest: signed.digest };
  }
  function signedAdd(actor: Party, roster: EnvelopeMember[], target: Party): Uint8Array {
    return signRoomOp({
      signer: actor.priv,
      op: {
        action: 'add',
        room: ROOM,
        roster: rosterHash(roster),
        actor: { account: actor.name, fingerprint: actor.fingerprint },
        targets: [{ account: target.name, fingerprint: target.fingerprint }],
        issuedAt: Date.now(),
        nonce: crypto.getRandomValues(new Uint8Array(16)),
      },
    });
  }

  /** bob's companion holding epoch 100 of the room (alice, bob) under version 3, and his member key. */
  async function bobAt100(): Promise<{ e: RoomCryptoEngine; mk: Uint8Array; roster: EnvelopeMember[] }> {
    const e = new RoomCryptoEngine({ account: 'bob', privateKey: bob.priv, keybotKey: keybot.pub });
    const mk = generateMemberKey();
    const roster = [memberOf(alice), memberOf(bob)];
    const got = await fromKeybot(e, 'bob', await joinLines(bob, 100, generateRoomKey(), mk, roster));
    expect(got).to.have.length(1);
    expect(got[0]).to.include({ kind: 'key', epoch: 100 });
    return { e, mk, roster };
  }

  it('follows an epoch notice with its key line: the change is shown, verified, and the new key sent under', async function () {
    const { e, mk, roster } = await bobAt100();
    const op = signedAdd(alice, roster, carol);
    const n = notice({ epoch: 101, prev: 100, roster: rosterHash([...roster, memberOf(carol)]), ops: [op], added: [memberOf(carol)], gone: [] });
    expect(await fromKeybot(e, ROOM, n.lines)).to.deep.equal([]);
    const key = generateRoomKey();
    const line = wrapEpochKey({ memberKey: mk, key, room: ROOM, epoch: 101, account: 'bob', digest: n.digest });
    const [r] = await fromKeybot(e, 'bob', [line]);
    expect(r).to.deep.include({ kind: 'key', epoch: 101, previousEpoch: 100, changes: ['carol added by alice, verified'] });
    expect(e.roomInfo(ROOM)?.members.sort()).to.deep.equal(['alice', 'bob', 'carol']);
    expect(e.encryptOutgoing({ room: ROOM, text: 'hi' }).status).to.equal('ok');
  });

  it('refuses a genuine-looking epoch notice that adds someone no operation names (a forged addition), and installs nothing', async function () {
    const { e, mk, roster } = await bobAt100();
    // Signed by keybot's own key (whoever controls keybot's signer, or a keybot bug): mallory in `add`, no operation.
    const n = notice({ epoch: 101, prev: 100, roster: rosterHash([...roster, memberOf(mallory)]), ops: [], added: [memberOf(mallory)], gone: [] });
    const [r] = await fromKeybot(e, ROOM, n.lines);
    expect(r).to.include({ kind: 'envelope-rejected', code: 'unexplained-member', epoch: 101 });
    expect((r as { accounts?: string[] }).accounts).to.deep.equal(['mallory']);
    // Its key line, genuine for that notice, installs nothing.
    const line = wrapEpochKey({ memberKey: mk, key: generateRoomKey(), room: ROOM, epoch: 101, account: 'bob', digest: n.digest });
    expect(await fromKeybot(e, 'bob', [line])).to.deep.equal([]);
    expect(e.roomInfo(ROOM)).to.deep.include({ epoch: 100, members: ['alice', 'bob'] });
    // An operation by someone who is not a member (mallory adds herself) explains nothing either.
    const self = signedAdd(mallory, roster, carol);
    const n2 = notice({ epoch: 102, prev: 100, roster: rosterHash([...roster, memberOf(carol)]), ops: [self], added: [memberOf(carol)], gone: [] });
    expect((await fromKeybot(e, ROOM, n2.lines))[0]).to.include({ kind: 'envelope-rejected', epoch: 102 });
    expect(e.roomInfo(ROOM)).to.deep.include({ epoch: 100 });
    // A notice not signed by the pinned keybot key is refused before anything else.
    const forged = notice({ epoch: 103, prev: 100, roster: rosterHash(roster), ops: [], added: [], gone: [] }, mallory);
    expect((await fromKeybot(e, ROOM, forged.lines))[0]).to.include({ kind: 'envelope-rejected', code: 'bad-signature' });
  });

  it('refuses a join envelope that adds someone no operation names to the roster it holds', async function () {
    const { e } = await bobAt100();
    const got = await fromKeybot(e, 'bob', await joinLines(bob, 101, generateRoomKey(), generateMemberKey(), [memberOf(alice), memberOf(bob), memberOf(mallory)]));
    expect(got[0]).to.include({ kind: 'envelope-rejected', code: 'unexplained-member', epoch: 101 });
    expect(e.roomInfo(ROOM)).to.deep.include({ epoch: 100 });
  });

  it('refuses a join envelope not signed by the pinned keybot key, or sealed for someone else, saying which', async function () {
    const e = new RoomCryptoEngine({ account: 'bob', privateKey: bob.priv, keybotKey: keybot.pub });
    const roster = [memberOf(alice), memberOf(bob)];
    const forged = await sealJoinEnvelope({
      signer: mallory.priv,
      recipientKey: bob.pub,
      payload: { room: ROOM, epoch: 100, key: generateRoomKey(), issuedAt: Date.now(), memberKey: generateMemberKey(), recipient: { account: 'bob', fingerprint: bob.fingerprint }, roster, ops: [] },
    });
    const [r] = await fromKeybot(e, 'bob', envelopeParts(forged.data!));
    expect(r).to.include({ kind: 'envelope-rejected', code: 'bad-signature' });
    expect((r as { reason: string }).reason).to.match(/^it is not signed by the pinned keybot key/);
    const carols = await sealJoinEnvelope({
      signer: keybot.priv,
      recipientKey: carol.pub,
      payload: { room: ROOM, epoch: 100, key: generateRoomKey(), issuedAt: Date.now(), memberKey: generateMemberKey(), recipient: { account: 'carol', fingerprint: carol.fingerprint }, roster: [...roster, memberOf(carol)], ops: [] },
    });
    const [c] = await fromKeybot(e, 'bob', envelopeParts(carols.data!));
    expect(c).to.include({ kind: 'envelope-rejected', code: 'not-for-me' });
    expect(e.roomInfo(ROOM)).to.equal(undefined);
  });

  it('refuses a downgrade to version 2 for a room it holds under version 3', async function () {
    const { e } = await bobAt100();
    const v2 = await envelopeLines({ to: bob, signer: keybot, room: ROOM, epoch: 101, members: [memberOf(alice), memberOf(bob)] });
    const [r] = await fromKeybot(e, 'bob', v2);
    expect(r).to.include({ kind: 'envelope-rejected', code: 'downgrade', epoch: 101 });
    expect(e.roomInfo(ROOM)).to.deep.include({ epoch: 100 });
    // A room never held under version 3 still takes version 2 (the transition).
    const other = new RoomCryptoEngine({ account: 'bob', privateKey: bob.priv, keybotKey: keybot.pub });
    expect((await fromKeybot(other, 'bob', v2))[0]).to.include({ kind: 'key', epoch: 101 });
  });

  it('does not take an epoch it cannot derive (a notice that follows an epoch it does not hold): it waits for a join envelope', async function () {
    const { e, mk, roster } = await bobAt100();
    const n = notice({ epoch: 102, prev: 101, roster: rosterHash(roster), ops: [], added: [], gone: [] });
    expect(await fromKeybot(e, ROOM, n.lines)).to.deep.equal([]);
    const line = wrapEpochKey({ memberKey: mk, key: generateRoomKey(), room: ROOM, epoch: 102, account: 'bob', digest: n.digest });
    expect(await fromKeybot(e, 'bob', [line])).to.deep.equal([]);
    expect(e.roomInfo(ROOM)).to.deep.include({ epoch: 100 });
    // A notice whose roster hash is not the one its changes give: refused.
    const wrong = notice({ epoch: 103, prev: 100, roster: rosterHash([memberOf(alice)]), ops: [], added: [], gone: [] });
    expect((await fromKeybot(e, ROOM, wrong.lines))[0]).to.include({ kind: 'envelope-rejected', code: 'bad-roster' });
    // A key line made under another member key does not open.
    const ok = notice({ epoch: 104, prev: 100, roster: rosterHash([memberOf(bob)]), ops: [], added: [], gone: ['alice'] });
    await fromKeybot(e, ROOM, ok.lines);
    const stolen = wrapEpochKey({ memberKey: generateMemberKey(), key: generateRoomKey(), room: ROOM, epoch: 104, account: 'bob', digest: ok.digest });
    expect((await fromKeybot(e, 'bob', [stolen]))[0]).to.include({ kind: 'envelope-rejected', code: 'decrypt-failed' });
    expect(e.roomInfo(ROOM)).to.deep.include({ epoch: 100 });
  });
});
