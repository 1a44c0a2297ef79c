/**
 * Edges of the compact per-message signing keys (src/crypto/signing.ts) that the mutation run of
 * issue 18 showed untested: which OpenPGP key packets give a signing key and why the others do not,
 * the RSA size limits on both sides, stripped leading zeros, a secret key that does not match, and
 * the bounded cache of parsed keys. The key packets are built from real node:crypto keys.
 */
import { expect } from 'chai';
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import {
  ED25519_SIGNATURE_BYTES,
  MAX_RSA_BITS,
  MIN_RSA_BITS,
  extractSigningPrivate,
  extractSigningPublic,
  importSigningPublicKey,
  sameSigningKey,
  type KeyPacketLike,
} from '../../src/crypto/signing.js';
import { signRaw, verifyRaw } from '../../src/crypto/primitives.js';

const ED25519_OID = Uint8Array.from([0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01]);
const b64u = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64url'));

/** The node:crypto Ed25519 private key of a 32-byte seed (PKCS#8 with the RFC 8410 prefix). */
function edPrivate(seed: Uint8Array): KeyObject {
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(seed)]);
  return createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
}

/** An Ed25519 key pair as raw seed and raw public point. */
function edPair(seed: Uint8Array = randomBytes(32)): { seed: Uint8Array; pub: Uint8Array } {
  const jwk = edPrivate(seed).export({ format: 'jwk' }) as { x: string };
  return { seed: new Uint8Array(seed), pub: b64u(jwk.x) };
}

/** A v4 EdDSA-legacy packet (algorithm 22) and an RFC 9580 Ed25519 packet (27) for one key. */
function edPackets(pair: { seed: Uint8Array; pub: Uint8Array }, seed = pair.seed) {
  const legacy: KeyPacketLike = {
    algorithm: 22,
    publicParams: { oid: { oid: ED25519_OID }, Q: Uint8Array.of(0x40, ...pair.pub) },
    privateParams: { seed },
  };
  const v6: KeyPacketLike = { algorithm: 27, publicParams: { A: pair.pub }, privateParams: { seed } };
  return { legacy, v6 };
}

/** RSA key parameters from a real key, as an OpenPGP packet holds them. */
function rsaPacket(bits: number, algorithm = 1): { packet: KeyPacketLike; privateKey: KeyObject } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  const j = privateKey.export({ format: 'jwk' }) as Record<string, string>;
  return {
    privateKey,
    packet: {
      algorithm,
      publicParams: { n: b64u(j.n!), e: b64u(j.e!) },
      privateParams: { d: b64u(j.d!), p: b64u(j.q!), q: b64u(j.p!), u: new Uint8Array(1) },
    },
  };
}

/** A modulus (base64url) of exactly `bits` bits: odd, top bit set; no private half is needed to check sizes. */
function randomModulus(bits: number): string {
  const n = randomBytes(Math.ceil(bits / 8));
  const top = bits % 8 === 0 ? 8 : bits % 8;
  n[0] = (n[0]! & ((1 << top) - 1)) | (1 << (top - 1));
  n[n.length - 1]! |= 1;
  return n.toString('base64url');
}

/** A DER SPKI of an RSA public key whose modulus has exactly `bits` bits (no private half needed). */
function rsaSpkiOfBits(bits: number): string {
  const k = createPublicKey({ key: { kty: 'RSA', n: randomModulus(bits), e: 'AQAB' }, format: 'jwk' });
  return k.export({ format: 'der', type: 'spki' }).toString('base64');
}

