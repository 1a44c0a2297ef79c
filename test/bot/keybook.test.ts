import { expect } from 'chai';
import type { DirectoryRoom, DirectoryUser, Placement, PresenceChange, UserDirectory } from '../../src/bot/directory.js';
import { DirectoryError } from '../../src/bot/directory.js';
import { KeyBook } from '../../src/bot/keybook.js';
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
