import { expect } from 'chai';
import {
  MAX_LINE_PAYLOAD,
  encryptRoomMessage,
  generateRoomKey,
  peekRoomMessage,
} from '../../../src/crypto/index.js';
import {
  RoomCryptoEngine,
  type IncomingLine,
  type IncomingResult,
  type RoomCryptoEngineOptions,
} from '../../../src/client/core/index.js';
import { envelopeLines, memberOf, party, type Party } from '../fixtures.js';

const ROOM = '#sc-test';

describe('src/client/core/engine.ts', function () {
  let alice: Party, bob: Party, carol: Party, keybot: Party, mallory: Party;
  let t0: number;

  before(async function () {
    this.timeout(30_000);
    [alice, bob, carol, keybot, mallory] = await Promise.all(['alice', 'bob', 'carol', 'keybot', 'mallory'].map((n) => party(n)));
  });

  beforeEach(function () {
    t0 = Date.now();
  });

  function engineFor(p: Party, over: Partial<RoomCryptoEngineOptions> = {}): RoomCryptoEngine {
    return new RoomCryptoEngine({ account: p.name, privateKey: p.priv, keybotKey: keybot.pub, ...over });
  }

  /** Feed lines in order; return the result of each. */
  async function feed(engine: RoomCryptoEngine, from: string, target: string, lines: string[], now = t0): Promise<IncomingResult[]> {
    const out: IncomingResult[] = [];
    for (const text of lines) out.push(await engine.handleIncoming({ from, target, command: 'PRIVMSG', text, now }));
    return out;
  }

  const last = <T>(xs: T[]): T => xs[xs.length - 1]!;

  /** Give `engine` (owned by `to`) the key of `epoch` for ROOM, shared by alice, bob and carol. */
  async function keyUp(engine: RoomCryptoEngine, to: Party, epoch: number, key: Uint8Array, now = t0): Promise<IncomingResult> {
    const lines = await envelopeLines({
      to,
      signer: keybot,
      room: ROOM,
      epoch,
      key,
      members: [memberOf(alice), memberOf(bob), memberOf(carol)],
      issuedAt: now,
    });
    return last(await feed(engine, 'keybot', to.name, lines, now));
  }

  describe('envelopes', function () {
    it('accepts a valid envelope from keybot: parts are hidden, the last one installs the key', async function () {
      const engine = engineFor(alice);
      const lines = await envelopeLines({ to: alice, signer: keybot, room: ROOM, epoch: 100, members: [memberOf(alice), memberOf(bob)] });
      expect(lines.length).to.be.greaterThan(1);
      const results = await feed(engine, 'keybot', 'alice', lines);
      for (const r of results.slice(0, -1)) expect(r).to.deep.equal({ kind: 'hidden' });
      const key = last(results);
      expect(key).to.include({ kind: 'key', room: ROOM, epoch: 100, verified: true });
      expect((key as { members: string[] }).members).to.deep.equal(['alice', 'bob']);
      expect(engine.roomInfo(ROOM)).to.include({ epoch: 100, hasKey: true });
    });

    it('accepts the envelope whatever the case of the nick keybot', async function () {
      const engine = engineFor(alice);
      const lines = await envelopeLines({ to: alice, signer: keybot, room: ROOM, epoch: 7, members: [memberOf(alice)] });
      expect(last(await feed(engine, 'KeyBot', 'alice', lines))).to.include({ kind: 'key', epoch: 7 });
    });

    it('rejects an envelope from any other nick, reporting it once and never applying it', async function () {
      const engine = engineFor(alice);
      // Even one correctly signed by keybot's key: only the reserved nick may deliver envelopes.
      const lines = await envelopeLines({ to: alice, signer: keybot, room: ROOM, epoch: 100, members: [memberOf(alice)] });
      const results = await feed(engine, 'mallory', 'alice', lines);
      expect(results[0]).to.include({ kind: 'envelope-rejected', code: 'not-keybot', from: 'mallory' });
      for (const r of results.slice(1)) expect(r).to.deep.equal({ kind: 'hidden' });
      expect(engine.roomInfo(ROOM)).to.equal(undefined);
      expect(engine.encryptOutgoing({ room: ROOM, text: 'hi' }).status).to.equal('no-key');
    });

    it('rejects an envelope signed by another key than the pinned keybot key', async function () {
      const engine = engineFor(alice);
      const lines = await envelopeLines({ to: alice, signer: mallory, room: ROOM, epoch: 100, members: [memberOf(alice), memberOf(mallory)] });
      const r = last(await feed(engine, 'keybot', 'alice', lines));
      expect(r).to.include({ kind: 'envelope-rejected', code: 'bad-signature' });
      expect(engine.roomInfo(ROOM)).to.equal(undefined);
    });

    it('rejects an envelope for the epoch held, and takes an older one for reading only', async function () {
      const engine = engineFor(alice);
      expect(await keyUp(engine, alice, 200, generateRoomKey())).to.include({ kind: 'key', epoch: 200 });
      const equal = await keyUp(engine, alice, 200, generateRoomKey());
      expect(equal).to.include({ kind: 'envelope-rejected', code: 'not-newer', epoch: 200 });
      const older = await keyUp(engine, alice, 199, generateRoomKey());
      expect(older).to.include({ kind: 'key', epoch: 199, readOnly: true });
      expect(await keyUp(engine, alice, 199, generateRoomKey())).to.include({ kind: 'envelope-rejected', code: 'not-newer', epoch: 199 });
      expect(engine.roomInfo(ROOM)!.epoch).to.equal(200);
    });

    it('rejects an envelope encrypted to another member, and one that does not list our account with our key', async function () {
      const engine = engineFor(alice);
      const toBob = await envelopeLines({ to: bob, signer: keybot, room: ROOM, epoch: 5, members: [memberOf(alice), memberOf(bob)] });
      expect(last(await feed(engine, 'keybot', 'alice', toBob))).to.include({ kind: 'envelope-rejected', code: 'not-for-me' });
      // Encrypted to alice's key, but keybot's signed member list gives that key to bob only.
      const misaddressed = await envelopeLines({
        to: alice,
        signer: keybot,
        room: ROOM,
        epoch: 6,
        members: [memberOf(bob), memberOf(alice, 'bob2')],
      });
      expect(last(await feed(engine, 'keybot', 'alice', misaddressed))).to.include({ kind: 'envelope-rejected', code: 'wrong-recipient' });
      expect(engine.roomInfo(ROOM)).to.equal(undefined);
    });

    it('takes an envelope issued long ago (a replay, or a mailbox) for reading only: nothing is sent under it', async function () {
      const engine = engineFor(alice);
      const lines = await envelopeLines({ to: alice, signer: keybot, room: ROOM, epoch: 9, members: [memberOf(alice)], issuedAt: t0 });
      // Received an hour after keybot sealed it.
      expect(last(await feed(engine, 'keybot', 'alice', lines, t0 + 3_600_000))).to.include({ kind: 'key', epoch: 9, readOnly: true });
      expect(engine.encryptOutgoing({ room: ROOM, text: 'x', now: t0 + 3_600_000 })).to.include({ status: 'no-key' });
    });

    it('holds envelopes that arrive before the keybot key is pinned, and checks them once it is', async function () {
      const engine = new RoomCryptoEngine({ account: 'alice', privateKey: alice.priv });
      const lines = await envelopeLines({ to: alice, signer: keybot, room: ROOM, epoch: 11, members: [memberOf(alice)] });
      expect(last(await feed(engine, 'keybot', 'alice', lines))).to.include({ kind: 'held', what: 'envelope' });
      expect(engine.roomInfo(ROOM)).to.equal(undefined);
      const results = await engine.setKeybotKey(keybot.pub, t0);
      expect(results).to.have.length(1);
      expect(results[0]).to.include({ kind: 'key', epoch: 11 });
      expect(() => engine.setKeybotKey(mallory.pub)).to.throw(/already pinned/);
    });
  });

  describe('room messages', function () {
    let key: Uint8Array;
    let a: RoomCryptoEngine, b: RoomCryptoEngine;

    beforeEach(async function () {
      key = generateRoomKey();
      a = engineFor(alice);
      b = engineFor(bob);
      await keyUp(a, alice, 300, key);
      await keyUp(b, bob, 300, key);
    });

    it('decrypts and verifies a message from a member', async function () {
      const out = a.encryptOutgoing({ room: ROOM, text: 'hello bob ✓' });
      expect(out.status).to.equal('ok');
      if (out.status !== 'ok') return;
      expect(out.lines).to.have.length(1);
      expect(out.lines[0]).to.match(/^SC1M /);
      const [r] = await feed(b, 'alice', ROOM, out.lines);
      expect(r).to.deep.equal({ kind: 'message', room: ROOM, from: 'alice', text: 'hello bob ✓', epoch: 300, seq: 1, command: 'PRIVMSG', verified: true });
    });

    it('matches the room and sender case-insensitively', async function () {
      const out = a.encryptOutgoing({ room: '#SC-Test', text: 'hi' });
      if (out.status !== 'ok') throw new Error(out.reason);
      const [r] = await feed(b, 'Alice', '#sc-TEST', out.lines);
      expect(r).to.include({ kind: 'message', text: 'hi' });
    });

    it('splits long and multi-line text into lines that each fit, and keeps a /me a /me', async function () {
      const long = 'word '.repeat(200).trim();
      const out = a.encryptOutgoing({ room: ROOM, text: `${long}\n\nsecond line\n\x01ACTION ${'waves '.repeat(40)}\x01` });
      if (out.status !== 'ok') throw new Error(out.reason);
      for (const l of out.lines) expect(Buffer.byteLength(l)).to.be.at.most(MAX_LINE_PAYLOAD);
      const results = await feed(b, 'alice', ROOM, out.lines);
      const texts = results.map((r) => (r.kind === 'message' ? r.text : `<${r.kind}>`));
      expect(texts.join('').replace(/\x01ACTION [^\x01]*\x01/g, '')).to.equal(`${long}second line`);
      const actions = texts.filter((t) => t.startsWith('\x01ACTION '));
      expect(actions.length).to.be.greaterThan(1);
      for (const t of actions) expect(t).to.match(/^\x01ACTION [^\x01]+\x01$/);
      expect(results.map((r) => (r as { seq: number }).seq)).to.deep.equal(results.map((_, i) => i + 1));
    });

    it('rejects a tampered message', async function () {
      const out = a.encryptOutgoing({ room: ROOM, text: 'pay bob 10' });
      if (out.status !== 'ok') throw new Error(out.reason);
      const line = out.lines[0]!;
      const bytes = Buffer.from(line.slice(5), 'base64');
      bytes[30] ^= 0x01;
      const [r] = await feed(b, 'alice', ROOM, [`SC1M ${bytes.toString('base64')}`]);
      expect(r).to.include({ kind: 'undecryptable', code: 'decrypt-failed', from: 'alice' });
    });

    it('rejects a replayed message', async function () {
      const out = a.encryptOutgoing({ room: ROOM, text: 'once' });
      if (out.status !== 'ok') throw new Error(out.reason);
      const [first, again] = await feed(b, 'alice', ROOM, [out.lines[0]!, out.lines[0]!]);
      expect(first).to.include({ kind: 'message' });
      expect(again).to.include({ kind: 'undecryptable', code: 'replay' });
    });

    it('rejects a message forged in another member\'s name', async function () {
      // carol holds the room key and signs with her own key, but claims to be bob.
      const forged = encryptRoomMessage({ roomKey: key, room: ROOM, epoch: 300, sender: 'bob', seq: 1, plaintext: 'I resign', signer: carol.priv });
      // Delivered under bob's nick (a lying server): bob's listed key does not verify it.
      const [asBob] = await feed(a, 'bob', ROOM, forged.lines);
      expect(asBob).to.include({ kind: 'undecryptable', code: 'bad-signature', from: 'bob' });
      // Sent by carol herself: the sender bound inside is not the nick on the line.
      const [asCarol] = await feed(a, 'carol', ROOM, forged.lines);
      expect(asCarol).to.include({ kind: 'undecryptable', code: 'decrypt-failed', from: 'carol' });
    });

    it('rejects a message from someone the envelope does not list, even with the right key', async function () {
      const m = encryptRoomMessage({ roomKey: key, room: ROOM, epoch: 300, sender: 'mallory', seq: 1, plaintext: 'hi', signer: mallory.priv });
      const [r] = await feed(a, 'mallory', ROOM, m.lines);
      expect(r).to.include({ kind: 'undecryptable', code: 'not-a-member' });
    });

    it('sanitises decrypted text', async function () {
      const m = encryptRoomMessage({ roomKey: key, room: ROOM, epoch: 300, sender: 'alice', seq: 9, plaintext: 'a\r\nPRIVMSG #x :b\x00c\x01DCC', signer: alice.priv });
      const [r] = await feed(b, 'alice', ROOM, m.lines);
      expect(r).to.include({ kind: 'message', text: 'aPRIVMSG #x :bcDCC' });
    });

    it('continues above the sequence numbers of another session of the same account', async function () {
      const other = encryptRoomMessage({ roomKey: key, room: ROOM, epoch: 300, sender: 'alice', seq: 41, plaintext: 'from my laptop', signer: alice.priv });
      expect((await feed(a, 'alice', ROOM, other.lines))[0]).to.include({ kind: 'message' });
      const out = a.encryptOutgoing({ room: ROOM, text: 'from my desktop' });
      if (out.status !== 'ok') throw new Error(out.reason);
      expect(peekRoomMessage({ payload: out.lines[0]! }).seq).to.equal(42);
    });

    it('reassembles and verifies the multi-line messages of an RSA sender', async function () {
      this.timeout(20_000);
      const dave = await party('dave', 'rsa');
      const d = engineFor(dave);
      const members = [memberOf(alice), memberOf(dave)];
      const key2 = generateRoomKey();
      for (const [engine, p] of [[a, alice], [d, dave]] as const) {
        const lines = await envelopeLines({ to: p, signer: keybot, room: '#sc-rsa', epoch: 1, key: key2, members });
        expect(last(await feed(engine, 'keybot', p.name, lines))).to.include({ kind: 'key' });
      }
      const out = d.encryptOutgoing({ room: '#sc-rsa', text: 'long signatures' });
      if (out.status !== 'ok') throw new Error(out.reason);
      expect(out.lines.length).to.be.greaterThan(1);
      const results = await feed(a, 'dave', '#sc-rsa', out.lines);
      for (const r of results.slice(0, -1)) expect(r).to.deep.equal({ kind: 'hidden' });
      expect(last(results)).to.include({ kind: 'message', from: 'dave', text: 'long signatures' });
    });
  });

  describe('epochs', function () {
    it('keeps the previous epoch only briefly after a rekey', async function () {
      const k1 = generateRoomKey();
      const k2 = generateRoomKey();
      const a = engineFor(alice, { previousEpochGraceMs: 120_000 });
      const b = engineFor(bob, { previousEpochGraceMs: 120_000 });
      await keyUp(a, alice, 400, k1);
      await keyUp(b, bob, 400, k1);
      const inFlight = a.encryptOutgoing({ room: ROOM, text: 'sent just before the rekey' });
      const late = a.encryptOutgoing({ room: ROOM, text: 'arrives much later' });
      if (inFlight.status !== 'ok' || late.status !== 'ok') throw new Error('no key');
      const rekey = await keyUp(b, bob, 401, k2, t0 + 1_000);
      expect(rekey).to.include({ kind: 'key', epoch: 401, previousEpoch: 400 });

      const [soon] = await feed(b, 'alice', ROOM, inFlight.lines, t0 + 60_000);
      expect(soon).to.include({ kind: 'message', epoch: 400 });
      const [tooLate] = await feed(b, 'alice', ROOM, late.lines, t0 + 1_000 + 121_000);
      expect(tooLate).to.include({ kind: 'undecryptable', code: 'epoch-discarded', epoch: 400 });
      // The sender moves to the new epoch as soon as it has it.
      await keyUp(a, alice, 401, k2, t0 + 1_000);
      const now = a.encryptOutgoing({ room: ROOM, text: 'new epoch' });
      if (now.status !== 'ok') throw new Error(now.reason);
      expect(now.epoch).to.equal(401);
    });

    it('cannot read messages of an epoch before its first key', async function () {
      const k1 = generateRoomKey();
      const a = engineFor(alice);
      await keyUp(a, alice, 500, k1);
      const before = a.encryptOutgoing({ room: ROOM, text: 'before carol came' });
      if (before.status !== 'ok') throw new Error(before.reason);
      const c = engineFor(carol);
      await keyUp(c, carol, 501, generateRoomKey());
      const [r] = await feed(c, 'alice', ROOM, before.lines);
      expect(r).to.include({ kind: 'undecryptable', code: 'unknown-epoch', epoch: 500 });
    });

    it('holds a message whose envelope is still on the way, and releases it with the key', async function () {
      const k1 = generateRoomKey();
      const k2 = generateRoomKey();
      const a = engineFor(alice);
      const b = engineFor(bob);
      await keyUp(a, alice, 600, k1);
      await keyUp(b, bob, 600, k1);
      await keyUp(a, alice, 601, k2);
      const out = a.encryptOutgoing({ room: ROOM, text: 'quick reply' });
      if (out.status !== 'ok') throw new Error(out.reason);
      const [held] = await feed(b, 'alice', ROOM, out.lines);
      expect(held).to.include({ kind: 'held', what: 'message', epoch: 601 });
      const key = await keyUp(b, bob, 601, k2);
      expect(key).to.include({ kind: 'key', epoch: 601 });
      const released = (key as { released: IncomingResult[] }).released;
      expect(released).to.have.length(1);
      expect(released[0]).to.include({ kind: 'message', text: 'quick reply', epoch: 601 });
    });

    it('gives up on a held message when its key does not come', async function () {
      const a = engineFor(alice);
      const b = engineFor(bob, { holdMs: 5_000 });
      const k1 = generateRoomKey();
      await keyUp(a, alice, 700, k1);
      await keyUp(b, bob, 699, generateRoomKey());
      const out = a.encryptOutgoing({ room: ROOM, text: 'you will not read this' });
      if (out.status !== 'ok') throw new Error(out.reason);
      expect((await feed(b, 'alice', ROOM, out.lines))[0]).to.include({ kind: 'held' });
      expect(b.sweep(t0 + 1_000)).to.deep.equal([]);
      const expired = b.sweep(t0 + 6_000);
      expect(expired).to.have.length(1);
      expect(expired[0]).to.include({ kind: 'undecryptable', code: 'unknown-epoch', epoch: 700, from: 'alice' });
    });
  });

  describe('fail closed', function () {
    it('refuses to encrypt for a #sc- room it has no key for, and never returns plaintext', function () {
      const a = engineFor(alice);
      const r = a.encryptOutgoing({ room: '#sc-unknown', text: 'secret' });
      expect(r.status).to.equal('no-key');
      expect(r).to.not.have.property('lines');
      expect((r as { reason: string }).reason).to.match(/no key for #sc-unknown/);
    });

    it('refuses after the room was left, and refuses the old key again', async function () {
      const a = engineFor(alice);
      const k = generateRoomKey();
      const lines = await envelopeLines({ to: alice, signer: keybot, room: '#plain-named', epoch: 50, key: k, members: [memberOf(alice)] });
      await feed(a, 'keybot', 'alice', lines);
      expect(a.encryptOutgoing({ room: '#plain-named', text: 'x' }).status).to.equal('ok');
      a.forgetRoom('#plain-named');
      const r = a.encryptOutgoing({ room: '#plain-named', text: 'x' });
      expect(r).to.include({ status: 'no-key' });
      expect(a.isEncryptedRoom('#plain-named')).to.equal(true);
      const again = last(await feed(a, 'keybot', 'alice', lines));
      expect(again).to.include({ kind: 'envelope-rejected', code: 'not-newer' });
    });

    it('leaves ordinary channels and private messages to the caller', function () {
      const a = engineFor(alice);
      expect(a.encryptOutgoing({ room: '#lobby', text: 'hi' })).to.include({ status: 'not-encrypted' });
      expect(a.encryptOutgoing({ room: 'bob', text: 'hi' })).to.include({ status: 'not-encrypted' });
    });
  });

  describe('other lines', function () {
    const line = (over: Partial<IncomingLine>): IncomingLine => ({ from: 'bob', target: ROOM, command: 'PRIVMSG', text: 'hello', now: Date.now(), ...over });

    it('flags plaintext in an encrypted room', async function () {
      const a = engineFor(alice);
      expect(await a.handleIncoming(line({ text: 'psst\x00' }))).to.deep.equal({ kind: 'plaintext-in-room', room: ROOM, from: 'bob', text: 'psst', command: 'PRIVMSG' });
    });

    it('passes through plaintext elsewhere and reports keybot\'s replies as bot notices', async function () {
      const a = engineFor(alice);
      expect(await a.handleIncoming(line({ target: '#lobby' }))).to.deep.equal({ kind: 'passthrough' });
      expect(await a.handleIncoming(line({ target: 'alice' }))).to.deep.equal({ kind: 'passthrough' });
      expect(await a.handleIncoming(line({ from: 'keybot', target: 'alice', command: 'NOTICE', text: 'carol is offline' }))).to.deep.equal({
        kind: 'bot-notice',
        target: 'alice',
        text: 'carol is offline',
        command: 'NOTICE',
      });
    });

    it('reports a room message for a room without a key, and one sent privately', async function () {
      const a = engineFor(alice);
      const m = encryptRoomMessage({ roomKey: generateRoomKey(), room: '#lobby', epoch: 1, sender: 'bob', seq: 1, plaintext: 'x', signer: bob.priv });
      expect(await a.handleIncoming(line({ target: '#lobby', text: m.payload }))).to.include({ kind: 'undecryptable', code: 'no-key' });
      expect(await a.handleIncoming(line({ target: 'alice', text: m.payload }))).to.include({ kind: 'undecryptable', code: 'not-a-room' });
    });
  });
  describe('member fingerprints (pinned on first sight)', function () {
    /** An envelope of `epoch` for alice listing alice, bob (as `bobAs`'s key) and carol. */
    async function envelopeWithBobAs(bobAs: Party, epoch: number, key = generateRoomKey()): Promise<string[]> {
      return envelopeLines({ to: alice, signer: keybot, room: ROOM, epoch, key, members: [memberOf(alice), memberOf(bobAs, 'bob'), memberOf(carol)], issuedAt: t0 });
    }

    it('pins the members of the first envelope, and accepts later envelopes that list the same keys', async function () {
      const engine = engineFor(alice);
      expect(engine.memberFingerprint('bob')).to.equal(undefined);
      expect(await keyUp(engine, alice, 10, generateRoomKey())).to.include({ kind: 'key', epoch: 10 });
      expect(engine.memberFingerprint('BOB')).to.equal(bob.pub.fingerprint.toLowerCase());
      expect(engine.memberFingerprint('carol')).to.equal(carol.pub.fingerprint.toLowerCase());
      expect(await keyUp(engine, alice, 11, generateRoomKey())).to.include({ kind: 'key', epoch: 11 });
      expect(engine.roomInfo(ROOM)!.keyChanges).to.equal(undefined);
    });

    it('rejects an envelope that lists a known account with another key, and refuses to send into that room', async function () {
      const engine = engineFor(alice);
      const k1 = generateRoomKey();
      await keyUp(engine, alice, 10, k1);
      const r = last(await feed(engine, 'keybot', 'alice', await envelopeWithBobAs(mallory, 11)));
      expect(r).to.deep.include({
        kind: 'envelope-rejected',
        code: 'member-key-changed',
        room: ROOM,
        epoch: 11,
        account: 'bob',
        pinned: bob.pub.fingerprint.toLowerCase(),
        offered: mallory.pub.fingerprint.toLowerCase(),
      });
      const reason = (r as { reason: string }).reason;
      expect(reason).to.include(bob.pub.fingerprint.toLowerCase()).and.include(mallory.pub.fingerprint.toLowerCase()).and.include('bob');
      // The new key was not installed, the pin did not move, and nothing is sent into the room.
      expect(engine.roomInfo(ROOM)).to.deep.include({ epoch: 10 });
      expect(engine.roomInfo(ROOM)!.keyChanges).to.deep.equal([
        { account: 'bob', pinned: bob.pub.fingerprint.toLowerCase(), offered: mallory.pub.fingerprint.toLowerCase() },
      ]);
      expect(engine.memberFingerprint('bob')).to.equal(bob.pub.fingerprint.toLowerCase());
      const out = engine.encryptOutgoing({ room: ROOM, text: 'hello' });
      expect(out.status).to.equal('no-key');
      expect((out as { reason: string }).reason).to.match(/bob's key changed/);
      // A message signed by the swapped-in key under the refused epoch is not shown as bob's.
      const k2 = generateRoomKey();
      await feed(engine, 'keybot', 'alice', await envelopeWithBobAs(mallory, 12, k2));
      const forged = encryptRoomMessage({ roomKey: k2, room: ROOM, epoch: 12, sender: 'bob', seq: 1, plaintext: 'I, bob, approve', signer: mallory.priv });
      const shown = await feed(engine, 'bob', ROOM, forged.lines!);
      expect(shown.some((x) => x.kind === 'message')).to.equal(false);
      // Pinning is per account, across rooms: another room listing the swapped key is refused too.
      const other = await envelopeLines({ to: alice, signer: keybot, room: '#sc-other', epoch: 5, members: [memberOf(alice), memberOf(mallory, 'bob')], issuedAt: t0 });
      expect(last(await feed(engine, 'keybot', 'alice', other))).to.include({ kind: 'envelope-rejected', code: 'member-key-changed', room: '#sc-other' });
    });

    it('sends again once the user accepts the new fingerprint (then the next envelope installs)', async function () {
      const engine = engineFor(alice);
      await keyUp(engine, alice, 10, generateRoomKey());
      await feed(engine, 'keybot', 'alice', await envelopeWithBobAs(mallory, 11));
      expect(engine.encryptOutgoing({ room: ROOM, text: 'x' }).status).to.equal('no-key');
      // Accepting another fingerprint than the one offered unblocks nothing.
      expect(engine.acceptMemberKey('bob', carol.pub.fingerprint)).to.deep.equal([]);
      expect(engine.encryptOutgoing({ room: ROOM, text: 'x' }).status).to.equal('no-key');
      expect(engine.acceptMemberKey('Bob', mallory.pub.fingerprint.toUpperCase())).to.deep.equal([ROOM]);
      expect(engine.memberFingerprint('bob')).to.equal(mallory.pub.fingerprint.toLowerCase());
      expect(engine.encryptOutgoing({ room: ROOM, text: 'x' }).status).to.equal('ok');
      expect(last(await feed(engine, 'keybot', 'alice', await envelopeWithBobAs(mallory, 12)))).to.include({ kind: 'key', epoch: 12 });
      expect(() => engine.acceptMemberKey('bob', 'not a fingerprint')).to.throw(TypeError);
    });

    it('a new engine (the companion restarted) pins afresh', async function () {
      const first = engineFor(alice);
      await keyUp(first, alice, 10, generateRoomKey());
      const again = engineFor(alice);
      expect(last(await feed(again, 'keybot', 'alice', await envelopeWithBobAs(mallory, 11)))).to.include({ kind: 'key', epoch: 11 });
      expect(again.memberFingerprint('bob')).to.equal(mallory.pub.fingerprint.toLowerCase());
    });
  });
});
