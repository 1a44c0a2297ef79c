/**
 * Edges of key envelopes (src/crypto/envelope.ts, envelope-open.ts, envelope-seal.ts: payload
 * version 2 as keybot sends it today) that the mutation run of issue 18 showed untested: each
 * schema limit, each refusal of openEnvelope with what it reports, the exact age and skew
 * limits, and misuse. Real keys, real OpenPGP.
 */
import { expect } from 'chai';
import {
  EnvelopeStatus,
  MAX_MEMBERS,
  encodeEnvelopePayload,
  generateRoomKey,
  isNewerEpoch,
  openEnvelope,
  sealEnvelope,
  signEnvelope,
  type EnvelopeMember,
  type EnvelopePayload,
} from '../../src/crypto/index.js';
import { isRoomName } from '../../src/crypto/envelope.js';
import { createMessage, enums, encrypt, readKey, readPrivateKey, sign } from '../../src/crypto/openpgp.js';
import { fixtures, memberOf, type Fixtures } from './fixtures.js';

const ED_KEY = Buffer.alloc(32, 7).toString('base64');
const FP40 = 'a'.repeat(40);

function someone(account: string, over: Partial<EnvelopeMember> = {}): EnvelopeMember {
  return { account, fingerprint: FP40, signingKey: { alg: 'ed25519', key: ED_KEY }, ...over };
}

