/**
 * The local proxy: a listener for unmodified IRC clients, one ProxySession (and so one server
 * connection) per client. It holds the user's unlocked key; whoever can connect to it can use that
 * key through a login of their own, so it listens on loopback unless told otherwise.
 *
 * The proxy lives as long as its process, its client connections do not: its MemoryBook
 * (core/memory.ts) keeps keybot's pin, member pins and each room's highest epoch per (account,
 * server) across them, and in the memory file next to the known-keybots file across restarts.
 */
import net from 'node:net';
import { MemoryBook, keybotPasswordProblem, memoryFileFor } from '../core/index.js';
import { ProxySession, type ProxySessionOptions } from './session.js';

export interface LocalProxyOptions extends ProxySessionOptions {
  /** Where to listen (port 0: any free port; see `address`). */
  listen: { host: string; port: number };
}

export class LocalProxy {
  private readonly sessions = new Set<ProxySession>();
  private readonly memory: MemoryBook;
  private closing = false;

  private constructor(
    private readonly server: net.Server,
    private readonly opts: LocalProxyOptions,
  ) {
    this.memory = new MemoryBook(memoryFileFor(opts.knownKeybotsFile));
    server.on('connection', (socket) => this.accept(socket));
  }

  /** Listen; rejects if the address cannot be bound. */
  static start(opts: LocalProxyOptions): Promise<LocalProxy> {
    // Every connection's session would refuse it; say so before listening.
    const bad = opts.keybotPassword !== undefined ? keybotPasswordProblem(opts.keybotPassword) : undefined;
    if (bad !== undefined) return Promise.reject(new TypeError(`LocalProxy: ${bad}`));
    const server = net.createServer();
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: opts.listen.host, port: opts.listen.port }, () => {
        server.off('error', reject);
        resolve(new LocalProxy(server, opts));
      });
    });
  }

  /** The bound address (the real port when 0 was asked for). */
  get address(): { host: string; port: number } {
    const a = this.server.address() as net.AddressInfo;
    return { host: a.address, port: a.port };
  }

  /** Connected clients. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Stop listening, say goodbye to every client and its server connection, and wait for them. */
  async close(reason = 'proxy stopped'): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const gone = [...this.sessions].map((s) => new Promise<void>((resolve) => s.onClose(resolve)));
    for (const s of this.sessions) s.shutdown(reason);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.race([Promise.all(gone), new Promise((r) => setTimeout(r, 3000).unref())]);
    await this.memory.flush();
  }

  private accept(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.opts.log?.info(`client connected from ${socket.remoteAddress}:${socket.remotePort}`);
    const session = new ProxySession(socket, this.opts, this.memory);
    this.sessions.add(session);
    session.onClose(() => {
      this.sessions.delete(session);
      this.opts.log?.info(`client from ${socket.remoteAddress}:${socket.remotePort} disconnected`);
    });
  }
}
