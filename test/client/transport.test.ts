/**
 * The companion's socket: a TLS server's certificate is judged (configured fingerprint, pinned on
 * first use, a CA) before anything is written, so a refused server never sees the password.
 */
import { expect } from 'chai';
import IRC from 'irc-framework';
import { readFile, stat, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { makeSelfSignedCertificate, type SelfSignedCertificate } from '../../src/crypto/self-signed.js';
import { KnownServers, decideServerTrust, type ServerTrustDecision } from '../../src/client/server-trust.js';
import { SealTransport, ServerCertificateError, type TransportOptions } from '../../src/client/transport.js';
import { tempDir } from '../helpers/companions.js';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';

/** A TLS server that greets with one line and records every byte a client writes. */
async function greeter(cert: SelfSignedCertificate): Promise<{ port: number; received: () => string; closed: () => Promise<void>; close: () => void }> {
  let got = '';
  let closedOne: () => void = () => undefined;
  const closed = new Promise<void>((resolve) => (closedOne = resolve));
  const server = tls.createServer({ cert: cert.certPem, key: cert.keyPem }, (s) => {
    s.setEncoding('utf8');
    s.on('data', (d: string) => (got += d));
    s.on('error', () => undefined);
    // The server's end of the connection closes only after every byte the client sent was read.
    s.on('close', () => closedOne());
    s.write(':srv NOTICE * :hello\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, received: () => got, closed: () => closed, close: () => server.close() };
}

/** Open a SealTransport; resolve with what happened: the first line and the decision, or the close error. */
function open(o: TransportOptions): Promise<{ line?: string; error?: Error; decision?: ServerTrustDecision; transport: SealTransport }> {
  let decision: ServerTrustDecision | undefined;
  const t = new SealTransport({ ...o, sealTls: { ...o.sealTls, onDecision: (d) => (decision = d) } });
  return new Promise((resolve) => {
    t.on('line', (line: string) => {
      t.writeLine('PING :after-open');
      resolve({ line, decision, transport: t });
    });
    t.on('close', (err: Error | false) => resolve({ error: err || undefined, decision, transport: t }));
    t.connect();
  });
}

describe('src/client/transport.ts and server-trust.ts', function () {
  this.timeout(20_000);
  let dir: string;
  let remove: () => Promise<void>;
  const certA = makeSelfSignedCertificate();
  const certB = makeSelfSignedCertificate();

  before(async () => ({ dir, remove } = await tempDir('sc-transport-')));
  after(async () => remove?.());

  it('pins a self-signed server on first use (0600 file) and accepts it again, then refuses another certificate before writing a byte', async () => {
    const known = new KnownServers(path.join(dir, 'known_servers.json'));
    const a = await greeter(certA);
    try {
      const first = await open({ host: '127.0.0.1', port: a.port, tls: true, sealTls: { knownServers: known } });
      expect(first.line).to.equal(':srv NOTICE * :hello\r\n');
      expect(first.decision).to.deep.equal({ status: 'first-use', fingerprint: certA.fingerprint256 });
      expect((await known.get(`127.0.0.1:${a.port}`))?.fingerprint).to.equal(certA.fingerprint256);
      expect((await stat(known.file)).mode & 0o777).to.equal(0o600);
      first.transport.close(true);
      const again = await open({ host: '127.0.0.1', port: a.port, tls: true, sealTls: { knownServers: known } });
      expect(again.decision).to.deep.equal({ status: 'trusted', source: 'known' });
      again.transport.close(true);
    } finally {
      a.close();
    }
    // Another server (another key) on a pinned host:port: a man in the middle, or a new certificate.
    const known2 = new KnownServers(path.join(dir, 'known_servers2.json'));
    const b = await greeter(certB);
    try {
      await known2.set(`127.0.0.1:${b.port}`, { fingerprint: certA.fingerprint256, firstSeen: new Date().toISOString() });
      const r = await open({ host: '127.0.0.1', port: b.port, tls: true, sealTls: { knownServers: known2 } });
      expect(r.line, 'no line from a refused server reaches IRC').to.equal(undefined);
      expect(r.error).to.be.instanceOf(ServerCertificateError);
      expect(r.error!.message).to.match(/is not the one pinned in .*known_servers2\.json/);
      await b.closed();
      expect(b.received(), 'bytes the client wrote to the refused server').to.equal('');
      expect((await known2.get(`127.0.0.1:${b.port}`))?.fingerprint, 'the pin is not replaced').to.equal(certA.fingerprint256);
    } finally {
      b.close();
    }
  });

  it('takes a configured fingerprint in any usual spelling, and refuses any other certificate with it', async () => {
    const a = await greeter(certA);
    try {
      const colon = certA.fingerprint256.toUpperCase().replace(/(..)(?=.)/g, '$1:');
      const ok = await open({ host: '127.0.0.1', port: a.port, tls: true, sealTls: { fingerprint: colon } });
      expect(ok.decision).to.deep.equal({ status: 'trusted', source: 'configured' });
      ok.transport.close(true);
      const bad = await open({ host: '127.0.0.1', port: a.port, tls: true, sealTls: { fingerprint: certB.fingerprint256 } });
      expect(bad.error!.message).to.match(/is not the one --tls-fingerprint names/);
      expect(a.received()).not.to.match(/after-open[\s\S]*after-open/);
    } finally {
      a.close();
    }
  });

  it('decides a CA-vouched certificate trusted unless a pin says otherwise', () => {
    const presented = { fingerprint: certA.fingerprint256, authorized: true };
    expect(decideServerTrust({ presented })).to.deep.equal({ status: 'trusted', source: 'ca' });
    expect(decideServerTrust({ presented, known: { fingerprint: certB.fingerprint256, firstSeen: '' } }).status).to.equal('mismatch');
    expect(decideServerTrust({ presented: { ...presented, authorized: false }, insecure: true })).to.deep.equal({ status: 'trusted', source: 'insecure' });
    expect(() => decideServerTrust({ presented, configured: 'abcd' })).to.throw(/SHA-256/);
  });

  describe('under irc-framework, against the real daemon', () => {
    let t: TestDaemon;
    let tlsPort: number;
    before(async () => {
      const certFile = path.join(dir, 'cert.pem');
      const keyFile = path.join(dir, 'key.pem');
      await writeFile(certFile, certA.certPem);
      await writeFile(keyFile, certA.keyPem, { mode: 0o600 });
      t = await startTestDaemon({ listen: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 0, tls: { cert: certFile, key: keyFile } }] });
      tlsPort = t.daemon.listeners.find((l) => l.tls)!.port;
      await t.addUser('tina');
    });
    after(async () => t?.stop());

    function register(fingerprint: string): Promise<string> {
      const client = new IRC.Client();
      return new Promise((resolve) => {
        client.on('registered', () => {
          client.quit();
          resolve('registered');
        });
        client.on('socket close', (err: Error | undefined) => resolve(err ? err.message : 'closed'));
        client.connect({
          host: '127.0.0.1',
          port: tlsPort,
          tls: true,
          nick: 'tina',
          password: 'pw-tina-secret',
          auto_reconnect: false,
          transport: SealTransport,
          sealTls: { fingerprint },
        } as never);
      });
    }

    it('registers over TLS with the pinned certificate, and does not log in to a server with another', async () => {
      expect(await register(certA.fingerprint256)).to.equal('registered');
      expect(await register(certB.fingerprint256)).to.match(/not the one --tls-fingerprint names/);
      expect(await readFile(path.join(dir, 'cert.pem'), 'utf8')).to.equal(certA.certPem);
    });
  });
});
