/**
 * The socket under a companion's IRC connection (irc-framework's `transport` option): plain TCP,
 * or TLS whose certificate is judged by server-trust.ts before irc-framework sees the connection
 * open, so nothing (the account password first of all) is written to a server that failed it.
 * irc-framework's own TLS transport can only trust the system's CAs or nothing.
 *
 * The interface is irc-framework's transport contract: `connect()`, `writeLine(line, cb)`,
 * `isConnected()`, `close(force)`, `disposeSocket()`, `setEncoding()`; events `open`, `line`
 * (one line with its line ending), `close` (with the error, if any), `debug`.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { decideServerTrust, KnownServers, type ServerTrustDecision } from './server-trust.js';

/** How a TLS connection trusts the server (passed as the irc-framework client option `sealTls`). */
export interface SealTlsOptions {
  /** `--tls-fingerprint`: the SHA-256 the certificate must have. */
  fingerprint?: string;
  /** Where first-use pins are kept; undefined: no trust on first use (a certificate no CA vouches for needs `fingerprint`). */
  knownServers?: KnownServers;
  /** Skip every check (tests only). */
  insecure?: boolean;
  /** Told of every decision: first use (remembered), refusals, which source vouched. */
  onDecision?(decision: ServerTrustDecision, server: string): void;
}

/** How a companion's options say which TLS certificate to accept (SealClient's login, the proxy's upstream). */
export interface TlsTrustOptions {
  /** The SHA-256 the server's TLS certificate must have (`--tls-fingerprint`; any usual spelling). */
  tlsFingerprint?: string;
  /** Where a self-signed server's certificate is pinned on first use (server-trust.ts). */
  knownServers?: KnownServers;
  /** Told how the server's certificate was judged (first use: tell the user). */
  onServerCertificate?(decision: ServerTrustDecision, server: string): void;
}

/** The irc-framework client options this transport reads. */
export interface TransportOptions {
  host: string;
  port: number;
  tls?: boolean;
  sealTls?: SealTlsOptions;
}

/** Thrown (as the close reason) when the server's certificate is refused. */
export class ServerCertificateError extends Error {
  override name = 'ServerCertificateError';
  constructor(
    message: string,
    readonly decision: ServerTrustDecision,
  ) {
    super(message);
  }
}

/**
 * Judge the certificate of a TLS connection that has just completed its handshake (call it from
 * 'secureConnect', before writing anything): resolves if it may be used, throws a
 * ServerCertificateError if not. A first-use pin is written to `knownServers` before resolving.
 */
export async function judgeServerCertificate(s: tls.TLSSocket, server: string, t: SealTlsOptions): Promise<ServerTrustDecision> {
  const cert = s.getPeerX509Certificate();
  if (!cert) throw new ServerCertificateError(`${server} presented no certificate`, { status: 'mismatch', expected: '', got: '', source: 'known' });
  const fingerprint = cert.fingerprint256.replace(/:/g, '').toLowerCase();
  const known = t.knownServers ? await t.knownServers.get(server) : undefined;
  const decision = decideServerTrust({
    presented: { fingerprint, authorized: s.authorized, authorizationError: s.authorizationError ? String(s.authorizationError) : undefined },
    configured: t.fingerprint,
    known,
    insecure: t.insecure,
  });
  t.onDecision?.(decision, server);
  if (decision.status === 'mismatch') {
    throw new ServerCertificateError(
      `the TLS certificate of ${server} (SHA-256 ${decision.got}) is not the ${decision.source === 'configured' ? 'one --tls-fingerprint names' : 'one pinned in ' + (t.knownServers?.file ?? 'known servers')} (${decision.expected}); not connecting`,
      decision,
    );
  }
  if (decision.status === 'first-use') {
    // Trust on first use only where the pin is kept: without a store there is no "next time" to
    // hold the server to, and the library's callers get the strict default.
    if (!t.knownServers) {
      const code = s.authorizationError ? String(s.authorizationError) : 'unverified';
      const why = /SELF_SIGNED/.test(code) ? 'self-signed certificate' : code;
      throw new ServerCertificateError(`${why}: the TLS certificate of ${server} cannot be verified and no fingerprint is pinned for it`, decision);
    }
    await t.knownServers.set(server, { fingerprint: decision.fingerprint, firstSeen: new Date().toISOString() });
  }
  return decision;
}

export class SealTransport extends EventEmitter {
  private socket: net.Socket | undefined;
  private connected = false;
  private buffered = '';
  private error: Error | undefined;

  constructor(private readonly options: TransportOptions) {
    super();
  }

  connect(): void {
    const o = this.options;
    if (!o.tls) {
      const s = net.connect({ host: o.host, port: o.port });
      this.attach(s);
      s.once('connect', () => this.opened());
      return;
    }
    // The chain is checked below, by us: rejectUnauthorized would refuse every self-signed server.
    const s = tls.connect({ host: o.host, port: o.port, servername: net.isIP(o.host) ? undefined : o.host, rejectUnauthorized: false });
    this.attach(s);
    s.once('secureConnect', () => {
      void judgeServerCertificate(s, `${o.host}:${o.port}`, o.sealTls ?? {}).then(
        () => this.opened(),
        (err: Error) => {
          this.error = err;
          s.destroy();
        },
      );
    });
  }

  private attach(s: net.Socket): void {
    this.socket = s;
    s.setNoDelay(true);
    s.setEncoding('utf8');
    s.on('data', (chunk: string) => {
      this.buffered += chunk;
      // Nothing a server says counts before its certificate has passed.
      if (this.connected) this.drain();
    });
    s.on('error', (err) => {
      this.error ??= err;
      this.emit('debug', `SealTransport ${err.message}`);
    });
    s.on('close', () => {
      this.connected = false;
      this.emit('close', this.error ?? false);
    });
  }

  private opened(): void {
    this.connected = true;
    this.emit('open');
    this.drain();
  }

  private drain(): void {
    let i: number;
    while (this.connected && (i = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, i + 1);
      this.buffered = this.buffered.slice(i + 1);
      this.emit('line', line);
    }
  }

  isConnected(): boolean {
    return this.connected;
  }

  writeLine(line: string, cb?: () => void): void {
    if (this.socket && this.connected) this.socket.write(line + '\r\n', cb);
    else if (cb) process.nextTick(cb);
  }

  close(force?: boolean): void {
    if (!this.socket) return;
    if (force || !this.connected) this.socket.destroy();
    else this.socket.end();
  }

  disposeSocket(): void {
    if (this.socket) {
      this.socket.removeAllListeners();
      this.socket.destroy();
      this.socket = undefined;
    }
    this.connected = false;
  }

  /** Lines are UTF-8 (sealchat's payloads are ASCII, text is UTF-8): other encodings are refused. */
  setEncoding(encoding: string): boolean {
    return /^utf-?8$/i.test(encoding);
  }
}
