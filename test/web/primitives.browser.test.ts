/**
 * src/crypto/primitives.browser.ts: Ed25519 with what a key computes once kept with it (the
 * expanded seed when signing; the decoded point, and after a few uses its window table, when
 * verifying). Signatures stay byte for byte those of node:crypto, and verification answers as
 * @noble's own strict `ed25519.verify` (zip215 off) does, on the first use of a key and on later
 * ones, for good signatures and for every kind of bad one.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToNumberLE, numberToBytesLE } from '@noble/curves/utils.js';
import { expect } from 'chai';
import * as browser from '../../src/crypto/primitives.browser.js';
import * as node from '../../src/crypto/primitives.js';

const L = ed25519.Point.Fn.ORDER;
const reference = (sig: Uint8Array, msg: Uint8Array, pub: Uint8Array): boolean => {
  try {
    return ed25519.verify(sig, msg, pub, { zip215: false });
  } catch {
    return false;
  }
};

describe('src/crypto/primitives.browser.ts: Ed25519 with kept key state', () => {
  it('signs every message as node:crypto does, the first time and with the kept expansion after', () => {
    for (let k = 0; k < 4; k++) {
      const seed = browser.randomBytes(32);
      const mine = browser.ed25519PrivateKey(seed);
      const theirs = node.ed25519PrivateKey(seed);
      for (let i = 0; i < 6; i++) {
        const msg = browser.randomBytes(i * 37);
        expect(Buffer.from(browser.signRaw('ed25519', mine, msg)).toString('hex')).to.equal(Buffer.from(node.signRaw('ed25519', theirs, msg)).toString('hex'));
      }
    }
  });

  it('verifies as the strict reference does, before and after the key is precomputed, and refuses tampering every time', () => {
    const seed = browser.randomBytes(32);
    const priv = browser.ed25519PrivateKey(seed);
    const raw = ed25519.getPublicKey(seed);
    const pub = browser.ed25519PublicKey(raw);
    for (let i = 0; i < 12; i++) {
      const msg = browser.randomBytes(100 + i);
      const sig = browser.signRaw('ed25519', priv, msg);
      const cases: Array<[string, Uint8Array, Uint8Array]> = [
        ['good', sig, msg],
        ['another message', sig, Uint8Array.from([...msg, 0])],
        ['R changed', Uint8Array.from(sig).fill(sig[0]! ^ 1, 0, 1), msg],
        ['S changed', Uint8Array.from(sig).fill(sig[40]! ^ 1, 40, 41), msg],
        // The same S plus the group order: the same point, but S >= L is refused (malleability).
        ['S + L', Uint8Array.from([...sig.subarray(0, 32), ...numberToBytesLE(bytesToNumberLE(sig.subarray(32)) + L, 32)]), msg],
        ['short', sig.subarray(0, 63), msg],
      ];
      for (const [what, s, m] of cases) {
        const want = reference(s, m, raw);
        expect(browser.verifyRaw('ed25519', pub, m, s), `${what}, use ${i}`).to.equal(want);
        expect(node.verifyRaw('ed25519', node.ed25519PublicKey(raw), m, s), `${what} (node), use ${i}`).to.equal(want);
      }
      expect(reference(sig, msg, raw)).to.equal(true);
    }
  });

  it('refuses a small-order public key even where the cofactored equation holds, every time', () => {
    // A = the identity, R = the identity, S = 0: [8]0 = [8]0 + [8][k]0 for any message.
    const identity = Uint8Array.from([1, ...new Uint8Array(31)]);
    const sig = Uint8Array.from([1, ...new Uint8Array(63)]);
    const pub = browser.ed25519PublicKey(identity);
    for (let i = 0; i < 6; i++) {
      expect(browser.verifyRaw('ed25519', pub, Uint8Array.of(i), sig)).to.equal(false);
      expect(reference(sig, Uint8Array.of(i), identity)).to.equal(false);
    }
  });

  it('refuses every signature under a public key that does not decode (y >= p), every time', () => {
    const bad = new Uint8Array(32).fill(0xff);
    bad[31] = 0x7f;
    const pub = browser.ed25519PublicKey(bad);
    const sig = browser.signRaw('ed25519', browser.ed25519PrivateKey(browser.randomBytes(32)), Uint8Array.of(1));
    for (let i = 0; i < 6; i++) expect(browser.verifyRaw('ed25519', pub, Uint8Array.of(1), sig)).to.equal(false);
  });
});
