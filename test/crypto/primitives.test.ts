/**
 * The two implementations of src/crypto's primitives, Node's (primitives.ts, node:crypto) and the
 * browser companion's (primitives.browser.ts, Web Crypto randomness and @noble), checked against
 * published vectors and against each other: what one seals or signs, the other opens or verifies,
 * and both refuse the same tampering.
 */
import { expect } from 'chai';
import { createHash, generateKeyPairSync, privateEncrypt, randomBytes, sign as nodeSign, constants } from 'node:crypto';
import * as browser from '../../src/crypto/primitives.browser.js';
import * as node from '../../src/crypto/primitives.js';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const flip = (b: Uint8Array, i: number): Uint8Array => {
  const c = Uint8Array.from(b);
  c[i]! ^= 0x01;
  return c;
};
const impls = [
  ['Node', node],
  ['browser', browser],
] as const;

describe('crypto primitives: Node and browser (src/crypto/primitives*.ts)', () => {
  it('both hash SHA-256 as FIPS 180-4 says, over parts as over their concatenation', () => {
    for (const [, p] of impls) {
      expect(toHex(p.sha256(new TextEncoder().encode('abc')))).to.equal('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
      expect(toHex(p.sha256(new TextEncoder().encode('a'), new TextEncoder().encode('bc')))).to.equal(toHex(p.sha256(new TextEncoder().encode('abc'))));
    }
  });

  it('both draw random bytes of the length asked, different each time', () => {
    for (const [, p] of impls) {
      const a = p.randomBytes(70_000);
      expect(a.length).to.equal(70_000);
      expect(toHex(p.randomBytes(32))).to.not.equal(toHex(p.randomBytes(32)));
      // The part past getRandomValues' 65536-byte limit is filled too.
      expect(a.subarray(65_536).some((x) => x !== 0)).to.equal(true);
    }
  });

  it('both seal AES-256-GCM as the published vector says (key and IV all zeros, empty text)', () => {
    for (const [, p] of impls) {
      expect(toHex(p.aesGcmSeal(new Uint8Array(32), new Uint8Array(12), new Uint8Array(0)))).to.equal('530f8afbc74536b9a963b4f1c4cb738b');
    }
  });

  it('each opens what the other sealed, and neither opens it with one bit changed, another AAD or a short input', () => {
    const key = node.randomBytes(32);
    const iv = node.randomBytes(12);
    const aad = new TextEncoder().encode('room #sc-x epoch 7');
    const text = node.randomBytes(300);
    for (const [, from] of impls) {
      const sealed = from.aesGcmSeal(key, iv, text, aad);
      expect(sealed.length).to.equal(300 + node.GCM_TAG_BYTES);
      for (const [, to] of impls) {
        expect(toHex(to.aesGcmOpen(key, iv, sealed, aad)!)).to.equal(toHex(text));
        expect(to.aesGcmOpen(key, iv, flip(sealed, 5), aad)).to.equal(undefined);
        expect(to.aesGcmOpen(key, iv, flip(sealed, sealed.length - 1), aad)).to.equal(undefined);
        expect(to.aesGcmOpen(key, iv, sealed, new TextEncoder().encode('room #sc-x epoch 8'))).to.equal(undefined);
        expect(to.aesGcmOpen(key, iv, sealed)).to.equal(undefined);
        expect(to.aesGcmOpen(key, iv, sealed.subarray(0, 15), aad)).to.equal(undefined);
      }
    }
  });

  // RFC 8032 §7.1, TEST 2 (one-byte message 0x72).
  const RFC8032 = {
    seed: hex('4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb'),
    pub: hex('3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c'),
    msg: hex('72'),
    sig: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  };

  it('both sign Ed25519 as RFC 8032 says, and each verifies the other', () => {
    for (const [, p] of impls) {
      const sig = p.signRaw('ed25519', p.ed25519PrivateKey(RFC8032.seed), RFC8032.msg);
      expect(toHex(sig)).to.equal(RFC8032.sig);
      for (const [, q] of impls) {
        const pub = q.ed25519PublicKey(RFC8032.pub);
        expect(q.verifyRaw('ed25519', pub, RFC8032.msg, sig)).to.equal(true);
        expect(q.verifyRaw('ed25519', pub, hex('73'), sig)).to.equal(false);
        expect(q.verifyRaw('ed25519', pub, RFC8032.msg, flip(sig, 10))).to.equal(false);
        expect(q.verifyRaw('ed25519', pub, RFC8032.msg, sig.subarray(0, 63))).to.equal(false);
        // The right signature checked as another algorithm is false, not an error.
        expect(q.verifyRaw('rsa-pss', pub, RFC8032.msg, sig)).to.equal(false);
      }
    }
  });

  it('both refuse an Ed25519 seed that is not 32 bytes, and the browser a public key that is not; the browser signs only with an Ed25519 private key', () => {
    for (const [, p] of impls) {
      for (const len of [0, 31, 33]) expect(() => p.ed25519PrivateKey(new Uint8Array(len)), `${len}`).to.throw(TypeError, 'an Ed25519 seed is 32 bytes');
    }
    for (const len of [0, 31, 33]) expect(() => browser.ed25519PublicKey(new Uint8Array(len)), `${len}`).to.throw(TypeError, 'not an Ed25519 public key');
    const pub = browser.ed25519PublicKey(RFC8032.pub);
    expect(() => browser.signRaw('ed25519', pub, RFC8032.msg)).to.throw(TypeError, 'cannot sign with a ed25519-public key as ed25519');
    expect(() => browser.signRaw('rsa-pss', browser.ed25519PrivateKey(RFC8032.seed), RFC8032.msg)).to.throw(TypeError, 'cannot sign with a ed25519-private key as rsa-pss');
  });

  describe('RSA', function () {
    this.timeout(20_000);
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const spki = new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }));
    const jwk = publicKey.export({ format: 'jwk' });
    const n = new Uint8Array(Buffer.from(jwk.n!, 'base64url'));
    const e = new Uint8Array(Buffer.from(jwk.e!, 'base64url'));
    const data = new TextEncoder().encode('sealchat room message transcript');
    const pss = (saltLength: number): Uint8Array =>
      new Uint8Array(nodeSign('sha256', data, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }));

    it('both write the same SubjectPublicKeyInfo for a modulus and exponent, and read it back with its size', () => {
      for (const [, p] of impls) {
        expect(toHex(p.rsaSpki(p.rsaPublicKey(n, e)))).to.equal(toHex(spki));
        const read = p.rsaPublicKeyFromSpki(spki)!;
        expect(read.bits).to.equal(2048);
        expect(toHex(p.rsaSpki(read.key))).to.equal(toHex(spki));
      }
    });

    it('both refuse a SubjectPublicKeyInfo with bytes after it, cut short, or of another algorithm', () => {
      const ed = new Uint8Array(generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }));
      for (const [, p] of impls) {
        expect(p.rsaPublicKeyFromSpki(Uint8Array.from([...spki, 0]))).to.equal(undefined);
        expect(p.rsaPublicKeyFromSpki(spki.subarray(0, spki.length - 1))).to.equal(undefined);
        expect(p.rsaPublicKeyFromSpki(ed)).to.equal(undefined);
        expect(p.rsaPublicKeyFromSpki(new Uint8Array(0))).to.equal(undefined);
      }
    });

    describe('DER: the browser reads only the one shortest encoding of an RSA key', () => {
      /** A DER element whose length is written with `lenBytes` bytes (0: the short form). */
      const tlv = (tag: number, body: Uint8Array, lenBytes = body.length < 0x80 ? 0 : body.length < 0x100 ? 1 : 2): Uint8Array => {
        const len: number[] = [];
        for (let v = body.length, i = 0; i < lenBytes; i++, v >>= 8) len.unshift(v & 0xff);
        return Uint8Array.from([tag, ...(lenBytes === 0 ? [body.length] : [0x80 | lenBytes, ...len]), ...body]);
      };
      const cat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(parts.flatMap((x) => [...x]));
      const int = (b: Uint8Array): Uint8Array => tlv(0x02, b[0]! & 0x80 ? cat(Uint8Array.of(0), b) : b);
      const ALG = Uint8Array.from([0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00]);
      /** The SPKI of modulus/exponent elements `ints`, each layer's length written as asked. */
      const spkiOf = (ints: Uint8Array, o: { seq?: number; bits?: number; outer?: number; after?: number[] } = {}): Uint8Array => {
        const rsaKey = tlv(0x30, ints, o.seq);
        return tlv(0x30, cat(ALG, tlv(0x03, cat(Uint8Array.of(0), rsaKey, Uint8Array.from(o.after ?? [])), o.bits)), o.outer);
      };
      const read = (b: Uint8Array) => browser.rsaPublicKeyFromSpki(b)?.bits;

      it('reads the key as Node writes it, built here the same way', () => {
        expect(toHex(spkiOf(cat(int(n), int(e))))).to.equal(toHex(spki));
        expect(read(spkiOf(cat(int(n), int(e))))).to.equal(2048);
      });

      it('refuses lengths in a longer form than needed: long form under 128, a leading zero byte, four length bytes, the indefinite form', () => {
        const ints = cat(int(n), int(e));
        expect(read(spkiOf(ints, { outer: 3 }))).to.equal(undefined);
        expect(read(spkiOf(ints, { bits: 3 }))).to.equal(undefined);
        expect(read(spkiOf(ints, { seq: 4 }))).to.equal(undefined);
        expect(read(spkiOf(tlv(0x30, new Uint8Array(0)), {}))).to.equal(undefined);
        // The exponent (3 bytes) with its length in the long form.
        expect(read(spkiOf(cat(int(n), tlv(0x02, e, 1))))).to.equal(undefined);
        // The indefinite form (0x80) and a length that runs past the end.
        const indefinite = Uint8Array.from(spki);
        indefinite[1] = 0x80;
        expect(read(indefinite)).to.equal(undefined);
        const past = Uint8Array.from(spki);
        past[3]! += 1;
        expect(read(past)).to.equal(undefined);
      });

      it('refuses a modulus or exponent that is negative, empty, padded with a needless zero, or not an INTEGER', () => {
        const nNeg = tlv(0x02, n); // top bit set, no zero byte: negative in DER
        expect(read(spkiOf(cat(nNeg, int(e))))).to.equal(undefined);
        expect(read(spkiOf(cat(int(n), tlv(0x02, new Uint8Array(0)))))).to.equal(undefined);
        expect(read(spkiOf(cat(int(n), tlv(0x02, cat(Uint8Array.of(0), e)))))).to.equal(undefined);
        expect(read(spkiOf(cat(tlv(0x02, cat(Uint8Array.of(0, 0), n)), int(e))))).to.equal(undefined);
        expect(read(spkiOf(cat(tlv(0x04, cat(Uint8Array.of(0), n)), int(e))))).to.equal(undefined);
        expect(read(spkiOf(cat(int(n), int(e), int(e))))).to.equal(undefined);
        expect(read(spkiOf(int(n)))).to.equal(undefined);
        expect(read(spkiOf(cat(int(n), int(e)), { after: [0x05, 0x00] }))).to.equal(undefined);
        // An even or tiny exponent, or an exponent not below the modulus, is not an RSA key.
        expect(read(spkiOf(cat(int(n), int(Uint8Array.of(1, 0, 0)))))).to.equal(undefined);
        expect(read(spkiOf(cat(int(n), int(Uint8Array.of(1)))))).to.equal(undefined);
        expect(read(spkiOf(cat(int(Uint8Array.of(0x0f)), int(Uint8Array.of(0x11)))))).to.equal(undefined);
        // A minimal one-byte modulus and exponent that are a (toy) key are read: the checks above are DER's, not size's.
        expect(read(spkiOf(cat(int(Uint8Array.of(0x37)), int(Uint8Array.of(3)))))).to.equal(6);
        // A modulus of 127 bytes with its top bit set is an INTEGER of exactly 128 bytes: 0x81 0x80.
        const n127 = Uint8Array.from(n.subarray(0, 127));
        n127[126]! |= 1;
        expect(toHex(int(n127).subarray(0, 4))).to.equal('02818000');
        expect(read(spkiOf(cat(int(n127), int(e))))).to.equal(1016);
        expect(toHex(browser.rsaSpki(browser.rsaPublicKey(n127, e)))).to.equal(toHex(spkiOf(cat(int(n127), int(e)))));
        expect(toHex(node.rsaSpki(node.rsaPublicKey(n127, e)))).to.equal(toHex(spkiOf(cat(int(n127), int(e)))));
      });

      it('refuses every cut of the key short of its end', () => {
        for (let len = 0; len < spki.length; len++) expect(read(spki.subarray(0, len)), `${len} bytes`).to.equal(undefined);
      });
    });

    it('both verify RSASSA-PSS (SHA-256, 32-byte salt) made by Node, and refuse tampering and another salt length', () => {
      const sig = pss(32);
      const node20 = pss(20);
      for (const [, p] of impls) {
        const key = p.rsaPublicKeyFromSpki(spki)!.key;
        expect(p.verifyRaw('rsa-pss', key, data, sig)).to.equal(true);
        expect(p.verifyRaw('rsa-pss', key, data.subarray(1), sig)).to.equal(false);
        expect(p.verifyRaw('rsa-pss', key, data, flip(sig, 100))).to.equal(false);
        expect(p.verifyRaw('rsa-pss', key, data, sig.subarray(1))).to.equal(false);
        expect(p.verifyRaw('rsa-pss', key, data, node20)).to.equal(false);
        expect(p.verifyRaw('ed25519', key, data, sig)).to.equal(false);
      }
      // And what primitives.ts signs with an RSA key, the browser verifies.
      const jwkPriv = privateKey.export({ format: 'jwk' });
      const big = (s: string | undefined): bigint => BigInt('0x' + Buffer.from(s!, 'base64url').toString('hex'));
      const priv = node.rsaPrivateKey({ n: big(jwkPriv.n), e: big(jwkPriv.e), d: big(jwkPriv.d), p: big(jwkPriv.p), q: big(jwkPriv.q), dp: big(jwkPriv.dp), dq: big(jwkPriv.dq), qi: big(jwkPriv.qi) });
      const mine = node.signRaw('rsa-pss', priv, data);
      expect(browser.verifyRaw('rsa-pss', browser.rsaPublicKeyFromSpki(spki)!.key, data, mine)).to.equal(true);
    });

    it('both refuse a PSS encoding with the top bit set, a non-zero padding byte, a wrong separator or trailer, and a signature not below the modulus', () => {
      // EMSA-PSS-ENCODE by hand (RFC 8017 §9.1.1: SHA-256, MGF1-SHA-256, 32-byte salt), signed raw
      // with the private key, so each rule is broken alone in a signature that is otherwise right.
      const sha = (...parts: Uint8Array[]) => new Uint8Array(createHash('sha256').update(Buffer.concat(parts)).digest());
      const mgf = (seed: Uint8Array, len: number) => {
        const out: number[] = [];
        for (let c = 0; out.length < len; c++) out.push(...sha(seed, Uint8Array.of(c >>> 24, (c >>> 16) & 255, (c >>> 8) & 255, c & 255)));
        return Uint8Array.from(out.slice(0, len));
      };
      const emLen = 256;
      const encode = (o: { psByte?: number; separator?: number; topBit?: boolean; trailer?: number } = {}): Uint8Array => {
        for (;;) {
          const salt = new Uint8Array(randomBytes(32));
          const h = sha(new Uint8Array(8), sha(data), salt);
          const db = new Uint8Array(emLen - 32 - 1);
          db[0] = o.psByte ?? 0;
          db[db.length - 33] = o.separator ?? 1;
          db.set(salt, db.length - 32);
          const masked = mgf(h, db.length).map((m, i) => m ^ db[i]!);
          masked[0]! &= 0x7f;
          // The bit RFC 8017 clears, set alone; a salt for which the encoding stays below n.
          if (o.topBit) masked[0]! |= 0x80;
          if (masked[0]! < n[0]!) return Uint8Array.from([...masked, ...h, o.trailer ?? 0xbc]);
        }
      };
      const signRawRsa = (em: Uint8Array) => new Uint8Array(privateEncrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, em));
      expect(n[0]).to.be.greaterThan(0x80); // so that 0x80… is still below the modulus
      const keys = impls.map(([name, p]) => [name, p, p.rsaPublicKeyFromSpki(spki)!.key] as const);
      const verdicts = (sig: Uint8Array) => keys.map(([name, p, key]) => `${name}:${p.verifyRaw('rsa-pss', key, data, sig)}`).join(' ');
      expect(verdicts(signRawRsa(encode()))).to.equal('Node:true browser:true');
      for (const [what, o] of [
        ['top bit set', { topBit: true }],
        ['a non-zero padding byte', { psByte: 1 }],
        ['separator 0x02', { separator: 2 }],
        ['trailer 0xbb', { trailer: 0xbb }],
      ] as const) {
        expect(verdicts(signRawRsa(encode(o))), what).to.equal('Node:false browser:false');
      }
      expect(verdicts(n), 'the modulus itself').to.equal('Node:false browser:false');
      // A good signature plus the modulus is the same value mod n: still refused (no malleability).
      const big = (b: Uint8Array) => BigInt('0x' + toHex(b));
      let plusN: Uint8Array | undefined;
      while (!plusN) {
        const sum = big(signRawRsa(encode())) + big(n);
        if (sum < 2n ** 2048n) plusN = Uint8Array.from(Buffer.from(sum.toString(16).padStart(512, '0'), 'hex'));
      }
      expect(verdicts(plusN), 'signature + n').to.equal('Node:false browser:false');
      expect(verdicts(new Uint8Array(256).fill(0xff)), 'above the modulus').to.equal('Node:false browser:false');
    });

    it('the browser refuses to hold an RSA private key, and says to use an Ed25519 one', () => {
      expect(() => browser.rsaPrivateKey({ n: 1n, e: 3n, d: 1n, p: 1n, q: 1n, dp: 1n, dq: 1n, qi: 1n })).to.throw(/use an Ed25519 key/);
    });
  });
});
