/**
 * The TLS listener with a self-signed certificate made at test time: a client that verifies the
 * certificate logs in; plain text on the TLS port is refused cleanly and the daemon keeps serving.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { startTestDaemon, type TestDaemon, type TestUser } from '../helpers/daemon.js';
import { useCrashGuard, figure, LineConn, waitUntil } from './harness.js';

describe('ircd TLS listener', function () {
  this.timeout(30_000);
  let dir: string;
  let cert: Buffer;
  let t: TestDaemon;
  let tlsPort: number;
  let alice: TestUser;
  useCrashGuard();

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-tls-'));
    const certFile = path.join(dir, 'cert.pem');
    const keyFile = path.join(dir, 'key.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost',
      '-keyout', keyFile, '-out', certFile,
    ], { stdio: 'ignore' });
    cert = readFileSync(certFile);
    t = await startTestDaemon({
      listen: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 0, tls: { cert: certFile, key: keyFile } }],
      limits: { registrationTimeoutMs: 1000 },
    });
    tlsPort = t.daemon.listeners.find((l) => l.tls)!.port;
    alice = await t.addUser('alice');
  });
  after(async () => {
    await t?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('lets a client that verifies the certificate (ca = the test certificate) connect and log in', async () => {
    const c = await LineConn.connectTls(tlsPort, { ca: cert });
    const s = c.socket as tls.TLSSocket;
    expect(s.authorized).to.equal(true);
    await c.login('alice', alice.password);
    await c.ping('over-tls');
    figure('TLS session', `${s.getProtocol()}, ${s.getCipher().name}`);
    c.close();
  });

  it('is refused by a client that does not trust the certificate (verification is really on)', async () => {
    let err: Error | undefined;
    try {
      const c = await LineConn.connectTls(tlsPort, { ca: [] as unknown as Buffer });
      c.close();
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.match(/self[- ]signed|unable to verify|certificate/i);
  });

  it('drops plain text sent to the TLS port at once, and keeps serving TLS and plain clients', async () => {
    const sessionsBefore = t.daemon.server.sessions.size;
    const plain = await LineConn.connect(tlsPort);
    plain.send('NICK alice', 'USER alice 0 * :x', 'PING :hello');
    const t0 = performance.now();
    await plain.waitClose(3000);
    figure('plain text on the TLS port: closed after', `${(performance.now() - t0).toFixed(0)} ms, ${plain.received} bytes answered`);
    expect(plain.lines).to.deep.equal([]);
    expect(t.daemon.server.sessions.size).to.equal(sessionsBefore);
    const c = await LineConn.connectTls(tlsPort, { ca: cert });
    await c.login('alice', alice.password);
    const p = await LineConn.connect(t.port);
    await p.ping('plain-still-works');
    c.close();
    p.close();
  });

  it('answers garbage from a TLS client like from any other client (417, not a crash)', async () => {
    const c = await LineConn.connectTls(tlsPort, { ca: cert });
    c.write(Buffer.concat([Buffer.from([0xff, 0x00, 0x0d]), Buffer.from('\r\n'), Buffer.alloc(9000, 0x41), Buffer.from('\r\n')]));
    await c.waitLine(/ 417 /);
    await c.ping('tls-after-garbage');
    c.close();
  });

  // FOUND (fixed): the daemon creates a session (and starts the registration clock and the clone/maxClients
  // counts) only on 'secureConnection'. A TCP connection to the TLS port that never completes the
  // handshake is held for tls.Server's default handshakeTimeout (120 s), uncounted, so it escapes
  // registrationTimeoutMs, clonesPerIp and maxClients: a cheap slowloris on the TLS port.
  it('closes connections that never finish the TLS handshake at the registration timeout', async () => {
    const stalled = await Promise.all(Array.from({ length: 20 }, () => LineConn.connect(tlsPort)));
    await waitUntil(() => stalled.every((c) => c.closed), 5000, 'stalled TLS handshakes to be closed');
  });
});
