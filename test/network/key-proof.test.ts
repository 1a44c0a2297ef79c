import { expect } from 'chai';
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  KeyProofStatus,
  decodeKeyRegistration,
  encodeKeyRegistration,
  keyProofTranscript,
  signKeyProof,
  unlockPrivateKey,
  verifyKeyProof,
} from '../../src/crypto/index.js';
import { keyFor } from '../helpers/daemon.js';

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
});
