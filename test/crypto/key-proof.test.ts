import { expect } from 'chai';
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  KeyProofStatus,
  MAX_KEY_REGISTRATION_BYTES,
  decodeKeyRegistration,
  encodeKeyRegistration,
  frameKeyRegistration,
  generateUserKey,
  keyProofTranscript,
  signKeyProof,
  unlockPrivateKey,
  verifyKeyProof,
} from '../../src/crypto/index.js';

const keys = new Map<string, Promise<{ privateArmored: string }>>();
/** One key per name for this file (Ed25519: made in milliseconds). */
const keyFor = (name: string): Promise<{ privateArmored: string }> => {
  if (!keys.has(name)) keys.set(name, generateUserKey({ name }));
  return keys.get(name)!;
};

/** The vector in docs/NETWORKS.md ("```text vector:key-proof"). */
function vector(): Record<string, string> {
  const text = readFileSync(fileURLToPath(new URL('../../docs/NETWORKS.md', import.meta.url)), 'utf8');
  const start = text.indexOf('```text vector:key-proof\n');
  const body = text.slice(text.indexOf('\n', start) + 1, text.indexOf('\n```', start));
  return Object.fromEntries(body.split('\n').map((l) => /^([a-z0-9_]+) = (.*)$/.exec(l)!).map((m) => [m[1]!, m[2]!]));
}

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

