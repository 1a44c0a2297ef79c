/**
 * Key envelope intake (src/client/core/envelopes.ts, through the engine): the refusals, limits and
 * reports the mutation run (issue 18) showed untested beyond engine.test.ts. Real keys and
 * envelopes sealed the way keybot seals them, no mocks.
 */
import { expect } from 'chai';
import { CompanionMemory, RoomCryptoEngine, type IncomingResult, type RoomCryptoEngineOptions } from '../../../src/client/core/index.js';
import { envelopeLines, memberOf, party, type Party } from '../fixtures.js';

const ROOM = '#sc-intake';

describe('src/client/core/envelopes.ts: what a companion does with key envelopes', function () {
  let alice: Party, bob: Party, carol: Party, keybot: Party, mallory: Party;
  let t0: number;

  before(async function () {
    this.timeout(30_000);
    [alice, bob, carol, keybot, mallory] = await Promise.all(['alice', 'bob', 'carol', 'keybot', 'mallory'].map((n) => party(n)));
  });
  beforeEach(() => {
    t0 = Date.now();
  });

  const engineFor = (over: Partial<RoomCryptoEngineOptions> = {}): RoomCryptoEngine =>
    new RoomCryptoEngine({ account: 'alice', privateKey: alice.priv, keybotKey: keybot.pub, ...over });

  async function feed(engine: RoomCryptoEngine, lines: string[], now = t0, from = 'keybot'): Promise<IncomingResult[]> {
    const out: IncomingResult[] = [];
    for (const text of lines) out.push(await engine.handleIncoming({ from, target: 'alice', command: 'NOTICE', text, now }));
    return out;
  }

  const lastOf = async (engine: RoomCryptoEngine, lines: string[], now = t0): Promise<IncomingResult> => (await feed(engine, lines, now)).pop()!;

  const sealed = (epoch: number, members: Party[] = [alice, bob], issuedAt = t0, signer: Party = keybot): Promise<string[]> =>
    envelopeLines({ to: alice, signer, room: ROOM, epoch, members: members.map((m) => memberOf(m)), issuedAt });

  it('reports a part keybot sent that does not follow the grammar, and installs nothing', async function () {
    const engine = engineFor();
    const r = (await feed(engine, ['SC1E bad 3/2 AAAA']))[0]!;
    expect(r).to.deep.equal({ kind: 'envelope-rejected', from: 'keybot', code: 'parts', reason: 'its parts did not reassemble (malformed)' });
    expect(engine.roomInfo(ROOM)).to.equal(undefined);
  });

  it('says why each refused envelope is refused: signed by someone else, or issued in the future', async function () {
    const engine = engineFor();
    const forged = await lastOf(engine, await sealed(1, [alice, bob], t0, mallory));
    expect(forged).to.include({ kind: 'envelope-rejected', code: 'bad-signature' });
    expect((forged as { reason: string }).reason).to.match(/^it is not signed by the pinned keybot key/);
    const future = await lastOf(engine, await sealed(2, [alice, bob], t0 + 3_600_000));
    expect(future).to.include({ kind: 'envelope-rejected', code: 'not-yet-valid' });
    expect((future as { reason: string }).reason).to.match(/^it was issued in the future \(check the clocks\)/);
    expect(engine.roomInfo(ROOM)).to.equal(undefined);
  });

  it("uses the engine's envelope age and skew limits, not the defaults: past the age an envelope only reads", async function () {
    const strict = engineFor({ envelopeMaxAgeMs: 1000, envelopeMaxSkewMs: 1000 });
    // A repeat of an epoch it holds, past the age: refused as expired, not taken again.
    const held = engineFor({ envelopeMaxAgeMs: 1000 });
    expect(await lastOf(held, await sealed(1), t0)).to.include({ kind: 'key', epoch: 1 });
    expect(await lastOf(held, await sealed(1), t0 + 5000)).to.include({ kind: 'envelope-rejected', code: 'expired', epoch: 1 });
    // Exactly at the age it is still sent under; a millisecond past it, only read.
    const edge = engineFor({ envelopeMaxAgeMs: 1000 });
    expect(await lastOf(edge, await sealed(1), t0 + 1000)).to.include({ kind: 'key', epoch: 1 }).and.not.have.property('readOnly');
    expect(await lastOf(edge, await sealed(2), t0 + 1001)).to.include({ kind: 'key', epoch: 2, readOnly: true });
    expect(await lastOf(strict, await sealed(1), t0 + 2000)).to.include({ kind: 'key', epoch: 1, readOnly: true });
    expect(strict.encryptOutgoing({ room: ROOM, text: 'x', now: t0 + 2000 })).to.include({ status: 'no-key' });
    expect(await lastOf(strict, await sealed(2, [alice, bob], t0 + 2000))).to.include({ kind: 'envelope-rejected', code: 'not-yet-valid' });
    expect(await lastOf(strict, await sealed(3), t0 + 500)).to.include({ kind: 'key', epoch: 3 });
  });

  it('past the age still reads an older epoch it never held (the mailbox after a long absence), and keeps sending under the newest', async function () {
    const engine = engineFor({ envelopeMaxAgeMs: 1000 });
    expect(await lastOf(engine, await sealed(5, [alice, bob], t0 + 4000), t0 + 4000)).to.include({ kind: 'key', epoch: 5 });
    expect(await lastOf(engine, await sealed(3), t0 + 5000)).to.include({ kind: 'key', epoch: 3, readOnly: true });
    expect(engine.roomInfo(ROOM)).to.include({ epoch: 5 });
    expect(engine.encryptOutgoing({ room: ROOM, text: 'x', now: t0 + 4500 })).to.include({ status: 'ok', epoch: 5 });
  });

  it('names the epoch and the room when it refuses an epoch it already has, and tells a repeat from an older one', async function () {
    const engine = engineFor();
    expect(await lastOf(engine, await sealed(7))).to.include({ kind: 'key', epoch: 7 });
    const again = await lastOf(engine, await sealed(7));
    expect(again).to.include({ code: 'not-newer', room: ROOM, epoch: 7 });
    expect((again as { reason: string }).reason).to.equal(`epoch 7 of ${ROOM} was already received`);
    // An older epoch is taken for reading only, once; a room we left takes none.
    expect(await lastOf(engine, await sealed(6))).to.include({ kind: 'key', epoch: 6, readOnly: true });
    expect(((await lastOf(engine, await sealed(6))) as { reason: string }).reason).to.equal(`epoch 6 of ${ROOM} was already received`);
    engine.forgetRoom(ROOM);
    const older = await lastOf(engine, await sealed(5));
    expect((older as { reason: string }).reason).to.equal(`epoch 5 of ${ROOM} is older than epoch 7, already received, and you left the room (a replay?)`);
  });

  it('on a new connection takes the newest epoch of an earlier one once more (keybot re-sends it at login), then calls it a repeat', async function () {
    const memory = new CompanionMemory('alice', 'irc.example');
    const first = engineFor({ memory });
    expect(await lastOf(first, await sealed(7))).to.include({ kind: 'key', epoch: 7 });
    const next = engineFor({ memory });
    expect(await lastOf(next, await sealed(7))).to.include({ kind: 'key', epoch: 7 }).and.not.have.property('readOnly');
    const again = await lastOf(next, await sealed(7));
    expect((again as { reason: string }).reason).to.equal(`epoch 7 of ${ROOM} was already received`);
    const older = await lastOf(next, await sealed(5));
    expect(older).to.include({ kind: 'key', epoch: 5, readOnly: true });
    // A newer epoch on the new connection is fine, and then a repeat of it is this connection's.
    expect(await lastOf(next, await sealed(8))).to.include({ kind: 'key', epoch: 8 });
    expect((await lastOf(next, await sealed(8)) as { reason: string }).reason).to.equal(`epoch 8 of ${ROOM} was already received`);
    // A room left on the new connection: the newest of the earlier one is a repeat, and says so.
    const gone = engineFor({ memory });
    expect(await lastOf(gone, await sealed(6))).to.include({ kind: 'key', epoch: 6, readOnly: true });
    gone.forgetRoom(ROOM);
    expect(((await lastOf(gone, await sealed(8))) as { reason: string }).reason).to.equal(`epoch 8 of ${ROOM} was already received on an earlier connection`);
    // On a connection that holds no key yet, an older epoch first is still only read from: only
    // the newest is taken to send under again.
    const third = engineFor({ memory });
    expect(await lastOf(third, await sealed(6))).to.include({ kind: 'key', epoch: 6, readOnly: true });
    expect(third.encryptOutgoing({ room: ROOM, text: 'x', now: t0 }).status).to.not.equal('ok');
  });

  it('reports which account changed key, from what to what, and keeps sending blocked until it is accepted', async function () {
    const engine = engineFor();
    expect(await lastOf(engine, await sealed(1, [alice, bob]))).to.include({ kind: 'key' });
    const swapped = await lastOf(engine, await envelopeLines({ to: alice, signer: keybot, room: ROOM, epoch: 2, members: [memberOf(alice), memberOf(mallory, 'bob')], issuedAt: t0 }));
    expect(swapped).to.include({ kind: 'envelope-rejected', code: 'member-key-changed', room: ROOM, epoch: 2, account: 'bob', pinned: bob.fingerprint, offered: mallory.fingerprint });
    expect(engine.encryptOutgoing({ room: ROOM, text: 'hi', now: t0 }).status).to.not.equal('ok');
    expect(engine.acceptMemberKey('BOB', mallory.fingerprint.toUpperCase())).to.deep.equal([ROOM]);
    // Accepting again unblocks nothing more.
    expect(engine.acceptMemberKey('bob', mallory.fingerprint)).to.deep.equal([]);
  });

  it('acceptMemberKey refuses an empty account or something that is not a fingerprint', function () {
    const engine = engineFor();
    expect(() => engine.acceptMemberKey('', bob.fingerprint)).to.throw(TypeError, /account must be a non-empty string/);
    for (const fp of ['', 'abc', `${bob.fingerprint}0`, `x${bob.fingerprint.slice(1)}`, 42 as unknown as string]) {
      expect(() => engine.acceptMemberKey('bob', fp), String(fp)).to.throw(TypeError, /fingerprint must be 40 or 64 hex digits/);
    }
  });

  it("says 'them all' when an epoch adds several people nobody signed for", async function () {
    const engine = engineFor();
    await lastOf(engine, await sealed(1, [alice]));
    const one = await lastOf(engine, await sealed(2, [alice, bob]));
    expect((one as { reason: string }).reason).to.match(/adds bob, but no member of the room signed an invite for them\. Nothing is sent/);
    const two = await lastOf(engine, await sealed(3, [alice, bob, carol]));
    expect(two).to.deep.include({ code: 'unexplained-member', accounts: ['bob', 'carol'] });
    expect((two as { reason: string }).reason).to.match(/adds bob, carol, but no member of the room signed an invite for them all\./);
  });

  it('a new key names the epoch it replaces', async function () {
    const engine = engineFor();
    const first = await lastOf(engine, await sealed(1));
    expect(first).to.include({ kind: 'key', epoch: 1 }).and.not.have.property('previousEpoch');
    expect(await lastOf(engine, await sealed(2))).to.include({ kind: 'key', epoch: 2, previousEpoch: 1 });
  });

  describe('before keybot is pinned', function () {
    it('keeps at most maxPendingEnvelopes envelopes, dropping the oldest', async function () {
      const engine = new RoomCryptoEngine({ account: 'alice', privateKey: alice.priv, maxPendingEnvelopes: 2 });
      for (const epoch of [1, 2, 3]) expect(await lastOf(engine, await sealed(epoch))).to.include({ kind: 'held', what: 'envelope' });
      const results = await engine.setKeybotKey(keybot.pub, t0);
      expect(results.map((r) => (r as { epoch?: number }).epoch)).to.deep.equal([2, 3]);
    });

    it('drops envelopes that waited longer than the envelope age limit', async function () {
      const engine = new RoomCryptoEngine({ account: 'alice', privateKey: alice.priv, envelopeMaxAgeMs: 60_000 });
      await lastOf(engine, await sealed(1), t0);
      await lastOf(engine, await sealed(2, [alice, bob], t0 + 30_000), t0 + 30_000);
      engine.sweep(t0 + 60_000);
      const results = await engine.setKeybotKey(keybot.pub, t0 + 60_000);
      expect(results.map((r) => (r as { epoch?: number }).epoch)).to.deep.equal([2]);
    });

    it('keeps envelopes 15 minutes by default', async function () {
      const engine = new RoomCryptoEngine({ account: 'alice', privateKey: alice.priv });
      await lastOf(engine, await sealed(1), t0);
      engine.sweep(t0 + 15 * 60_000 - 1);
      expect((await engine.setKeybotKey(keybot.pub, t0 + 15 * 60_000 - 1)).map((r) => (r as { epoch?: number }).epoch)).to.deep.equal([1]);
      const late = new RoomCryptoEngine({ account: 'alice', privateKey: alice.priv });
      await lastOf(late, await sealed(1), t0);
      late.sweep(t0 + 15 * 60_000);
      expect(await late.setKeybotKey(keybot.pub, t0 + 15 * 60_000)).to.deep.equal([]);
    });

    it('once keybot is distrusted, drops what it held and refuses every envelope with the reason given', async function () {
      const engine = new RoomCryptoEngine({ account: 'alice', privateKey: alice.priv });
      await lastOf(engine, await sealed(1));
      engine.distrustKeybot('its key differs from the one pinned for this server');
      const r = await lastOf(engine, await sealed(2));
      expect(r).to.deep.equal({
        kind: 'envelope-rejected',
        from: 'keybot',
        code: 'keybot-untrusted',
        reason: "keybot's key is not trusted: its key differs from the one pinned for this server",
      });
      // Pinning a key later ends the distrust; the envelope held before it was dropped.
      expect(await engine.setKeybotKey(keybot.pub, t0)).to.deep.equal([]);
      expect(await lastOf(engine, await sealed(3))).to.include({ kind: 'key', epoch: 3 });
    });

    it('refuses to distrust a keybot already pinned, to pin another key, or to pin something that is not a public key', async function () {
      const engine = engineFor();
      expect(() => engine.distrustKeybot('x')).to.throw(/a keybot key is already pinned/);
      expect(() => engine.setKeybotKey(mallory.pub)).to.throw(/keybot is already pinned to/);
      expect(() => new RoomCryptoEngine({ account: 'alice', privateKey: alice.priv }).setKeybotKey(alice.priv as never)).to.throw(TypeError, /expected a PublicKeyHandle/);
      expect(await engine.setKeybotKey(keybot.pub, t0)).to.deep.equal([]);
    });
  });

  it('a forged envelope from another nick is reported on its first part only, whatever its size', async function () {
    const engine = engineFor();
    const lines = await sealed(1);
    expect(lines.length).to.be.greaterThan(1);
    const out = await feed(engine, lines, t0, 'mallory');
    expect(out[0]).to.deep.include({ kind: 'envelope-rejected', code: 'not-keybot' });
    expect((out[0] as { reason: string }).reason).to.equal('key envelopes are accepted only from keybot, and this came from mallory');
    for (const r of out.slice(1)) expect(r).to.deep.equal({ kind: 'hidden' });
    // A line that merely looks like a part (not one) is reported too.
    expect((await feed(engine, ['SC1E x'], t0, 'mallory'))[0]).to.include({ code: 'not-keybot' });
  });
});
