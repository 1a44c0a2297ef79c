/**
 * Server side of the control socket (contract: src/protocol/control.ts): net-ipc over a unix
 * socket in the data dir, mode 0600.
 *
 * net-ipc quirks handled here (docs/STACK.md 11): `server.start()` unlinks whatever sits at the
 * path, so a second daemon would silently take the socket from a live one; we probe first.
 * Requests are validated before they reach a handler; a malformed one gets `bad_request`.
 */

import { randomBytes } from 'node:crypto';
import { lstat, chmod, unlink } from 'node:fs/promises';
import { Server, type Connection } from 'net-ipc';
import {
  MAX_JOIN_NICKS,
  type ControlErrorCode,
  type ControlEvent,
  type ControlMethod,
  type ControlMethods,
  type ControlRequest,
  type ControlResponse,
  type ServerInfo,
} from '../../protocol/control.js';
import { probeControlSocket } from '../../protocol/control-client.js';
import { createLogger } from '../../util/log.js';
import { VERSION } from '../../util/version.js';

const log = createLogger('control');

/** Longest unix socket path Linux accepts (sun_path is 108 bytes with the NUL). */
const MAX_SOCKET_PATH_BYTES = 107;

/** A handler's way to answer with an error code instead of a result. */
export class ControlFailure extends Error {
  override name = 'ControlFailure';
  constructor(
    readonly code: ControlErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export type ControlHandler<M extends ControlMethod> = (params: ControlMethods[M]['params']) => Promise<ControlMethods[M]['result']>;

/** Handlers by method; the daemon composes account, presence and channel handlers into one. */
export type ControlHandlers = { [M in ControlMethod]?: ControlHandler<M> };

export interface ControlServerOptions {
  /** Socket path, normally `<dataDir>/control.sock`. */
  path: string;
  /** Answers a validated request. `ping` and `server.info` are answered by the server itself. */
  handle: (req: ControlRequest) => Promise<ControlResponse>;
  /** Reported by `ping` and `server.info` (default "sealchat"). */
  serverName?: string;
}

/** `string[]`: a list of strings, at most MAX_JOIN_NICKS of them. */
type ParamSpec = Record<string, 'string' | 'string?' | 'string[]'>;

/** The params every method takes; anything else in params is dropped before the handler. */
const PARAMS: Record<ControlMethod, ParamSpec> = {
  'ping': {},
  'server.info': {},
  'user.get': { name: 'string' },
  'user.list': {},
  'user.add': { name: 'string', password: 'string', publicKey: 'string' },
  'user.passwd': { name: 'string', password: 'string' },
  'user.setkey': { name: 'string', publicKey: 'string' },
  'user.del': { name: 'string' },
  'presence.online': {},
  'channel.join': { channel: 'string', nick: 'string' },
  'channel.joinmany': { channel: 'string', nicks: 'string[]' },
  'channel.kick': { channel: 'string', nick: 'string', reason: 'string?' },
  'room.add': { room: 'string', accounts: 'string[]' },
  'room.remove': { room: 'string', account: 'string', reason: 'string?' },
  'channel.get': { channel: 'string' },
  'channel.list': { member: 'string?' },
};

export const CONTROL_METHODS = Object.keys(PARAMS) as ControlMethod[];

/**
 * Check the shape of a request off the wire: a known method and params of the right types.
 * Returns a clean request (only known params) or an error message.
 */
export function parseControlRequest(raw: unknown): ControlRequest | string {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return 'a request must be an object { method, params }';
  const { method, params = {} } = raw as { method?: unknown; params?: unknown };
  if (typeof method !== 'string') return 'the request has no method';
  if (!Object.hasOwn(PARAMS, method)) return `unknown method ${JSON.stringify(method).slice(0, 60)}`;
  if (typeof params !== 'object' || params === null || Array.isArray(params)) return `${method}: params must be an object`;
  const spec = PARAMS[method as ControlMethod];
  const clean: Record<string, string | string[]> = {};
  for (const [key, type] of Object.entries(spec)) {
    const value = (params as Record<string, unknown>)[key];
    if (value === undefined && type === 'string?') continue;
    if (type === 'string[]') {
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) return `${method}: params.${key} must be a list of strings`;
      if (value.length > MAX_JOIN_NICKS) return `${method}: params.${key} lists more than ${MAX_JOIN_NICKS}`;
      clean[key] = [...value] as string[];
      continue;
    }
    if (typeof value !== 'string') return `${method}: params.${key} must be a string`;
    clean[key] = value;
  }
  return { method, params: clean } as ControlRequest;
}

/**
 * Turn a handler map into a `handle` function: unknown methods answer `bad_request`, a thrown
 * ControlFailure answers with its code, anything else `internal` (and is logged).
 */
export function makeControlDispatcher(handlers: ControlHandlers): (req: ControlRequest) => Promise<ControlResponse> {
  return async (req) => {
    const handler = handlers[req.method] as ControlHandler<ControlMethod> | undefined;
    if (!handler) return errorResponse('bad_request', `method ${req.method} is not available`);
    try {
      return { ok: true, result: await handler(req.params) };
    } catch (err) {
      if (err instanceof ControlFailure) return errorResponse(err.code, err.message);
      log.error(`${req.method} failed`, err);
      return errorResponse('internal', `${req.method} failed: internal error (see the daemon log)`);
    }
  };
}

export function errorResponse(code: ControlErrorCode, message: string): ControlResponse {
  return { ok: false, error: { code, message } };
}

export class ControlServer {
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: Server,
    readonly path: string,
    private readonly inode: number,
    /** What `server.info` answers: this daemon run's random instance id and start time. */
    readonly info: ServerInfo,
  ) {}

