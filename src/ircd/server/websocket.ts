/**
 * IRC over WebSocket (IRCv3 "WebSocket" spec, ircv3.net/specs/extensions/websocket): one IRC line
 * per WebSocket message, without CR LF, subprotocol `binary.ircv3.net` (binary frames, bytes as
 * they are) or `text.ircv3.net` (text frames, UTF-8; also what a client that names neither gets,
 * as ergo and InspIRCd do). The same port serves the web companion over HTTP (GET /).
 *
 * One session type, two transports: a WebSocket connection is handed to the same Session as a
 * TCP socket, through WsSocket, which looks to Session (and to the server's admission check) like
 * the part of a net.Socket they use: `data` events carrying LF-terminated lines, `write` of
 * CRLF-terminated lines, `end`, `destroy`, `writableLength`. So framing limits (417 for an
 * overlong line), fakelag, recvq, sendq, clone limits, login throttles and fan-out are the ones a
 * TCP connection gets, from the same code.
 */
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import { MAX_CLIENT_TAG_BYTES, MAX_LINE_BYTES } from '../../protocol/message.js';
import type { Logger } from '../../util/log.js';
import type { WebSocketOptions } from '../config/schema.js';

export const SUBPROTOCOL_BINARY = 'binary.ircv3.net';
export const SUBPROTOCOL_TEXT = 'text.ircv3.net';

/** What the listener needs of the server: the admission check and the session factory TCP uses. */
export interface WebSocketHost {
  readonly log: Logger;
  admitConnection(socket: Socket, tls: boolean): boolean;
  accept(socket: Socket, tls: boolean): void;
}

/** The members of net.Socket that Session and IrcServer.admitConnection use (kept in step with them). */
type SocketPart = Pick<Socket, 'remoteAddress' | 'destroyed' | 'writableLength' | 'setNoDelay' | 'write' | 'end' | 'destroy'>;

const LF = Buffer.from('\n');
/** The largest WebSocket message read (and answered 417 when over a line's length): 8 lines' worth. */
export const MAX_WS_MESSAGE = 8 * (MAX_CLIENT_TAG_BYTES + 2 + MAX_LINE_BYTES);

/** One WebSocket connection, seen as a line stream. */
export class WsSocket extends EventEmitter {
  destroyed = false;

  constructor(
    private readonly ws: WebSocket,
    readonly remoteAddress: string | undefined,
    private readonly rawSocket: Socket,
  ) {
    super();
    const binary = ws.protocol === SUBPROTOCOL_BINARY;
    this.binary = binary;
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => this.onMessage(toBuffer(data)));
    ws.on('error', (err) => this.emit('error', err));
    ws.on('close', () => {
      this.destroyed = true;
      this.emit('close', false);
    });
  }

  private readonly binary: boolean;

  get writableLength(): number {
    return this.ws.bufferedAmount + this.rawSocket.writableLength;
  }

  setNoDelay(on = true): this {
    this.rawSocket.setNoDelay(on);
    return this;
  }

  private onMessage(buf: Buffer): void {
    // "Lines MUST NOT contain CR or LF" inside a message (one line per message). A trailing CR LF
    // some clients add anyway is tolerated; a line break inside would smuggle a second line past
    // the message boundary, so the connection is closed instead.
    let end = buf.length;
    if (end > 0 && buf[end - 1] === 0x0a) end--;
    if (end > 0 && buf[end - 1] === 0x0d) end--;
    const line = buf.subarray(0, end);
    if (line.includes(0x0a) || line.includes(0x0d)) {
      this.end('ERROR :Closing link: a WebSocket message must hold exactly one IRC line (no CR or LF)\r\n');
      return;
    }
    if (line.length === 0) return;
    this.emit('data', Buffer.concat([line, LF]));
  }

  /** Session writes CRLF-terminated lines, several at once: one WebSocket message each. */
  write(data: Buffer | string): boolean {
    if (this.destroyed) return false;
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    let start = 0;
    while (start < buf.length) {
      let nl = buf.indexOf(0x0a, start);
      if (nl === -1) nl = buf.length;
      const end = nl > start && buf[nl - 1] === 0x0d ? nl - 1 : nl;
      const line = buf.subarray(start, end);
      // text.ircv3.net: text frames must be UTF-8; bytes that are not become U+FFFD (the spec's rule).
      if (this.binary) this.ws.send(line, { binary: true });
      else this.ws.send(line.toString('utf8'));
      start = nl + 1;
    }
    return true;
  }

  end(data?: Buffer | string): this {
    if (data !== undefined) this.write(data);
    if (!this.destroyed) this.ws.close(1000);
    return this;
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.ws.terminate();
    return this;
  }
}

