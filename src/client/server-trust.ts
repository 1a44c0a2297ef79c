/**
 * Which TLS certificate a companion accepts from the server, decided before a single byte (the
 * account password first of all) is written to the connection (docs/COMPANIONS.md "TLS").
 *
 * Order, as for keybot's key (known-keybots.ts) and as ssh does for host keys:
 *  1. a fingerprint the user gave (`--tls-fingerprint`) must match, whatever CA signed it;
 *  2. else the fingerprint remembered for this `host:port` must match (a pin outranks a CA: a
 *     certificate mis-issued for the name does not get past it);
 *  3. else a certificate a public CA vouches for, for this host name, is accepted as is (and not
 *     remembered: it may be renewed at any time);
 *  4. else (first use of a self-signed server, as `sealchatd serve` makes one) the certificate is
 *     accepted, remembered (`known_servers.json`, 0600) and reported, so the user can compare it
 *     with the fingerprint the administrator gives.
 * A mismatch is never adopted: the user must check it and edit the file or pass the new
 * fingerprint. `--insecure` (tests only) skips all of it.
 */
import path from 'node:path';
import { normalizeFingerprint } from '../protocol/fingerprint.js';
import { PinFile, sealchatHome } from './core/known-keybots.js';

/**
 * `known_servers.json` beside the known-keybots file (its folder; ~/.sealchat by default), or
 * false when the caller keeps no files (`knownKeybotsFile: false`).
 */
export function knownServersFileFor(knownKeybotsFile: string | false | undefined): string | false {
  if (knownKeybotsFile === false) return false;
  return path.join(path.dirname(knownKeybotsFile ?? path.join(sealchatHome(), 'known_keybots.json')), 'known_servers.json');
}

/** One remembered server certificate. */
export interface KnownServer {
  /** SHA-256 of the certificate (DER), lowercase hex. */
  fingerprint: string;
  /** ISO time of first use. */
  firstSeen: string;
}

/** The known-servers file: `{ "<host>:<port>": KnownServer, ... }`, mode 0600 (SHA-256 pins only). */
export class KnownServers extends PinFile<KnownServer> {
  constructor(file: string) {
    super(file, [64]);
  }
}

/** What the TLS handshake showed. */
export interface PresentedCertificate {
  /** SHA-256 of the certificate (DER), lowercase hex. */
  fingerprint: string;
  /** A CA the system trusts vouches for it, for the host name connected to. */
  authorized: boolean;
  /** Why not, when not (e.g. DEPTH_ZERO_SELF_SIGNED_CERT, ERR_TLS_CERT_ALTNAME_INVALID). */
  authorizationError?: string;
}

/** The outcome of {@link decideServerTrust}. */
export type ServerTrustDecision =
  | { status: 'trusted'; source: 'configured' | 'ca' | 'known' | 'insecure' }
  /** Accepted on first use; the caller remembers it and tells the user. */
  | { status: 'first-use'; fingerprint: string }
  | { status: 'mismatch'; expected: string; got: string; source: 'configured' | 'known' };

/** Decide about a server certificate; pure (the caller reads and writes known_servers.json). */
export function decideServerTrust(options: {
  presented: PresentedCertificate;
  /** `--tls-fingerprint`, in any usual spelling. */
  configured?: string;
  known?: KnownServer;
  insecure?: boolean;
}): ServerTrustDecision {
  const got = options.presented.fingerprint;
  if (options.configured !== undefined) {
    const expected = normalizeFingerprint(options.configured);
    if (!expected || expected.length !== 64) throw new TypeError('decideServerTrust: the configured fingerprint is not a SHA-256 fingerprint');
    return expected === got ? { status: 'trusted', source: 'configured' } : { status: 'mismatch', expected, got, source: 'configured' };
  }
  if (options.insecure) return { status: 'trusted', source: 'insecure' };
  if (options.known) {
    return options.known.fingerprint === got ? { status: 'trusted', source: 'known' } : { status: 'mismatch', expected: options.known.fingerprint, got, source: 'known' };
  }
  if (options.presented.authorized) return { status: 'trusted', source: 'ca' };
  return { status: 'first-use', fingerprint: got };
}
