/**
 * The two sockets of one proxied connection (session.ts owns one): the client's, accepted by the
 * proxy, and the one it opens to the server. Lines from each side (lines.ts keeps them as bytes),
 * lines to each side with backpressure (one side pauses while the other has too much unsent),
 * and the end of both. What the lines mean is the session's.
 */
import net from 'node:net';
import tls from 'node:tls';
import { judgeServerCertificate, type TlsTrustOptions } from '../transport.js';
import { LineSplitter } from './lines.js';

/** Pause reading one side while the other has this much unsent. */
const HIGH_WATER = 1 << 20;

export interface UpstreamOptions extends TlsTrustOptions {
  host: string;
  port: number;
  tls?: boolean;
  /** false: accept any TLS certificate (tests only; `--insecure`). */
  rejectUnauthorized?: boolean;
}

/** What the session does with what the sockets report. */
export interface WireEvents {
  /** One line the client sent (in order, at once). */
  clientLine(raw: Buffer): void;
  /** One line the server sent (the session queues it). */
  serverLine(raw: Buffer): void;
  /** A side sent a line longer than IRC allows: resynchronising on a cut line is guesswork. */
  tooLong(side: 'client' | 'server'): void;
  upstreamFailed(err: Error, connected: boolean): void;
  serverClosed(): void;
  clientGone(): void;
}

/** Every line the proxy writes: 'up' to the server, 'down' to the client (debugging, tests). */
export type Tap = (direction: 'up' | 'down', line: string) => void;

export class ProxyWire {
  private readonly downSplit = new LineSplitter();
  private readonly upSplit = new LineSplitter();
  private readonly up: net.Socket;
  private upConnected = false;
  /**
   * Lines for the server wait here until a TLS server's certificate has been judged
   * (transport.ts): the client's PASS must not reach a server that fails the pin.
   */
  private pendingUp: Array<string | Buffer> | undefined;

  constructor(
    private readonly down: net.Socket,
    upstream: UpstreamOptions,
    private readonly on: WireEvents,
    private readonly tap?: Tap,
  ) {
    down.setNoDelay(true);
    if (upstream.tls) {
      // The chain is judged below (pin, first use, CA), not by OpenSSL alone.
      const s = tls.connect({ host: upstream.host, port: upstream.port, rejectUnauthorized: false, ...(net.isIP(upstream.host) ? {} : { servername: upstream.host }) });
      this.up = s;
      this.pendingUp = [];
      s.once('secureConnect', () => {
        judgeServerCertificate(s, `${upstream.host}:${upstream.port}`, {
          ...(upstream.tlsFingerprint !== undefined ? { fingerprint: upstream.tlsFingerprint } : {}),
          ...(upstream.knownServers ? { knownServers: upstream.knownServers } : {}),
          insecure: upstream.rejectUnauthorized === false,
          onDecision: upstream.onServerCertificate,
        }).then(
          () => {
            this.upConnected = true;
            const held = this.pendingUp ?? [];
            this.pendingUp = undefined;
            for (const line of held) this.toServer(line);
          },
          (err: Error) => {
            this.pendingUp = undefined;
            s.destroy();
            on.upstreamFailed(err, false);
          },
        );
      });
    } else {
      this.up = net.connect({ host: upstream.host, port: upstream.port });
      this.up.once('connect', () => {
        this.upConnected = true;
      });
    }
    this.up.setNoDelay(true);
    this.up.on('data', (chunk: Buffer) => this.lines(this.upSplit, chunk, 'server'));
    this.up.on('error', (err: Error) => on.upstreamFailed(err, this.upConnected));
    this.up.on('close', () => on.serverClosed());
    this.up.on('drain', () => this.down.resume());
    down.on('data', (chunk: Buffer) => this.lines(this.downSplit, chunk, 'client'));
    down.on('error', () => undefined);
    down.on('close', () => on.clientGone());
    down.on('drain', () => this.up.resume());
  }

  /** The server connection is gone (or never came). */
  get serverGone(): boolean {
    return this.up.destroyed;
  }

  toServer(line: string | Buffer): void {
    if (this.up.destroyed) return;
    if (this.pendingUp) {
      this.pendingUp.push(line);
      return;
    }
    this.write(this.up, this.down, 'up', line);
  }

  toClient(line: string | Buffer): void {
    if (this.down.destroyed || !this.down.writable) return;
    this.write(this.down, this.up, 'down', line);
  }

  /** Drop the server connection at once (a login the proxy refuses). */
  destroyServer(): void {
    this.up.destroy();
  }

  endServer(): void {
    this.up.end();
  }

  /** End both sides; whatever still hangs on is destroyed after 2 s. */
  close(): void {
    this.down.end();
    this.up.end();
    setTimeout(() => {
      this.down.destroy();
      this.up.destroy();
    }, 2000).unref();
  }

  private lines(split: LineSplitter, chunk: Buffer, side: 'client' | 'server'): void {
    const lines = split.push(chunk);
    if (lines === null) return this.on.tooLong(side);
    for (const line of lines) {
      if (side === 'client') this.on.clientLine(line);
      else this.on.serverLine(line);
    }
  }

  private write(to: net.Socket, other: net.Socket, direction: 'up' | 'down', line: string | Buffer): void {
    this.tap?.(direction, line.toString());
    const ok = to.write(Buffer.concat([typeof line === 'string' ? Buffer.from(line) : line, Buffer.from('\r\n')]));
    if (!ok && to.writableLength > HIGH_WATER) other.pause();
  }
}
