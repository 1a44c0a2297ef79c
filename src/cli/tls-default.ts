/**
 * TLS by default for `sealchatd serve`: a server whose configuration names no TLS listener gets
 * one on 127.0.0.1:6697 with a self-signed certificate made on first start in
 * `<dataDir>/tls/` (key 0600), beside its plain listeners, and prints the certificate's
 * fingerprint so companions can pin it (docs/OPERATIONS.md "TLS"). Passwords then need not cross
 * even the loopback interface in clear, and an operator who opens the server to the network has a
 * TLS listener to point people at from the first minute.
 *
 * Not when `--listen` is given on the command line (the caller chose its listeners), and never
 * over a TLS listener the configuration names. The port follows the plain listeners' mode: 6697,
 * or any free port when they use port 0 (tests, several daemons on one machine).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { certificateFingerprint, makeSelfSignedCertificate } from '../crypto/self-signed.js';
import type { Config } from '../ircd/config.js';

export const DEFAULT_TLS_PORT = 6697;
export const TLS_DIR = 'tls';

export interface DefaultTls {
  certFile: string;
  keyFile: string;
  /** SHA-256 of the certificate, lowercase hex. */
  fingerprint: string;
  /** Made now (first start) rather than found. */
  created: boolean;
}

/**
 * Add the default TLS listener to `config` (in place) when it applies; returns what it used, or
 * undefined when the configuration takes care of TLS itself (or `--listen` was given).
 */
export async function addDefaultTlsListener(config: Config, opts: { listenGiven: boolean }): Promise<DefaultTls | undefined> {
  if (opts.listenGiven || config.listen.some((l) => l.tls)) return undefined;
  const dir = path.join(config.dataDir, TLS_DIR);
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  let created = false;
  let certPem = await readFile(certFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (certPem === undefined) {
    const made = makeSelfSignedCertificate();
    // Key first, each written whole and renamed into place: a crash leaves no certificate
    // without its key, and the next start makes a new pair.
    await writeAtomic(keyFile, made.keyPem, 0o600);
    await writeAtomic(certFile, made.certPem, 0o644);
    certPem = made.certPem;
    created = true;
  }
  const fingerprint = certificateFingerprint(certPem);
  const plainOnAnyPort = config.listen.some((l) => !l.tls && l.port === 0);
  config.listen.push({ host: '127.0.0.1', port: plainOnAnyPort ? 0 : DEFAULT_TLS_PORT, tls: { cert: certFile, key: keyFile } });
  return { certFile, keyFile, fingerprint, created };
}

async function writeAtomic(file: string, text: string, mode: number): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, text, { mode, flag: 'w' });
  await rename(tmp, file);
}

/** AB:CD:… as TLS tools print certificate fingerprints. */
export function colonHex(hex: string): string {
  return hex.toUpperCase().replace(/(..)(?=.)/g, '$1:');
}
