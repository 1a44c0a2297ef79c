/**
 * Companions over TLS to a self-signed sealchatd (what `serve` makes by default): `sealchat chat
 * --tls` pins the certificate on first use and says so, connects again under the pin, and
 * refuses a server with another certificate (a man in the middle) before sending the password;
 * `--tls-fingerprint` pins it up front. The proxy judges its upstream the same way and never
 * forwards the client's PASS to a server that fails the pin.
 */
import { expect } from 'chai';
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { makeSelfSignedCertificate } from '../../src/crypto/self-signed.js';
import { CliProcess, startWorld, tempDir, type World } from '../helpers/companions.js';
import { until } from '../helpers/poll.js';

describe('sealchat chat and proxy over TLS: the server certificate pinned on first use', function () {
  this.timeout(60_000);
  const real = makeSelfSignedCertificate();
  const impostor = makeSelfSignedCertificate();
  let w: World;
  let dir: string;
  let remove: () => Promise<void>;
  let tlsPort: number;
  const procs: CliProcess[] = [];

  before(async () => {
    ({ dir, remove } = await tempDir('sc-tlspin-'));
    await writeFile(path.join(dir, 'cert.pem'), real.certPem);
    await writeFile(path.join(dir, 'key.pem'), real.keyPem, { mode: 0o600 });
    w = await startWorld(['alice'], {
      listen: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 0, tls: { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') } }],
    });
    tlsPort = w.t.daemon.listeners.find((l) => l.tls)!.port;
    await writeFile(path.join(dir, 'alice.key.asc'), w.users.alice!.privateKey, { mode: 0o600 });
  });
  afterEach(() => {
    for (const p of procs.splice(0)) p.kill();
  });
  after(async () => {
    await w?.stop();
    await remove?.();
  });

  function chat(port: number, extra: string[] = []): CliProcess {
    const p = CliProcess.start(
      ['chat', '--server', `127.0.0.1:${port}`, '--tls', '--user', 'alice', '--key', path.join(dir, 'alice.key.asc'), '--password-env', 'SC_PW', '--keybot-fingerprint', w.bot.fingerprint, ...extra],
      { env: { SC_PW: w.users.alice!.password }, home: dir },
    );
    procs.push(p);
    return p;
  }

  /** A TLS server with the impostor's certificate that records whatever a client writes to it. */
  async function impostorServer(): Promise<{ port: number; received: () => string; closed: Promise<void>; stop: () => void }> {
    let got = '';
    let closedOne: () => void = () => undefined;
    // Its end of a connection closes only after everything the client sent has been read.
    const closed = new Promise<void>((resolve) => (closedOne = resolve));
    const server = tls.createServer({ cert: impostor.certPem, key: impostor.keyPem }, (s) => {
      s.setEncoding('utf8');
      s.on('data', (d: string) => (got += d));
      s.on('error', () => undefined);
      s.on('close', () => closedOne());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { port: (server.address() as net.AddressInfo).port, received: () => got, closed, stop: () => server.close() };
  }

  it('pins on first use and says so, connects under the pin, and refuses another certificate without sending the password', async () => {
    const first = chat(tlsPort);
    const fpColons = real.fingerprint256.toUpperCase().replace(/(..)(?=.)/g, '$1:');
    await first.waitOut(new RegExp(`first connection to 127\\.0\\.0\\.1:${tlsPort} over TLS: its certificate \\(SHA-256 ${fpColons}\\) is now pinned`), 20_000);
    await first.waitOut(/connected to 127\.0\.0\.1:\d+ \(TLS\) as alice/, 20_000);
    const known = JSON.parse(await readFile(path.join(dir, 'known_servers.json'), 'utf8')) as Record<string, { fingerprint: string }>;
    expect(known[`127.0.0.1:${tlsPort}`]?.fingerprint).to.equal(real.fingerprint256);
    first.send('/quit');
    await first.exit();

    const again = chat(tlsPort);
    await again.waitOut(/connected to 127\.0\.0\.1:\d+ \(TLS\) as alice/, 20_000);
    expect(again.stdout).not.to.match(/first connection/);
    again.send('/quit');
    await again.exit();

    // Another server answers on a pinned address (same host:port entry, as a MITM would).
    const fake = await impostorServer();
    try {
      const entries = JSON.parse(await readFile(path.join(dir, 'known_servers.json'), 'utf8')) as Record<string, unknown>;
      entries[`127.0.0.1:${fake.port}`] = { fingerprint: real.fingerprint256, firstSeen: new Date().toISOString() };
      await writeFile(path.join(dir, 'known_servers.json'), JSON.stringify(entries), { mode: 0o600 });
      const refused = chat(fake.port);
      expect(await refused.exit(20_000)).to.equal(1);
      expect(refused.stderr).to.match(/is not the one pinned in .*known_servers\.json/);
      await fake.closed;
      expect(fake.received(), 'what the client wrote to the impostor').to.equal('');
    } finally {
      fake.stop();
    }
  });

  it('--tls-fingerprint pins up front: the right one connects, a wrong one is refused (exit 1)', async () => {
    const ok = chat(tlsPort, ['--tls-fingerprint', real.fingerprint256.toUpperCase().replace(/(..)(?=.)/g, '$1:')]);
    await ok.waitOut(/connected to 127\.0\.0\.1:\d+ \(TLS\) as alice/, 20_000);
    ok.send('/quit');
    await ok.exit();
    const bad = chat(tlsPort, ['--tls-fingerprint', impostor.fingerprint256]);
    expect(await bad.exit(20_000)).to.equal(1);
    expect(bad.stderr).to.match(/is not the one --tls-fingerprint names/);
    const junk = CliProcess.start(['chat', '--server', `127.0.0.1:${tlsPort}`, '--tls-fingerprint', 'abc', '--user', 'alice'], { home: dir });
    procs.push(junk);
    expect(await junk.exit()).to.equal(2);
    expect(junk.stderr).to.match(/--tls-fingerprint: "abc" is not a SHA-256 fingerprint/);
  });

  it('the proxy never forwards the PASS of its client to an upstream that fails the pin', async () => {
    const fake = await impostorServer();
    try {
      const p = CliProcess.start(
        ['proxy', '--server', `127.0.0.1:${fake.port}`, '--tls-fingerprint', real.fingerprint256, '--listen', '127.0.0.1:0', '--user', 'alice', '--key', path.join(dir, 'alice.key.asc'), '--keybot-fingerprint', w.bot.fingerprint],
        { home: dir },
      );
      procs.push(p);
      const port = Number((await p.waitOut(/listening on 127\.0\.0\.1:(\d+)/, 20_000))[1]);
      const c = net.connect({ host: '127.0.0.1', port });
      let down = '';
      c.setEncoding('utf8');
      c.on('data', (d: string) => (down += d));
      c.on('error', () => undefined);
      c.write(`PASS ${w.users.alice!.password}\r\nNICK alice\r\nUSER alice 0 * :alice\r\n`);
      await until(() => /ERROR :Closing link: .*not the one --tls-fingerprint names/.test(down) || null, () => `the proxy's ERROR; got ${down}`, 20_000);
      c.destroy();
      await fake.closed;
      expect(fake.received(), 'what the proxy wrote to the impostor').to.equal('');
    } finally {
      fake.stop();
    }
  });
});
