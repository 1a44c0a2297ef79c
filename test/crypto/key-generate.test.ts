/**
 * src/crypto/key-generate.ts and options.ts: the keys `sealchat keygen` makes (name, email, type,
 * RSA size, passphrase, creation time) and the misuse each option is refused for, by name. Real
 * OpenPGP keys; the checks that refuse run before any key is made.
 */
import { expect } from 'chai';
import { generateUserKey, inspectPublicKey } from '../../src/crypto/index.js';
import { readKey, readPrivateKey } from '../../src/crypto/openpgp.js';

const refusal = (options: unknown): Promise<string | undefined> =>
  generateUserKey(options as never).then(
    () => undefined,
    (err: unknown) => {
      expect(err).to.be.instanceOf(TypeError);
      return (err as Error).message;
    },
  );

describe('src/crypto/key-generate.ts: the keys keygen makes', function () {
  this.timeout(60_000);

  it('refuses each bad option by name, before making any key', async function () {
    for (const bad of [null, undefined, 'alice', 7]) {
      expect(await refusal(bad), String(bad)).to.equal('generateUserKey: expected one options object');
    }
    const name = 'generateUserKey: options.name must be 1-256 printable characters without < or >';
    for (const n of [undefined, 7, ['alice'], '', 'x'.repeat(257), 'a\nb', 'a\x00', 'a\x7f', '<alice>', 'a>b']) {
      expect(await refusal({ name: n }), JSON.stringify(n)).to.equal(name);
    }
    for (const type of ['dsa', 'RSA', '', 7]) {
      expect(await refusal({ name: 'a', type }), String(type)).to.equal("generateUserKey: options.type must be 'ecc', 'curve25519' or 'rsa'");
    }
    for (const rsaBits of [1024, 2047, 8192, '2048']) {
      expect(await refusal({ name: 'a', type: 'rsa', rsaBits }), String(rsaBits)).to.equal('generateUserKey: options.rsaBits must be 2048, 3072 or 4096');
    }
    for (const passphrase of ['', 7, null]) {
      expect(await refusal({ name: 'a', passphrase }), String(passphrase)).to.equal('generateUserKey: options.passphrase must be a non-empty string when given');
    }
    for (const now of ['2026-01-01', NaN, Infinity, new Date(NaN), null]) {
      expect(await refusal({ name: 'a', now }), String(now)).to.equal('generateUserKey: options.now must be a Date or a number of milliseconds');
    }
  });

  it('takes a name of exactly 256 characters, and puts the name and email in the user ID', async function () {
    const long = await generateUserKey({ name: 'n'.repeat(256) });
    expect((await readKey({ armoredKey: long.publicArmored })).users[0]!.userID!.userID).to.equal('n'.repeat(256));
    const k = await generateUserKey({ name: 'Alice', email: 'alice@example.org' });
    const uid = (await readKey({ armoredKey: k.publicArmored })).users[0]!.userID!;
    expect([uid.name, uid.email]).to.deep.equal(['Alice', 'alice@example.org']);
    const plain = await generateUserKey({ name: 'Bob' });
    expect((await readKey({ armoredKey: plain.publicArmored })).users[0]!.userID!.userID).to.equal('Bob');
  });

  it('makes an RSA key of the size asked, an ECC key otherwise, created at the time given', async function () {
    const at = Date.UTC(2026, 0, 2, 3, 4, 5);
    const rsa = await generateUserKey({ name: 'r', type: 'rsa', rsaBits: 2048, now: at });
    const info = (await readKey({ armoredKey: rsa.publicArmored })).getAlgorithmInfo();
    expect([info.algorithm, info.bits]).to.deep.equal(['rsaEncryptSign', 2048]);
    const ecc = await generateUserKey({ name: 'e', rsaBits: 4096, now: new Date(at) });
    const key = await readKey({ armoredKey: ecc.publicArmored });
    expect(key.getAlgorithmInfo().algorithm).to.equal('eddsaLegacy');
    expect(key.getCreationTime().getTime()).to.equal(at);
    expect(ecc.fingerprint).to.equal(key.getFingerprint()).and.match(/^[0-9a-f]{40}$/);
    expect((await inspectPublicKey({ armored: ecc.publicArmored, now: at })).status).to.equal('ok');
  });

  it('protects the private key with the passphrase given, and only then', async function () {
    const locked = await generateUserKey({ name: 'p', passphrase: 'correct horse' });
    expect((await readPrivateKey({ armoredKey: locked.privateArmored })).isDecrypted()).to.equal(false);
    const open = await generateUserKey({ name: 'q' });
    expect((await readPrivateKey({ armoredKey: open.privateArmored })).isDecrypted()).to.equal(true);
  });
});
