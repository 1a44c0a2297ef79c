/**
 * The command lines for keybot on ngIRCd, a network without services (issue 16; docs/NETWORKS.md
 * "ngIRCd"): `sealchatd keybot --network irc://… --accounts keybot --oper NAME` logs in without
 * SASL, OPERs for +F and serves; `sealchat register --keybot-account` logs in to keybot by
 * password (making the account the first time) and proves the key; a wrong password is refused
 * in words and exit 1.
 */
import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CliProcess } from '../helpers/companions.js';
import { spawnSealchatd, type SealchatdChild } from '../helpers/child.js';
import { keyFor } from '../helpers/daemon.js';
import { until } from '../helpers/poll.js';
import { OPER, connectPlain, ngircdMissing, startNgircd, type TestNetwork } from './servers.js';

describe('sealchatd keybot --accounts keybot and sealchat register --keybot-account on ngIRCd (src/cli/keybot.ts, src/cli/register.ts)', function () {
  this.timeout(120_000);
  const why = ngircdMissing();
  let net: TestNetwork | undefined;
  let dir: string;
  let keybot: SealchatdChild | undefined;

  before(async function () {
    if (why) return this.skip();
    net = await startNgircd();
    dir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-ngcli-'));
    await writeFile(path.join(dir, 'oper'), `${OPER.password}\n`, { mode: 0o600 });
    await writeFile(path.join(dir, 'password'), 'alice-keybot-pw\n', { mode: 0o600 });
    await writeFile(path.join(dir, 'wrong'), 'not-the-password\n', { mode: 0o600 });
    await writeFile(path.join(dir, 'alice.key.asc'), (await keyFor('alice')).privateArmored, { mode: 0o600 });
  });

  after(async () => {
    if (keybot && keybot.child.exitCode === null) keybot.child.kill('SIGKILL');
    await net?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('(skip reason) needs ngIRCd', function () {
    if (why) this.skip();
  });

  it('keybot serves ngIRCd with its own accounts and a user makes an account and registers a key', async function () {
    if (why) return this.skip();
    keybot = spawnSealchatd([
      'keybot', '--network', `irc://127.0.0.1:${net!.port}`, '--accounts', 'keybot', '--oper', OPER.name,
      '--password-file', path.join(dir, 'oper'), '--data', path.join(dir, 'keybot'), '--pace', '50,15',
    ]);
    await until(() => /logged in to 127\.0\.0\.1:\d+ as keybot with its own accounts/.test(keybot!.stdout()) || keybot!.child.exitCode !== null, () => `keybot to log in; stdout:\n${keybot!.stdout()}\nstderr:\n${keybot!.stderr()}`, 30_000);
    expect(keybot.child.exitCode, keybot.stderr()).to.equal(null);

    const as = (password: string): string[] => ['register', '--keybot-account', '--server', `127.0.0.1:${net!.port}`, '--user', 'alice', '--key', path.join(dir, 'alice.key.asc'), '--password-file', path.join(dir, password)];
    const aliceFp = (await keyFor('alice')).fingerprint;
    const first = await CliProcess.run(as('password'), { home: dir, ms: 60_000 });
    expect(first.code, first.stderr).to.equal(0);
    expect(first.stdout).to.include('login: keybot account alice created; you are logged in as alice');
    expect(first.stdout).to.include(`register: key ${aliceFp} registered for alice`);

    const again = await CliProcess.run(as('password'), { home: dir, ms: 60_000 });
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stdout).to.include('login: you are logged in as alice');
    expect(again.stdout).to.include(`register: key ${aliceFp} is already registered for alice`);

    const wrong = await CliProcess.run(as('wrong'), { home: dir, ms: 60_000 });
    expect(wrong.code, wrong.stdout).to.equal(1);
    expect(wrong.stdout).to.include('login refused: wrong password for the keybot account alice');
    expect(wrong.stderr).to.match(/keybot did not log you in/);

    // Without --keybot-account the companion asks for SASL, which ngIRCd does not offer: it says so.
    const sasl = await CliProcess.run(as('password').filter((x) => x !== '--keybot-account'), { home: dir, ms: 60_000 });
    expect(sasl.code, sasl.stdout).to.equal(1);
    expect(sasl.stderr).to.match(/offers no SASL \(a network without services\? there, log in to keybot instead: --keybot-account\)/);

    // sealchat chat --keybot-account logs in to keybot by itself (alice types no login), and
    // never shows the password: keybot answers `rooms` as it answers a logged-in user.
    const chat = await CliProcess.run(
      ['chat', '--keybot-account', '--server', `127.0.0.1:${net!.port}`, '--user', 'alice', '--key', path.join(dir, 'alice.key.asc'), '--password-file', path.join(dir, 'password'), '--reconnect-attempts', '0'],
      { home: dir, input: '/msg keybot rooms\n', ms: 60_000 },
    );
    expect(chat.code, chat.stderr).to.equal(0);
    expect(chat.stdout, chat.stdout).to.include('login: you are logged in as alice');
    expect(chat.stdout).to.match(/you are in no rooms/);
    expect(chat.stdout + chat.stderr).to.not.include('alice-keybot-pw');
    // A wrong keybot password ends it at once, in words.
    const refused = await CliProcess.run(
      ['chat', '--keybot-account', '--server', `127.0.0.1:${net!.port}`, '--user', 'alice', '--key', path.join(dir, 'alice.key.asc'), '--password-file', path.join(dir, 'wrong'), '--reconnect-attempts', '0'],
      { home: dir, input: '/msg keybot rooms\n', ms: 60_000 },
    );
    expect(refused.code, refused.stdout).to.equal(1);
    expect(refused.stderr).to.match(/keybot refused the login: wrong password for the keybot account alice/);

    // sealchat proxy --keybot-account: a plain client through it is logged in to keybot without
    // typing login, and the password shows nowhere (not to the client, not in the proxy's output).
    const proxy = CliProcess.start(
      ['proxy', '--keybot-account', '--server', `127.0.0.1:${net!.port}`, '--user', 'alice', '--key', path.join(dir, 'alice.key.asc'), '--password-file', path.join(dir, 'password'), '--listen', '127.0.0.1:0'],
      { home: dir, env: { SEALCHAT_LOG: 'debug' } },
    );
    try {
      const port = Number((await proxy.waitOut(/listening on 127\.0\.0\.1:(\d+)/, 30_000))[1]);
      const through = await connectPlain(port, 'alice');
      const seen: string[] = [];
      through.on('raw', (e: { line: string; from_server: boolean }) => e.from_server && seen.push(e.line.trim()));
      await until(() => seen.find((l) => / NOTICE alice :login: you are logged in as alice$/.test(l)), () => `keybot's answer to the proxy's login; the client got:\n${seen.join('\n')}\nproxy:\n${proxy.stdout}\n${proxy.stderr}\nkeybot:\n${keybot!.stdout()}\n${keybot!.stderr()}`, 30_000);
      through.quit();
      expect(seen.filter((l) => l.includes('alice-keybot-pw'))).to.deep.equal([]);
    } finally {
      proxy.child.kill('SIGTERM');
      await proxy.exit(10_000).catch(() => undefined);
    }
    expect(proxy.stdout + proxy.stderr).to.not.include('alice-keybot-pw');

    keybot.child.kill('SIGTERM');
    expect(await keybot.exited).to.deep.equal({ code: 0, signal: null });
  });

  it('sealchat chat --keybot-account and --sasl together is a bad command line (exit 2)', async function () {
    if (why) return this.skip();
    const both = await CliProcess.run(
      ['chat', '--keybot-account', '--sasl', '--server', `127.0.0.1:${net!.port}`, '--user', 'alice', '--key', path.join(dir, 'alice.key.asc'), '--password-file', path.join(dir, 'password')],
      { home: dir, ms: 30_000 },
    );
    expect(both.code, both.stderr).to.equal(2);
    expect(both.stderr).to.match(/give --sasl \(a network with services\) or --keybot-account \(keybot keeps the accounts\), not both/);
  });

  it('sealchat chat --sasl refuses a server without SASL instead of sending the password as PASS', async function () {
    if (why) return this.skip();
    const chat = await CliProcess.run(
      ['chat', '--sasl', '--server', `127.0.0.1:${net!.port}`, '--user', 'alice', '--key', path.join(dir, 'alice.key.asc'), '--password-file', path.join(dir, 'password'), '--reconnect-attempts', '0'],
      { home: dir, ms: 30_000 },
    );
    expect(chat.code, chat.stdout).to.equal(1);
    expect(chat.stderr).to.match(/offers no SASL/);
    expect(chat.stdout).to.not.match(/connected to/);
  });

  it('keybot refuses a wrong operator password with a clear error and exit 1', async function () {
    if (why) return this.skip();
    const bad = spawnSealchatd(['keybot', '--network', `irc://127.0.0.1:${net!.port}`, '--accounts', 'keybot', '--oper', OPER.name, '--password-file', path.join(dir, 'wrong'), '--data', path.join(dir, 'keybot2')]);
    const exit = await bad.exited;
    expect(exit.code, bad.stdout()).to.equal(1);
    expect(bad.stderr()).to.match(/^sealchatd: .*refused OPER netop/im);
  });
});

describe('sealchat proxy and agent --keybot-account: command-line errors', function () {
  this.timeout(30_000);
  const cases: Array<[string, string[], RegExp]> = [
    ['proxy --keybot-account without --user', ['proxy', '--keybot-account', '--server', '127.0.0.1:6667', '--key', 'k.asc'], /--keybot-account needs --user NAME/],
    ['proxy --password-file without --keybot-account', ['proxy', '--server', '127.0.0.1:6667', '--user', 'alice', '--password-file', 'pw'], /--password-file and --password-env are for --keybot-account/],
    ['agent --password-env without --keybot-account', ['agent', '--account', 'alice', '--password-env', 'PW'], /--password-file and --password-env are for --keybot-account/],
  ];
  for (const [what, args, message] of cases) {
    it(`rejects ${what} with exit 2 and says why`, async () => {
      const p = await CliProcess.run(args, { ms: 20_000 });
      expect(p.code, p.stderr).to.equal(2);
      expect(p.stderr).to.match(message);
    });
  }
});

describe('sealchatd keybot --accounts: command-line errors', function () {
  this.timeout(30_000);
  const cases: Array<[string, string[], RegExp]> = [
    ['an unknown --accounts', ['--network', 'irc://127.0.0.1', '--accounts', 'nickserv'], /--accounts: "nickserv" is not services or keybot/],
    ['--oper with services accounts', ['--network', 'irc://127.0.0.1', '--password-env', 'X', '--oper', 'netop'], /--oper is for --accounts keybot/],
    ['--accounts without --network', ['--accounts', 'keybot'], /--accounts is for --network/],
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
