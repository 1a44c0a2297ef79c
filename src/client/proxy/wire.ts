/**
 * The two sockets of one proxied connection (session.ts owns one): the client's, accepted by the
 * proxy, and the one it opens to the server. Lines from each side (lines.ts keeps them as bytes),
 * lines to each side with backpressure (one side pauses while the other has too much unsent),
 * and the end of both. What the lines mean is the session's.
 */
import net from 'node:net';
import tls from 'node:tls';
import { LineSplitter } from './lines.js';

/** Pause reading one side while the other has this much unsent. */
const HIGH_WATER = 1 << 20;

export interface UpstreamOptions {
  host: string;
  port: number;
  tls?: boolean;
  /** Verify the server's TLS certificate (default true). */
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

  constructor(
    private readonly down: net.Socket,
    upstream: UpstreamOptions,
    private readonly on: WireEvents,
    private readonly tap?: Tap,
  ) {
    down.setNoDelay(true);
    this.up = upstream.tls
      ? tls.connect({
          host: upstream.host,
          port: upstream.port,
          rejectUnauthorized: upstream.rejectUnauthorized ?? true,
          ...(net.isIP(upstream.host) ? {} : { servername: upstream.host }),
        })
      : net.connect({ host: upstream.host, port: upstream.port });
    this.up.setNoDelay(true);
    this.up.once(upstream.tls ? 'secureConnect' : 'connect', () => {
      this.upConnected = true;
    });
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
