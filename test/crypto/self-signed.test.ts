import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { certificateFingerprint, integer, makeSelfSignedCertificate } from '../../src/crypto/self-signed.js';

/** Serve one TLS connection with `cert`; connect to it trusting `ca` as `servername`; say what happened. */
async function handshake(cert: { certPem: string; keyPem: string }, ca: string, servername: string): Promise<'ok' | string> {
  const server = tls.createServer({ cert: cert.certPem, key: cert.keyPem }, (s) => s.end('hello\n'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    return await new Promise<string>((resolve) => {
      const c = tls.connect({ host: '127.0.0.1', port, ca, servername }, () => {
        c.end();
        resolve('ok');
      });
      c.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
  } finally {
    server.close();
  }
}

describe('src/crypto/self-signed.ts', () => {
  const cert = makeSelfSignedCertificate();

  it('makes an X.509 v3 ECDSA P-256 certificate for localhost and the loopback addresses', () => {
    const x = new X509Certificate(cert.certPem);
    expect(x.subject).to.equal('CN=localhost');
    expect(x.issuer).to.equal('CN=localhost');
    expect(x.subjectAltName).to.equal('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(x.publicKey.asymmetricKeyDetails).to.deep.equal({ namedCurve: 'prime256v1' });
    expect(x.verify(x.publicKey), 'self-signature').to.equal(true);
    expect(x.checkHost('localhost')).to.equal('localhost');
    expect(x.checkIP('127.0.0.1')).to.equal('127.0.0.1');
    expect(x.checkHost('example.org')).to.equal(undefined);
    expect(new Date(x.validTo).getTime() - Date.now()).to.be.greaterThan(3649 * 86400_000);
  });

  it('gives the SHA-256 fingerprint of the DER as lowercase hex, and a new key and certificate each time', () => {
    expect(cert.fingerprint256).to.match(/^[0-9a-f]{64}$/);
    expect(cert.fingerprint256).to.equal(new X509Certificate(cert.certPem).fingerprint256.replace(/:/g, '').toLowerCase());
    expect(certificateFingerprint(cert.certPem)).to.equal(cert.fingerprint256);
    const other = makeSelfSignedCertificate();
    expect(other.fingerprint256).not.to.equal(cert.fingerprint256);
    expect(other.keyPem).not.to.equal(cert.keyPem);
  });

  it('is trusted by a TLS client that pins it, for the names it carries only', async () => {
    expect(await handshake(cert, cert.certPem, 'localhost')).to.equal('ok');
    expect(await handshake(cert, cert.certPem, 'irc.example.org')).to.equal('ERR_TLS_CERT_ALTNAME_INVALID');
    // A client that pinned another certificate refuses this one.
    expect(await handshake(cert, makeSelfSignedCertificate().certPem, 'localhost')).to.equal('DEPTH_ZERO_SELF_SIGNED_CERT');
  });

  it('takes other names and addresses, and a validity past 2049 (GeneralizedTime)', async () => {
    const c = makeSelfSignedCertificate({ dnsNames: ['irc.example.org', 'chat.example.org'], ipAddresses: ['192.0.2.7', '2001:db8::1'], days: 36500 });
    const x = new X509Certificate(c.certPem);
    expect(x.subject).to.equal('CN=irc.example.org');
    expect(x.subjectAltName).to.equal('DNS:irc.example.org, DNS:chat.example.org, IP Address:192.0.2.7, IP Address:2001:DB8:0:0:0:0:0:1');
    expect(new Date(x.validTo).getUTCFullYear()).to.be.greaterThan(2100);
    expect(await handshake(c, c.certPem, 'chat.example.org')).to.equal('ok');
  });

  it('encodes integers minimally: leading zeros dropped unless the next byte has its top bit set (X.690 §8.3.2)', () => {
    const hex = (...bytes: number[]) => integer(Buffer.from(bytes)).toString('hex');
    expect(hex(2)).to.equal('020102');
    expect(hex(0)).to.equal('020100');
    expect(hex(0, 0)).to.equal('020100');
    expect(hex(0, 0, 0x7f)).to.equal('02017f');
    expect(hex(0, 0x80)).to.equal('02020080');
    expect(hex(0, 0, 0x80, 1)).to.equal('0203008001');
    expect(hex(0x80)).to.equal('02020080');
    expect(hex(0x7f, 0)).to.equal('02027f00');
    expect(hex(0x12, 0, 0)).to.equal('0203120000');
  });

  it('writes lengths of 127, 128 and 256 bytes in the short and long forms, as a CN and a name of that size show', () => {
    for (const n of [60, 127, 128, 129, 255, 256]) {
      const name = 'a'.repeat(n);
      const x = new X509Certificate(makeSelfSignedCertificate({ dnsNames: [name], ipAddresses: [] }).certPem);
      expect(x.subject, `${n}`).to.equal(`CN=${name}`);
      expect(x.subjectAltName, `${n}`).to.equal(`DNS:${name}`);
    }
  });

  it('writes times up to 2049 as UTCTime and from 2050 as GeneralizedTime, both read back to the second', () => {
    for (const end of ['2049-12-31T23:59:59Z', '2050-01-01T00:00:00Z']) {
      const now = new Date('2040-01-01T00:00:00Z');
      const days = (Date.parse(end) - now.getTime()) / 86400_000;
      const x = new X509Certificate(makeSelfSignedCertificate({ now, days }).certPem);
      expect(new Date(x.validTo).toISOString(), end).to.equal(new Date(end).toISOString());
      expect(new Date(x.validFrom).toISOString()).to.equal('2039-12-31T23:00:00.000Z');
    }
  });

  it('writes IPv6 addresses with :: anywhere, and names the address it cannot read', () => {
    const c = makeSelfSignedCertificate({ dnsNames: [], ipAddresses: ['::', '::1', 'fe80::', '1::8', '1:2:3:4:5:6:7:8', '10.0.0.255'] });
    const x = new X509Certificate(c.certPem);
    expect(x.subject).to.equal('CN=::');
    expect(x.subjectAltName).to.equal(
      ['0:0:0:0:0:0:0:0', '0:0:0:0:0:0:0:1', 'FE80:0:0:0:0:0:0:0', '1:0:0:0:0:0:0:8', '1:2:3:4:5:6:7:8', '10.0.0.255'].map((a) => `IP Address:${a}`).join(', '),
    );
    for (const bad of ['1:2:3', '1:2:3:4:5:6:7:8:9']) {
      expect(() => makeSelfSignedCertificate({ ipAddresses: [bad] })).to.throw(Error, `not an IPv6 address: ${bad}`);
    }
    for (const bad of ['1.2.3', '1.2.3.4.5', '1.2.3.-1', '1.2.3.x']) {
      expect(() => makeSelfSignedCertificate({ ipAddresses: [bad] })).to.throw(Error, `not an IPv4 address: ${bad}`);
    }
  });

  it('is read by openssl as the certificate it says it is', async function () {
    if (spawnSync('openssl', ['version']).status !== 0) this.skip();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'sc-x509-'));
    try {
      const file = path.join(dir, 'cert.pem');
      await writeFile(file, cert.certPem);
      const verify = spawnSync('openssl', ['verify', '-CAfile', file, file], { encoding: 'utf8' });
      expect(verify.stdout.trim()).to.equal(`${file}: OK`);
      const text = spawnSync('openssl', ['x509', '-in', file, '-noout', '-text'], { encoding: 'utf8' }).stdout;
      expect(text).to.match(/CA:TRUE/).and.to.match(/TLS Web Server Authentication/).and.to.match(/Digital Signature, Certificate Sign/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses options that cannot make a certificate', () => {
    expect(() => makeSelfSignedCertificate({ dnsNames: [], ipAddresses: [] })).to.throw(/at least one/);
    expect(() => makeSelfSignedCertificate({ days: 0 })).to.throw(/days/);
    expect(() => makeSelfSignedCertificate({ days: 36501 })).to.throw('makeSelfSignedCertificate: days must be between 1 and 36500');
    expect(() => makeSelfSignedCertificate({ days: NaN })).to.throw('makeSelfSignedCertificate: days must be between 1 and 36500');
    expect(() => makeSelfSignedCertificate({ dnsNames: [], ipAddresses: [] })).to.throw('makeSelfSignedCertificate: give at least one DNS name or IP address');
    expect(() => makeSelfSignedCertificate({ ipAddresses: ['300.1.1.1'] })).to.throw(/IPv4/);
  });
});
