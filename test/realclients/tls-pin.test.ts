/**
 * The README's TLS steps with the real clients: `sealchatd serve` makes its self-signed
 * certificate and prints the fingerprint; irssi (`-tls_pinned_cert`) and WeeChat
 * (`-tls_fingerprint`, `-ssl_fingerprint` before WeeChat 4) connect with that pin and refuse a
 * connection whose certificate does not match it.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { spawnSealchatd, type SealchatdChild } from '../helpers/child.js';
import { tempDir } from '../helpers/companions.js';
import { until } from '../helpers/poll.js';
import { haveIrssi, haveWeechat, startIrssi, startWeechat, type RealClient } from '../helpers/realclients.js';

describe('README TLS pinning with real irssi and WeeChat (sealchatd serve, self-signed by default)', function () {
  this.timeout(60_000);
  let serve: SealchatdChild;
  let remove: () => Promise<void>;
  let port: number;
  let fingerprint: string; // AB:CD:… as sealchatd prints it
  const wrong = (fp: string): string => (fp.startsWith('00') ? 'FF' : '00') + fp.slice(2);
  let client: RealClient | undefined;

  before(async function () {
    if (!(await haveIrssi()) && !(await haveWeechat())) this.skip();
    let dir: string;
    ({ dir, remove } = await tempDir('sc-tlspin-'));
    const config = path.join(dir, 'sealchat.json');
    await writeFile(config, JSON.stringify({ dataDir: path.join(dir, 'data'), requireAccount: false, listen: [{ host: '127.0.0.1', port: 0 }] }));
    serve = spawnSealchatd(['serve', '--config', config]);
    await until(() => /keybot runs as a child process/.test(serve.stdout()) || serve.child.exitCode !== null, () => `serve: ${serve.stdout()} ${serve.stderr()}`, 30_000);
    port = Number(/listening on 127\.0\.0\.1:(\d+) \(TLS\)/.exec(serve.stdout())![1]);
    fingerprint = /SHA-256 fingerprint ([0-9A-F:]{95})/.exec(serve.stdout())![1]!;
  });
  afterEach(async () => {
    await client?.stop();
    client = undefined;
  });
  after(async () => {
    serve?.child.kill('SIGTERM');
    await serve?.exited;
    await remove?.();
  });

  it('irssi connects with the pinned fingerprint and refuses another', async function () {
    if (!(await haveIrssi())) this.skip();
    client = await startIrssi({ port, nick: 'tlsirssi' });
    await client.send(`/connect -tls -tls_pinned_cert ${wrong(fingerprint)} 127.0.0.1 ${port}`);
    await client.waitForText(/Pinned certificate mismatch/);
    await client.send(`/connect -tls -tls_pinned_cert ${fingerprint} 127.0.0.1 ${port}`);
    await client.waitForText(/End of \/MOTD command/);
  });

  it('WeeChat connects with the pinned fingerprint and refuses another', async function () {
    if (!(await haveWeechat())) this.skip();
    const version = await promisify(execFile)('weechat', ['--version']).then((r) => r.stdout, () => '3');
    const tls = Number(version.split('.')[0]) >= 4 ? 'tls' : 'ssl';
    const hex = (fp: string): string => fp.replace(/:/g, '').toLowerCase();
    client = await startWeechat({ port, nick: 'tlsweechat' });
    await client.send(`/server add bad 127.0.0.1/${port} -${tls} -${tls}_fingerprint=${hex(wrong(fingerprint))} -nicks=tlsweechat -autoreconnect=off`);
    await client.send('/connect bad');
    await client.waitForText(/fingerprint does NOT match/);
    await client.send(`/server add good 127.0.0.1/${port} -${tls} -${tls}_fingerprint=${hex(fingerprint)} -nicks=tlsweechat2 -autoreconnect=off`);
    await client.send('/connect good');
    await client.waitForText(/End of \/MOTD command/);
    expect(fingerprint).to.match(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  });
});
