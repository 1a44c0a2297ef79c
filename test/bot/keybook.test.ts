import { expect } from 'chai';
import type { DirectoryRoom, DirectoryUser, Placement, PresenceChange, UserDirectory } from '../../src/bot/directory.js';
import { DirectoryError } from '../../src/bot/directory.js';
import { KeyBook } from '../../src/bot/keybook.js';
import { generateUserKey } from '../../src/crypto/index.js';
import { keyFor } from '../helpers/daemon.js';

/** Users and their keys, as a daemon would report them; keys may be replaced at any time. */
class KeyDirectory implements UserDirectory {
  readonly persistentRooms = true;
  readonly users = new Map<string, DirectoryUser>();
  lookups: string[] = [];
  failFor = new Set<string>();

  async lookupUser(name: string): Promise<DirectoryUser | null> {
    this.lookups.push(name);
    if (this.failFor.has(name)) throw new DirectoryError('unavailable', 'directory down');
    return this.users.get(name.toLowerCase()) ?? null;
  }
  async set(name: string, keyName = name): Promise<string> {
    const k = await keyFor(keyName);
    this.users.set(name.toLowerCase(), { name, fingerprint: k.fingerprint, publicKey: k.publicArmored, online: true, service: false });
    return k.publicArmored;
  }
  async listOnline(): Promise<string[]> {
    return [...this.users.values()].map((u) => u.name);
  }
  async putInRoom(): Promise<void> {}
  async putManyInRoom(_room: string, nicks: string[]): Promise<Placement[]> {
    return nicks.map((nick) => ({ nick, ok: true as const }));
  }
  async removeFromRoom(): Promise<void> {}
  async listRooms(): Promise<DirectoryRoom[]> {
    return [];
  }
  async publishServiceKey(): Promise<DirectoryUser> {
    throw new Error('not used');
  }
  onPresence(_l: (c: PresenceChange) => void): void {}
  onClose(_l: (err: Error) => void): void {}
  close(): void {}
}

describe('src/bot/keybook.ts', function () {
  it('warm parses the keys of the users named, ahead of any lookup', async function () {
    const dir = new KeyDirectory();
    const alice = await dir.set('alice');
    const bob = await dir.set('bob');
    const book = new KeyBook(dir);
    book.warm(['alice', 'bob', 'ghost', 'not a name', 'keybot']);
    await book.warmed();
    expect(book.isParsed(alice)).to.equal(true);
    expect(book.isParsed(bob)).to.equal(true);
    // Invalid names and the service are not even asked for.
    expect(dir.lookups).to.deep.equal(['alice', 'bob', 'ghost']);
  });

  it('a warmed key still gives way to the key the directory names now (a replaced key is noticed)', async function () {
    const dir = new KeyDirectory();
    const before = await dir.set('alice');
    const book = new KeyBook(dir);
    book.warm(['alice']);
    await book.warmed();
    expect(book.isParsed(before)).to.equal(true);
    // The account's key is replaced after warming: the lookup asks the directory again.
    await dir.set('alice', 'mallory-for-alice');
    const now = await book.lookup('alice');
    expect(now.ok).to.equal(true);
    const k = await keyFor('mallory-for-alice');
    expect(now.ok && now.key.fingerprint).to.equal(k.fingerprint);
    expect(now.ok && now.member.fingerprint).to.equal(k.fingerprint);
    // And a removed key is reported as none, warmed or not.
    dir.users.set('alice', { ...dir.users.get('alice')!, publicKey: undefined, fingerprint: '' });
    expect(await book.lookup('alice')).to.include({ ok: false, problem: 'no_key' });
  });

  it('keeps a parsed key for as long as the key itself says it stands, however long that is, and not a moment longer', async function () {
    const made = Date.UTC(2026, 5, 1, 12, 0, 0);
    let now = made + 1000;
    const dir = new KeyDirectory();
    const forever = await generateUserKey({ name: 'alice', now: made });
    const minute = await generateUserKey({ name: 'bob', now: made, keyExpirationTime: 60 });
    dir.users.set('alice', { name: 'alice', fingerprint: forever.fingerprint, publicKey: forever.publicArmored, online: true, service: false });
    dir.users.set('bob', { name: 'bob', fingerprint: minute.fingerprint, publicKey: minute.publicArmored, online: true, service: false });
    const book = new KeyBook(dir, () => now);
    const a1 = await book.lookup('alice');
    const b1 = await book.lookup('bob');
    // bob's key is kept until the millisecond it expires, and refused from then on.
    now = made + 59_999;
    const b2 = await book.lookup('bob');
    expect(b1.ok && b2.ok && b2.key).to.equal(b1.ok && b1.key);
    now = made + 60_000;
    expect(await book.lookup('bob')).to.deep.include({ ok: false, problem: 'no_key', detail: `The key expired on ${new Date(made + 60_000).toISOString()}.` });
    // A day later alice's key is the very handle parsed then: a long-lived room's next epoch does
    // not verify every member's key again (it did every 10 minutes: 5 s of keybot CPU at 2,000).
    now = made + 86_400_000;
    const a2 = await book.lookup('alice');
    expect(a1.ok && a2.ok && a2.key).to.equal(a1.ok && a1.key);
  });

  it('warming survives a failing directory and goes on with the next user', async function () {
    const dir = new KeyDirectory();
    await dir.set('alice');
    const bob = await dir.set('bob');
    dir.failFor.add('alice');
    const book = new KeyBook(dir);
    book.warm(['alice', 'bob']);
    await book.warmed();
    expect(book.isParsed(bob)).to.equal(true);
    // A real lookup still reports the failure.
    let err: unknown;
    await book.lookup('alice').catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(DirectoryError);
  });
});
