/**
 * `sealchat keygen` as a child process: the files it writes, their modes, the passphrase, and
 * refusing to overwrite.
 */
import { expect } from 'chai';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UnlockStatus, inspectPublicKey, unlockPrivateKey } from '../../src/crypto/index.js';
import { CliProcess, tempDir } from '../helpers/companions.js';

describe('src/cli/sealchat.ts keygen (src/cli/keygen.ts)', function () {
  this.timeout(30_000);
  let dir: string;
  let remove: () => Promise<void>;

  beforeEach(async () => {
    ({ dir, remove } = await tempDir('sc-keygen-'));
  });
  afterEach(async () => remove());

  it('writes a passphrase-protected private key (0600) and a public key, and prints the admin command', async () => {
    const pp = path.join(dir, 'pp');
    await writeFile(pp, 'correct horse battery\n');
    const r = await CliProcess.run(['keygen', 'alice', '--dir', dir, '--passphrase-file', pp]);
    expect(r.stderr).to.equal('');
    expect(r.code).to.equal(0);
    const priv = path.join(dir, 'alice.key.asc');
    const pub = path.join(dir, 'alice.pub.asc');
    expect((await stat(priv)).mode & 0o777).to.equal(0o600);
    expect((await stat(pub)).mode & 0o077).to.equal((await stat(pub)).mode & 0o044);

    const armored = await readFile(priv, 'utf8');
    expect((await unlockPrivateKey({ armored })).status).to.equal(UnlockStatus.PASSPHRASE_REQUIRED);
    expect((await unlockPrivateKey({ armored, passphrase: 'wrong' })).status).to.equal(UnlockStatus.BAD_PASSPHRASE);
    const unlocked = await unlockPrivateKey({ armored, passphrase: 'correct horse battery' });
    expect(unlocked.status).to.equal(UnlockStatus.OK);

    const info = await inspectPublicKey({ armored: await readFile(pub, 'utf8') });
    expect(info.status).to.equal('ok');
    expect(info.fingerprint).to.equal(unlocked.key!.fingerprint);
    const grouped = unlocked.key!.fingerprint.toUpperCase().replace(/(.{4})(?=.)/g, '$1 ');
    expect(r.stdout).to.include(`fingerprint: ${grouped}`);
    expect(r.stdout).to.include(`sealchatd user add alice --key ${pub}\n`);
    expect(r.stdout + r.stderr).not.to.include('correct horse');
  });

  it('refuses to overwrite an existing key pair without --force, and replaces it with --force', async () => {
    const first = await CliProcess.run(['keygen', 'bob', '--dir', dir, '--no-passphrase']);
    expect(first.code).to.equal(0);
    const before = await readFile(path.join(dir, 'bob.key.asc'), 'utf8');

    const again = await CliProcess.run(['keygen', 'bob', '--dir', dir, '--no-passphrase']);
    expect(again.code).to.equal(1);
    expect(again.stderr).to.match(/^sealchat: .*bob\.key\.asc already exists; refusing to overwrite it \(--force replaces the key pair\)\n$/);
    expect(await readFile(path.join(dir, 'bob.key.asc'), 'utf8')).to.equal(before);

    const forced = await CliProcess.run(['keygen', 'bob', '--dir', dir, '--no-passphrase', '--force']);
    expect(forced.code).to.equal(0);
    expect(await readFile(path.join(dir, 'bob.key.asc'), 'utf8')).not.to.equal(before);
    expect((await stat(path.join(dir, 'bob.key.asc'))).mode & 0o777).to.equal(0o600);
  });

  it('takes the passphrase from an environment variable; never from a terminal it does not have', async () => {
    const r = await CliProcess.run(['keygen', 'carol', '--dir', dir, '--passphrase-env', 'SC_PP'], { env: { SC_PP: 'from the env' } });
    expect(r.code).to.equal(0);
    const armored = await readFile(path.join(dir, 'carol.key.asc'), 'utf8');
    expect((await unlockPrivateKey({ armored, passphrase: 'from the env' })).status).to.equal(UnlockStatus.OK);

    const noTty = await CliProcess.run(['keygen', 'dave', '--dir', dir]);
    expect(noTty.code).to.equal(2);
    expect(noTty.stderr).to.equal('sealchat: no terminal to ask for the passphrase on: use --passphrase-file FILE or --passphrase-env VAR\n');
  });

  it('answers bad command lines with usage errors (exit 2) and --help with exit 0', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['keygen'], /^sealchat: keygen: missing NAME\nusage: sealchat keygen NAME/],
      [['keygen', '9lives', '--no-passphrase'], /^sealchat: "9lives" is not a valid account name/],
      [['keygen', 'eve', '--bogus'], /^sealchat: keygen: Unknown option '--bogus'\n$/],
      [['keygen', 'eve', '--no-passphrase', '--passphrase-env', 'X'], /cannot be combined/],
      [['nonsense'], /^sealchat: unknown command "nonsense"/],
    ];
    const runs = await Promise.all(cases.map(([args]) => CliProcess.run([...args, '--dir', dir])));
    runs.forEach((r, i) => {
      expect(r.code, cases[i]![0].join(' ')).to.equal(2);
      expect(r.stderr).to.match(cases[i]![1]);
    });
    const help = await CliProcess.run(['keygen', '--help']);
    expect(help.code).to.equal(0);
    expect(help.stdout).to.match(/^usage: sealchat keygen NAME/);
    expect(help.stdout).to.include('--passphrase-file FILE');
  });
});