  /**
   * Listen on `opts.path`. Fails if a live daemon already answers there; a stale socket file
   * from a crashed daemon is replaced.
   */
  static async start(opts: ControlServerOptions): Promise<ControlServer> {
    const socketPath = opts.path;
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
      throw new Error(`control socket path ${socketPath} is too long (${Buffer.byteLength(socketPath)} bytes, max ${MAX_SOCKET_PATH_BYTES}): use a shorter data directory`);
    }
    const existing = await lstat(socketPath).catch(() => null);
    if (existing) {
      if (!existing.isSocket()) throw new Error(`${socketPath} exists and is not a socket; move it away`);
      if (await probeControlSocket(socketPath)) throw new Error(`another sealchatd is running on ${socketPath}`);
      log.info(`replacing stale control socket ${socketPath}`);
    }

    const server = new Server({ path: socketPath });
    const pingResult = { version: VERSION, server: opts.serverName ?? 'sealchat' };
    // One per start of the daemon: a client that sees another id knows the daemon restarted.
    const info: ServerInfo = { instance: randomBytes(16).toString('hex'), startedAt: new Date().toISOString(), ...pingResult };
    server.on('error', (err: unknown) => log.debug(`control connection error: ${(err as Error)?.message ?? String(err)}`));
    server.on('request', (raw: unknown, respond: (data: unknown) => Promise<void>) => {
      void answer(raw, opts.handle, pingResult, info).then(
        (res) => respond(res),
        (err) => {
          log.error('control handler threw', err);
          return respond(errorResponse('internal', 'internal error (see the daemon log)'));
        },
      ).catch((err) => log.debug(`control reply not delivered: ${(err as Error)?.message ?? String(err)}`));
    });
    // One-way messages carry nothing in this protocol; ignore them rather than crash.
    server.on('message', () => {});

    try {
      await server.start();
      // The socket is created with the umask's mode; tighten it before anyone else can use it.
      // (The data dir is 0700, so there is no window for other users.)
      await chmod(socketPath, 0o600);
    } catch (err) {
      await server.close().catch(() => {});
      throw new Error(`cannot listen on control socket ${socketPath}: ${(err as Error).message}`);
    }
    const { ino } = await lstat(socketPath);
    log.debug(`control socket listening on ${socketPath}`);
    return new ControlServer(server, socketPath, ino, info);
  }

  /** Number of connected control clients. */
  get clients(): number {
    return this.server.connections.length;
  }

  /** Push an event to every connected client (best effort: a dead client is skipped). */
  async broadcast(event: ControlEvent): Promise<void> {
    await this.server.broadcast(event);
  }

  /** Stop listening, drop clients, remove the socket file (if it is still ours). Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      // destroy(), not close(): net-ipc's close() waits for a write queue that may never drain
      // (STACK.md 11).
      for (const conn of [...this.server.connections] as Connection[]) conn.destroy();
      await new Promise<void>((resolve) => {
        const net = this.server.server;
        if (!net) return resolve();
        net.close(() => resolve());
      });
      const now = await lstat(this.path).catch(() => null);
      if (now && now.ino === this.inode) await unlink(this.path).catch(() => {});
    })();
    return this.closing;
  }
}

async function answer(
  raw: unknown,
  handle: ControlServerOptions['handle'],
  pingResult: ControlMethods['ping']['result'],
  info: ServerInfo,
): Promise<ControlResponse> {
  const req = parseControlRequest(raw);
  if (typeof req === 'string') return errorResponse('bad_request', req);
  if (req.method === 'ping') return { ok: true, result: pingResult };
  if (req.method === 'server.info') return { ok: true, result: info };
  const res = await handle(req);
  if (typeof res !== 'object' || res === null || typeof (res as { ok?: unknown }).ok !== 'boolean') {
    log.error(`handler for ${req.method} returned no ControlResponse`);
    return errorResponse('internal', 'internal error (see the daemon log)');
  }
  return res;
}
