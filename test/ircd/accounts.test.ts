import { expect } from 'chai';
import { mkdtemp, readFile, rm, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AccountError, Accounts, hashPassword } from '../../src/ircd/accounts.js';
import { verifyPassword } from '../../src/util/password.js';
import { openAccountStore, type AccountStore } from '../../src/ircd/store/index.js';
import { generateUserKey } from '../../src/crypto/index.js';

describe('src/ircd/accounts', function () {
  let dir: string;
  let store: AccountStore;
  let accounts: Accounts;
  let aliceKey: Awaited<ReturnType<typeof generateUserKey>>;
  let bobKey: Awaited<ReturnType<typeof generateUserKey>>;

  before(async () => {
    [aliceKey, bobKey] = await Promise.all([generateUserKey({ name: 'alice' }), generateUserKey({ name: 'bob' })]);
  });
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sc-acct-'));
    store = await openAccountStore(`sqlite://${dir}/sealchat.sqlite`);
    accounts = new Accounts(store, { hashConcurrency: 2 });
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function refusal(p: Promise<unknown>): Promise<AccountError> {
    const err = await p.then(() => null, (e: unknown) => e);
    expect(err, 'expected an AccountError').to.be.instanceOf(AccountError);
    return err as AccountError;
  }

  it('adds an account with an argon2id hash and the key fingerprint, and authenticates it', async () => {
    const rec = await accounts.add({ name: 'Alice', password: 'correct horse', publicKey: aliceKey.publicArmored });
    expect(rec).to.include({ name: 'Alice', fingerprint: aliceKey.fingerprint });
    expect(rec.passwordHash).to.match(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(rec.passwordHash).not.to.include('correct horse');
    expect((await accounts.authenticate('alice', 'correct horse'))?.name).to.equal('Alice');
    expect((await accounts.get('ALICE'))?.name).to.equal('Alice');
  });

  it('answers a wrong password and an unknown account alike: null', async () => {
    await accounts.add({ name: 'alice', password: 'pw1', publicKey: aliceKey.publicArmored });
    expect(await accounts.authenticate('alice', 'pw2')).to.equal(null);
    expect(await accounts.authenticate('nobody', 'pw1')).to.equal(null);
    expect(await accounts.authenticate('not valid!', 'pw1')).to.equal(null);
    expect(await accounts.authenticate('alice', '')).to.equal(null);
  });

  it('refuses duplicates, case-insensitively, naming the existing account', async () => {
    await accounts.add({ name: 'Alice', password: 'pw', publicKey: aliceKey.publicArmored });
    const err = await refusal(accounts.add({ name: 'aLiCe', password: 'pw', publicKey: bobKey.publicArmored }));
    expect(err.code).to.equal('exists');
    expect(err.message).to.equal('account Alice already exists');
  });

  it('creates only one of two concurrent adds of the same name', async () => {
    const results = await Promise.allSettled([
      accounts.add({ name: 'carol', password: 'pw', publicKey: aliceKey.publicArmored }),
      accounts.add({ name: 'Carol', password: 'pw', publicKey: bobKey.publicArmored }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).to.have.length(1);
    expect(await accounts.list()).to.have.length(1);
  });

  it('refuses invalid names, the reserved keybot name and bad passwords', async () => {
    const pk = aliceKey.publicArmored;
    expect((await refusal(accounts.add({ name: '1abc', password: 'pw', publicKey: pk }))).code).to.equal('invalid_name');
    expect((await refusal(accounts.add({ name: 'a'.repeat(31), password: 'pw', publicKey: pk }))).code).to.equal('invalid_name');
    const kb = await refusal(accounts.add({ name: 'KeyBot', password: 'pw', publicKey: pk }));
    expect(kb.code).to.equal('forbidden');
    expect(kb.message).to.match(/reserved/);
    expect((await refusal(accounts.add({ name: 'dave', password: '', publicKey: pk }))).code).to.equal('invalid_password');
    expect((await refusal(accounts.add({ name: 'dave', password: 'x'.repeat(801), publicKey: pk }))).code).to.equal('invalid_password');
    expect((await refusal(accounts.add({ name: 'dave', password: 'a\nb', publicKey: pk }))).code).to.equal('invalid_password');
    expect(await accounts.list()).to.deep.equal([]);
  });

  it('refuses private, garbage and expired keys with the reason', async () => {
    const priv = await refusal(accounts.add({ name: 'dave', password: 'pw', publicKey: aliceKey.privateArmored }));
    expect(priv.code).to.equal('invalid_key');
    expect(priv.message).to.match(/private key/i);
    expect((await refusal(accounts.add({ name: 'dave', password: 'pw', publicKey: 'hello' }))).code).to.equal('invalid_key');
    expect((await refusal(accounts.add({ name: 'dave', password: 'pw', publicKey: '' }))).code).to.equal('invalid_key');
    const old = await generateUserKey({ name: 'old', now: Date.now() - 10 * 86_400_000, keyExpirationTime: 86_400 });
    const exp = await refusal(accounts.add({ name: 'dave', password: 'pw', publicKey: old.publicArmored }));
    expect(exp.message).to.match(/expired/);
    expect(await accounts.list()).to.deep.equal([]);
  });

  it('changes the password and the key, keeping createdAt', async () => {
    const rec = await accounts.add({ name: 'alice', password: 'old', publicKey: aliceKey.publicArmored });
    await accounts.setPassword('ALICE', 'new');
    expect(await accounts.authenticate('alice', 'old')).to.equal(null);
    expect(await accounts.authenticate('alice', 'new')).not.to.equal(null);
    const rekeyed = await accounts.setKey('alice', bobKey.publicArmored);
    expect(rekeyed.fingerprint).to.equal(bobKey.fingerprint);
    expect(rekeyed.createdAt).to.equal(rec.createdAt);
    expect((await refusal(accounts.setKey('alice', aliceKey.privateArmored))).code).to.equal('invalid_key');
    expect((await accounts.get('alice'))?.fingerprint).to.equal(bobKey.fingerprint);
    expect((await refusal(accounts.setPassword('nobody', 'x'))).code).to.equal('not_found');
    expect((await refusal(accounts.setPassword('alice', ''))).code).to.equal('invalid_password');
  });

  it('removes accounts, and not the service account', async () => {
    await accounts.add({ name: 'alice', password: 'pw', publicKey: aliceKey.publicArmored });
    await accounts.remove('Alice');
    expect(await accounts.get('alice')).to.equal(null);
    expect((await refusal(accounts.remove('alice'))).code).to.equal('not_found');
    await accounts.ensureServiceAccount(dir);
    expect((await refusal(accounts.remove('keybot'))).code).to.equal('forbidden');
  });

  it('creates the keybot service account with a 0600 credentials file, keeps it, rotates it when lost', async () => {
    const first = await accounts.ensureServiceAccount(dir);
    expect(first.changed).to.equal(true);
    expect(first.record).to.include({ name: 'keybot', service: true, publicKey: null });
    const file = path.join(dir, 'keybot.credentials');
    expect((await stat(file)).mode & 0o777).to.equal(0o600);
    const creds = JSON.parse(await readFile(file, 'utf8')) as { account: string; password: string };
    expect(creds.account).to.equal('keybot');
    expect((await accounts.authenticate('keybot', creds.password))?.service).to.equal(true);

    const second = await accounts.ensureServiceAccount(dir);
    expect(second.changed).to.equal(false);
    expect(JSON.parse(await readFile(file, 'utf8'))).to.deep.equal(creds);

    await unlink(file);
    const third = await accounts.ensureServiceAccount(dir);
    expect(third.changed).to.equal(true);
    const rotated = JSON.parse(await readFile(file, 'utf8')) as { password: string };
    expect(rotated.password).not.to.equal(creds.password);
    expect(await accounts.authenticate('keybot', creds.password)).to.equal(null);
    expect(await accounts.authenticate('keybot', rotated.password)).not.to.equal(null);
    expect(third.record.createdAt).to.equal(first.record.createdAt);
    // The service account may register its own key.
    expect((await accounts.setKey('keybot', bobKey.publicArmored)).fingerprint).to.equal(bobKey.fingerprint);
  });

  it('verifies standalone hashes and never throws on a malformed one', async () => {
    const h = await hashPassword('s3cret');
    expect(await verifyPassword(h, 's3cret')).to.equal(true);
    expect(await verifyPassword(h, 'nope')).to.equal(false);
    expect(await verifyPassword('garbage', 's3cret')).to.equal(false);
    expect(await accounts.verifyPasswordHash(h, 's3cret')).to.equal(true);
  });
});
