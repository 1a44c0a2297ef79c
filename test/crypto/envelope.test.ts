import { expect } from 'chai';
import {
  EnvelopeStatus,
  MessageStatus,
  PartStatus,
  PartsReassembler,
  decryptRoomMessage,
  encryptRoomMessage,
  frameParts,
  generateRoomKey,
  isNewerEpoch,
  encodeEnvelopePayload,
  openEnvelope,
  sealEnvelope,
  signEnvelope,
  signingPublicKeyOf,
  type EnvelopeMember,
  type EnvelopePayload,
} from '../../src/crypto/index.js';
import { createMessage, encrypt, readPrivateKey, readKey } from '../../src/crypto/openpgp.js';
import { fixtures, type Fixtures, type TestKey } from './fixtures.js';
import { hex, vector } from './vectors.js';

// Set after the fixtures exist: a key cannot sign before its creation time.
let NOW = 0;

function member(k: TestKey): EnvelopeMember {
  return { account: k.name, fingerprint: k.pub.fingerprint, signingKey: signingPublicKeyOf({ key: k.pub }) };
}

describe('src/crypto/envelope.ts', function () {
  let f: Fixtures;
  let payload: EnvelopePayload;
  let sealed: Uint8Array;

  before(async function () {
    this.timeout(30_000);
    f = await fixtures();
    NOW = Date.now();
    payload = {
      room: '#ops',
      epoch: 1_764_100_000,
      key: generateRoomKey(),
      members: [member(f.ecc), member(f.v6ids), member(f.rsa)],
      issuedAt: NOW,
    };
    const r = await sealEnvelope({ recipient: f.ecc.pub, recipientAccount: 'alice', signer: f.keybot.priv, payload });
    expect(r.status).to.equal(EnvelopeStatus.OK);
    sealed = r.data!;
  });

  const open = (over: Partial<Parameters<typeof openEnvelope>[0]> = {}) =>
    openEnvelope({
      data: sealed,
      decryptionKey: f.ecc.priv,
      signerKey: f.keybot.pub,
      expectedAccount: 'alice',
      now: NOW + 1_000,
      ...over,
    });

  it('opens for the recipient and returns the payload', async function () {
    const r = await open();
    expect(r.status).to.equal(EnvelopeStatus.OK);
    expect(r.payload!.room).to.equal('#ops');
    expect(r.payload!.epoch).to.equal(payload.epoch);
    expect(Buffer.from(r.payload!.key).equals(Buffer.from(payload.key))).to.equal(true);
    expect(r.payload!.members).to.deep.equal(payload.members);
    expect(r.payload!.issuedAt).to.equal(NOW);
  });

  it('travels as SC1E parts through the reassembler', async function () {
    const { parts } = frameParts({ data: sealed, kind: 'envelope' });
    expect(parts.length).to.be.within(2, 10);
    const re = new PartsReassembler();
    let data: Uint8Array | undefined;
    for (const line of parts) {
      const r = re.accept({ sender: 'keybot', line, now: NOW });
      if (r.status === PartStatus.COMPLETE) data = r.data;
    }
    expect((await open({ data: data! })).status).to.equal(EnvelopeStatus.OK);
  });

  it('is NOT_FOR_ME for another member', async function () {
    expect((await open({ decryptionKey: f.mallory.priv, expectedAccount: 'mallory' })).status).to.equal(EnvelopeStatus.NOT_FOR_ME);
  });

  it('refuses an envelope not signed by the pinned keybot key', async function () {
    const forged = await sealEnvelope({ recipient: f.ecc.pub, signer: f.mallory.priv, payload });
    expect((await open({ data: forged.data! })).status).to.equal(EnvelopeStatus.BAD_SIGNATURE);
  });

  it('refuses an unsigned envelope', async function () {
    const pub = await readKey({ armoredKey: f.ecc.publicArmored });
    const message = await createMessage({ binary: new TextEncoder().encode('{"v":1}') });
    const data = (await encrypt({ message, encryptionKeys: pub, format: 'binary' })) as Uint8Array;
    expect((await open({ data })).status).to.equal(EnvelopeStatus.UNSIGNED);
  });

  it('refuses a signed envelope whose payload is not ours or not valid', async function () {
    const pub = await readKey({ armoredKey: f.ecc.publicArmored });
    const bot = await readPrivateKey({ armoredKey: f.keybot.privateArmored });
    for (const text of ['not json', '{"v":1,"room":"#ops"}', '[1,2]']) {
      const message = await createMessage({ binary: new TextEncoder().encode(text) });
      const data = (await encrypt({ message, encryptionKeys: pub, signingKeys: bot, format: 'binary' })) as Uint8Array;
      expect((await open({ data })).status, text).to.equal(EnvelopeStatus.MALFORMED);
    }
    for (const text of ['{"v":2}', '{"v":"2"}']) {
      const message = await createMessage({ binary: new TextEncoder().encode(text) });
      const data = (await encrypt({ message, encryptionKeys: pub, signingKeys: bot, format: 'binary' })) as Uint8Array;
      expect((await open({ data })).status, text).to.equal(EnvelopeStatus.MALFORMED);
    }
    const message = await createMessage({ binary: new TextEncoder().encode('{"v":3}') });
    const data = (await encrypt({ message, encryptionKeys: pub, signingKeys: bot, format: 'binary' })) as Uint8Array;
    expect((await open({ data })).status).to.equal(EnvelopeStatus.UNSUPPORTED_VERSION);
  });

  /** A payload as keybot would sign it, encrypted to alice (to sign a v1 payload by hand). */
  const sealRaw = async (wire: object): Promise<Uint8Array> => {
    const pub = await readKey({ armoredKey: f.ecc.publicArmored });
    const bot = await readPrivateKey({ armoredKey: f.keybot.privateArmored });
    const message = await createMessage({ binary: new TextEncoder().encode(JSON.stringify(wire)) });
    return (await encrypt({ message, encryptionKeys: pub, signingKeys: bot, date: new Date(NOW), format: 'binary' })) as Uint8Array;
  };
  const wireOf = (p: EnvelopePayload) => ({
    room: p.room,
    epoch: p.epoch,
    key: Buffer.from(p.key).toString('base64'),
    iat: p.issuedAt,
    m: p.members.map((m) => [m.account, m.fingerprint, m.signingKey.alg, m.signingKey.key]),
  });

  it('sends version 2: no recipient in the payload, the same signed payload for every member', async function () {
    const { signed } = await signEnvelope({ signer: f.keybot.priv, payload });
    const toAlice = await sealEnvelope({ recipient: f.ecc.pub, recipientAccount: 'alice', signed: signed! });
    const toBob = await sealEnvelope({ recipient: f.v6ids.pub, recipientAccount: 'bob', signed: signed! });
    const a = await open({ data: toAlice.data! });
    const b = await openEnvelope({ data: toBob.data!, decryptionKey: f.v6ids.priv, signerKey: f.keybot.pub, expectedAccount: 'bob', now: NOW + 1000 });
    expect(a.status).to.equal(EnvelopeStatus.OK);
    expect(b.status).to.equal(EnvelopeStatus.OK);
    expect(b.payload).to.deep.equal(a.payload);
    // Encrypted separately: each member's message is its own.
    expect(Buffer.from(toAlice.data!).equals(Buffer.from(toBob.data!))).to.equal(false);
    const plain = JSON.parse(new TextDecoder().decode(encodeEnvelopePayload(payload)));
    expect(plain.v).to.equal(2);
    expect(plain).to.not.have.property('to');
  });

  it('refuses a version-2 envelope that does not list our account, or lists it with another key', async function () {
    // Encrypted to alice's key and signed by keybot, but alice is not among the members.
    const notListed = await sealRaw({ v: 2, ...wireOf({ ...payload, members: [member(f.v6ids), { ...member(f.ecc), account: 'zed' }] }) });
    expect(await open({ data: notListed })).to.include({ status: EnvelopeStatus.WRONG_RECIPIENT });
    // alice is listed, but with bob's key.
    const otherKey = await sealRaw({ v: 2, ...wireOf({ ...payload, members: [{ ...member(f.v6ids), account: 'alice' }, { ...member(f.ecc), account: 'zed' }] }) });
    expect(await open({ data: otherKey })).to.include({ status: EnvelopeStatus.WRONG_RECIPIENT });
  });

  it('still opens a version-1 envelope addressed to us, and refuses one addressed to another account', async function () {
    const v1 = await sealRaw({ v: 1, ...wireOf(payload), to: 'alice' });
    const r = await open({ data: v1 });
    expect(r.status).to.equal(EnvelopeStatus.OK);
    expect(r.payload!.members).to.deep.equal(payload.members);
    const toBob = await sealRaw({ v: 1, ...wireOf(payload), to: 'bob' });
    expect(await open({ data: toBob })).to.include({ status: EnvelopeStatus.WRONG_RECIPIENT });
    const noTo = await sealRaw({ v: 1, ...wireOf(payload) });
    expect((await open({ data: noTo })).status).to.equal(EnvelopeStatus.MALFORMED);
  });

  it('payload encoding matches the test vector in docs/PROTOCOL.md', function () {
    const v = vector('envelope-payload');
    const signingKey = { alg: 'ed25519' as const, key: v.ed25519_public_base64! };
    const p: EnvelopePayload = {
      room: v.room!,
      epoch: Number(v.epoch),
      key: hex(v.room_key!),
      issuedAt: Number(v.iat),
      members: [
        { account: v.member_1!, fingerprint: v.fingerprint_1!, signingKey },
        { account: v.member_2!, fingerprint: v.fingerprint_2!, signingKey },
      ],
    };
    expect(new TextDecoder().decode(encodeEnvelopePayload(p))).to.equal(v.literal_data!.replace(/\n/g, ''));
  });

  it('refuses tampered or truncated data', async function () {
    const flipped = sealed.slice();
    flipped[flipped.length - 10]! ^= 1;
    expect([EnvelopeStatus.DECRYPT_FAILED, EnvelopeStatus.BAD_SIGNATURE, EnvelopeStatus.MALFORMED]).to.include(
      (await open({ data: flipped })).status,
    );
    expect((await open({ data: sealed.slice(0, 40) })).status).to.not.equal(EnvelopeStatus.OK);
    expect((await open({ data: new Uint8Array([1, 2, 3]) })).status).to.equal(EnvelopeStatus.MALFORMED);
  });

  it('refuses an envelope addressed to another account', async function () {
    expect((await open({ expectedAccount: 'bob' })).status).to.equal(EnvelopeStatus.WRONG_RECIPIENT);
    expect((await open({ expectedAccount: 'ALICE' })).status).to.equal(EnvelopeStatus.OK);
  });

  it('refuses old envelopes and ones from the future', async function () {
    expect((await open({ now: NOW + 16 * 60_000 })).status).to.equal(EnvelopeStatus.EXPIRED);
    expect((await open({ now: NOW - 6 * 60_000 })).status).to.equal(EnvelopeStatus.NOT_YET_VALID);
    expect((await open({ now: NOW - 60_000 })).status).to.equal(EnvelopeStatus.OK); // within the skew
  });

  it('throws when keybot seals an inconsistent payload', async function () {
    const bad = async (p: Partial<EnvelopePayload>, recipient = f.ecc.pub) => {
      try {
        await sealEnvelope({ recipient, signer: f.keybot.priv, payload: { ...payload, ...p } });
      } catch (err) {
        return err;
      }
      return undefined;
    };
    expect(await bad({ key: new Uint8Array(16) })).to.be.instanceOf(TypeError);
    expect(await bad({}, f.mallory.pub)).to.be.instanceOf(TypeError); // a key the list does not give
    const seal = async (o: Parameters<typeof sealEnvelope>[0]) => sealEnvelope(o).then(() => undefined, (err: unknown) => err);
    expect(await seal({ recipient: f.ecc.pub, recipientAccount: 'zed', signer: f.keybot.priv, payload })).to.be.instanceOf(TypeError);
    // key of bob, list says alice
    expect(await seal({ recipient: f.v6ids.pub, recipientAccount: 'alice', signer: f.keybot.priv, payload })).to.be.instanceOf(TypeError);
    // Only what signEnvelope made can be sealed as signed.
    expect(await seal({ recipient: f.ecc.pub, signed: { payload } })).to.be.instanceOf(TypeError);
    expect(await bad({ members: [member(f.ecc), member(f.ecc)] })).to.be.instanceOf(TypeError);
  });

  it('epoch rule: only a newer epoch is installed', function () {
    expect(isNewerEpoch({ offered: 5 })).to.equal(true);
    expect(isNewerEpoch({ current: 5, offered: 6 })).to.equal(true);
    expect(isNewerEpoch({ current: 5, offered: 5 })).to.equal(false);
    expect(isNewerEpoch({ current: 5, offered: 4 })).to.equal(false);
  });

  for (const which of ['gpgRsa', 'gpgEd'] as const) {
    it(`works end to end with a GnuPG key (${which}): envelope in, signed room message out`, async function () {
      const k = f[which];
      if (!k) this.skip();
      const members = [member(f.ecc), member(k!)];
      // Issued now: the GnuPG keys were made after NOW, and a key cannot sign before it exists.
      const p: EnvelopePayload = { ...payload, members, issuedAt: Date.now() };
      const s = await sealEnvelope({ recipient: k!.pub, signer: f.keybot.priv, payload: p });
      expect(s.status, s.reason).to.equal(EnvelopeStatus.OK);
      const o = await openEnvelope({
        data: s.data!,
        decryptionKey: k!.priv,
        signerKey: f.keybot.pub,
        expectedAccount: k!.name,
        now: Date.now(),
      });
      expect(o.status, o.reason).to.equal(EnvelopeStatus.OK);

      // The GnuPG user speaks with the key from the envelope; alice verifies with the listed signing key.
      const enc = encryptRoomMessage({
        roomKey: o.payload!.key,
        room: '#ops',
        epoch: o.payload!.epoch,
        sender: k!.name,
        seq: 1,
        plaintext: 'hi from gpg',
        signer: k!.priv,
      });
      expect(enc.status).to.equal(MessageStatus.OK);
      let input: { payload: string } | { data: Uint8Array } = { payload: enc.payload };
      if (enc.lines.length > 1) {
        const re = new PartsReassembler();
        for (const line of enc.lines) {
          const r = re.accept({ sender: k!.name, line, now: NOW });
          if (r.status === PartStatus.COMPLETE) input = { data: r.data! };
        }
      }
      const listed = o.payload!.members.find((m) => m.account === k!.name)!;
      const dec = decryptRoomMessage({ ...input, roomKey: payload.key, room: '#ops', sender: k!.name, senderKey: listed.signingKey });
      expect(dec.status).to.equal(MessageStatus.OK);
      expect(dec.plaintext).to.equal('hi from gpg');
    });
  }
});