describe('src/crypto/signing.ts: which keys sign room messages', function () {
  describe('the public half of a key packet', function () {
    it('takes the 32-byte point of an RFC 9580 Ed25519 packet and of an EdDSA-legacy packet with the Ed25519 OID and 0x40 prefix', function () {
      const pair = edPair();
      const { legacy, v6 } = edPackets(pair);
      for (const packet of [legacy, v6]) {
        const r = extractSigningPublic(packet);
        expect(r.ok).to.equal(true);
        if (!r.ok) return;
        expect(r.alg).to.equal('ed25519');
        expect(r.publicKey).to.deep.equal({ alg: 'ed25519', key: Buffer.from(pair.pub).toString('base64') });
        expect(r.signatureBytes).to.equal(ED25519_SIGNATURE_BYTES);
      }
    });

    it('refuses an Ed25519 point of the wrong length, a legacy point without 0x40, another curve, no OID', function () {
      const pair = edPair();
      const neither = { ok: false, reason: 'the signing key is neither Ed25519 nor RSA' };
      const cases: KeyPacketLike[] = [
        { algorithm: 27, publicParams: { A: pair.pub.subarray(1) } },
        { algorithm: 27, publicParams: { A: Uint8Array.of(...pair.pub, 0) } },
        { algorithm: 27, publicParams: { A: Array.from(pair.pub) } },
        { algorithm: 22, publicParams: { oid: { oid: ED25519_OID }, Q: Uint8Array.of(0x41, ...pair.pub) } },
        { algorithm: 22, publicParams: { oid: { oid: ED25519_OID }, Q: pair.pub } },
        { algorithm: 22, publicParams: { oid: { oid: ED25519_OID }, Q: Uint8Array.of(0x40, ...pair.pub, 0) } },
        { algorithm: 22, publicParams: { oid: { oid: ED25519_OID } } },
        { algorithm: 22, publicParams: { oid: { oid: Uint8Array.of(...ED25519_OID.subarray(0, 8), 2) }, Q: Uint8Array.of(0x40, ...pair.pub) } },
        { algorithm: 22, publicParams: { oid: { oid: Array.from(ED25519_OID) }, Q: Uint8Array.of(0x40, ...pair.pub) } },
        { algorithm: 22, publicParams: { Q: Uint8Array.of(0x40, ...pair.pub) } },
        { algorithm: 19, publicParams: { oid: { oid: ED25519_OID }, Q: Uint8Array.of(0x40, ...pair.pub) } },
        { algorithm: 16, publicParams: {} },
      ];
      for (const [i, packet] of cases.entries()) expect(extractSigningPublic(packet), String(i)).to.deep.equal(neither);
    });

    it(`takes RSA (algorithms 1 and 3) from ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits, with a signature as long as the modulus`, function () {
      const e = Uint8Array.of(1, 0, 1);
      const modulus = (bits: number) => new Uint8Array(Buffer.from(randomModulus(bits), 'base64url'));
      const r2048 = extractSigningPublic({ algorithm: 3, publicParams: { n: modulus(2048), e } });
      expect(r2048.ok && r2048.signatureBytes).to.equal(256);
      expect(r2048.ok && r2048.alg).to.equal('rsa-pss');
      expect(r2048.ok && r2048.publicKey.alg).to.equal('rsa-pss');
      const n = modulus(2056);
      const r = extractSigningPublic({ algorithm: 1, publicParams: { n, e } });
      expect(r.ok && r.signatureBytes).to.equal(257);
      // The wire form is the SPKI of the same key: it imports back to the same size.
      const wire = r.ok ? r.publicKey : undefined;
      expect(importSigningPublicKey(wire!)?.signatureBytes).to.equal(257);
      const top = (bits: number) => {
        const m = new Uint8Array(Math.ceil(bits / 8)).fill(0xff);
        if (bits % 8) m[0] = (1 << bits % 8) - 1;
        return m;
      };
      expect(extractSigningPublic({ algorithm: 1, publicParams: { n: top(4096), e } }).ok).to.equal(true);
      expect(extractSigningPublic({ algorithm: 1, publicParams: { n: top(4097), e } })).to.deep.equal({
        ok: false,
        reason: 'RSA keys must have 2048 to 4096 bits; this one has 4097',
      });
      expect(extractSigningPublic({ algorithm: 1, publicParams: { n: top(2047), e } })).to.deep.equal({
        ok: false,
        reason: 'RSA keys must have 2048 to 4096 bits; this one has 2047',
      });
      // Leading zero bytes do not count.
      expect(extractSigningPublic({ algorithm: 1, publicParams: { n: Uint8Array.of(0, 0, ...n), e: Uint8Array.of(0, ...e) } }).ok).to.equal(true);
      for (const publicParams of [{ n }, { e }, { n: Array.from(n), e }]) {
        expect(extractSigningPublic({ algorithm: 1, publicParams })).to.deep.equal({ ok: false, reason: 'the RSA key packet lacks its public parameters' });
      }
      expect(extractSigningPublic({ algorithm: 2, publicParams: { n, e } }).ok).to.equal(false);
    });
  });

  describe('the secret half', function () {
    it('signs with the seed of either Ed25519 packet, also when OpenPGP stripped its leading zero bytes', function () {
      let pair = edPair();
      while (pair.seed[0] !== 0) pair = edPair();
      for (const packet of Object.values(edPackets(pair, pair.seed.subarray(1)))) {
        const pub = extractSigningPublic(packet);
        expect(pub.ok).to.equal(true);
        if (!pub.ok) return;
        const r = extractSigningPrivate(packet, pub.keyObject);
        expect(r.ok).to.equal(true);
        if (!r.ok) return;
        expect(r.alg).to.equal('ed25519');
        const msg = new TextEncoder().encode('hi');
        expect(verifyRaw('ed25519', pub.keyObject, msg, signRaw('ed25519', r.keyObject, msg))).to.equal(true);
      }
    });

    it('refuses a missing or over-long seed, and a seed of another key', function () {
      const pair = edPair();
      const { v6 } = edPackets(pair);
      const pub = extractSigningPublic(v6);
      if (!pub.ok) throw new Error('setup');
      const noSeed = { ok: false, reason: 'the Ed25519 secret key packet has no usable seed' };
      expect(extractSigningPrivate({ ...v6, privateParams: {} }, pub.keyObject)).to.deep.equal(noSeed);
      expect(extractSigningPrivate({ ...v6, privateParams: null }, pub.keyObject)).to.deep.equal(noSeed);
      expect(extractSigningPrivate({ ...v6, privateParams: { seed: Uint8Array.of(0, ...pair.seed) } }, pub.keyObject)).to.deep.equal(noSeed);
      expect(extractSigningPrivate({ ...v6, privateParams: { seed: randomBytes(32) } }, pub.keyObject)).to.deep.equal({
        ok: false,
        reason: 'the secret key does not match its public key',
      });
      expect(extractSigningPrivate({ algorithm: 16, publicParams: {}, privateParams: {} }, pub.keyObject)).to.deep.equal({
        ok: false,
        reason: 'the signing key is neither Ed25519 nor RSA',
      });
    });

    it('rebuilds an RSA key from n, e, d, p, q (not trusting OpenPGP’s u), and refuses an incomplete or unusable one', function () {
      this.timeout(120_000);
      const { packet } = rsaPacket(2048);
      const pub = extractSigningPublic(packet);
      if (!pub.ok) throw new Error('setup');
      const r = extractSigningPrivate(packet, pub.keyObject);
      expect(r.ok && r.alg).to.equal('rsa-pss');
      const priv = packet.privateParams as Record<string, Uint8Array>;
      for (const drop of ['d', 'p', 'q']) {
        const rest = { ...priv };
        delete rest[drop];
        expect(extractSigningPrivate({ ...packet, privateParams: rest }, pub.keyObject), drop).to.deep.equal({
          ok: false,
          reason: 'the RSA secret key packet is incomplete',
        });
      }
      const zeroP = extractSigningPrivate({ ...packet, privateParams: { ...priv, p: Uint8Array.of(0) } }, pub.keyObject);
      expect(zeroP.ok).to.equal(false);
      expect(!zeroP.ok && zeroP.reason).to.match(/^the secret key material is unusable \(.+\)$/);
      // p and q given the other way round still make the same key (qi is recomputed).
      const swapped = extractSigningPrivate({ ...packet, privateParams: { ...priv, p: priv.q!, q: priv.p! } }, pub.keyObject);
      expect(swapped.ok).to.equal(true);
      const d = Uint8Array.from(priv.d!);
      d[d.length - 1]! ^= 2;
      expect(extractSigningPrivate({ ...packet, privateParams: { ...priv, d } }, pub.keyObject)).to.deep.equal({
        ok: false,
        reason: 'the secret key does not match its public key',
      });
    });
  });

  describe('a signing key from an envelope', function () {
    it('takes a 32-byte Ed25519 key, and no other length, algorithm or type', function () {
      const pair = edPair();
      const key = Buffer.from(pair.pub).toString('base64');
      const imported = importSigningPublicKey({ alg: 'ed25519', key });
      expect(imported?.alg).to.equal('ed25519');
      expect(imported?.signatureBytes).to.equal(64);
      const msg = new TextEncoder().encode('m');
      const sig = new Uint8Array(sign(null, msg, edPrivate(pair.seed)));
      expect(verifyRaw('ed25519', imported!.keyObject, msg, sig)).to.equal(true);
      for (const bad of [
        { alg: 'ed25519', key: Buffer.from(pair.pub.subarray(1)).toString('base64') },
        { alg: 'ed25519', key: Buffer.from([...pair.pub, 0]).toString('base64') },
        { alg: 'ed25519', key: key + '=' },
        { alg: 'ed25519', key: 42 },
        { alg: 'ed448', key },
        { alg: 'rsa-pss', key },
      ]) {
        expect(importSigningPublicKey(bad as never), JSON.stringify(bad)).to.equal(undefined);
      }
    });

    it(`takes RSA keys of ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits, with a signature as long as the modulus`, function () {
      expect(importSigningPublicKey({ alg: 'rsa-pss', key: rsaSpkiOfBits(2048) })?.signatureBytes).to.equal(256);
      expect(importSigningPublicKey({ alg: 'rsa-pss', key: rsaSpkiOfBits(4096) })?.signatureBytes).to.equal(512);
      expect(importSigningPublicKey({ alg: 'rsa-pss', key: rsaSpkiOfBits(3001) })?.signatureBytes).to.equal(376);
      expect(importSigningPublicKey({ alg: 'rsa-pss', key: rsaSpkiOfBits(2047) })).to.equal(undefined);
      expect(importSigningPublicKey({ alg: 'rsa-pss', key: rsaSpkiOfBits(4097) })).to.equal(undefined);
      expect(importSigningPublicKey({ alg: 'ed25519', key: rsaSpkiOfBits(2048) })).to.equal(undefined);
      // An unknown algorithm name is refused even with a good RSA key.
      expect(importSigningPublicKey({ alg: 'dsa' as never, key: rsaSpkiOfBits(2048) })).to.equal(undefined);
    });

    it('keeps the last 1024 keys it parsed, and no more', function () {
      this.timeout(60_000);
      // Any 32 bytes import as an Ed25519 public key (the point is not checked until a signature is).
      const fresh = () => ({ alg: 'ed25519' as const, key: randomBytes(32).toString('base64') });
      const first = fresh();
      const a = importSigningPublicKey(first);
      expect(importSigningPublicKey({ ...first })).to.equal(a);
      for (let i = 0; i < 1023; i++) importSigningPublicKey(fresh());
      expect(importSigningPublicKey({ ...first })).to.equal(a); // the 1024th: still kept
      const second = fresh();
      const b = importSigningPublicKey(second);
      for (let i = 0; i < 1024; i++) importSigningPublicKey(fresh());
      const again = importSigningPublicKey({ ...second });
      expect(again).to.not.equal(b); // pushed out, parsed anew
      expect(again).to.deep.equal(b);
    });

    it('calls two keys the same only when algorithm and key are', function () {
      expect(sameSigningKey({ alg: 'ed25519', key: 'AA' }, { alg: 'ed25519', key: 'AA' })).to.equal(true);
      expect(sameSigningKey({ alg: 'ed25519', key: 'AA' }, { alg: 'rsa-pss', key: 'AA' })).to.equal(false);
      expect(sameSigningKey({ alg: 'ed25519', key: 'AA' }, { alg: 'ed25519', key: 'AB' })).to.equal(false);
    });
  });
});
