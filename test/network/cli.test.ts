/**
 * The command lines for keybot on an existing network (issue 16), as an operator and a user run
 * them, against real InspIRCd 3 + Atheme: `sealchatd keybot --network irc://…` logs in to its
 * services account and serves; `sealchat register` proves the user's key to it (again: already
 * registered; another key: held for the cool-down, exit 1; with --old-key: registered at once);
 * a wrong password is a clear error; keybot stops cleanly on SIGTERM.
 */
import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CliProcess } from '../helpers/companions.js';
import { spawnSealchatd, type SealchatdChild } from '../helpers/child.js';
import { keyFor } from '../helpers/daemon.js';
import { until } from '../helpers/poll.js';
import { missing, registerAccount, startNetwork, type TestNetwork } from './servers.js';

const PASSWORD = 'pw-for-tests-2';

describe('sealchatd keybot --network and sealchat register (src/cli/keybot.ts, src/cli/register.ts)', function () {
  this.timeout(120_000);
  const why = missing();
  let net: TestNetwork | undefined;
  let dir: string;
  let keybot: SealchatdChild | undefined;

  before(async function () {
    if (why) return this.skip();
    net = await startNetwork();
    dir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-netcli-'));
    for (const name of ['keybot', 'alice']) await registerAccount(net.port, name, PASSWORD);
    await writeFile(path.join(dir, 'password'), `${PASSWORD}\n`, { mode: 0o600 });
    for (const name of ['alice', 'bob']) await writeFile(path.join(dir, `${name}.key.asc`), (await keyFor(name)).privateArmored, { mode: 0o600 });
  });

  after(async () => {
    if (keybot && keybot.child.exitCode === null) keybot.child.kill('SIGKILL');
    await net?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('(skip reason) needs the Debian servers', function () {
    if (why) this.skip();
  });

  it('keybot serves the network from the command line and a user registers, changes and re-registers a key', async function () {
    if (why) this.skip();
    keybot = spawnSealchatd(['keybot', '--network', `irc://127.0.0.1:${net!.port}`, '--password-file', path.join(dir, 'password'), '--data', path.join(dir, 'keybot'), '--key-change-cool-down', '1h', '--pace', '50,15']);
    await until(() => /logged in to 127\.0\.0\.1:\d+ as keybot/.test(keybot!.stdout()) || keybot!.child.exitCode !== null, () => `keybot to log in; stdout:\n${keybot!.stdout()}\nstderr:\n${keybot!.stderr()}`, 30_000);
    expect(keybot.child.exitCode, keybot.stderr()).to.equal(null);
    expect(keybot.stdout()).to.match(/key fingerprint [0-9A-F ]{40,}/);

    const server = `127.0.0.1:${net!.port}`;
    const as = (key: string, extra: string[] = []): string[] => ['register', '--server', server, '--user', 'alice', '--key', path.join(dir, key), '--password-file', path.join(dir, 'password'), ...extra];
    const aliceFp = (await keyFor('alice')).fingerprint;
    const bobFp = (await keyFor('bob')).fingerprint;

    const first = await CliProcess.run(as('alice.key.asc'), { home: dir, ms: 60_000 });
    expect(first.code, first.stderr).to.equal(0);
    expect(first.stdout).to.include(`register: key ${aliceFp} registered for alice`);

    const again = await CliProcess.run(as('alice.key.asc'), { home: dir, ms: 60_000 });
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stdout).to.include(`register: key ${aliceFp} is already registered for alice`);

    // Another key, not signed by the registered one: held for the cool-down, and the command says it did not register.
    const swapped = await CliProcess.run(as('bob.key.asc'), { home: dir, ms: 60_000 });
    expect(swapped.code, swapped.stdout).to.equal(1);
    expect(swapped.stdout).to.include(`register refused for now: the change to ${bobFp} is not signed by the registered key ${aliceFp}`);
    expect(swapped.stderr).to.match(/keybot did not register the key/);

    const endorsed = await CliProcess.run(as('bob.key.asc', ['--old-key', path.join(dir, 'alice.key.asc')]), { home: dir, ms: 60_000 });
    expect(endorsed.code, endorsed.stderr).to.equal(0);
    expect(endorsed.stdout).to.include(`register: key ${bobFp} registered for alice, replacing ${aliceFp} (signed by it)`);

    // A wrong account password: SASL fails (904), and the login fails there, in words, at once
    // (not registered unauthenticated, to be refused by keybot or to wait).
    await writeFile(path.join(dir, 'wrong'), 'not-the-password\n');
    const t0 = Date.now();
    const wrong = await CliProcess.run(['register', '--server', server, '--user', 'alice', '--key', path.join(dir, 'alice.key.asc'), '--password-file', path.join(dir, 'wrong')], { home: dir, ms: 60_000 });
    expect(wrong.code).to.equal(1);
    expect(wrong.stderr).to.match(new RegExp(`cannot log in to ${server} as alice: wrong account name or password \\(the server refused the login: .+ \\(SASL as alice\\)\\)`));
    expect(Date.now() - t0).to.be.below(15_000);

    // sealchat chat --sasl: logs in to the services account and talks to keybot; a wrong
    // password is told at once (SASL 904), not left to hang or to keybot.
    const chatArgs = (pw: string): string[] => ['chat', '--sasl', '--server', server, '--user', 'alice', '--key', path.join(dir, 'bob.key.asc'), '--password-file', path.join(dir, pw), '--reconnect-attempts', '0'];
    const chat = CliProcess.start(chatArgs('password'), { home: dir });
    try {
      await chat.waitOut(/connected to 127\.0\.0\.1:\d+ as alice/, 30_000);
      chat.send('/msg keybot fingerprint');
      await chat.waitOut(/[0-9A-F]{4} [0-9A-F]{4} [0-9A-F]{4}/, 20_000);
      chat.send('/quit');
      expect(await chat.exit(15_000)).to.equal(0);
    } finally {
      chat.kill();
    }
    const badChat = await CliProcess.run(chatArgs('wrong'), { home: dir, ms: 30_000 });
    expect(badChat.code).to.equal(1);
    expect(badChat.stderr).to.match(/cannot log in to 127\.0\.0\.1:\d+ as alice: wrong account name or password \(the server refused the login: .+ \(SASL as alice\)\)/);

    keybot.child.kill('SIGTERM');
    expect(await keybot.exited).to.deep.equal({ code: 0, signal: null });
  });

  it('keybot refuses a wrong services password with a clear error and exit 1', async function () {
    if (why) this.skip();
    await writeFile(path.join(dir, 'wrong'), 'not-the-password\n');
    const bad = spawnSealchatd(['keybot', '--network', `irc://127.0.0.1:${net!.port}`, '--password-file', path.join(dir, 'wrong'), '--data', path.join(dir, 'keybot2')]);
    const exit = await bad.exited;
    expect(exit.code, bad.stdout()).to.equal(1);
    expect(bad.stderr()).to.match(/^sealchatd: .*(SASL|password|log in)/im);
  });
});

describe('sealchatd keybot --network: command-line errors', function () {
  this.timeout(30_000);
  const cases: Array<[string, string[], RegExp]> = [
    ['a URL that is not irc:// or ircs://', ['--network', 'http://example.org', '--password-env', 'X'], /--network: "http:" is not irc: or ircs:/],
    ['no password source', ['--network', 'irc://127.0.0.1:6667'], /--network needs keybot's services password: --password-file FILE or --password-env VAR/],
    ['a password in the URL', ['--network', 'irc://keybot:pw@127.0.0.1', '--password-env', 'X'], /put no account or password in the URL/],
    ['a cool-down that is not a duration', ['--network', 'irc://127.0.0.1', '--password-env', 'X', '--key-change-cool-down', 'soon'], /--key-change-cool-down: "soon" is not a duration/],
    ['--insecure without TLS', ['--network', 'irc://127.0.0.1', '--password-env', 'X', '--insecure'], /--insecure is for ircs:\/\/ networks/],
    ['a network option without --network', ['--account', 'kb'], /--account is for --network/],
    ['a --pace that is not BURST,PER_SECOND', ['--network', 'irc://127.0.0.1', '--password-env', 'X', '--pace', 'fast'], /--pace: "fast" is not BURST,PER_SECOND \(e\.g\. 8,1\) or off/],
    ['a --room-prefix no companion knows', ['--network', 'irc://127.0.0.1', '--password-env', 'X', '--room-prefix', '#secret-'], /--room-prefix: "#secret-" is not one of #sc-, ##sc- \(the prefixes every companion knows\)/],
  ];
  for (const [what, args, message] of cases) {
    it(`rejects ${what} with exit 2 and says why`, async () => {
      const p = spawnSealchatd(['keybot', ...args]);
      const exit = await p.exited;
      expect(exit.code, p.stderr()).to.equal(2);
      expect(p.stderr()).to.match(message);
    });
  }
});
