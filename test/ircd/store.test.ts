import { expect } from 'chai';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openAccountStore, SCHEMA_VERSION, StoreError, type AccountRecord } from '../../src/ircd/store/index.js';
import { KeyvSqlite } from '@keyv/sqlite';

function record(name: string, extra: Partial<AccountRecord> = {}): AccountRecord {
  const now = new Date().toISOString();
  return { name, passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA', publicKey: 'KEY', fingerprint: 'ab'.repeat(20), createdAt: now, updatedAt: now, ...extra };
}

describe('src/ircd/store', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sealchat-store-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('round-trips records keyed by casefolded name and survives a reopen', async () => {
    const url = `sqlite://${dir}/nested/dir/sealchat.sqlite`;
    const store = await openAccountStore(url);
    await store.put(record('Alice'));
    await store.put(record('bob', { publicKey: null, fingerprint: null, service: true }));
    expect((await store.get('alice'))?.name).to.equal('Alice');
    expect(await store.get('Alice')).to.equal(undefined);
    await store.close();

    const again = await openAccountStore(url);
    const names = (await again.list()).map((r) => r.name).sort();
    expect(names).to.deep.equal(['Alice', 'bob']);
    const bob = await again.get('bob');
    expect(bob).to.include({ publicKey: null, fingerprint: null, service: true });
    expect(await again.delete('alice')).to.equal(true);
    expect(await again.delete('alice')).to.equal(false);
    expect(await again.get('alice')).to.equal(undefined);
    await again.close();
    await again.close(); // idempotent
  });

  it('creates the data directory with mode 0700 and writes the schema version', async () => {
    const file = path.join(dir, 'data', 'sealchat.sqlite');
    const store = await openAccountStore(`sqlite://${file}`);
    await store.close();
    expect((await stat(path.dirname(file))).mode & 0o777).to.equal(0o700);
    expect((await stat(file)).mode & 0o777).to.equal(0o600);
    const raw = new KeyvSqlite({ uri: `sqlite://${file}` });
    const rows = (await raw.query('SELECT key, value FROM keyv WHERE key = ?', 'meta:schema')) as Array<{ value: string }>;
    await raw.disconnect();
    expect(JSON.parse(rows[0]!.value).value).to.equal(SCHEMA_VERSION);
  });

  it('lists more than one @keyv/sqlite page of records', async () => {
    const store = await openAccountStore(`sqlite://${dir}/s.sqlite`);
    await Promise.all(Array.from({ length: 25 }, (_, i) => store.put(record(`user${i}`))));
    expect(await store.list()).to.have.length(25);
    await store.close();
  });

  it('refuses a store written by a newer schema', async () => {
    const file = path.join(dir, 's.sqlite');
    await (await openAccountStore(`sqlite://${file}`)).close();
    const raw = new KeyvSqlite({ uri: `sqlite://${file}` });
    await raw.query('UPDATE keyv SET value = ? WHERE key = ?', JSON.stringify({ value: SCHEMA_VERSION + 1 }), 'meta:schema');
    await raw.disconnect();
    try {
      await openAccountStore(`sqlite://${file}`);
      expect.fail('opened');
    } catch (err) {
      expect(err).to.be.instanceOf(StoreError);
      expect((err as Error).message).to.match(/schema version 2 is newer/);
    }
  });

  it('names the adapter package to install for another backend', async () => {
    try {
      await openAccountStore('redis://user:secret@localhost:6379');
      expect.fail('opened');
    } catch (err) {
      expect((err as Error).message).to.include('npm install @keyv/redis');
      expect((err as Error).message).not.to.include('secret');
    }
  });

  it('rejects unknown schemes and supports memory:', async () => {
    try {
      await openAccountStore('ftp://x');
      expect.fail('opened');
    } catch (err) {
      expect((err as Error).message).to.match(/unsupported store URL scheme "ftp:"/);
    }
    const mem = await openAccountStore('memory:');
    await mem.put(record('Carol'));
    expect((await mem.list()).map((r) => r.name)).to.deep.equal(['Carol']);
    await mem.close();
  });

  it('fails loudly when the database cannot be opened', async () => {
    try {
      await openAccountStore(`sqlite://${dir}`); // a directory, not a file
      expect.fail('opened');
    } catch (err) {
      expect(err).to.be.instanceOf(StoreError);
    }
  });
});
