/**
 * src/bot/network/accounts.ts: keybot's own accounts (a network without services) keep argon2id
 * hashes, as the daemon's do (src/util/password.ts); an account made while keybot hashed with
 * scrypt still logs in, and is rehashed at that login. Real sqlite store in a temp dir.
 */
import { expect } from 'chai';
import { randomBytes, scryptSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import KeyvSqlite from '@keyv/sqlite';
import Keyv from 'keyv';
import { KeybotAccounts } from '../../../src/bot/network/accounts.js';
import { NETWORK_KEYS_FILE } from '../../../src/bot/network/keystore.js';

describe('src/bot/network/accounts.ts: keybot accounts and their password hashes', function () {
  this.timeout(30_000);
  let dir: string;
  let accounts: KeybotAccounts;
  let raw: Keyv<{ account: string; hash: string; createdAt: number }>;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-kbaccounts-'));
    accounts = await KeybotAccounts.open(dir);
    // The same table, read and written directly, to see and to plant stored hashes.
    raw = new Keyv({ store: new KeyvSqlite({ uri: `sqlite://${path.join(dir, NETWORK_KEYS_FILE)}`, table: 'keybot_accounts', busyTimeout: 10_000 }), namespace: 'accounts' });
  });
  after(async () => {
    await accounts?.close();
    await raw?.disconnect();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('creates an account with an argon2id hash, then takes its password and refuses another', async () => {
    expect(await accounts.login('alice', 'correct horse')).to.deep.equal({ ok: true, created: true });
    expect((await raw.get('alice'))!.hash).to.match(/^\$argon2id\$/);
    expect(await accounts.login('alice', 'correct horse')).to.deep.equal({ ok: true, created: false });
    expect(await accounts.login('alice', 'wrong horse')).to.deep.equal({ ok: false, reason: 'wrong password for the keybot account alice' });
  });

  it('logs in an account stored with the older scrypt hash, and rehashes it with argon2id at that login', async () => {
    const salt = randomBytes(16);
    const key = scryptSync('battery staple', salt, 32, { N: 1 << 10, r: 8, p: 1 });
    await raw.set('bob', { account: 'bob', hash: `scrypt$${1 << 10}$8$1$${salt.toString('base64')}$${key.toString('base64')}`, createdAt: 1 });
    expect(await accounts.login('bob', 'battery stapler')).to.deep.equal({ ok: false, reason: 'wrong password for the keybot account bob' });
    expect((await raw.get('bob'))!.hash).to.match(/^scrypt\$/);
    expect(await accounts.login('bob', 'battery staple')).to.deep.equal({ ok: true, created: false });
    const after = (await raw.get('bob'))!;
    expect(after.hash).to.match(/^\$argon2id\$/);
    expect(after.createdAt).to.equal(1);
    expect(await accounts.login('bob', 'battery staple')).to.deep.equal({ ok: true, created: false });
  });
});
