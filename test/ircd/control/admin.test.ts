import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateUserKey } from '../../../src/crypto/index.js';
import { Accounts } from '../../../src/ircd/accounts.js';
import { formatUserTable } from '../../../src/ircd/control/index.js';
import { loadConfig } from '../../../src/ircd/config.js';
import type { UserInfo } from '../../../src/protocol/control.js';
import { openAccountStore } from '../../../src/ircd/store/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const CLI = path.join(ROOT, 'src/cli/sealchatd.ts');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `sealchatd ARGS` as a child process, feeding `input` on stdin. */
function sealchatd(args: string[], input = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.SEALCHAT_LOG;
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

describe('src/cli/sealchatd.ts user … (src/ircd/control/admin.ts)', function () {
  this.timeout(30_000);
  let dir: string;
  let data: string;
  let keys: { alice: string; bob: string; alicePrivate: string; aliceFp: string; bobFp: string };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sc-admin-'));
    data = path.join(dir, 'data');
    const [a, b] = await Promise.all([generateUserKey({ name: 'alice' }), generateUserKey({ name: 'bob' })]);
    keys = { alice: path.join(dir, 'alice.asc'), bob: path.join(dir, 'bob.asc'), alicePrivate: path.join(dir, 'alice.key'), aliceFp: a.fingerprint, bobFp: b.fingerprint };
    await writeFile(keys.alice, a.publicArmored);
    await writeFile(keys.bob, b.publicArmored);
    await writeFile(keys.alicePrivate, a.privateArmored);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function authenticate(name: string, password: string): Promise<boolean> {
    const store = await openAccountStore(`sqlite://${data}/sealchat.sqlite`);
    try {
      return (await new Accounts(store).authenticate(name, password)) !== null;
    } finally {
      await store.close();
    }
  }

  describe('without a daemon (the store opened directly)', () => {
    it('adds an account, creating the data directory, and never echoes the password', async () => {
      const r = await sealchatd(['user', 'add', 'alice', '--key', keys.alice, '--password-stdin', '--data', data], 'first secret\n');
      expect(r.stderr).to.equal('');
      expect(r.code).to.equal(0);
      expect(r.stdout).to.equal(`added alice (key fingerprint ${keys.aliceFp})\n`);
      expect(r.stdout + r.stderr).not.to.include('first secret');
      expect(await authenticate('alice', 'first secret')).to.equal(true);
    });

    it('refuses bad input with a message and exit 1', async () => {
      const cases: Array<[string[], string, RegExp]> = [
        [['user', 'add', 'ALICE', '--key', keys.bob, '--password-stdin'], 'pw', /^sealchatd: account alice already exists\n$/],
        [['user', 'add', '1abc', '--key', keys.bob, '--password-stdin'], 'pw', /^sealchatd: invalid account name "1abc"/],
        [['user', 'add', 'keybot', '--key', keys.bob, '--password-stdin'], 'pw', /^sealchatd: the name keybot is reserved/],
        [['user', 'add', 'carol', '--key', keys.alicePrivate, '--password-stdin'], 'pw', /^sealchatd: This is a private key/],
        [['user', 'add', 'carol', '--key', path.join(dir, 'nope.asc'), '--password-stdin'], 'pw', /^sealchatd: cannot read .*nope\.asc: no such file/],
        [['user', 'add', 'carol', '--key', keys.bob, '--password-stdin'], '\n', /^sealchatd: the password must not be empty/],
        [['user', 'passwd', 'nobody', '--password-stdin'], 'pw', /^sealchatd: no account named nobody/],
        [['user', 'setkey', 'alice', '--key', keys.alicePrivate], '', /^sealchatd: This is a private key/],
        [['user', 'del', 'nobody'], '', /^sealchatd: no account named nobody/],
      ];
      // Independent refusals: run them side by side to keep the suite quick.
      const runs = await Promise.all(cases.map(([args, input]) => sealchatd([...args, '--data', data], input)));
      cases.forEach(([args, , message], i) => {
        expect(runs[i]!.stderr, args.join(' ')).to.match(message);
        expect(runs[i]!.code, args.join(' ')).to.equal(1);
      });
      const list = await sealchatd(['user', 'list', '--json', '--data', data]);
      expect((JSON.parse(list.stdout) as UserInfo[]).map((u) => u.name)).to.deep.equal(['alice']);
    });

    it('answers a bad command line with usage and exit 2', async () => {
      const cases: Array<[string[], RegExp]> = [
        [['user', 'add', '--key', keys.bob, '--password-stdin'], /^sealchatd: user add: missing NAME\nusage: sealchatd user add NAME/],
        [['user', 'add', 'carol', '--password-stdin'], /--key FILE is required/],
        [['user', 'add', 'carol', '--key', keys.bob], /no terminal to prompt for a password on: pipe it in with --password-stdin/],
        [['user', 'add', 'carol', 'dave', '--key', keys.bob], /unexpected argument "dave"/],
        [['user', 'list', '--colour'], /^sealchatd: user list: Unknown option '--colour'\n$/],
        [['user'], /user needs a subcommand: add, list, passwd, setkey, del/],
        [['frobnicate'], /unknown command "frobnicate"/],
        [['ircd', '--listen', 'nonsense'], /^sealchatd: config: --listen: "nonsense" is not HOST:PORT/],
      ];
      const runs = await Promise.all(cases.map(([args]) => sealchatd([...args, '--data', data])));
      cases.forEach(([args, message], i) => {
        expect(runs[i]!.stderr, args.join(' ')).to.match(message);
        expect(runs[i]!.code, args.join(' ')).to.equal(args[0] === 'ircd' ? 1 : 2);
      });
    });

    it('lists, changes the password and the key, and deletes', async () => {
      const table = await sealchatd(['user', 'list', '--data', data]);
      expect(table.code).to.equal(0);
      expect(table.stdout).to.match(new RegExp(`^NAME +FINGERPRINT +STATUS\\nalice +${keys.aliceFp} +offline\\n$`));

      const pw = await sealchatd(['user', 'passwd', 'Alice', '--password-stdin', '--data', data], 'second secret');
      expect([pw.code, pw.stdout]).to.deep.equal([0, 'changed the password of alice\n']);
      expect(await authenticate('alice', 'second secret')).to.equal(true);
      expect(await authenticate('alice', 'first secret')).to.equal(false);

      const sk = await sealchatd(['user', 'setkey', 'alice', '--key', keys.bob, '--data', data]);
      expect([sk.code, sk.stdout]).to.deep.equal([0, `set the key of alice (fingerprint ${keys.bobFp})\n`]);

      const del = await sealchatd(['user', 'del', 'alice', '--data', data]);
      expect([del.code, del.stdout]).to.deep.equal([0, 'deleted alice\n']);
      const empty = await sealchatd(['user', 'list', '--data', data]);
      expect(empty.stdout).to.equal('no accounts\n');
    });

    it('refuses to invent a data directory for anything but add', async () => {
      const r = await sealchatd(['user', 'list', '--data', path.join(dir, 'typo')]);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(/^sealchatd: no data directory at .*typo \(wrong --data or --config\?\)/);
    });

    it('reads --data from a config file and reports config errors', async () => {
      const cfg = path.join(dir, 'sealchatd.json');
      await writeFile(cfg, JSON.stringify({ dataDir: 'data', limits: { sendQ: 1 } }));
      const bad = await sealchatd(['user', 'list', '--config', cfg]);
      expect(bad.code).to.equal(1);
      expect(bad.stderr).to.match(/^sealchatd: config: unknown key "limits.sendQ"/);
      await writeFile(cfg, JSON.stringify({ dataDir: 'data' }));
      const ok = await sealchatd(['user', 'list', '--config', cfg]);
      expect([ok.code, ok.stdout]).to.deep.equal([0, 'no accounts\n']);
    });

    it('hashes a password for the config file', async () => {
      const r = await sealchatd(['hash-password', '--stdin'], 'oper pass\n');
      expect(r.code).to.equal(0);
      expect(r.stdout).to.match(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$\S+\n$/);
      const cfg = path.join(dir, 'oper.json');
      await writeFile(cfg, JSON.stringify({ operators: [{ name: 'root', passwordHash: r.stdout.trim() }] }));
      expect((await loadConfig({ file: cfg })).operators[0]!.name).to.equal('root');
    });
  });

  describe('with a running daemon (through the control socket)', () => {
    let daemon: { close(): Promise<void>; listeners: Array<{ port: number }>; controlPath: string };
    let ddata: string;

    before(async () => {
      ddata = path.join(dir, 'daemon');
      const { startDaemon } = await import('../../../src/ircd/daemon.js');
      daemon = await startDaemon(await loadConfig({ dataDir: ddata, listen: ['127.0.0.1:0'], cwd: dir }));
    });
    after(async () => {
      await daemon?.close();
    });

    it('adds through the daemon, shows presence, and deleting disconnects the user', async () => {
      const add = await sealchatd(['user', 'add', 'dave', '--key', keys.alice, '--password-stdin', '--data', ddata], 'dave pw');
      expect([add.code, add.stderr]).to.deep.equal([0, '']);

      const irc = await ircLogin(daemon.listeners[0]!.port, 'dave', 'dave pw');
      const list = await sealchatd(['user', 'list', '--json', '--data', ddata]);
      const users = JSON.parse(list.stdout) as UserInfo[];
      expect(users.find((u) => u.name === 'dave')).to.include({ online: true, fingerprint: keys.aliceFp });
      expect(users.find((u) => u.name === 'keybot')).to.include({ online: false, service: true });

      const del = await sealchatd(['user', 'del', 'dave', '--data', ddata]);
      expect(del.code).to.equal(0);
      await irc.closed;
      expect(irc.text()).to.match(/ERROR :.*Account deleted/);
    });
  });
});

describe('src/ircd/control/admin.ts formatUserTable', () => {
  it('aligns columns and marks the service account', () => {
    const t = formatUserTable([
      { name: 'alice', fingerprint: 'ab12', online: true, createdAt: '', updatedAt: '' },
      { name: 'keybot', fingerprint: '', online: false, service: true, createdAt: '', updatedAt: '' },
    ]);
    expect(t).to.equal(['NAME    FINGERPRINT   STATUS', 'alice   ab12          online', 'keybot  (no key yet)  offline  service', ''].join('\n'));
  });
});

/** Register over raw IRC and wait for 001; `closed` resolves when the server hangs up. */
async function ircLogin(port: number, nick: string, password: string): Promise<{ closed: Promise<void>; text(): string }> {
  const sock = net.connect(port, '127.0.0.1');
  let buf = '';
  const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    sock.on('data', (d: Buffer) => {
      buf += d.toString();
      if (/ 001 /.test(buf)) resolve();
    });
    sock.on('error', reject);
    sock.on('close', () => reject(new Error(`closed before 001: ${buf}`)));
    sock.write(`PASS :${password}\r\nNICK ${nick}\r\nUSER ${nick} 0 * :${nick}\r\n`);
  });
  return { closed, text: () => buf };
}
