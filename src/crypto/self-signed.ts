/**
 * A self-signed TLS certificate, made without openssl: `sealchatd serve` makes one on first start
 * so that a new server listens with TLS at once, and companions pin it on first use (as ssh pins a
 * host key). ECDSA P-256 with SHA-256, the key type every TLS stack and IRC client accepts.
 *
 * The certificate is X.509 v3 (RFC 5280) in DER, built here field by field:
 *   Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
 * with the extensions `openssl req -x509` puts on such a certificate (basicConstraints CA:TRUE, so
 * clients may use it as its own trust anchor; keyUsage; subjectAltName with the names clients
 * check the host against, RFC 6125). Node's node:crypto signs; nothing else is imported.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, X509Certificate } from 'node:crypto';

export interface SelfSignedOptions {
  /** DNS names for subjectAltName (the first is also the subject's CN). Default: ["localhost"]. */
  dnsNames?: string[];
  /** IP addresses for subjectAltName. Default: ["127.0.0.1", "::1"]. */
  ipAddresses?: string[];
  /** Validity in days from now (default 3650: the certificate is pinned, not checked against a CA). */
  days?: number;
  /** For tests: the time the certificate starts (default now). */
  now?: Date;
}

export interface SelfSignedCertificate {
  /** PEM of the certificate. */
  certPem: string;
  /** PEM (PKCS#8) of the private key: store it 0600. */
  keyPem: string;
  /** SHA-256 of the certificate's DER, lowercase hex without separators: what companions pin. */
  fingerprint256: string;
}

// ---- DER encoding (X.690 §8), only what a certificate needs ----------------------------------

function der(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, content]);
}
const seq = (...items: Buffer[]): Buffer => der(0x30, Buffer.concat(items));
const set = (...items: Buffer[]): Buffer => der(0x31, Buffer.concat(items));
const explicit = (n: number, inner: Buffer): Buffer => der(0xa0 | n, inner);
const octets = (b: Buffer): Buffer => der(0x04, b);
const bitString = (b: Buffer): Buffer => der(0x03, Buffer.concat([Buffer.from([0]), b]));
const utf8 = (s: string): Buffer => der(0x0c, Buffer.from(s, 'utf8'));
const bool = (v: boolean): Buffer => der(0x01, Buffer.from([v ? 0xff : 0]));

/** @internal A DER INTEGER of the unsigned big-endian `b`, minimal as X.690 §8.3.2 requires (tested on its own: serials are random). */
export function integer(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0 && b[i + 1]! < 0x80) i++;
  const body = b.subarray(i);
  // A leading 1 bit would make it negative (X.690 §8.3.3): prefix a zero byte.
  return der(0x02, body[0]! >= 0x80 ? Buffer.concat([Buffer.from([0]), body]) : body);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out: number[] = [parts[0]! * 40 + parts[1]!];
  for (const p of parts.slice(2)) {
    const bytes = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) bytes.unshift((v & 0x7f) | 0x80);
    out.push(...bytes);
  }
  return der(0x06, Buffer.from(out));
}

/** UTCTime before 2050, GeneralizedTime from 2050 on (RFC 5280 §4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'; // YYYYMMDDHHMMSSZ
  return d.getUTCFullYear() < 2050 ? der(0x17, Buffer.from(iso.slice(2), 'ascii')) : der(0x18, Buffer.from(iso, 'ascii'));
}

function ipBytes(ip: string): Buffer {
  if (ip.includes(':')) {
    const [head, tail] = ip.split('::') as [string, string | undefined];
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
    if (groups.length !== 8) throw new Error(`not an IPv6 address: ${ip}`);
    return Buffer.from(groups.flatMap((g) => [(parseInt(g, 16) >> 8) & 0xff, parseInt(g, 16) & 0xff]));
  }
  const o = ip.split('.').map(Number);
  if (o.length !== 4 || o.some((x) => !(x >= 0 && x <= 255))) throw new Error(`not an IPv4 address: ${ip}`);
  return Buffer.from(o);
}

const OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2';
const OID_CN = '2.5.4.3';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_KEY_USAGE = '2.5.29.15';
const OID_SUBJECT_ALT_NAME = '2.5.29.17';
const OID_EXT_KEY_USAGE = '2.5.29.37';
const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const OID_SUBJECT_KEY_ID = '2.5.29.14';

const extension = (id: string, critical: boolean, value: Buffer): Buffer =>
  critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));

/** Make a fresh key pair and a self-signed certificate for it. */
export function makeSelfSignedCertificate(opts: SelfSignedOptions = {}): SelfSignedCertificate {
  const dnsNames = opts.dnsNames ?? ['localhost'];
  const ipAddresses = opts.ipAddresses ?? ['127.0.0.1', '::1'];
  if (dnsNames.length === 0 && ipAddresses.length === 0) throw new Error('makeSelfSignedCertificate: give at least one DNS name or IP address');
  const days = opts.days ?? 3650;
  if (!(days >= 1 && days <= 36500)) throw new Error('makeSelfSignedCertificate: days must be between 1 and 36500');
  const now = opts.now ?? new Date();

  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const name = seq(set(seq(oid(OID_CN), utf8(dnsNames[0] ?? ipAddresses[0]!))));
  const algorithm = seq(oid(OID_ECDSA_SHA256));
  // Clock skew between server and clients: the certificate is valid from an hour ago.
  const notBefore = new Date(now.getTime() - 3600_000);
  const notAfter = new Date(now.getTime() + days * 86400_000);
  // keyUsage: digitalSignature (bit 0) and keyCertSign (bit 5): 0b10000100, 2 unused bits.
  const keyUsage = der(0x03, Buffer.from([0x02, 0x84]));
  const altNames = seq(...dnsNames.map((n) => der(0x82, Buffer.from(n, 'ascii'))), ...ipAddresses.map((ip) => der(0x87, ipBytes(ip))));
  // subjectKeyIdentifier: SHA-1 of the public key bits (RFC 5280 §4.2.1.2, method 1).
  const keyId = createHash('sha1').update(spki.subarray(spki.length - 65)).digest();
  const extensions = explicit(
    3,
    seq(
      extension(OID_BASIC_CONSTRAINTS, true, seq(bool(true))),
      extension(OID_KEY_USAGE, true, keyUsage),
      extension(OID_EXT_KEY_USAGE, false, seq(oid(OID_SERVER_AUTH))),
      extension(OID_SUBJECT_KEY_ID, false, octets(keyId)),
      extension(OID_SUBJECT_ALT_NAME, false, altNames),
    ),
  );
  const serial = randomBytes(16);
  serial[0]! &= 0x7f; // positive, at most 16 bytes (RFC 5280 §4.1.2.2)
  const tbs = seq(explicit(0, integer(Buffer.from([2]))), integer(serial), algorithm, name, seq(time(notBefore), time(notAfter)), name, spki, extensions);
  const signature = sign('sha256', tbs, { key: privateKey, dsaEncoding: 'der' });
  const certDer = seq(tbs, algorithm, bitString(signature));

  const b64 = certDer.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  const certPem = `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { certPem, keyPem, fingerprint256: certificateFingerprint(certPem) };
}

/** SHA-256 fingerprint of a PEM certificate's DER, lowercase hex without separators. */
export function certificateFingerprint(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256.replace(/:/g, '').toLowerCase();
}
