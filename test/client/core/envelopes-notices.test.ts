/**
 * The companion core and envelope version 3, the edges of an epoch notice and its key line
 * (src/client/core/envelopes.ts; docs/PROTOCOL.md "Envelope version 3"): which notices are ours
 * to follow, the engine's own age and skew limits, what the key event lists, and a key line that
 * comes early, late, from someone else or for another epoch. Each test kills mutants the issue-18
 * run of the core left alive. Real keys, keybot-signed notices, no mocks.
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
  type RoomOpAction,
} from '../../../src/crypto/index.js';
import { RoomCryptoEngine, type RoomCryptoEngineOptions } from '../../../src/client/index.js';
import { envelopeLines, memberOf, party, type Party, envelopeParts, fromKeybot } from '../fixtures.js';

const ROOM = '#sc-notices001';

describe('src/client/core/envelopes.ts: which epoch notices and key lines a companion follows', function () {
  this.timeout(20_000);
  let keybot: Party, alice: Party, bob: Party, carol: Party;

  before(async () => {
    [keybot, alice, bob, carol] = await Promise.all(['keybot', 'alice', 'bob', 'carol'].map((n) => party(n)));
  });

  function notice(n: Omit<EpochNotice, 'room' | 'issuedAt'> & { issuedAt?: number }): { lines: string[]; digest: Uint8Array } {
    const signed = signEpochNotice({ signer: keybot.priv, notice: { room: ROOM, issuedAt: Date.now(), ...n } });
    return { lines: envelopeParts(signed.data), digest: signed.digest };
  }
  function op(action: RoomOpAction, actor: Party, roster: EnvelopeMember[], targets: Party[]): Uint8Array {
    return signRoomOp({
      signer: actor.priv,
      op: {
        action,
        room: ROOM,
        roster: rosterHash(roster),
        actor: { account: actor.name, fingerprint: actor.fingerprint },
        targets: targets.map((t) => ({ account: t.name, fingerprint: t.fingerprint })),
        issuedAt: Date.now(),
        nonce: crypto.getRandomValues(new Uint8Array(16)),
      },
    });
  }
  const keyLine = (mk: Uint8Array, epoch: number, digest: Uint8Array): string =>
    wrapEpochKey({ memberKey: mk, key: generateRoomKey(), room: ROOM, epoch, account: 'bob', digest });

  /** bob's companion holding epoch 100 of the room (alice, bob, carol) under version 3, and his member key. */
  async function bobAt100(over: Partial<RoomCryptoEngineOptions> = {}): Promise<{ e: RoomCryptoEngine; mk: Uint8Array; roster: EnvelopeMember[] }> {
    const e = new RoomCryptoEngine({ account: 'bob', privateKey: bob.priv, keybotKey: keybot.pub, ...over });
    const mk = generateMemberKey();
    const roster = [memberOf(alice), memberOf(bob), memberOf(carol)];
    const sealed = await sealJoinEnvelope({
      signer: keybot.priv,
      recipientKey: bob.pub,
      payload: { room: ROOM, epoch: 100, key: generateRoomKey(), issuedAt: Date.now(), memberKey: mk, recipient: { account: 'bob', fingerprint: bob.fingerprint }, roster, ops: [] },
    });
    const got = await fromKeybot(e, 'bob', envelopeParts(sealed.data!));
    expect(got[0]).to.include({ kind: 'key', epoch: 100 });
    return { e, mk, roster };
  }
  /** The same roster at the next epoch: a rotation, which needs no operation. */
  const rotation = (roster: EnvelopeMember[], epoch = 101, prev = 100, issuedAt?: number) =>
    notice({ epoch, prev, roster: rosterHash(roster), ops: [], added: [], gone: [], ...(issuedAt !== undefined ? { issuedAt } : {}) });

  it('follows only a notice from the epoch it holds: one that follows another epoch installs nothing, nor does its key line', async function () {
    const { e, mk, roster } = await bobAt100();
    const skip = rotation(roster, 102, 99);
    expect(await fromKeybot(e, ROOM, skip.lines)).to.deep.equal([]);
    expect(await fromKeybot(e, 'bob', [keyLine(mk, 102, skip.digest)])).to.deep.equal([]);
    expect(e.roomInfo(ROOM)).to.deep.include({ epoch: 100 });
    // The notice that does follow epoch 100 is taken, with its key line.
    const next = rotation(roster);
    expect(await fromKeybot(e, ROOM, next.lines)).to.deep.equal([]);
    expect((await fromKeybot(e, 'bob', [keyLine(mk, 101, next.digest)]))[0]).to.include({ kind: 'key', epoch: 101, previousEpoch: 100 });
  });

  it('does not follow a notice into a room it holds under version 2: keybot sends it a join envelope instead', async function () {
    const e = new RoomCryptoEngine({ account: 'bob', privateKey: bob.priv, keybotKey: keybot.pub });
    const members = [alice, bob, carol].map((p) => memberOf(p));
    expect((await fromKeybot(e, 'bob', await envelopeLines({ to: bob, signer: keybot, room: ROOM, epoch: 100, members })))[0]).to.include({ kind: 'key', epoch: 100 });
    const next = rotation(members);
    expect(await fromKeybot(e, ROOM, next.lines)).to.deep.equal([]);
    expect(await fromKeybot(e, 'bob', [keyLine(generateMemberKey(), 101, next.digest)])).to.deep.equal([]);
    expect(e.roomInfo(ROOM)).to.deep.include({ epoch: 100 });
  });

  it("judges a notice by the engine's own age and skew limits, not the defaults", async function () {
    const t0 = Date.now();
    const { e, roster } = await bobAt100({ envelopeMaxAgeMs: 60_000, envelopeMaxSkewMs: 1000 });
    // Two minutes old: within the 15-minute default, past this engine's minute.
    expect((await fromKeybot(e, ROOM, rotation(roster, 101, 100, t0 - 120_000).lines, t0))[0]).to.include({ kind: 'envelope-rejected', code: 'expired' });
    // Five seconds ahead: within the 5-minute default skew, past this engine's second.
    const ahead = await fromKeybot(e, ROOM, rotation(roster, 101, 100, t0 + 5000).lines, t0);
    expect(ahead[0]).to.include({ kind: 'envelope-rejected', code: 'not-yet-valid' });
    expect((ahead[0] as { reason: string }).reason).to.match(/^epoch notice: it was issued in the future/);
    // The defaults take both.
    const lenient = await bobAt100();
    expect(await fromKeybot(lenient.e, ROOM, rotation(lenient.roster, 101, 100, t0 - 120_000).lines, t0)).to.deep.equal([]);
  });

  it('refuses a notice whose roster is not what its operations give as bad-roster, naming nobody as unexplained', async function () {
    const { e, roster } = await bobAt100();
    // No operation, and a roster without carol: a departure must be listed as gone, not just dropped.
    const n = notice({ epoch: 101, prev: 100, roster: rosterHash(roster.slice(0, 2)), ops: [], added: [], gone: [] });
    const [r] = await fromKeybot(e, ROOM, n.lines);
    expect(r).to.include({ kind: 'envelope-rejected', code: 'bad-roster', epoch: 101, room: ROOM });
    expect(r).to.not.have.property('accounts');
    expect((r as { reason: string }).reason).to.match(/: epoch 101 of #sc-notices001 \(.+\)\. Nothing is sent to #sc-notices001 under it$/);
  });

  it('shows a signed removal and a signed leave, verified, and not who merely left', async function () {
    const { e, mk, roster } = await bobAt100();
    const withoutCarol = roster.filter((m) => m.account !== 'carol');
    const removed = notice({ epoch: 101, prev: 100, roster: rosterHash(withoutCarol), ops: [op('remove', alice, roster, [carol])], added: [], gone: ['carol'] });
    expect(await fromKeybot(e, ROOM, removed.lines)).to.deep.equal([]);
    expect((await fromKeybot(e, 'bob', [keyLine(mk, 101, removed.digest)]))[0]).to.deep.include({ kind: 'key', epoch: 101, changes: ['carol removed by alice, verified'] });
    // alice leaves by a signed leave: "alice left, verified".
    const onlyBob = withoutCarol.filter((m) => m.account !== 'alice');
    const left = notice({ epoch: 102, prev: 101, roster: rosterHash(onlyBob), ops: [op('leave', alice, withoutCarol, [])], added: [], gone: ['alice'] });
    expect(await fromKeybot(e, ROOM, left.lines)).to.deep.equal([]);
    expect((await fromKeybot(e, 'bob', [keyLine(mk, 102, left.digest)]))[0]).to.deep.include({ kind: 'key', epoch: 102, changes: ['alice left, verified'] });
    // A departure without an operation (a PART) is in the roster, not in the changes.
    const b2 = await bobAt100();
    const parted = notice({ epoch: 101, prev: 100, roster: rosterHash(withoutCarol), ops: [], added: [], gone: ['carol'] });
    expect(await fromKeybot(b2.e, ROOM, parted.lines)).to.deep.equal([]);
    const [r] = await fromKeybot(b2.e, 'bob', [keyLine(b2.mk, 101, parted.digest)]);
    expect(r).to.include({ kind: 'key', epoch: 101 });
    expect((r as { changes?: string[] }).changes ?? []).to.deep.equal([]);
    expect(b2.e.roomInfo(ROOM)?.members.sort()).to.deep.equal(['alice', 'bob']);
  });

  it('takes the member key of a join envelope re-sent for the epoch it holds, and follows the next notice with it', async function () {
    const { e, roster } = await bobAt100();
    // keybot re-sends epoch 100 at a login (or after `key`), with the member key it keeps now.
    const mk2 = generateMemberKey();
    const again = await sealJoinEnvelope({
      signer: keybot.priv,
      recipientKey: bob.pub,
      payload: { room: ROOM, epoch: 100, key: generateRoomKey(), issuedAt: Date.now(), memberKey: mk2, recipient: { account: 'bob', fingerprint: bob.fingerprint }, roster, ops: [] },
    });
    expect((await fromKeybot(e, 'bob', envelopeParts(again.data!)))[0]).to.include({ kind: 'envelope-rejected', code: 'not-newer', epoch: 100 });
    const n = rotation(roster);
    expect(await fromKeybot(e, ROOM, n.lines)).to.deep.equal([]);
    expect((await fromKeybot(e, 'bob', [keyLine(mk2, 101, n.digest)]))[0]).to.include({ kind: 'key', epoch: 101 });
  });

  it('keeps its member key when a join envelope of an older epoch it holds comes again (a replay), and follows the next notice with it', async function () {
    const { e, mk, roster } = await bobAt100();
    const n101 = rotation(roster);
    expect(await fromKeybot(e, ROOM, n101.lines)).to.deep.equal([]);
    expect((await fromKeybot(e, 'bob', [keyLine(mk, 101, n101.digest)]))[0]).to.include({ kind: 'key', epoch: 101 });
    // Epoch 100's envelope again, genuine but old, carrying another member key: it changes nothing.
    const old = await sealJoinEnvelope({
      signer: keybot.priv,
      recipientKey: bob.pub,
      payload: { room: ROOM, epoch: 100, key: generateRoomKey(), issuedAt: Date.now(), memberKey: generateMemberKey(), recipient: { account: 'bob', fingerprint: bob.fingerprint }, roster, ops: [] },
    });
    expect((await fromKeybot(e, 'bob', envelopeParts(old.data!)))[0]).to.include({ kind: 'envelope-rejected', code: 'not-newer', epoch: 100 });
    const n102 = rotation(roster, 102, 101);
    expect(await fromKeybot(e, ROOM, n102.lines)).to.deep.equal([]);
    expect((await fromKeybot(e, 'bob', [keyLine(mk, 102, n102.digest)]))[0]).to.include({ kind: 'key', epoch: 102 });
  });

  it('reports a key line that does not come from keybot, naming who sent it', async function () {
    const { e, mk, roster } = await bobAt100();
    const n = rotation(roster);
    await fromKeybot(e, ROOM, n.lines);
    const [r] = await fromKeybot(e, 'bob', [keyLine(mk, 101, n.digest)], Date.now(), 'mallory');
    expect(r).to.include({ kind: 'envelope-rejected', code: 'not-keybot' });
    expect((r as { reason: string }).reason).to.equal('key envelopes are accepted only from keybot, and this key line came from mallory');
    expect(e.roomInfo(ROOM)).to.deep.include({ epoch: 100 });
  });

  it('keeps a key line that comes before its notice and installs it when the notice comes; not one of another epoch', async function () {
    const { e, mk, roster } = await bobAt100();
    const n101 = rotation(roster);
    const n102 = rotation(roster, 102, 101);
    // The key line of 102 comes first: the notice of 101 does not take it (it would not open).
    expect(await fromKeybot(e, 'bob', [keyLine(mk, 102, n102.digest)])).to.deep.equal([]);
    expect(await fromKeybot(e, ROOM, n101.lines)).to.deep.equal([]);
    expect(e.roomInfo(ROOM)).to.deep.include({ epoch: 100 });
    // 101's key line, then early: 102's key line before 102's notice, which installs it.
    expect((await fromKeybot(e, 'bob', [keyLine(mk, 101, n101.digest)]))[0]).to.include({ kind: 'key', epoch: 101 });
    expect(await fromKeybot(e, 'bob', [keyLine(mk, 102, n102.digest)])).to.deep.equal([]);
    expect((await fromKeybot(e, ROOM, n102.lines))[0]).to.include({ kind: 'key', epoch: 102, previousEpoch: 101 });
  });

  it('keeps early key lines 30 seconds and the last four only', async function () {
    const t0 = Date.now();
    const { e, mk, roster } = await bobAt100();
    const n101 = rotation(roster, 101, 100, t0);
    // 101's key line, then after 30 s another early line: the first is forgotten.
    await fromKeybot(e, 'bob', [keyLine(mk, 101, n101.digest)], t0);
    await fromKeybot(e, 'bob', [keyLine(mk, 150, n101.digest)], t0 + 30_000);
    expect(await fromKeybot(e, ROOM, n101.lines, t0 + 30_000)).to.deep.equal([]);
    expect(e.roomInfo(ROOM)).to.deep.include({ epoch: 100 });
    // Just under 30 s it is kept; and four early lines after it push it out.
    const b = await bobAt100();
    const m101 = rotation(b.roster, 101, 100, t0);
    await fromKeybot(b.e, 'bob', [keyLine(b.mk, 101, m101.digest)], t0);
    await fromKeybot(b.e, 'bob', [keyLine(b.mk, 150, m101.digest)], t0 + 29_999);
    expect((await fromKeybot(b.e, ROOM, m101.lines, t0 + 29_999))[0]).to.include({ kind: 'key', epoch: 101 });
    const c = await bobAt100();
    const k101 = rotation(c.roster, 101, 100, t0);
    await fromKeybot(c.e, 'bob', [keyLine(c.mk, 101, k101.digest)], t0);
    for (const epoch of [150, 151, 152]) await fromKeybot(c.e, 'bob', [keyLine(c.mk, epoch, k101.digest)], t0);
    expect((await fromKeybot(c.e, ROOM, k101.lines, t0))[0]).to.include({ kind: 'key', epoch: 101 });
    const d = await bobAt100();
    const d101 = rotation(d.roster, 101, 100, t0);
    await fromKeybot(d.e, 'bob', [keyLine(d.mk, 101, d101.digest)], t0);
    for (const epoch of [150, 151, 152, 153]) await fromKeybot(d.e, 'bob', [keyLine(d.mk, epoch, d101.digest)], t0);
    expect(await fromKeybot(d.e, ROOM, d101.lines, t0)).to.deep.equal([]);
    expect(d.e.roomInfo(ROOM)).to.deep.include({ epoch: 100 });
  });
});