describe('src/crypto/envelope*.ts: the limits of a key envelope', function () {
  let f: Fixtures;
  /** A whole second after the fixture keys exist (OpenPGP times are in seconds). */
  let T = 0;
  let payload: EnvelopePayload;

  before(async function () {
    this.timeout(60_000);
    f = await fixtures();
    T = (Math.floor(Date.now() / 1000) + 2) * 1000;
    payload = { room: '#ops', epoch: 12, key: generateRoomKey(), members: [memberOf(f.ecc), memberOf(f.v6ids)], issuedAt: T };
  });

  describe('the payload schema (encodeEnvelopePayload, signEnvelope)', function () {
    const problem = (over: Partial<EnvelopePayload>): string | undefined => {
      try {
        encodeEnvelopePayload({ ...payload, ...over });
        return undefined;
      } catch (err) {
        expect(err).to.be.instanceOf(TypeError);
        return (err as Error).message;
      }
    };

    it('takes a room name of 1 to 200 characters without spaces, controls, commas or colons', function () {
      expect(problem({ room: '#' })).to.equal(undefined);
      expect(problem({ room: '#' + 'r'.repeat(199) })).to.equal(undefined);
      expect(problem({ room: '&été' })).to.equal(undefined);
      for (const room of ['', '#' + 'r'.repeat(200), '#a b', '#a,b', '#a:b', '#a\x07', '#a\x7f', 7 as never]) {
        expect(problem({ room }), JSON.stringify(room)).to.equal('encodeEnvelopePayload: room must be a channel name');
      }
    });

    it('takes epochs from 0 to 2^32-1 and a 32-byte key', function () {
      expect(problem({ epoch: 0 })).to.equal(undefined);
      expect(problem({ epoch: 0xffffffff })).to.equal(undefined);
      for (const epoch of [-1, 2 ** 32, 1.5, NaN, '3' as never]) {
        expect(problem({ epoch }), String(epoch)).to.equal('encodeEnvelopePayload: epoch must be an integer from 0 to 2^32-1');
      }
      for (const key of [new Uint8Array(31), new Uint8Array(33), Array(32).fill(0) as never]) {
        expect(problem({ key })).to.equal('encodeEnvelopePayload: key must be 32 bytes');
      }
    });

    it('takes an issue time of 0 ms or more, a whole number', function () {
      expect(problem({ issuedAt: 0 })).to.equal(undefined);
      for (const issuedAt of [-1, 1.5, NaN, Infinity, 2 ** 53]) {
        expect(problem({ issuedAt }), String(issuedAt)).to.equal('encodeEnvelopePayload: issuedAt must be a time in ms');
      }
    });

    it(`takes 1 to ${MAX_MEMBERS} members, each account once (casefolded)`, function () {
      const many = Array.from({ length: MAX_MEMBERS }, (_, i) => someone(`m${i}`));
      expect(problem({ members: many })).to.equal(undefined);
      expect(problem({ members: [...many, someone('one-more')] })).to.equal(`encodeEnvelopePayload: members must list 1 to ${MAX_MEMBERS} members`);
      expect(problem({ members: [] })).to.equal(`encodeEnvelopePayload: members must list 1 to ${MAX_MEMBERS} members`);
      expect(problem({ members: 'alice' as never })).to.equal(`encodeEnvelopePayload: members must list 1 to ${MAX_MEMBERS} members`);
      expect(problem({ members: [someone('Alice'), someone('aLICE')] })).to.equal('encodeEnvelopePayload: member aLICE is listed twice');
      expect(problem({ members: [someone('alice'), null as never] })).to.equal('encodeEnvelopePayload: a member is not an object');
      expect(problem({ members: ['alice' as never] })).to.equal('encodeEnvelopePayload: a member is not an object');
    });

    it('takes accounts of 1 to 64 characters without IRC separators', function () {
      expect(problem({ members: [someone('a'.repeat(64))] })).to.equal(undefined);
      for (const account of ['', 'a'.repeat(65), 'a b', 'a,b', 'a:b', 'a!b', 'a@b', 'a*b', 'a?b', 'a\x01', 5 as never]) {
        expect(problem({ members: [someone(account)] }), JSON.stringify(account)).to.equal('encodeEnvelopePayload: a member account is not an account name');
      }
    });

    it('takes lowercase v4 and v6 fingerprints only', function () {
      expect(problem({ members: [someone('a', { fingerprint: 'f'.repeat(64) })] })).to.equal(undefined);
      for (const fingerprint of ['A'.repeat(40), 'a'.repeat(39), 'a'.repeat(41), 'a'.repeat(63), 'g'.repeat(40), 'x' + 'a'.repeat(40)]) {
        expect(problem({ members: [someone('a', { fingerprint })] }), fingerprint).to.equal('encodeEnvelopePayload: member a has a bad fingerprint');
      }
      // Not a string that reads as one: an array holding a good fingerprint is still refused.
      expect(problem({ members: [someone('a', { fingerprint: [FP40] as never })] })).to.equal('encodeEnvelopePayload: member a has a bad fingerprint');
      expect(isRoomName('#ops')).to.equal(true);
      expect(isRoomName(['#ops'])).to.equal(false);
    });

    it('takes a 32-byte Ed25519 key or an RSA key of 200 bytes or more, in at most 1400 base64 characters', function () {
      const ok = (alg: string, key: string) => problem({ members: [someone('a', { signingKey: { alg: alg as never, key } })] });
      const bad = 'encodeEnvelopePayload: member a has a bad signing key';
      expect(ok('rsa-pss', Buffer.alloc(200).toString('base64'))).to.equal(undefined);
      expect(ok('rsa-pss', Buffer.alloc(1050).toString('base64'))).to.equal(undefined); // 1400 characters
      expect(ok('rsa-pss', Buffer.alloc(1053).toString('base64'))).to.equal(bad); // 1404
      expect(ok('rsa-pss', Buffer.alloc(199).toString('base64'))).to.equal(bad);
      expect(ok('ed25519', Buffer.alloc(31).toString('base64'))).to.equal(bad);
      expect(ok('ed25519', Buffer.alloc(33).toString('base64'))).to.equal(bad);
      expect(ok('ed25519', Buffer.alloc(200).toString('base64'))).to.equal(bad);
      expect(ok('dsa', Buffer.alloc(200).toString('base64'))).to.equal(bad);
      expect(ok('ed25519', ED_KEY + '=')).to.equal(bad);
      expect(ok('ed25519', 42 as never)).to.equal(bad);
      expect(problem({ members: [someone('a', { signingKey: undefined as never })] })).to.equal(bad);
    });

    it('refuses what is not a payload object, in signEnvelope too', async function () {
      expect(() => encodeEnvelopePayload(null as never)).to.throw(TypeError, /expected a payload object/);
      expect(() => encodeEnvelopePayload('x' as never)).to.throw(TypeError, /expected a payload object/);
      const err = await signEnvelope({ signer: f.keybot.priv, payload: { ...payload, epoch: -1 } }).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(TypeError);
      expect((err as Error).message).to.equal('signEnvelope: options.payload: epoch must be an integer from 0 to 2^32-1');
      const none = await signEnvelope({ signer: f.keybot.priv, payload: undefined as never }).then(() => undefined, (e: unknown) => e);
      expect((none as Error).message).to.equal('signEnvelope: options.payload must be an object');
      const noOptions = await signEnvelope(undefined as never).then(() => undefined, (e: unknown) => e);
      expect((noOptions as Error).message).to.match(/^signEnvelope: expected one options object/);
      for (const bad of [null, 'x', 7]) {
        const m = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => (e as Error).message);
        expect(await m(signEnvelope(bad as never)), String(bad)).to.equal('signEnvelope: expected one options object');
        expect(await m(sealEnvelope(bad as never)), String(bad)).to.equal('sealEnvelope: expected one options object');
        if (bad !== null) {
          expect(await m(signEnvelope({ signer: f.keybot.priv, payload: bad as never })), String(bad)).to.equal('signEnvelope: options.payload must be an object');
        }
      }
    });

    it('says SEAL_FAILED with the reason when OpenPGP cannot sign, e.g. at a time before keybot’s key existed', async function () {
      const r = await signEnvelope({ signer: f.keybot.priv, payload: { ...payload, issuedAt: 1000 } });
      expect(r.status).to.equal(EnvelopeStatus.SEAL_FAILED);
      expect(r.reason).to.be.a('string').and.not.equal('');
      expect(r.signed).to.equal(undefined);
      const s = await sealEnvelope({ recipient: f.ecc.pub, signer: f.keybot.priv, payload: { ...payload, issuedAt: 1000 } });
      expect(s).to.deep.equal({ status: EnvelopeStatus.SEAL_FAILED, reason: r.reason });
    });
  });

  describe('sealing to one member', function () {
    const thrown = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as Error);

    it('finds the member under its account casefolded, and with no account given by its key', async function () {
      const { signed } = await signEnvelope({ signer: f.keybot.priv, payload });
      const a = await sealEnvelope({ recipient: f.ecc.pub, recipientAccount: 'ALICE', signed: signed! });
      expect(a.status).to.equal(EnvelopeStatus.OK);
      const b = await sealEnvelope({ recipient: f.v6ids.pub, signed: signed! });
      expect(b.status).to.equal(EnvelopeStatus.OK);
      const opened = await openEnvelope({ data: b.data!, decryptionKey: f.v6ids.priv, signerKey: f.keybot.pub, expectedAccount: 'bob', now: T });
      expect(opened.status).to.equal(EnvelopeStatus.OK);
    });

    it('says which rule a recipient breaks', async function () {
      const { signed } = await signEnvelope({ signer: f.keybot.priv, payload });
      expect((await thrown(sealEnvelope({ recipient: f.ecc.pub, recipientAccount: 'zed', signed: signed! })))!.message).to.equal(
        'sealEnvelope: zed is not among the members',
      );
      expect((await thrown(sealEnvelope({ recipient: f.v6ids.pub, recipientAccount: 'alice', signed: signed! })))!.message).to.equal(
        'sealEnvelope: the recipient key is not the key the member list gives for alice',
      );
      expect((await thrown(sealEnvelope({ recipient: f.mallory.pub, signed: signed! })))!.message).to.equal(
        'sealEnvelope: the member list does not give the recipient key',
      );
      expect((await thrown(sealEnvelope({ recipient: f.ecc.pub, signed: Object.freeze({ payload }) })))!.message).to.equal(
        'sealEnvelope: options.signed must come from signEnvelope',
      );
      expect((await thrown(sealEnvelope(null as never)))!.message).to.equal('sealEnvelope: expected one options object');
    });
  });

  describe('opening', function () {
    let sealed: Uint8Array;
    let pub: Awaited<ReturnType<typeof readKey>>;
    let bot: Awaited<ReturnType<typeof readPrivateKey>>;
    const open = (over: Partial<Parameters<typeof openEnvelope>[0]> = {}) =>
      openEnvelope({ data: sealed, decryptionKey: f.ecc.priv, signerKey: f.keybot.pub, expectedAccount: 'alice', now: T, ...over });
    /** Any literal data, signed by keybot (or `signer`) and encrypted to alice, as of time T. */
    const raw = async (text: string, signer = bot): Promise<Uint8Array> => {
      const message = await createMessage({ binary: new TextEncoder().encode(text), date: new Date(T) });
      return (await encrypt({ message, encryptionKeys: pub, signingKeys: signer, date: new Date(T), format: 'binary' })) as Uint8Array;
    };
    const wire = (over: object = {}) =>
      JSON.stringify({
        v: 2,
        room: payload.room,
        epoch: payload.epoch,
        key: Buffer.from(payload.key).toString('base64'),
        iat: T,
        m: payload.members.map((m) => [m.account, m.fingerprint, m.signingKey.alg, m.signingKey.key]),
        ...over,
      });

    before(async function () {
      this.timeout(30_000);
      pub = await readKey({ armoredKey: f.ecc.publicArmored });
      bot = await readPrivateKey({ armoredKey: f.keybot.privateArmored });
      const r = await sealEnvelope({ recipient: f.ecc.pub, recipientAccount: 'alice', signer: f.keybot.priv, payload });
      sealed = r.data!;
    });

    it('opens an envelope from the moment it was issued until 15 minutes later, and up to 5 minutes before', async function () {
      const ok = { status: EnvelopeStatus.OK, payload };
      expect(await open()).to.deep.equal(ok);
      expect(await open({ now: T + 15 * 60_000 })).to.deep.equal(ok);
      expect(await open({ now: T + 15 * 60_000 + 1 })).to.deep.equal({ status: EnvelopeStatus.EXPIRED });
      expect(await open({ now: T - 5 * 60_000 })).to.deep.equal(ok);
      expect(await open({ now: T - 5 * 60_000 - 1 })).to.deep.equal({ status: EnvelopeStatus.NOT_YET_VALID });
    });

    it('keeps to the age and skew it is given instead', async function () {
      expect((await open({ now: T + 1000, maxAgeMs: 1000 })).status).to.equal(EnvelopeStatus.OK);
      expect((await open({ now: T + 1001, maxAgeMs: 1000 })).status).to.equal(EnvelopeStatus.EXPIRED);
      expect((await open({ now: T, maxAgeMs: 0, maxSkewMs: 0 })).status).to.equal(EnvelopeStatus.OK);
      expect((await open({ now: T - 1000, maxSkewMs: 1000 })).status).to.equal(EnvelopeStatus.OK);
      expect((await open({ now: T - 1001, maxSkewMs: 1000 })).status).to.equal(EnvelopeStatus.NOT_YET_VALID);
      expect((await open({ now: T - 2 * 60 * 60_000, maxSkewMs: 60 * 60_000 })).status).to.equal(EnvelopeStatus.NOT_YET_VALID);
    });

    it('refuses a signed payload that does not follow the schema, as MALFORMED', async function () {
      for (const text of [
        wire({ room: 'a b' }),
        wire({ key: 42 }),
        wire({ key: 'not base64!' }),
        wire({ m: 'alice' }),
        wire({ m: [['alice', FP40, 'ed25519']] }),
        wire({ m: [['alice', FP40, 'ed25519', ED_KEY, 'extra']] }),
        wire({ m: [['alice', FP40, 'ed25519', 7]] }),
        wire({ m: ['alice'] }),
        wire({ iat: 'now' }),
        wire({ v: 1, to: 'a b' }),
        wire({ v: 1, to: 7 }),
        'null',
        '"text"',
      ]) {
        expect(await open({ data: await raw(text) }), text).to.deep.equal({ status: EnvelopeStatus.MALFORMED });
      }
      expect(await open({ data: await raw('{"v":') })).to.deep.equal({ status: EnvelopeStatus.MALFORMED, reason: 'the payload is not JSON' });
      expect(await open({ data: await raw(wire({ v: 0 })) })).to.deep.equal({ status: EnvelopeStatus.UNSUPPORTED_VERSION });
      expect(await open({ data: await raw(wire({ v: 2.5 })) })).to.deep.equal({ status: EnvelopeStatus.UNSUPPORTED_VERSION });
    });

    it('names the reason it refuses a version-1 envelope for another account, or one that does not list us right', async function () {
      expect(await open({ data: await raw(wire({ v: 1, to: 'bob' })) })).to.deep.equal({ status: EnvelopeStatus.WRONG_RECIPIENT, reason: 'addressed to bob' });
      expect((await open({ data: await raw(wire({ v: 1, to: 'ALICE' })) })).status).to.equal(EnvelopeStatus.OK);
      const notUs = wire({ m: [['zed', f.ecc.pub.fingerprint, 'ed25519', ED_KEY]] });
      expect(await open({ data: await raw(notUs) })).to.deep.equal({ status: EnvelopeStatus.WRONG_RECIPIENT, reason: 'the member list does not name us' });
      const otherKey = wire({ m: [['Alice', f.v6ids.pub.fingerprint, 'ed25519', ED_KEY]] });
      expect(await open({ data: await raw(otherKey) })).to.deep.equal({ status: EnvelopeStatus.WRONG_RECIPIENT, reason: 'the member list gives us another key' });
    });

    it('refuses a message sealed with a password only as MALFORMED, and one for other keys as NOT_FOR_ME', async function () {
      const message = await createMessage({ binary: new TextEncoder().encode(wire()) });
      const pw = (await encrypt({ message, passwords: ['hunter2'], format: 'binary' })) as Uint8Array;
      expect(await open({ data: pw })).to.deep.equal({ status: EnvelopeStatus.MALFORMED, reason: 'not a public-key encrypted message' });
      const toBob = await sealEnvelope({ recipient: f.v6ids.pub, signer: f.keybot.priv, payload });
      expect(await open({ data: toBob.data! })).to.deep.equal({ status: EnvelopeStatus.NOT_FOR_ME });
    });

    it('refuses a payload signed by someone else than the pinned keybot, with the reason, and is not fooled by a far-future signature time', async function () {
      const mallory = await readPrivateKey({ armoredKey: f.mallory.privateArmored });
      const r = await open({ data: await raw(wire(), mallory) });
      expect(r.status).to.equal(EnvelopeStatus.BAD_SIGNATURE);
      expect(r.reason).to.be.a('string').and.not.equal('');
      // Signed by mallory an hour ahead: still a bad signature, not "not yet valid".
      const message = await createMessage({ binary: new TextEncoder().encode(wire()) });
      const later = (await encrypt({ message, encryptionKeys: pub, signingKeys: mallory, date: new Date(T + 3_600_000), format: 'binary' })) as Uint8Array;
      expect((await open({ data: later })).status).to.equal(EnvelopeStatus.BAD_SIGNATURE);
    });

    it("refuses a signature that names keybot's key but does not verify, as a bad signature whatever its time", async function () {
      // keybot's key ID on a signature whose hash prefix no longer matches: the key ID alone must
      // not count as keybot's signature, nor make the envelope "not yet valid".
      const forged = async (date: number): Promise<Uint8Array> => {
        const message = await createMessage({ binary: new TextEncoder().encode(wire()), date: new Date(date) });
        const signed = await sign({ message, signingKeys: bot, date: new Date(date), format: 'object' });
        const sig = signed.packets.filterByTag(enums.packet.signature)[0] as unknown as { signedHashValue: Uint8Array };
        sig.signedHashValue[0] ^= 1;
        return (await encrypt({ message: signed, encryptionKeys: pub, date: new Date(date), format: 'binary' })) as Uint8Array;
      };
      // (At T + 5 min it is as far ahead as the skew allows; a forged one dated later still fails,
      // reported as NOT_YET_VALID by its unverified time.)
      for (const at of [T, T + 5 * 60_000]) {
        const r = await open({ data: await forged(at) });
        expect(r.status, `signed at T${(at - T) / 60_000} min`).to.equal(EnvelopeStatus.BAD_SIGNATURE);
      }
      // The unaltered signature, made the same way, opens: the flipped byte is what failed.
      const message = await createMessage({ binary: new TextEncoder().encode(wire()), date: new Date(T) });
      const signed = await sign({ message, signingKeys: bot, date: new Date(T), format: 'object' });
      const good = (await encrypt({ message: signed, encryptionKeys: pub, date: new Date(T), format: 'binary' })) as Uint8Array;
      expect((await open({ data: good })).status).to.equal(EnvelopeStatus.OK);
    });

    it("opens an envelope that keybot signed and someone else signed too: keybot's signature is what counts", async function () {
      const mallory = await readPrivateKey({ armoredKey: f.mallory.privateArmored });
      const message = await createMessage({ binary: new TextEncoder().encode(wire()), date: new Date(T) });
      const both = (await encrypt({ message, encryptionKeys: pub, signingKeys: [mallory, bot], date: new Date(T), format: 'binary' })) as Uint8Array;
      expect((await open({ data: both })).status).to.equal(EnvelopeStatus.OK);
    });

    it('opens an envelope encrypted to us among other recipients, and one whose recipient key ID is hidden', async function () {
      const other = await readKey({ armoredKey: f.mallory.publicArmored });
      const message = await createMessage({ binary: new TextEncoder().encode(wire()), date: new Date(T) });
      const toBoth = (await encrypt({ message, encryptionKeys: [other, pub], signingKeys: bot, date: new Date(T), format: 'binary' })) as Uint8Array;
      expect((await open({ data: toBoth })).status).to.equal(EnvelopeStatus.OK);
      const hidden = (await encrypt({ message, encryptionKeys: pub, signingKeys: bot, wildcard: true, date: new Date(T), format: 'binary' })) as Uint8Array;
      expect((await open({ data: hidden })).status).to.equal(EnvelopeStatus.OK);
    });

    it('refuses a payload issued more than 5 minutes ahead even when the signature itself is made now', async function () {
      expect((await open({ data: await raw(wire({ iat: T + 5 * 60_000 })) })).status).to.equal(EnvelopeStatus.OK);
      expect((await open({ data: await raw(wire({ iat: T + 5 * 60_000 + 1 })) })).status).to.equal(EnvelopeStatus.NOT_YET_VALID);
    });

    it("ignores a stray recipient in a version-2 payload: the member list decides", async function () {
      expect((await open({ data: await raw(wire({ to: 'bob' })) })).status).to.equal(EnvelopeStatus.OK);
    });

    it('throws on misuse before reading anything', async function () {
      const err = (over: object) => open(over as never).then(() => undefined, (e: unknown) => (e as Error).message);
      expect(await err({ data: 'x' })).to.equal('openEnvelope: options.data must be a Uint8Array');
      expect(await err({ expectedAccount: '' })).to.equal('openEnvelope: options.expectedAccount must be a non-empty string');
      expect(await err({ expectedAccount: 5 })).to.equal('openEnvelope: options.expectedAccount must be a non-empty string');
      expect(await err({ now: '1' })).to.equal('openEnvelope: options.now must be a number (ms)');
      expect(await err({ now: NaN })).to.equal('openEnvelope: options.now must be a number (ms)');
      expect(await openEnvelope(null as never).then(() => undefined, (e: unknown) => (e as Error).message)).to.equal('openEnvelope: expected one options object');
      expect(await openEnvelope('x' as never).then(() => undefined, (e: unknown) => (e as Error).message)).to.equal('openEnvelope: expected one options object');
    });
  });

  describe('the epoch rule', function () {
    it('installs any epoch when none is held, a newer one only otherwise', function () {
      expect(isNewerEpoch({ offered: 0 })).to.equal(true);
      expect(isNewerEpoch({ current: 0, offered: 1 })).to.equal(true);
      expect(isNewerEpoch({ current: 0, offered: 0 })).to.equal(false);
      expect(isNewerEpoch({ current: 0xffffffff, offered: 0xffffffff })).to.equal(false);
    });

    it('throws on epochs that are not u32 and on a missing options object', function () {
      const msg = 'isNewerEpoch: epochs must be integers from 0 to 2^32-1';
      expect(() => isNewerEpoch({ offered: -1 })).to.throw(TypeError, msg);
      expect(() => isNewerEpoch({ offered: 2 ** 32 })).to.throw(TypeError, msg);
      expect(() => isNewerEpoch({ current: 1.5, offered: 2 })).to.throw(TypeError, msg);
      expect(() => isNewerEpoch({ current: -1, offered: 2 })).to.throw(TypeError, msg);
      expect(() => isNewerEpoch(null as never)).to.throw(TypeError, 'isNewerEpoch: expected one options object');
      expect(() => isNewerEpoch(3 as never)).to.throw(TypeError, 'isNewerEpoch: expected one options object');
    });
  });
});
