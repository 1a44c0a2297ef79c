import { expect } from 'chai';
import {
  KeyStatus,
  UnlockStatus,
  generateUserKey,
  inspectPublicKey,
  readPublicKey,
  signingPublicKeyOf,
  unlockPrivateKey,
} from '../../src/crypto/index.js';
import { generateKey, readPrivateKey, revokeKey } from '../../src/crypto/openpgp.js';
import { GpgHome, gpgAvailable } from './gpg.js';
import { fixtures, type Fixtures } from './fixtures.js';

describe('src/crypto/keys.ts', function () {
  let f: Fixtures;
  before(async function () {
    this.timeout(30_000);
    f = await fixtures();
  });

  describe('inspectPublicKey', function () {
    it('accepts an openpgp.js ECC key and reports a lowercase fingerprint', async function () {
      const r = await inspectPublicKey({ armored: f.ecc.publicArmored });
      expect(r.status).to.equal(KeyStatus.OK);
      expect(r.fingerprint).to.match(/^[0-9a-f]{40}$/);
      expect(r.fingerprint).to.equal(f.ecc.pub.fingerprint);
      expect(r.userIds).to.deep.equal(['alice']);
      expect(r.algorithm).to.equal('ed25519Legacy/curve25519Legacy');
      expect(r.armored).to.match(/^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
    });

    it('accepts an RFC 9580 Ed25519/X25519 key', async function () {
      const r = await inspectPublicKey({ armored: f.v6ids.publicArmored });
      expect(r.status).to.equal(KeyStatus.OK);
      expect(r.algorithm).to.equal('ed25519/x25519');
    });

    it('accepts a v6 key (RFC 9580) with its 64-digit fingerprint', async function () {
      const k = await generateKey({ userIDs: [{ name: 'v6' }], type: 'curve25519', config: { v6Keys: true }, format: 'armored' });
      const r = await inspectPublicKey({ armored: k.publicKey });
      expect(r.status).to.equal(KeyStatus.OK);
      expect(r.fingerprint).to.match(/^[0-9a-f]{64}$/);
      expect((await unlockPrivateKey({ armored: k.privateKey })).status).to.equal(UnlockStatus.OK);
    });

    it('accepts an openpgp.js RSA key', async function () {
      const r = await inspectPublicKey({ armored: f.rsa.publicArmored });
      expect(r.status).to.equal(KeyStatus.OK);
      expect(r.algorithm).to.equal('rsa2048/rsa2048');
    });

    it('accepts GnuPG RSA and ed25519 keys', async function () {
      if (!f.gpgRsa || !f.gpgEd) this.skip();
      const rsa = await inspectPublicKey({ armored: f.gpgRsa!.publicArmored });
      expect(rsa.status, rsa.reason).to.equal(KeyStatus.OK);
      expect(rsa.algorithm).to.equal('rsa3072/rsa3072');
      expect(rsa.userIds).to.deep.equal(['dave <dave@example.org>']);
      const ed = await inspectPublicKey({ armored: f.gpgEd!.publicArmored });
      expect(ed.status, ed.reason).to.equal(KeyStatus.OK);
      expect(ed.algorithm).to.equal('ed25519Legacy/curve25519Legacy');
    });

    it('refuses a private key and says so', async function () {
      const r = await inspectPublicKey({ armored: f.ecc.privateArmored });
      expect(r.status).to.equal(KeyStatus.PRIVATE_KEY);
      expect(r.reason).to.match(/private key/i);
      expect(r.armored).to.equal(undefined);
    });

    it('refuses a passphrase-protected private key too', async function () {
      const k = await generateUserKey({ name: 'p', passphrase: 'secret' });
      const r = await inspectPublicKey({ armored: k.privateArmored });
      expect(r.status).to.equal(KeyStatus.PRIVATE_KEY);
    });

    it('reports garbage, empty text and two keys as INVALID', async function () {
      for (const armored of ['', 'hello', '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n']) {
        const r = await inspectPublicKey({ armored });
        expect(r.status, armored).to.equal(KeyStatus.INVALID);
        expect(r.reason).to.be.a('string');
      }
      const two = await inspectPublicKey({ armored: f.ecc.publicArmored + f.keybot.publicArmored });
      expect(two.status).to.equal(KeyStatus.INVALID);
      expect(two.reason).to.match(/2 armored blocks/);
    });

    it('refuses an expired key', async function () {
      const created = Date.now() - 3_600_000;
      const k = await generateUserKey({ name: 'old', now: created, keyExpirationTime: 60 });
      const r = await inspectPublicKey({ armored: k.publicArmored });
      expect(r.status).to.equal(KeyStatus.EXPIRED);
      expect(r.fingerprint).to.equal(k.fingerprint);
      // ...but it was fine while it lived.
      const then = await inspectPublicKey({ armored: k.publicArmored, now: created + 30_000 });
      expect(then.status).to.equal(KeyStatus.OK);
    });

    it('refuses a revoked key', async function () {
      const k = await generateUserKey({ name: 'gone' });
      const { publicKey } = await revokeKey({ key: await readPrivateKey({ armoredKey: k.privateArmored }), format: 'armored' });
      const r = await inspectPublicKey({ armored: publicKey });
      expect(r.status).to.equal(KeyStatus.REVOKED);
      expect(r.reason).to.match(/revoked/);
    });

    it('refuses a GnuPG RSA key without an encryption subkey', async function () {
      if (!gpgAvailable()) this.skip();
      const home = new GpgHome();
      try {
        const k = home.generate('signonly <s@example.org>', 'rsa2048', 'sign');
        const r = await inspectPublicKey({ armored: k.publicArmored });
        expect(r.status).to.equal(KeyStatus.NO_ENCRYPTION_KEY);
      } finally {
        home.close();
      }
    });

    it('throws on misuse', async function () {
      let thrown: unknown;
      try {
        await inspectPublicKey({ armored: 42 as unknown as string });
      } catch (err) {
        thrown = err;
      }
      expect(thrown).to.be.instanceOf(TypeError);
    });
  });

  describe('readPublicKey / unlockPrivateKey', function () {
    it('returns a handle whose fingerprint matches', async function () {
      const r = await readPublicKey({ armored: f.rsa.publicArmored });
      expect(r.status).to.equal(KeyStatus.OK);
      expect(r.key!.fingerprint).to.equal(f.rsa.priv.fingerprint);
      expect(r.key!.kind).to.equal('public');
    });

    it('unlocks a protected key with the right passphrase only', async function () {
      const k = await generateUserKey({ name: 'locked', passphrase: 'correct horse' });
      expect((await unlockPrivateKey({ armored: k.privateArmored })).status).to.equal(UnlockStatus.PASSPHRASE_REQUIRED);
      expect((await unlockPrivateKey({ armored: k.privateArmored, passphrase: 'wrong' })).status).to.equal(
        UnlockStatus.BAD_PASSPHRASE,
      );
      const ok = await unlockPrivateKey({ armored: k.privateArmored, passphrase: 'correct horse' });
      expect(ok.status).to.equal(UnlockStatus.OK);
      expect(ok.key!.fingerprint).to.equal(k.fingerprint);
      expect(ok.key!.publicKey.fingerprint).to.equal(k.fingerprint);
    });

    it('unlocks a passphrase-protected GnuPG key', async function () {
      if (!gpgAvailable()) this.skip();
      const home = new GpgHome();
      try {
        const k = home.generate('frank <f@example.org>', 'future-default', 'default', 'never', 'gpg pass');
        expect((await unlockPrivateKey({ armored: k.privateArmored, passphrase: 'nope' })).status).to.equal(UnlockStatus.BAD_PASSPHRASE);
        const ok = await unlockPrivateKey({ armored: k.privateArmored, passphrase: 'gpg pass' });
        expect(ok.status, ok.reason).to.equal(UnlockStatus.OK);
      } finally {
        home.close();
      }
    });

    it('reports NOT_PRIVATE for a public key and INVALID for garbage', async function () {
      expect((await unlockPrivateKey({ armored: f.ecc.publicArmored })).status).to.equal(UnlockStatus.NOT_PRIVATE);
      expect((await unlockPrivateKey({ armored: 'nope' })).status).to.equal(UnlockStatus.INVALID);
    });

    it('reports an expired private key as UNUSABLE/EXPIRED', async function () {
      const k = await generateUserKey({ name: 'old', now: Date.now() - 3_600_000, keyExpirationTime: 60 });
      const r = await unlockPrivateKey({ armored: k.privateArmored });
      expect(r.status).to.equal(UnlockStatus.UNUSABLE);
      expect(r.keyStatus).to.equal(KeyStatus.EXPIRED);
    });
  });

  describe('signingPublicKeyOf', function () {
    it('gives raw 32-byte Ed25519 keys for both ECC variants and GnuPG ed25519', function () {
      for (const k of [f.ecc, f.v6ids, f.gpgEd].filter((x) => x !== undefined)) {
        const s = signingPublicKeyOf({ key: k.pub });
        expect(s.alg, k.name).to.equal('ed25519');
        expect(Buffer.from(s.key, 'base64')).to.have.length(32);
        expect(signingPublicKeyOf({ key: k.priv })).to.deep.equal(s);
      }
    });

    it('gives an RSA-PSS SPKI key for RSA keys', function () {
      for (const k of [f.rsa, f.gpgRsa].filter((x) => x !== undefined)) {
        const s = signingPublicKeyOf({ key: k.pub });
        expect(s.alg, k.name).to.equal('rsa-pss');
        expect(signingPublicKeyOf({ key: k.priv })).to.deep.equal(s);
      }
    });

    it('throws for something that is not a handle', function () {
      expect(() => signingPublicKeyOf({ key: { kind: 'public' } as never })).to.throw(TypeError, /readPublicKey/);
    });
  });
});