describe('src/crypto/key-proof.ts', () => {
  it('builds the transcript of the docs/NETWORKS.md vector, which the RFC 8032 test key signs as given', () => {
    const v = vector();
    const t = keyProofTranscript({ purpose: 'possess', network: v.network!, account: v.account!, fingerprint: v.fingerprint!, nonce: hex(v.nonce!) });
    expect(Buffer.from(t).toString('hex')).to.equal(v.transcript);
    const key = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(v.ed25519_secret!, 'hex')]), format: 'der', type: 'pkcs8' });
    expect(sign(null, t, key).toString('hex')).to.equal(v.signature);
    expect(verify(null, t, createPublicKey(key), Buffer.from(v.signature!, 'hex'))).to.equal(true);
  });

  it('binds the account casefolded, and the purpose, network, fingerprint and nonce as given', () => {
    const base = { purpose: 'possess' as const, network: 'n', account: 'Alice', fingerprint: '0'.repeat(40), nonce: new Uint8Array(32) };
    const t = Buffer.from(keyProofTranscript(base)).toString('hex');
    expect(Buffer.from(keyProofTranscript({ ...base, account: 'alice' })).toString('hex')).to.equal(t);
    for (const other of [{ purpose: 'endorse' as const }, { network: 'N' }, { fingerprint: '1'.repeat(40) }, { nonce: new Uint8Array(32).fill(1) }]) {
      expect(Buffer.from(keyProofTranscript({ ...base, ...other })).toString('hex')).to.not.equal(t);
    }
  });

  it('verifies a possession proof only under the key it names, and for the same fields', async () => {
    const alice = (await unlockPrivateKey({ armored: (await keyFor('alice')).privateArmored })).key!;
    const mallory = (await unlockPrivateKey({ armored: (await keyFor('mallory')).privateArmored })).key!;
    const fields = { network: 'sctest', account: 'alice', fingerprint: alice.fingerprint, nonce: new Uint8Array(32).fill(7) };
    const signature = signKeyProof({ ...fields, purpose: 'possess', signer: alice });
    expect(verifyKeyProof({ ...fields, purpose: 'possess', signature, key: alice.publicKey })).to.equal(KeyProofStatus.OK);
    expect(verifyKeyProof({ ...fields, account: 'bob', purpose: 'possess', signature, key: alice.publicKey })).to.equal(KeyProofStatus.BAD_SIGNATURE);
    expect(verifyKeyProof({ ...fields, nonce: new Uint8Array(32), purpose: 'possess', signature, key: alice.publicKey })).to.equal(KeyProofStatus.BAD_SIGNATURE);
    expect(verifyKeyProof({ ...fields, purpose: 'possess', signature, key: mallory.publicKey })).to.equal(KeyProofStatus.WRONG_KEY);
    expect(() => signKeyProof({ ...fields, purpose: 'possess', signer: mallory })).to.throw(/signed by the key it names/);
  });

  it('verifies an endorsement by the old key of the new fingerprint, and nothing else', async () => {
    const oldKey = (await unlockPrivateKey({ armored: (await keyFor('alice')).privateArmored })).key!;
    const newKey = (await unlockPrivateKey({ armored: (await keyFor('alice-new')).privateArmored })).key!;
    const fields = { network: 'sctest', account: 'alice', fingerprint: newKey.fingerprint, nonce: new Uint8Array(32).fill(3) };
    const endorsement = signKeyProof({ ...fields, purpose: 'endorse', signer: oldKey });
    expect(verifyKeyProof({ ...fields, purpose: 'endorse', signature: endorsement, key: oldKey.publicKey })).to.equal(KeyProofStatus.OK);
    // An endorsement is not a possession proof (the purpose is signed).
    expect(verifyKeyProof({ ...fields, purpose: 'possess', signature: endorsement, key: newKey.publicKey })).to.equal(KeyProofStatus.BAD_SIGNATURE);
  });

  it('round-trips a registration and refuses anything else', async () => {
    const r = { network: 'n', account: 'a', nonce: new Uint8Array(32).fill(1), publicKey: 'armored', proof: Uint8Array.of(1, 2, 3) };
    expect(decodeKeyRegistration(encodeKeyRegistration(r))).to.deep.equal(r);
    expect(decodeKeyRegistration(new TextEncoder().encode('{"v":2}'))).to.equal(undefined);
    expect(decodeKeyRegistration(new TextEncoder().encode('not json'))).to.equal(undefined);
  });

  describe('misuse and malformed input', () => {
    const base = { purpose: 'possess' as const, network: 'n', account: 'alice', fingerprint: 'a'.repeat(40), nonce: new Uint8Array(32) };
    const thrown = (f: () => unknown): string | undefined => {
      try {
        f();
        return undefined;
      } catch (err) {
        expect(err).to.be.instanceOf(TypeError);
        return (err as Error).message;
      }
    };

    it('names the field a transcript cannot be made of', () => {
      const t = (over: object) => thrown(() => keyProofTranscript({ ...base, ...over } as never));
      expect(t({})).to.equal(undefined);
      expect(t({ purpose: 'endorse' })).to.equal(undefined);
      expect(t({ fingerprint: 'b'.repeat(64) })).to.equal(undefined);
      expect(thrown(() => keyProofTranscript(null as never))).to.equal('keyProofTranscript: expected one options object');
      expect(thrown(() => keyProofTranscript('x' as never))).to.equal('keyProofTranscript: expected one options object');
      for (const purpose of ['own', '', undefined]) expect(t({ purpose }), String(purpose)).to.equal('keyProofTranscript: purpose must be possess or endorse');
      for (const k of ['network', 'account']) {
        for (const v of ['', 'a\0b', 7, undefined]) expect(t({ [k]: v }), `${k}=${String(v)}`).to.equal(`keyProofTranscript: ${k} must be a non-empty string without NUL`);
      }
      for (const fingerprint of ['A'.repeat(40), 'a'.repeat(39), 'g'.repeat(40), ['a'.repeat(40)], 7]) {
        expect(t({ fingerprint }), String(fingerprint)).to.equal('keyProofTranscript: fingerprint must be lowercase hex');
      }
      for (const nonce of [new Uint8Array(31), new Uint8Array(33), Array(32).fill(0), 'x'.repeat(32)]) {
        expect(t({ nonce })).to.equal('keyProofTranscript: nonce must be 32 bytes');
      }
    });

    it('refuses to sign an endorsement with the key it endorses, and reports misuse of signKeyProof by name', async () => {
      const alice = (await unlockPrivateKey({ armored: (await keyFor('alice')).privateArmored })).key!;
      const fields = { ...base, fingerprint: alice.fingerprint };
      expect(thrown(() => signKeyProof({ ...fields, purpose: 'endorse', signer: alice }))).to.equal('signKeyProof: an endorsement is signed by the old key, not the new one');
      expect(thrown(() => signKeyProof({ ...fields, purpose: 'possess', signer: {} as never }))).to.match(/^signKeyProof: /);
      expect(thrown(() => signKeyProof({ ...fields, purpose: 'possess', network: '' } as never))).to.equal('keyProofTranscript: network must be a non-empty string without NUL');
    });

    it('says MALFORMED for a missing or empty signature or bad fields, WRONG_KEY only for a possession proof under another key', async () => {
      const alice = (await unlockPrivateKey({ armored: (await keyFor('alice')).privateArmored })).key!;
      const mallory = (await unlockPrivateKey({ armored: (await keyFor('mallory')).privateArmored })).key!;
      const fields = { ...base, fingerprint: alice.fingerprint };
      const signature = signKeyProof({ ...fields, purpose: 'possess', signer: alice });
      const v = (over: object) => verifyKeyProof({ ...fields, purpose: 'possess', signature, key: alice.publicKey, ...over } as never);
      expect(v({})).to.equal(KeyProofStatus.OK);
      expect(v({ signature: new Uint8Array(0) })).to.equal(KeyProofStatus.MALFORMED);
      expect(v({ signature: Array.from(signature) })).to.equal(KeyProofStatus.MALFORMED);
      expect(v({ signature: undefined })).to.equal(KeyProofStatus.MALFORMED);
      expect(v({ nonce: new Uint8Array(5) })).to.equal(KeyProofStatus.MALFORMED);
      expect(v({ purpose: 'other' })).to.equal(KeyProofStatus.MALFORMED);
      expect(v({ signature: signature.map((b, i) => (i === 0 ? b ^ 1 : b)) })).to.equal(KeyProofStatus.BAD_SIGNATURE);
      expect(v({ key: mallory.publicKey })).to.equal(KeyProofStatus.WRONG_KEY);
      // An endorsement names the new key and is checked under the old one: no WRONG_KEY for it.
      const endorsement = signKeyProof({ ...fields, purpose: 'endorse', fingerprint: mallory.fingerprint, signer: alice });
      expect(verifyKeyProof({ ...fields, fingerprint: mallory.fingerprint, purpose: 'endorse', signature: endorsement, key: alice.publicKey })).to.equal(KeyProofStatus.OK);
      expect(verifyKeyProof({ ...fields, fingerprint: mallory.fingerprint, purpose: 'endorse', signature: endorsement, key: mallory.publicKey })).to.equal(KeyProofStatus.BAD_SIGNATURE);
    });

    it('reads a registration only with every field, a 32-byte nonce, canonical base64 and within the size limit', () => {
      const r = { network: 'n', account: 'a', nonce: new Uint8Array(32).fill(1), publicKey: 'armored', proof: Uint8Array.of(1, 2, 3) };
      const withEndorsement = { ...r, endorsement: Uint8Array.of(9, 8) };
      expect(decodeKeyRegistration(encodeKeyRegistration(withEndorsement))).to.deep.equal(withEndorsement);
      const json = (over: object) => new TextEncoder().encode(JSON.stringify({ v: 1, network: 'n', account: 'a', nonce: Buffer.from(r.nonce).toString('base64'), publicKey: 'armored', proof: 'AQID', ...over }));
      expect(decodeKeyRegistration(json({}))).to.deep.equal(r);
      for (const [what, over] of [
        ['no network', { network: undefined }],
        ['an empty account', { account: '' }],
        ['a number as public key', { publicKey: 7 }],
        ['no nonce', { nonce: undefined }],
        ['a 31-byte nonce', { nonce: Buffer.alloc(31).toString('base64') }],
        ['a nonce that is not base64', { nonce: '!'.repeat(44) }],
        ['an empty proof', { proof: '' }],
        ['a proof that is not base64', { proof: 'AQI' }],
        ['an endorsement that is not base64', { endorsement: 'AQI' }],
        ['an empty endorsement', { endorsement: '' }],
        ['an endorsement that is not a string', { endorsement: 5 }],
        ['version 2', { v: 2 }],
      ] as const) {
        expect(decodeKeyRegistration(json(over)), what).to.equal(undefined);
      }
      for (const text of ['null', '[]', '"x"', '7']) expect(decodeKeyRegistration(new TextEncoder().encode(text)), text).to.equal(undefined);
      expect(decodeKeyRegistration('{}' as never)).to.equal(undefined);
      const padded = (n: number) => json({ publicKey: 'k'.repeat(n) });
      const size = padded(0).length;
      expect(decodeKeyRegistration(padded(MAX_KEY_REGISTRATION_BYTES - size))).to.not.equal(undefined);
      expect(decodeKeyRegistration(padded(MAX_KEY_REGISTRATION_BYTES - size + 1))).to.equal(undefined);
    });

    it('frames a registration as register i/n lines of 300 base64 characters that join back to it', () => {
      for (const [bytes, lines] of [[1, 1], [225, 1], [226, 2], [450, 2], [451, 3]] as const) {
        const data = new Uint8Array(bytes).map((_, i) => i * 7);
        const out = frameKeyRegistration(data);
        expect(out, `${bytes} bytes`).to.have.length(lines);
        out.forEach((l, i) => expect(l).to.match(new RegExp(`^register ${i + 1}/${lines} [A-Za-z0-9+/=]{1,300}$`)));
        expect(out.slice(0, -1).every((l) => l.split(' ')[2]!.length === 300)).to.equal(true);
        const joined = out.map((l) => l.split(' ')[2]).join('');
        expect(Buffer.from(joined, 'base64')).to.deep.equal(Buffer.from(data));
      }
    });
  });
});
