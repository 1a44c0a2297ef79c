import { expect } from 'chai';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { IdentityError, loadOrCreateIdentity, readServiceCredentials } from '../../src/bot/identity.js';
import { KEYBOT_KEY_FILE } from '../../src/protocol/files.js';
import { readPublicKey } from '../../src/crypto/index.js';

describe('src/bot/identity.ts', function () {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-keybot-id-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('creates keybot.key.asc owner-only on first start, and loads the same key after', async function () {
    const first = await loadOrCreateIdentity(dir);
    expect(first.created).to.equal(true);
    const file = path.join(dir, KEYBOT_KEY_FILE);
    expect((await stat(file)).mode & 0o777).to.equal(0o600);
    expect(await readFile(file, 'utf8')).to.match(/^-----BEGIN PGP PRIVATE KEY BLOCK-----/);
    const pub = await readPublicKey({ armored: first.publicArmored });
    expect(pub.key!.fingerprint).to.equal(first.fingerprint);
    const second = await loadOrCreateIdentity(dir);
    expect(second.created).to.equal(false);
    expect(second.fingerprint).to.equal(first.fingerprint);
  });

  it('tightens a key file that others could read', async function () {
    await loadOrCreateIdentity(dir);
    const file = path.join(dir, KEYBOT_KEY_FILE);
    await chmod(file, 0o644);
    await loadOrCreateIdentity(dir);
    expect((await stat(file)).mode & 0o777).to.equal(0o600);
  });

  it('refuses an unusable key file instead of silently making a new key', async function () {
    const file = path.join(dir, KEYBOT_KEY_FILE);
    await writeFile(file, 'not a key', { mode: 0o600 });
    let err: unknown;
    await loadOrCreateIdentity(dir).catch((e) => (err = e));
    expect(err).to.be.instanceOf(IdentityError);
    expect((err as Error).message).to.match(/does not hold a usable private key.*restore it from a backup/);
    expect(await readFile(file, 'utf8')).to.equal('not a key');
  });

  it('reads the credentials the daemon wrote, and explains a missing file', async function () {
    let err: unknown;
    await readServiceCredentials(dir).catch((e) => (err = e));
    expect((err as Error).message).to.match(/no .*keybot\.credentials: start sealchatd/);
    await writeFile(path.join(dir, 'keybot.credentials'), JSON.stringify({ account: 'keybot', password: 's3cret' }));
    expect(await readServiceCredentials(dir)).to.deep.equal({ account: 'keybot', password: 's3cret' });
  });
});
