/**
 * Companions over TLS: the daemon's TLS listener with a certificate for "localhost" made at test
 * time (its own CA), `sealchat chat --tls` as a child process (SealClient underneath) and a
 * SealClient in this process. Trusted through NODE_EXTRA_CA_CERTS the certificate is accepted for
 * the name it was issued to; for an address it does not name, or without the CA, it is refused.
 *
 * SealClient has no option to trust a CA of its own (irc-framework passes no `ca` to
 * tls.connect), so the trusted cases run in a child process, where NODE_EXTRA_CA_CERTS applies.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SealClient } from '../../src/client/client.js';
import { CliProcess, startWorld, tempDir, until, type World } from '../helpers/companions.js';

describe('e2e: companions over TLS', function () {
  this.timeout(40_000);
  let w: World;
  let dir: string;
  let remove: () => Promise<void>;
  let certFile: string;
  let tlsPort: number;
  let aliceKey: string;
  const procs: CliProcess[] = [];

  before(async () => {
    ({ dir, remove } = await tempDir('sc-tls-'));
    certFile = path.join(dir, 'cert.pem');
    const keyFile = path.join(dir, 'key.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost',
      '-keyout', keyFile, '-out', certFile,
    ], { stdio: 'ignore' });
    w = await startWorld(['alice'], {
      listen: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 0, tls: { cert: certFile, key: keyFile } }],
    });
    tlsPort = w.t.daemon.listeners.find((l) => l.tls)!.port;
    aliceKey = path.join(dir, 'alice.key.asc');
    await writeFile(aliceKey, w.users.alice!.privateKey, { mode: 0o600 });
  });
  afterEach(() => {
    for (const p of procs.splice(0)) p.kill();
  });
  after(async () => {
    await w?.stop();
    await remove?.();
  });

  function chat(server: string, env: Record<string, string>): CliProcess {
    const args = ['chat', '--tls', '--server', server, '--user', 'alice', '--key', aliceKey, '--password-env', 'SC_PW', '--keybot-fingerprint', w.bot.fingerprint];
    const p = CliProcess.start(args, { env: { SC_PW: w.users.alice!.password, ...env }, home: dir });
    procs.push(p);
    return p;
  }

  it('sealchat chat --tls logs in to a server whose certificate a trusted CA issued for its name', async () => {
    const p = chat(`localhost:${tlsPort}`, { NODE_EXTRA_CA_CERTS: certFile });
    await p.waitOut(new RegExp(`connected to localhost:${tlsPort} \\(TLS\\) as alice`));
    await p.waitOut(/keybot's key [0-9A-F ]+ is pinned/);
    // The daemon sees alice's session on its TLS listener.
    expect(w.t.daemon.server.findClient('alice')).to.not.equal(undefined);
  });

  it('sealchat chat --tls refuses the same trusted certificate for an address it does not name', async () => {
    await until(() => w.t.daemon.server.findClient('alice') === undefined || undefined, 'alice offline after the test above');
    const p = chat(`127.0.0.1:${tlsPort}`, { NODE_EXTRA_CA_CERTS: certFile });
    const code = await p.exit();
    expect(code).to.not.equal(0);
    // Only the address differs from the test above (same CA, same certificate): the name check refused it.
    expect(p.stderr).to.match(/^sealchat: cannot log in to 127\.0\.0\.1:\d+: /m);
    expect(p.stdout).to.not.match(/connected to/);
  });

  it('sealchat chat --tls refuses a certificate no trusted CA issued', async () => {
    const p = chat(`localhost:${tlsPort}`, {});
    const code = await p.exit();
    expect(code).to.not.equal(0);
    expect(p.stderr).to.match(/^sealchat: cannot log in to localhost:\d+: /m);
    expect(p.stdout).to.not.match(/connected to/);
  });

  it('SealClient refuses an untrusted certificate, and does not log in', async () => {
    const c = new SealClient();
    c.on('error', () => undefined);
    const err = await c
      .connect({ host: 'localhost', port: tlsPort, tls: true, nick: 'alice', password: w.users.alice!.password, privateKeyArmored: w.users.alice!.privateKey, keybotFingerprint: w.bot.fingerprint, knownKeybotsFile: false, timeoutMs: 5000 })
      .then(() => undefined, (e: Error) => e);
    await c.quit().catch(() => undefined);
    expect(err?.message).to.match(/^the connection to localhost:\d+ closed during login$/);
    expect(w.t.daemon.server.findClient('alice')).to.equal(undefined);
  });

  // BUG: a refused certificate reaches the user as "the connection ... closed during login": the
  // TLS error (self-signed, hostname mismatch) is lost between irc-framework's 'socket error' and
  // SealClient.connect's rejection, so the user cannot tell a certificate problem from a crash.
  it.skip('names the certificate problem when it refuses one', async () => {
    const p = chat(`127.0.0.1:${tlsPort}`, { NODE_EXTRA_CA_CERTS: certFile });
    await p.exit();
    expect(p.stderr).to.match(/IP: 127\.0\.0\.1 is not in the cert's list|certificate/i);
  });
});
