/**
 * Companions over TLS: the daemon's TLS listener with a certificate for "localhost" made at test
 * time (its own CA), `sealchat chat --tls` as a child process (SealClient underneath) and a
 * SealClient in this process. Trusted through NODE_EXTRA_CA_CERTS the certificate is accepted for
 * the name it was issued to. A certificate no CA vouches for (another name, or no CA) is pinned
 * on first use by the CLI, which says so (docs/COMPANIONS.md "TLS"; the pin itself is attacked in
 * test/cli/tls-pin.test.ts); the library without a pin store refuses it and names the problem.
 *
 * The trusted-CA case runs in a child process, where NODE_EXTRA_CA_CERTS applies.
 */
import { expect } from 'chai';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SealClient } from '../../src/client/client.js';
import { makeSelfSignedCertificate } from '../../src/crypto/self-signed.js';
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
    // A certificate for the name "localhost" only (no address), its own CA (src/crypto/self-signed.ts).
    const cert = makeSelfSignedCertificate({ dnsNames: ['localhost'], ipAddresses: [] });
    await writeFile(certFile, cert.certPem);
    await writeFile(keyFile, cert.keyPem, { mode: 0o600 });
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

  it('sealchat chat --tls pins on first use, and says so, a certificate no CA vouches for this address', async () => {
    await until(() => w.t.daemon.server.findClient('alice') === undefined || undefined, 'alice offline after the test above');
    // Same CA, same certificate, but an address it does not name: no CA vouches for it here.
    const p = chat(`127.0.0.1:${tlsPort}`, { NODE_EXTRA_CA_CERTS: certFile });
    await p.waitOut(new RegExp(`first connection to 127\\.0\\.0\\.1:${tlsPort} over TLS: its certificate \\(SHA-256 [0-9A-F:]{95}\\) is now pinned`));
    await p.waitOut(/connected to 127\.0\.0\.1:\d+ \(TLS\) as alice/);
  });

  it('sealchat chat --tls refuses a certificate other than the one --tls-fingerprint names, and says which', async () => {
    await until(() => w.t.daemon.server.findClient('alice') === undefined || undefined, 'alice offline after the test above');
    const p = CliProcess.start(
      ['chat', '--server', `localhost:${tlsPort}`, '--tls-fingerprint', '00'.repeat(32), '--user', 'alice', '--key', aliceKey, '--password-env', 'SC_PW', '--keybot-fingerprint', w.bot.fingerprint],
      { env: { SC_PW: w.users.alice!.password }, home: dir },
    );
    procs.push(p);
    expect(await p.exit()).to.equal(1);
    expect(p.stderr).to.match(/^sealchat: the TLS certificate of localhost:\d+ \(SHA-256 [0-9a-f]{64}\) is not the one --tls-fingerprint names/m);
    expect(p.stdout).to.not.match(/connected to/);
  });

  it('SealClient without a pin store refuses an untrusted certificate, names the problem, and does not log in', async () => {
    const c = new SealClient();
    c.on('error', () => undefined);
    const err = await c
      .connect({ host: 'localhost', port: tlsPort, tls: true, nick: 'alice', password: w.users.alice!.password, privateKeyArmored: w.users.alice!.privateKey, keybotFingerprint: w.bot.fingerprint, knownKeybotsFile: false, timeoutMs: 5000 })
      .then(() => undefined, (e: Error) => e);
    await c.quit().catch(() => undefined);
    expect(err?.message).to.match(/^self-signed certificate: the TLS certificate of localhost:\d+ cannot be verified and no fingerprint is pinned for it$/);
    expect((err as { code?: string } | undefined)?.code).to.equal('tls');
    expect(w.t.daemon.server.findClient('alice')).to.equal(undefined);
  });
});
