import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, DEFAULT_LIMITS, loadConfig, makeIpMatcher } from '../../src/ircd/config.js';

const HASH = '$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0123456789abcdefABCDEF0123456789abcdefABCD';

describe('src/ircd/config', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sc-cfg-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function withFile(content: unknown, extra: Parameters<typeof loadConfig>[0] = {}) {
    const file = path.join(dir, 'sealchatd.json');
    await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
    return loadConfig({ file, cwd: dir, ...extra });
  }

  async function errorOf(p: Promise<unknown>): Promise<string> {
    const err = await p.then(() => null, (e: unknown) => e);
    expect(err, 'expected a ConfigError').to.be.instanceOf(ConfigError);
    return (err as Error).message;
  }

  it('uses the defaults without a file, with absolute dataDir and sqlite store', async () => {
    const c = await loadConfig({ cwd: dir });
    expect(c.dataDir).to.equal(path.join(dir, 'data'));
    expect(c.store).to.equal(`sqlite://${path.join(dir, 'data', 'sealchat.sqlite')}`);
    expect(c.listen).to.deep.equal([{ host: '127.0.0.1', port: 6667 }]);
    expect(c.requireAccount).to.equal(true);
    expect(c.forceNickEqualsAccount).to.equal(true);
    expect(c.limits).to.deep.equal(DEFAULT_LIMITS);
    expect(c.serverPasswordHash).to.equal(null);
  });

  it('merges a partial file over the defaults, resolving paths against the file', async () => {
    const c = await withFile({ serverName: 'irc.example.org', dataDir: 'state', limits: { sendqBytes: 1024 }, keybot: { rotateAfterMessages: 5 }, operators: [{ name: 'root', passwordHash: HASH }] });
    expect(c.serverName).to.equal('irc.example.org');
    expect(c.dataDir).to.equal(path.join(dir, 'state'));
    expect(c.limits.sendqBytes).to.equal(1024);
    expect(c.limits.recvqBytes).to.equal(DEFAULT_LIMITS.recvqBytes);
    expect(c.keybot).to.deep.equal({ rotateAfterMessages: 5, rotateAfterMs: 3_600_000 });
    expect(c.operators).to.deep.equal([{ name: 'root', passwordHash: HASH }]);
  });

  it('names unknown keys, suggesting the intended one', async () => {
    expect(await errorOf(withFile({ limits: { sendQBytes: 1 } }))).to.equal('config: unknown key "limits.sendQBytes" (did you mean "limits.sendqBytes"?)');
    expect(await errorOf(withFile({ colour: 'blue' }))).to.match(/^config: unknown key "colour" \(known keys: serverName, /);
  });

  it('names the key and the bad value for wrong types', async () => {
    expect(await errorOf(withFile({ limits: { sendqBytes: 'x' } }))).to.equal('config: limits.sendqBytes must be a positive integer (got "x")');
    expect(await errorOf(withFile({ limits: { recvqBytes: 100 } }))).to.equal('config: limits.recvqBytes must be at least 512 (got 100)');
    expect(await errorOf(withFile({ limits: { clonesPerIp: -1 } }))).to.equal('config: limits.clonesPerIp must be a non-negative integer (got -1)');
    expect(await errorOf(withFile({ requireAccount: 'yes' }))).to.equal('config: requireAccount must be true or false (got "yes")');
    expect(await errorOf(withFile({ utf8Only: 1 }))).to.equal('config: utf8Only must be true or false (got 1)');
    expect(await errorOf(withFile({ forceNickEqualsAccount: 'no' }))).to.equal('config: forceNickEqualsAccount must be true or false (got "no")');
    expect(await errorOf(withFile({ listen: [{ host: '::', port: 70000 }] }))).to.equal('config: listen[0].port must be at most 65535 (got 70000)');
    expect(await errorOf(withFile({ serverPasswordHash: 'hunter2' }))).to.match(/^config: serverPasswordHash must be an argon2 hash/);
    expect(await errorOf(withFile({ serverName: 'nodots' }))).to.match(/^config: serverName must be a host name with at least one dot/);
    expect(await errorOf(withFile({ serverInfo: 'two\nlines' }))).to.match(/^config: serverInfo must be 1-100 printable characters/);
    expect(await errorOf(withFile({ motd: ['ok', 'bad\r\nQUIT'] }))).to.match(/^config: motd\[1\] must be a string without CR, LF or NUL/);
    expect(await errorOf(withFile({ limits: { exemptIps: ['10.0.0.0/33'] } }))).to.match(/^config: limits.exemptIps\[0\] must be an IP address or CIDR range/);
    expect(await errorOf(withFile([1, 2]))).to.match(/^config: \(top level\) must be an object/);
  });

  it('reports unreadable and malformed files', async () => {
    expect(await errorOf(loadConfig({ file: path.join(dir, 'nope.json') }))).to.match(/^config: cannot read .*nope\.json: no such file/);
    expect(await errorOf(withFile('{ "serverName": '))).to.match(/is not valid JSON/);
  });

  it('requires TLS certificate and key files to exist, naming the key', async () => {
    await writeFile(path.join(dir, 'cert.pem'), 'x');
    const msg = await errorOf(withFile({ listen: [{ host: '127.0.0.1', port: 6697, tls: { cert: 'cert.pem', key: 'key.pem' } }] }));
    expect(msg).to.equal(`config: listen[0].tls.key: cannot read ${path.join(dir, 'key.pem')}: no such file`);
    await writeFile(path.join(dir, 'key.pem'), 'x');
    const c = await withFile({ listen: [{ host: '127.0.0.1', port: 6697, tls: { cert: 'cert.pem', key: 'key.pem' } }] });
    expect(c.listen[0]!.tls).to.deep.equal({ cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') });
  });

  it('lets --listen replace plain listeners but keep TLS ones, and --data override dataDir', async () => {
    await writeFile(path.join(dir, 'c.pem'), 'x');
    const c = await withFile(
      { dataDir: '/elsewhere', listen: [{ host: '0.0.0.0', port: 6667 }, { host: '0.0.0.0', port: 6697, tls: { cert: 'c.pem', key: 'c.pem' } }] },
      { listen: ['[::1]:7000', 'localhost:0'], dataDir: 'mine' },
    );
    expect(c.listen.map((l) => `${l.host}:${l.port}:${Boolean(l.tls)}`)).to.deep.equal(['::1:7000:false', 'localhost:0:false', '0.0.0.0:6697:true']);
    expect(c.dataDir).to.equal(path.join(dir, 'mine'));
    expect(c.store).to.equal(`sqlite://${path.join(dir, 'mine', 'sealchat.sqlite')}`);
    expect(await errorOf(loadConfig({ cwd: dir, listen: ['6667'] }))).to.match(/^config: --listen: "6667" is not HOST:PORT/);
  });

  it('keeps the file\'s plain WebSocket listener when --listen names only IRC listeners, and replaces it with ws://HOST:PORT', async () => {
    const file = { listen: [{ host: '127.0.0.1', port: 6667 }, { host: '0.0.0.0', port: 8097, websocket: true, origins: ['https://chat.example.org'] }] };
    const kinds = (c: Awaited<ReturnType<typeof loadConfig>>): string[] => c.listen.map((l) => `${l.websocket ? 'ws' : 'irc'} ${l.host}:${l.port}`);
    const ircOnly = await withFile(file, { listen: ['127.0.0.1:0'] });
    expect(kinds(ircOnly)).to.deep.equal(['irc 127.0.0.1:0', 'ws 0.0.0.0:8097']);
    expect(ircOnly.listen[1]!.websocket).to.deep.equal({ origins: ['https://chat.example.org'], page: true });
    const wsOnly = await withFile(file, { listen: ['ws://127.0.0.1:0'] });
    expect(kinds(wsOnly)).to.deep.equal(['ws 127.0.0.1:0', 'irc 127.0.0.1:6667']);
    expect(wsOnly.listen[0]!.websocket).to.deep.equal({ origins: [], page: true });
    const both = await withFile(file, { listen: ['WS://[::1]:8000/', '[::1]:7000'] });
    expect(kinds(both)).to.deep.equal(['ws ::1:8000', 'irc ::1:7000']);
    expect(await errorOf(loadConfig({ cwd: dir, listen: ['ws://8097'] }))).to.match(/^config: --listen: "8097" is not HOST:PORT/);
  });

  it('matches exempt IPs, CIDR ranges and IPv4-mapped peers', () => {
    const exempt = makeIpMatcher(['127.0.0.1', '::1', '10.1.0.0/16']);
    expect(exempt('127.0.0.1')).to.equal(true);
    expect(exempt('::ffff:127.0.0.1')).to.equal(true);
    expect(exempt('::1')).to.equal(true);
    expect(exempt('10.1.200.3')).to.equal(true);
    expect(exempt('10.2.0.1')).to.equal(false);
    expect(exempt('garbage')).to.equal(false);
  });
});