function toBuffer(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

// Compile-time check that WsSocket offers what Session and admitConnection use of a net.Socket.
const _shape: (s: WsSocket) => Omit<SocketPart, 'write' | 'end' | 'destroy' | 'setNoDelay'> = (s) => s;
void _shape;

/**
 * Is a handshake from `origin` allowed? No Origin header: not a browser, allowed (Origin only
 * protects a visitor's browser from other sites). The listener's own origin (the page it serves)
 * is always allowed; others only when listed (or `*`).
 */
export function originAllowed(origin: string | undefined, host: string | undefined, secure: boolean, allowed: readonly string[]): boolean {
  if (origin === undefined) return true;
  const o = origin.toLowerCase();
  if (allowed.includes('*') || allowed.includes(o)) return true;
  return host !== undefined && o === `${secure ? 'https' : 'http'}://${host.toLowerCase()}`;
}

/** Where `npm run build` puts the web companion (src/web/build.ts): dist/page under the package root. */
export function builtinPageDir(): string {
  // This file is src/ircd/server/websocket.ts (tsx) or dist/ircd/server/websocket.js (built).
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'dist', 'page');
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.map': 'application/json',
};

/**
 * The page's headers: its scripts come from this origin only, and it may open WebSockets back to
 * this origin only (CSP `connect-src 'self'` covers ws: and wss: of the same host in current
 * browsers), so an injected string cannot load code or ship keys elsewhere.
 */
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

async function servePage(dir: string | false, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://x');
  const name = url.pathname === '/' ? 'index.html' : url.pathname.slice(1);
  // Flat folder of built files: nothing with a slash or a leading dot is ever served.
  if (dir === false || (req.method !== 'GET' && req.method !== 'HEAD') || !/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(name)) {
    res.writeHead(dir === false ? 404 : req.method === 'GET' || req.method === 'HEAD' ? 404 : 405, { 'content-type': 'text/plain' });
    res.end(dir === false ? 'This is an IRC WebSocket listener.\n' : 'Not found\n');
    return;
  }
  try {
    const body = await readFile(path.join(dir, name));
    res.writeHead(200, { ...PAGE_HEADERS, 'content-type': CONTENT_TYPES[path.extname(name)] ?? 'application/octet-stream' });
    res.end(req.method === 'HEAD' ? undefined : body);
  } catch {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('Not found\n');
  }
}

export interface WebSocketListenerOptions {
  options: WebSocketOptions;
  tls?: { cert: Buffer; key: Buffer };
  /** Unprocessed input the session allows (limits.recvqBytes): a bigger message is refused by ws itself. */
  recvqBytes: number;
  handshakeTimeoutMs: number;
}

/** The HTTP(S) server of one WebSocket listener; listen() is the caller's. */
export function createWebSocketListener(host: WebSocketHost, o: WebSocketListenerOptions): http.Server {
  const secure = o.tls !== undefined;
  const dir = o.options.page === false ? false : o.options.page === true ? builtinPageDir() : o.options.page;
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    void servePage(dir, req, res).catch(() => res.destroy());
  };
  const srv: http.Server = secure
    ? https.createServer({ cert: o.tls!.cert, key: o.tls!.key, handshakeTimeout: o.handshakeTimeoutMs }, onRequest)
    : http.createServer(onRequest);
  srv.headersTimeout = o.handshakeTimeoutMs;
  srv.requestTimeout = o.handshakeTimeoutMs;
  const wss = new WebSocketServer({
    noServer: true,
    // A message longer than the longest legal line still reaches Session, which answers 417 and
    // keeps the link, as on TCP. ws holds a whole message in memory before we see it (TCP input is
    // dropped as it streams), so past MAX_WS_MESSAGE ws closes the connection itself (1009).
    maxPayload: Math.max(MAX_WS_MESSAGE, o.recvqBytes),
    perMessageDeflate: false,
    handleProtocols: (offered: Set<string>) =>
      offered.has(SUBPROTOCOL_BINARY) ? SUBPROTOCOL_BINARY : offered.has(SUBPROTOCOL_TEXT) ? SUBPROTOCOL_TEXT : false,
  });
  srv.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (!originAllowed(req.headers.origin, req.headers.host, secure, o.options.origins)) {
      host.log.info(`websocket: refused origin ${JSON.stringify(req.headers.origin)} from ${socket.remoteAddress}`);
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\nOrigin not allowed\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const conn = new WsSocket(ws, socket.remoteAddress, socket);
      const asSocket = conn as unknown as Socket;
      if (host.admitConnection(asSocket, secure)) host.accept(asSocket, secure);
    });
  });
  srv.on('close', () => wss.close());
  return srv;
}
