/**
 * `sealchatd serve` listens with TLS from the first start: a self-signed certificate in the data
 * dir (key 0600), a TLS listener beside the plain one, its fingerprint printed; the same
 * certificate on the next start; none added when --listen is given or the config names TLS.
 */
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import tls from 'node:tls';
import { tempDir } from '../helpers/companions.js';
import { spawnSealchatd, type SealchatdChild } from '../helpers/child.js';
import { until } from '../helpers/poll.js';

describe('src/cli/tls-default.ts (sealchatd serve)', function () {
  this.timeout(60_000);
  let dir: string;
  let remove: () => Promise<void>;
  const running: SealchatdChild[] = [];

  before(async () => ({ dir, remove } = await tempDir('sc-tlsdefault-')));
  afterEach(async () => {
    for (const d of running.splice(0)) {
      d.child.kill('SIGTERM');
      await d.exited;
    }
  });
  after(async () => remove?.());

  async function serve(args: string[]): Promise<SealchatdChild> {
    const d = spawnSealchatd(['serve', ...args]);
    running.push(d);
    await until(() => /keybot runs as a child process/.test(d.stdout()) || d.child.exitCode !== null, () => `serve to start; got ${d.stdout()} ${d.stderr()}`, 30_000);
    return d;
  }

  /** A TLS handshake trusting only `ca`; resolves with the server certificate's SHA-256 (hex) or the error code. */
  function handshake(port: number, ca: string): Promise<string> {
    return new Promise((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
        const fp = s.getPeerX509Certificate()!.fingerprint256.replace(/:/g, '').toLowerCase();
        s.end();
        resolve(fp);
      });
      s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
  }

  it('makes a certificate on first start, listens with TLS beside the plain listener, and keeps the certificate', async () => {
    const data = path.join(dir, 'data');
    const config = path.join(dir, 'sealchat.json');
    await writeFile(config, JSON.stringify({ dataDir: data, listen: [{ host: '127.0.0.1', port: 0 }] }));
    const first = await serve(['--config', config]);
    const out = first.stdout();
    expect(out).to.match(/listening on 127\.0\.0\.1:\d+\n/);
    const port = Number(/listening on 127\.0\.0\.1:(\d+) \(TLS\)/.exec(out)?.[1]);
    expect(port).to.be.greaterThan(0);
    const printed = /SHA-256 fingerprint ([0-9A-F:]{95})/.exec(out)?.[1];
    expect(out).to.match(/TLS certificate \(self-signed, made now\)/);
    const certPem = await readFile(path.join(data, 'tls', 'cert.pem'), 'utf8');
    const fp = new X509Certificate(certPem).fingerprint256;
    expect(printed).to.equal(fp);
    expect((await stat(path.join(data, 'tls', 'key.pem'))).mode & 0o777).to.equal(0o600);
    expect(await handshake(port, certPem)).to.equal(fp.replace(/:/g, '').toLowerCase());

    first.child.kill('SIGTERM');
    await first.exited;
    running.splice(0);
    const second = await serve(['--config', config]);
    expect(second.stdout()).to.match(/TLS certificate \(self-signed, made at the first start\)/);
    expect(/SHA-256 fingerprint ([0-9A-F:]{95})/.exec(second.stdout())?.[1]).to.equal(fp);
  });

  it('adds no TLS listener when --listen is given', async () => {
    const d = await serve(['--data', path.join(dir, 'data2'), '--listen', '127.0.0.1:0']);
    expect(d.stdout()).not.to.match(/\(TLS\)|TLS certificate/);
  });

  it('keeps a configured plain WebSocket listener under --listen, and takes one as --listen ws://HOST:PORT', async () => {
    const config = path.join(dir, 'ws.json');
    await writeFile(config, JSON.stringify({ dataDir: path.join(dir, 'data4'), listen: [{ host: '127.0.0.1', port: 6667 }, { host: '127.0.0.1', port: 0, websocket: true }] }));
    const kept = await serve(['--config', config, '--listen', '127.0.0.1:0']);
    expect(kept.stdout()).to.match(/listening on 127\.0\.0\.1:\d+ \(WebSocket: ws:\/\/127\.0\.0\.1:\d+\//);
    const given = await serve(['--data', path.join(dir, 'data5'), '--listen', '127.0.0.1:0', '--listen', 'ws://127.0.0.1:0']);
    expect(given.stdout()).to.match(/listening on 127\.0\.0\.1:\d+ \(WebSocket: ws:\/\/127\.0\.0\.1:\d+\//);
    expect(given.stdout().match(/^listening on /gm)).to.have.length(2);
  });

  it('warns about a plain listener other machines can reach', async () => {
    const config = path.join(dir, 'open.json');
    await writeFile(config, JSON.stringify({ dataDir: path.join(dir, 'data3'), listen: [{ host: '0.0.0.0', port: 0 }] }));
    const d = await serve(['--config', config]);
    expect(d.stdout()).to.match(/warning: 0\.0\.0\.0:\d+ is a plain listener other machines can reach: passwords cross it in clear/);
    expect(d.stdout()).to.match(/listening on 127\.0\.0\.1:\d+ \(TLS\)/);
  });
});
