/**
 * sealchat installed the way users install it: `npm pack` on this checkout, `npm install -g` of
 * the tarball into a temporary prefix, and then both sides run from that prefix with the
 * repository out of the way (cwd and HOME elsewhere, PATH without the checkout): `sealchatd
 * serve`, `sealchat keygen`, `sealchatd user add`, two `sealchat chat` sessions that open a room
 * and exchange a line, and the WeeChat plugin found with `sealchat plugin-path`.
 *
 * The install compiles sqlite3 and argon2 from source (a minute or two on two cores), so the
 * suite runs in CI (CI=true) or when SEALCHAT_TEST_PACKAGE=1; elsewhere it skips and says so.
 * The systemd unit in docs/examples is checked with `systemd-analyze verify` where it exists.
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { access, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliProcess, ROOM_RE, tempDir } from '../helpers/companions.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const WANTED = process.env.CI === 'true' || process.env.SEALCHAT_TEST_PACKAGE === '1';

/** Run a command to the end; throw with its output if it fails. */
function run(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; input?: string; ms: number }): string {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, env: opts.env, input: opts.input ?? '', encoding: 'utf8', timeout: opts.ms, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

describe('the npm package, installed globally without the repository', function () {
  this.timeout(600_000);
  let dir: string;
  let remove: () => Promise<void>;
  let env: NodeJS.ProcessEnv;
  let bin: string;
  const procs: CliProcess[] = [];

  before(async function () {
    if (!WANTED) {
      console.log('      (skipped: set SEALCHAT_TEST_PACKAGE=1 to pack, install and run the package; CI runs it)');
      this.skip();
    }
    ({ dir, remove } = await tempDir('sc-package-'));
    const prefix = path.join(dir, 'prefix');
    bin = path.join(prefix, 'bin');
    // The checkout is nowhere on PATH, HOME or the working directory of anything below.
    const pathDirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => !path.resolve(d).startsWith(ROOT));
    env = { ...process.env, PATH: [bin, ...pathDirs].join(path.delimiter), HOME: dir, SEALCHAT_HOME: path.join(dir, 'home') };
    delete env.SEALCHAT_LOG;
    delete env.npm_config_prefix;
    // npm's own settings from the checkout's run (npm test) must not leak into the install.
    for (const k of Object.keys(env)) if (k.startsWith('npm_') && k !== 'npm_config_nodedir' && k !== 'npm_config_cache') delete env[k];
    env.npm_config_nodedir = process.env.npm_config_nodedir ?? '/usr';

    run('npm', ['pack', '--pack-destination', dir, '--silent'], { cwd: ROOT, env: { ...env, PATH: process.env.PATH }, ms: 180_000 });
    const tarball = (await readdir(dir)).find((f) => /^sealchat-.*\.tgz$/.test(f));
    expect(tarball, 'npm pack made a tarball').to.be.a('string');
    run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', path.join(dir, tarball!)], { cwd: dir, env, ms: 480_000 });
  });
  afterEach(() => {
    for (const p of procs.splice(0)) p.kill();
  });
  after(async () => {
    for (const p of procs.splice(0)) p.kill();
    await remove?.();
  });

  function start(cmd: string, args: string[], extraEnv: Record<string, string> = {}): CliProcess {
    const child = spawn(path.join(bin, cmd), args, { cwd: dir, env: { ...env, ...extraEnv }, stdio: ['pipe', 'pipe', 'pipe'] });
    const p = new CliProcess(child);
    procs.push(p);
    return p;
  }

  it('ships the programs, the plugins and the docs, and no tests, benchmarks or TypeScript sources', async () => {
    const pkg = path.join(dir, 'prefix', 'lib', 'node_modules', 'sealchat');
    const top = (await readdir(pkg)).sort();
    expect(top).to.include.members(['dist', 'plugins', 'docs', 'README.md', 'LICENSE', 'package.json']);
    for (const absent of ['test', 'bench', 'src', 'scripts', 'tsconfig.json']) expect(top, absent).not.to.include(absent);
    const maps = spawnSync('find', [path.join(pkg, 'dist'), '-name', '*.map'], { encoding: 'utf8' }).stdout.trim();
    expect(maps, 'source maps in the package').to.equal('');
  });

  it('runs sealchatd serve, keygen, user add, and two chat sessions that open a room and talk', async () => {
    const data = path.join(dir, 'data');
    const serve = start('sealchatd', ['serve', '--data', data, '--listen', '127.0.0.1:0']);
    const port = Number((await serve.waitOut(/listening on 127\.0\.0\.1:(\d+)/, 30_000))[1]);
    const fingerprint = (await serve.waitOut(/keybot[^\n]*key fingerprint ([0-9A-F ]{40,})/, 30_000))[1]!.trim();
    await serve.waitOut(/no user accounts yet[\s\S]*sealchatd user add NAME/, 30_000);

    const keys = path.join(dir, 'keys');
    for (const name of ['alice', 'bob']) {
      const out = run(path.join(bin, 'sealchat'), ['keygen', name, '--dir', keys, '--no-passphrase'], { cwd: dir, env, ms: 60_000 });
      expect(out).to.match(new RegExp(`sealchatd user add ${name} --key `));
      run(path.join(bin, 'sealchatd'), ['user', 'add', name, '--key', path.join(keys, `${name}.pub.asc`), '--password-stdin', '--data', data], {
        cwd: dir,
        env,
        input: `${name}-password-1234\n`,
        ms: 60_000,
      });
    }
    const list = run(path.join(bin, 'sealchatd'), ['user', 'list', '--data', data], { cwd: dir, env, ms: 30_000 });
    expect(list).to.match(/alice/).and.to.match(/bob/);

    const chat = (name: string): CliProcess =>
      start('sealchat', ['chat', '--server', `127.0.0.1:${port}`, '--user', name, '--key', path.join(keys, `${name}.key.asc`), '--password-env', 'SC_PW', '--keybot-fingerprint', fingerprint], {
        SC_PW: `${name}-password-1234`,
      });
    const bob = chat('bob');
    await bob.waitOut(/keybot's key [0-9A-F ]+ is pinned/, 30_000);
    const alice = chat('alice');
    await alice.waitOut(/keybot's key [0-9A-F ]+ is pinned/, 30_000);
    alice.send('/invite bob');
    const room = (await alice.waitOut(new RegExp(`-keybot- opened (${ROOM_RE.source}) with bob`), 30_000))[1]!;
    await alice.waitOut(new RegExp(`key for ${room}: epoch \\d+, members alice, bob; verified`), 30_000);
    await bob.waitOut(new RegExp(`key for ${room}: epoch \\d+, members alice, bob; verified`), 30_000);
    alice.send('hello from an installed sealchat, ünïcödé');
    await bob.waitOut(/<alice> hello from an installed sealchat, ünïcödé/, 30_000);
    bob.send('and back');
    await alice.waitOut(/<bob> and back/, 30_000);
  });

  it('finds the WeeChat and irssi plugins with sealchat plugin-path, and WeeChat loads the one it names', async function () {
    const weechatPlugin = run(path.join(bin, 'sealchat'), ['plugin-path', 'weechat'], { cwd: dir, env, ms: 30_000 }).trim();
    const irssiPlugin = run(path.join(bin, 'sealchat'), ['plugin-path', 'irssi'], { cwd: dir, env, ms: 30_000 }).trim();
    expect(weechatPlugin.startsWith(path.join(dir, 'prefix'))).to.equal(true);
    expect(irssiPlugin.startsWith(path.join(dir, 'prefix'))).to.equal(true);
    await access(weechatPlugin);
    expect(await readFile(irssiPlugin, 'utf8')).to.match(/Irssi::/);
    const headless = spawnSync('sh', ['-c', 'command -v weechat-headless'], { encoding: 'utf8' }).stdout.trim();
    if (!headless) {
      console.log('      (WeeChat load not checked: weechat-headless is not installed)');
      return;
    }
    const home = path.join(dir, 'weechat');
    // WeeChat runs the commands, prints what the script registers to its core buffer's log, and quits.
    const r = spawnSync(headless, ['--dir', home, '--run-command', `/python load ${weechatPlugin};/print sealchat-load-done;/quit`], { encoding: 'utf8', timeout: 60_000, env });
    const log = await readFile(path.join(home, 'logs', 'core.weechat.weechatlog'), 'utf8').catch(() => '');
    const all = `${r.stdout}\n${r.stderr}\n${log}`;
    expect(all, 'WeeChat ran the commands').to.match(/sealchat-load-done/);
    expect(all).to.match(/python: registered script "sealchat"/);
  });

  it('has a systemd unit that systemd-analyze verify accepts with the installed sealchatd', async function () {
    const analyze = spawnSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8' }).stdout.trim();
    if (!analyze) {
      console.log('      (systemd-analyze is not installed: the unit was not verified)');
      return;
    }
    const unit = await readFile(path.join(dir, 'prefix', 'lib', 'node_modules', 'sealchat', 'docs', 'examples', 'sealchatd.service'), 'utf8');
    expect(unit).to.match(/^ExecStart=\/usr\/local\/bin\/sealchatd serve --config \/etc\/sealchat\/sealchat\.json/m);
    // verify checks that ExecStart's program exists: point it at the one this test installed.
    const file = path.join(dir, 'sealchatd.service');
    await writeFile(file, unit.replace('/usr/local/bin/sealchatd', path.join(bin, 'sealchatd')));
    const r = spawnSync(analyze, ['verify', file], { encoding: 'utf8', timeout: 60_000 });
    // verify exits 0 after merely warning about a directive it ignores: any output is a finding.
    expect({ status: r.status, output: `${r.stdout}${r.stderr}`.trim() }).to.deep.equal({ status: 0, output: '' });
  });
});
