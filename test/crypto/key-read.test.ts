/**
 * src/crypto/key-read.ts and key-unlock.ts: what a user is told when the key they register or
 * unlock cannot be used — each refusal with its status and its words, since these are the only
 * explanation a user gets (`sealchat keygen`, `sealchatd user add`, keybot's register). Real
 * OpenPGP keys made here, NIST and stub keys included.
 */
import { expect } from 'chai';
import {
  KeyStatus,
  MAX_ARMORED_KEY_CHARS,
  UnlockStatus,
  generateUserKey,
  inspectPublicKey,
  readPublicKey,
  signingPublicKeyOf,
  unlockPrivateKey,
} from '../../src/crypto/index.js';
import { generateKey, readPrivateKey } from '../../src/crypto/openpgp.js';

/** Armor `binary` as one public key block by hand (no checksum line: RFC 9580 §6.2 makes it optional). */
function armorPublic(binary: Uint8Array): string {
  const b64 = Buffer.from(binary).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n${b64}\n-----END PGP PUBLIC KEY BLOCK-----\n`;
}

describe('src/crypto/key-read.ts and key-unlock.ts: why a key is refused', function () {
  this.timeout(60_000);

  it('refuses a text over the size limit and one holding two keys, saying which', async function () {
    const big = await inspectPublicKey({ armored: 'x'.repeat(MAX_ARMORED_KEY_CHARS + 1) });
    expect(big).to.deep.equal({
      status: KeyStatus.INVALID,
      reason: `The text is not a usable public key: the key is ${MAX_ARMORED_KEY_CHARS + 1} characters long; at most ${MAX_ARMORED_KEY_CHARS} are accepted.`,
    });
    const [a, b] = await Promise.all([generateUserKey({ name: 'a' }), generateUserKey({ name: 'b' })]);
    const binaries = await Promise.all(
      [a, b].map(async (k) => (await readPrivateKey({ armoredKey: k.privateArmored })).toPublic().write()),
    );
    const two = armorPublic(new Uint8Array([...binaries[0]!, ...binaries[1]!]));
    expect(await inspectPublicKey({ armored: two })).to.deep.equal({
      status: KeyStatus.INVALID,
      reason: 'The text is not a usable public key: the text holds 2 keys; give exactly one.',
    });
    expect((await readPublicKey({ armored: two })).reason).to.equal('The text is not a usable public key: the text holds 2 keys; give exactly one.');
    expect((await unlockPrivateKey({ armored: two })).reason).to.equal('The text is not a usable private key: the text holds 2 keys; give exactly one.');
    // One of them alone is fine.
    expect((await inspectPublicKey({ armored: armorPublic(binaries[0]!) })).status).to.equal(KeyStatus.OK);
  });

  it('tells someone who pastes a private key not to share it, even a broken one', async function () {
    const k = await generateUserKey({ name: 'p' });
    expect(await inspectPublicKey({ armored: '-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nnot a key\n-----END PGP PRIVATE KEY BLOCK-----\n' })).to.deep.equal({
      status: KeyStatus.PRIVATE_KEY,
      reason: 'This is a private key. Never share it: register the public key instead.',
    });
    expect(await readPublicKey({ armored: k.privateArmored })).to.deep.equal({
      status: KeyStatus.PRIVATE_KEY,
      reason: 'This is a private key; a public key was expected.',
    });
    expect(await unlockPrivateKey({ armored: k.publicArmored })).to.deep.equal({
      status: UnlockStatus.NOT_PRIVATE,
      reason: 'This is a public key; the private key is needed.',
    });
  });

  it('refuses NIST keys: an ECDSA primary key, and an ECDH subkey on a NIST curve under an Ed25519 key', async function () {
    const nist = await generateKey({ userIDs: [{ name: 'n' }], type: 'ecc', curve: 'nistP256', format: 'armored' });
    expect(await inspectPublicKey({ armored: nist.publicKey })).to.include({
      status: KeyStatus.UNSUPPORTED_ALGORITHM,
      reason: 'The primary key uses nistP256; sealchat needs an Ed25519 or RSA (2048-4096 bit) key.',
    });
    const mixed = await generateKey({ userIDs: [{ name: 'm' }], type: 'ecc', subkeys: [{ type: 'ecc', curve: 'nistP256' }], format: 'armored' });
    expect(await inspectPublicKey({ armored: mixed.publicKey })).to.include({
      status: KeyStatus.UNSUPPORTED_ALGORITHM,
      reason: 'The encryption key is unusable: ECDH on nistP256 is not supported; use Curve25519.',
    });
    const unlocked = await unlockPrivateKey({ armored: mixed.privateKey });
    expect(unlocked).to.deep.equal({
      status: UnlockStatus.UNUSABLE,
      keyStatus: KeyStatus.UNSUPPORTED_ALGORITHM,
      reason: 'The encryption key is unusable: ECDH on nistP256 is not supported; use Curve25519.',
    });
  });

  it('refuses a private key whose signing secret is a GnuPG stub, and says so', async function () {
    const k = await generateUserKey({ name: 's' });
    const key = await readPrivateKey({ armoredKey: k.privateArmored });
    // What `gpg --export-secret-subkeys` leaves of a primary key: a gnu-dummy S2K, no secret.
    (key.keyPacket as unknown as { makeDummy: () => void }).makeDummy();
    expect(await unlockPrivateKey({ armored: key.armor() })).to.deep.equal({
      status: UnlockStatus.UNUSABLE,
      keyStatus: KeyStatus.NO_SIGNING_KEY,
      reason: 'The secret part of the signing key is missing (a stub exported by GnuPG).',
    });
  });

  it("refuses an RSA key under 2048 bits, and text that is no key with the reader's words", async function () {
    const small = await generateKey({ userIDs: [{ name: 'r' }], type: 'rsa', rsaBits: 1024, format: 'armored', config: { minRSABits: 1024 } });
    // OpenPGP.js itself takes no RSA key under 2047 bits for encryption, so the user reads that first.
    expect(await inspectPublicKey({ armored: small.publicKey })).to.include({
      status: KeyStatus.NO_ENCRYPTION_KEY,
      reason: 'The key has no valid encryption (sub)key, so nothing can be encrypted to it.',
    });
    const junk = await inspectPublicKey({ armored: '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n' });
    expect(junk.status).to.equal(KeyStatus.INVALID);
    expect(junk.reason).to.match(/^The text is not a usable public key: it is not a readable OpenPGP key \(.+\)\.$/);
  });

  it('calls a key expired from the very millisecond it expires, and gives the time', async function () {
    const made = Date.UTC(2026, 5, 1, 12, 0, 0);
    const k = await generateUserKey({ name: 'x', now: made, keyExpirationTime: 60 });
    expect((await inspectPublicKey({ armored: k.publicArmored, now: made + 59_999 })).status).to.equal(KeyStatus.OK);
    expect(await inspectPublicKey({ armored: k.publicArmored, now: made + 60_000 })).to.include({
      status: KeyStatus.EXPIRED,
      reason: `The key expired on ${new Date(made + 60_000).toISOString()}.`,
    });
  });

  it('says until when a usable key reads the same: never-expiring, its own expiry, or a subkey’s earlier one', async function () {
    const made = Date.UTC(2026, 5, 1, 12, 0, 0);
    const forever = await generateUserKey({ name: 'y', now: made });
    expect((await readPublicKey({ armored: forever.publicArmored, now: made + 1000 })).validUntil).to.equal(Number.POSITIVE_INFINITY);
    const minute = await generateUserKey({ name: 'x', now: made, keyExpirationTime: 60 });
    expect((await readPublicKey({ armored: minute.publicArmored, now: made + 1000 })).validUntil).to.equal(made + 60_000);
    // The encryption subkey expires after 30 s, the primary never: the answer changes at 30 s.
    const sub = await generateKey({ userIDs: [{ name: 'z' }], type: 'curve25519', date: new Date(made), subkeys: [{ keyExpirationTime: 30 }], format: 'armored' });
    const before = await readPublicKey({ armored: sub.publicKey, now: made + 29_999 });
    expect(before).to.include({ status: KeyStatus.OK, validUntil: made + 30_000 });
    expect((await readPublicKey({ armored: sub.publicKey, now: made + 30_000 })).status).to.equal(KeyStatus.NO_ENCRYPTION_KEY);
  });

  it('gives the fingerprint of a pasted private key in lowercase, so the user can find it', async function () {
    const k = await generateUserKey({ name: 'f' });
    expect(await inspectPublicKey({ armored: k.privateArmored })).to.deep.equal({
      status: KeyStatus.PRIVATE_KEY,
      fingerprint: k.fingerprint,
      reason: 'This is a private key. Never share it: register the public key instead.',
    });
  });

  it('says when a passphrase is needed or wrong, and gives a handle the key\'s user IDs', async function () {
    const k = await generateUserKey({ name: 'Alice', email: 'alice@example.org', passphrase: 'right' });
    expect(await unlockPrivateKey({ armored: k.privateArmored })).to.deep.equal({
      status: UnlockStatus.PASSPHRASE_REQUIRED,
      reason: 'The private key is protected by a passphrase.',
    });
    expect(await unlockPrivateKey({ armored: k.privateArmored, passphrase: 'wrong' })).to.deep.equal({
      status: UnlockStatus.BAD_PASSPHRASE,
      reason: 'The passphrase does not unlock this key.',
    });
    const unlocked = await unlockPrivateKey({ armored: k.privateArmored, passphrase: 'right' });
    expect(unlocked.key!.publicKey.userIds).to.deep.equal(['Alice <alice@example.org>']);
    expect((await readPublicKey({ armored: k.publicArmored })).key!.userIds).to.deep.equal(['Alice <alice@example.org>']);
  });

  it('names the option each call was misused with', async function () {
    const message = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => (e instanceof TypeError ? e.message : `not a TypeError: ${String(e)}`));
    expect(await message(inspectPublicKey({ armored: 42 as never }))).to.equal('inspectPublicKey: options.armored must be a string');
    expect(await message(readPublicKey({ armored: 42 as never }))).to.equal('readPublicKey: options.armored must be a string');
    expect(await message(unlockPrivateKey({ armored: 42 as never }))).to.equal('unlockPrivateKey: options.armored must be a string');
    expect(await message(unlockPrivateKey({ armored: '', passphrase: 7 as never }))).to.equal('unlockPrivateKey: options.passphrase must be a string when given');
    expect(await message(readPublicKey({ armored: '', now: 'today' as never }))).to.equal('readPublicKey: options.now must be a Date or a number of milliseconds');
    expect(await message(readPublicKey('x' as never))).to.equal('readPublicKey: expected one options object');
    expect(await message(unlockPrivateKey({ armored: '', now: 'today' as never }))).to.equal('unlockPrivateKey: options.now must be a Date or a number of milliseconds');
    expect(await message(unlockPrivateKey(null as never))).to.equal('unlockPrivateKey: expected one options object');
    expect(await message(inspectPublicKey(null as never))).to.equal('inspectPublicKey: expected one options object');
    expect(await message(inspectPublicKey({ armored: '', now: 'today' as never }))).to.equal('inspectPublicKey: options.now must be a Date or a number of milliseconds');
    expect(await message(Promise.resolve().then(() => signingPublicKeyOf(null as never)))).to.equal('signingPublicKeyOf: expected one options object');
    expect(await message(Promise.resolve().then(() => signingPublicKeyOf({ key: {} as never })))).to.match(/^signingPublicKeyOf: /);
  });
});
