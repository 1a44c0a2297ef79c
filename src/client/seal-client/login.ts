/**
 * One irc-framework connection's login, for SealClient (client.ts): connect, register, and fail
 * with a SealClientError that says why (refused, closed, too slow). No reconnect here: SealClient
 * decides whether to try again.
 */
import type { Client as IrcClient } from 'irc-framework';
import { SealClientError } from '../errors.js';
import { SealTransport, ServerCertificateError, type TlsTrustOptions } from '../transport.js';

/** Where and as whom (SealConnectOptions' part of it). */
export interface LoginOptions extends TlsTrustOptions {
  host: string;
  port: number;
  tls?: boolean;
  /** false: accept any TLS certificate (tests only; `--insecure`). */
  rejectUnauthorized?: boolean;
  nick: string;
  password?: string;
  sasl?: { account?: string; password: string };
}

/** Connect `irc` and log in; resolves once registered (`registered` is called as it happens, before any later line). */
export function login(irc: IrcClient, o: LoginOptions, timeoutMs: number, registered: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let gone = false;
    const fail = (err: SealClientError): void => {
      clearTimeout(timer);
      irc.off('registered', ok);
      irc.off('irc error', early);
      irc.off('close', earlyClose);
      irc.off('sasl failed', saslFailed);
      if (!gone) irc.quit();
      reject(err);
    };
    const timer = setTimeout(() => fail(new SealClientError('timeout', `${o.host}:${o.port} did not complete the login`)), timeoutMs);
    const ok = (): void => {
      clearTimeout(timer);
      irc.off('irc error', early);
      irc.off('close', earlyClose);
      irc.off('sasl failed', saslFailed);
      registered();
      resolve();
    };
    const early = (e: { error?: string; reason?: string }): void => {
      fail(new SealClientError('auth', `the server refused the login: ${e.reason ?? e.error ?? 'unknown reason'}`));
    };
    // ERR_SASLFAIL (904) and friends: irc-framework ends CAP and registers us anyway, not logged
    // in, where keybot then refuses everything; the login failed, so say so (IRCv3 sasl-3.1).
    const saslFailed = (e: { reason?: string; message?: string }): void => {
      // Without `sasl` irc-framework tries the PASS password by SASL where offered; a server
      // without SASL then takes (or ignores) PASS as before.
      if (e.reason === 'capability_missing' && !o.sasl) return;
      const why =
        e.reason === 'capability_missing'
          ? `${o.host}:${o.port} offers no SASL (a network without services? there, log in to keybot instead: --keybot-account)`
          : `the server refused the login: ${e.message ?? e.reason ?? 'unknown reason'} (SASL as ${o.sasl?.account ?? o.nick})`;
      fail(new SealClientError('auth', why));
    };
    irc.on('sasl failed', saslFailed);
    let closeReason: Error | undefined;
    const socketClose = (err?: Error): void => {
      closeReason = err || undefined;
    };
    const earlyClose = (): void => {
      gone = true;
      irc.off('socket close', socketClose);
      if (closeReason instanceof ServerCertificateError) return fail(new SealClientError('tls', closeReason.message));
      const why = closeReason ? `: ${closeReason.message}` : '';
      fail(new SealClientError('connection', `the connection to ${o.host}:${o.port} closed during login${why}`));
    };
    irc.on('socket close', socketClose);
    irc.once('registered', () => irc.off('socket close', socketClose));
    irc.once('registered', ok);
    irc.on('irc error', early);
    irc.once('close', earlyClose);
    irc.connect({
      host: o.host,
      port: o.port,
      nick: o.nick,
      username: o.nick,
      gecos: o.nick,
      tls: o.tls ?? false,
      rejectUnauthorized: o.rejectUnauthorized ?? true,
      auto_reconnect: false,
      // TLS goes through our transport: the certificate is judged (pin, first use, CA) before
      // irc-framework writes the password (transport.ts).
      ...(o.tls
        ? {
            transport: SealTransport,
            sealTls: {
              ...(o.tlsFingerprint !== undefined ? { fingerprint: o.tlsFingerprint } : {}),
              ...(o.knownServers ? { knownServers: o.knownServers } : {}),
              insecure: o.rejectUnauthorized === false,
              onDecision: o.onServerCertificate,
            },
          }
        : {}),
      ...(o.password !== undefined ? { password: o.password } : {}),
      ...(o.sasl ? { account: { account: o.sasl.account ?? o.nick, password: o.sasl.password } } : {}),
    });
  });
}
