/**
 * The agent's unix socket: JSON lines in, one JSON reply line out per request, in order.
 *
 * The socket lives in a directory only the user can enter (0700) and is itself 0600, so only the
 * user's own processes (their IRC client's plugin) can ask it to decrypt or sign. One agent serves
 * one account with one unlocked key; each IRC connection a plugin reports gets its own session
 * (engine, keybot pin, keys), named by the plugin's label.
 *
 * A malformed or unknown request gets an error reply and the connection stays usable; nothing a
 * plugin sends can stop the agent.
 */
import { mkdir, chmod, unlink } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { PrivateKeyHandle } from '../../crypto/index.js';
import { casefold } from '../../protocol/names.js';
import { createLogger } from '../../util/log.js';
import { VERSION } from '../../util/version.js';
import { MemoryBook, keybotPasswordProblem, memoryFileFor, type CompanionSessionOptions, type KeybotOptions, type MembershipKind } from '../core/index.js';
import {
  AGENT_PROTOCOL_VERSION,
  MAX_REQUEST_BYTES,
  type AgentEvent,
  type AgentSend,
  type ReplyBase,
  type RequestId,
} from './protocol.js';
import { fromServer, readLine } from './lines.js';
import { AgentSession, DEFAULT_MARKER, serverKeyOf } from './session.js';

const log = createLogger('agent');

/** Options of {@link startAgent}: keybot's key and tuning as every companion takes them (core/keybot.ts, core/session.ts). */
export interface AgentOptions extends KeybotOptions, Pick<CompanionSessionOptions, 'engine' | 'outbox' | 'keybotPassword'> {
  /** The account (= nick) whose key this is. */
  account: string;
  privateKey: PrivateKeyHandle;
  socketPath: string;
  /** Housekeeping interval (default 1000 ms). */
  sweepMs?: number;
}

type Json = Record<string, unknown>;

class RequestError extends Error {
  constructor(
    readonly code: 'bad-request' | 'unknown-server',
    message: string,
  ) {
    super(message);
  }
}

/** A running agent. */
export class Agent {
  private readonly sessions = new Map<string, AgentSession>();
  private readonly sockets = new Set<net.Socket>();
  private readonly sweepTimer: NodeJS.Timeout;
  /** Pins and epochs per (account, server), for the agent's life and on disk (core/memory.ts). */
  private readonly memory: MemoryBook;
  private nextConn = 1;
  private closing = false;

  private constructor(
    private readonly o: AgentOptions,
    private readonly server: net.Server,
  ) {
    this.memory = new MemoryBook(memoryFileFor(o.knownKeybotsFile));
    server.on('connection', (s) => this.accept(s));
    this.sweepTimer = setInterval(() => {
      for (const s of this.sessions.values()) void s.sweep().catch((err: Error) => log.error('sweep failed', err));
    }, o.sweepMs ?? 1000);
    this.sweepTimer.unref();
  }

  /** Listen on the socket (refusing to take over one another agent is serving). */
  static async start(o: AgentOptions): Promise<Agent> {
    if (!o.account) throw new TypeError('startAgent: account is required');
    const bad = o.keybotPassword !== undefined ? keybotPasswordProblem(o.keybotPassword) : undefined;
    if (bad !== undefined) throw new TypeError(`startAgent: ${bad}`);
    const dir = path.dirname(o.socketPath);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (await answers(o.socketPath)) throw new Error(`another agent is already listening on ${o.socketPath}`);
    await unlink(o.socketPath).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    const server = net.createServer();
    // The socket file is created with the umask: make it owner-only from the start.
    const old = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(o.socketPath, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(old);
    }
    await chmod(o.socketPath, 0o600);
    return new Agent(o, server);
  }

  get socketPath(): string {
    return this.o.socketPath;
  }

  get account(): string {
    return this.o.account;
  }

  /** A session by label (tests and status). */
  session(label: string): AgentSession | undefined {
    return this.sessions.get(label);
  }

  /** Stop listening, drop every connection, wipe every key. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.sweepTimer);
    for (const s of this.sockets) s.destroy();
    for (const s of this.sessions.values()) s.close();
    this.sessions.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await unlink(this.o.socketPath).catch(() => undefined);
    await this.memory.flush();
  }

  // ---- connections -------------------------------------------------------------------------

  private accept(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const conn = this.nextConn++;
    this.sockets.add(socket);
    let buf: Buffer = Buffer.alloc(0);
    let discarding = false;
    let queue: Promise<void> = Promise.resolve();
    const write = (reply: ReplyBase): void => {
      if (!socket.destroyed) socket.write(JSON.stringify(reply) + '\n');
    };
    const enqueue = (line: Buffer): void => {
      queue = queue.then(async () => write(await this.request(conn, line)));
    };
    socket.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      let i: number;
      while ((i = buf.indexOf(0x0a)) !== -1) {
        const line = buf.subarray(0, i);
        buf = buf.subarray(i + 1);
        if (discarding) {
          discarding = false;
          continue;
        }
        if (line.length > MAX_REQUEST_BYTES) {
          queue = queue.then(() => write(errorReply(null, 'bad-request', `request longer than ${MAX_REQUEST_BYTES} bytes`)));
          continue;
        }
        enqueue(line);
      }
      if (buf.length > MAX_REQUEST_BYTES) {
        // Answer once, then skip to the end of this line.
        buf = Buffer.alloc(0);
        if (!discarding) queue = queue.then(() => write(errorReply(null, 'bad-request', `request longer than ${MAX_REQUEST_BYTES} bytes`)));
        discarding = true;
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.sockets.delete(socket);
      // A plugin that reconnects (after a timeout, say) picks up what was waiting for it.
      for (const s of this.sessions.values()) if (s.owner === conn) s.owner = undefined;
    });
  }

  /** Parse and serve one request line; never throws. */
  private async request(conn: number, line: Buffer): Promise<ReplyBase> {
    let req: unknown;
    try {
      req = JSON.parse(line.toString('utf8').replace(/\r$/, ''));
    } catch {
      return errorReply(null, 'bad-request', 'malformed request: not a JSON line');
    }
    if (!req || typeof req !== 'object' || Array.isArray(req)) return errorReply(null, 'bad-request', 'malformed request: expected a JSON object');
    const r = req as Json;
    const id: RequestId = typeof r.id === 'number' || typeof r.id === 'string' ? r.id : null;
    try {
      const reply = await this.serve(conn, r);
      return { ...reply, id, ...this.pending(conn) };
    } catch (err) {
      if (err instanceof RequestError) return { ...errorReply(id, err.code, err.message), ...this.pending(conn) };
      log.error(`request ${typeof r.op === 'string' ? r.op : '?'} failed`, err);
      return errorReply(id, 'internal', `internal error: ${(err as Error).message}`);
    }
  }

  /** Events and sends of the sessions this connection owns. */
  private pending(conn: number): { events?: AgentEvent[]; send?: AgentSend[] } {
    const events: AgentEvent[] = [];
    const send: AgentSend[] = [];
    for (const s of this.sessions.values()) {
      if (s.owner === undefined) s.owner = conn;
      if (s.owner !== conn) continue;
      const d = s.drain();
      events.push(...d.events);
      send.push(...d.send);
    }
    return { ...(events.length ? { events } : {}), ...(send.length ? { send } : {}) };
  }

  private async serve(conn: number, r: Json): Promise<Omit<ReplyBase, 'id'> & Json> {
    switch (r.op) {
      case 'hello':
        return { ok: true, agent: 'sealchat', version: VERSION, protocol: AGENT_PROTOCOL_VERSION, account: this.o.account };
      case 'connected':
        return this.connected(conn, r);
      case 'disconnected': {
        const label = str(r, 'server');
        const s = this.sessions.get(label);
        if (s) {
          s.close();
          this.sessions.delete(label);
        }
        return { ok: true };
      }
      case 'incoming': {
        const s = this.find(r, conn);
        const command = r.command === undefined ? 'PRIVMSG' : r.command;
        if (command !== 'PRIVMSG' && command !== 'NOTICE') throw new RequestError('bad-request', 'command must be PRIVMSG or NOTICE');
        const from = typeof r.from === 'string' ? r.from : '';
        const target = str(r, 'target');
        const text = str(r, 'text', true);
        // A server notice (no sender) is none of sealchat's business.
        if (from === '') return { ok: true, action: 'pass' };
        const { id: _id, ...reply } = await s.incoming({ from, target, command, text });
        return reply;
      }
      case 'outgoing': {
        const s = this.find(r, conn);
        if (r.command !== undefined && r.command !== 'PRIVMSG' && r.command !== 'NOTICE') {
          throw new RequestError('bad-request', 'command must be PRIVMSG or NOTICE');
        }
        // An empty target is a line the plugin could not parse: answered with a refusal, never an
        // error (a plugin passes a line on when the agent errs and the target looks harmless).
        const { id: _id, ...reply } = s.outgoing(str(r, 'target', true), str(r, 'text', true), r.command === 'NOTICE' ? 'NOTICE' : 'PRIVMSG');
        return reply;
      }
      case 'line':
        return this.line(conn, r);
      case 'check': {
        const { id: _id, ...reply } = this.find(r, conn).checkReply(str(r, 'target'));
        return reply;
      }
      case 'left':
        await this.find(r, conn).left(str(r, 'room'));
        return { ok: true };
      case 'membership':
        return this.membership(conn, r);
      case 'poll':
        return { ok: true };
      case 'status': {
        const label = r.server;
        const all = [...this.sessions.values()].filter((s) => (typeof label === 'string' ? s.label === label : s.owner === conn));
        return { ok: true, account: this.o.account, servers: all.map((s) => s.status()) };
      }
      default:
        throw new RequestError('bad-request', typeof r.op === 'string' ? `unknown op "${r.op}"` : 'missing "op"');
    }
  }

  private async connected(conn: number, r: Json): Promise<Omit<ReplyBase, 'id'> & Json> {
    const label = str(r, 'server');
    const nick = str(r, 'nick');
    const host = typeof r.host === 'string' && r.host !== '' ? r.host : undefined;
    const port = typeof r.port === 'number' && Number.isInteger(r.port) ? r.port : typeof r.port === 'string' && /^\d+$/.test(r.port) ? Number(r.port) : undefined;
    if (casefold(nick) !== casefold(this.o.account)) {
      throw new RequestError(
        'bad-request',
        `this agent holds the key of ${this.o.account}, not ${nick}: on sealchat the nick is the account (start an agent for ${nick})`,
      );
    }
    const existing = this.sessions.get(label);
    const protocol = typeof r.protocol === 'number' && Number.isInteger(r.protocol) && r.protocol >= 1 ? r.protocol : 1;
    const marker = typeof r.marker === 'string' && r.marker.length <= 32 && !/[\x00-\x1f]/.test(r.marker) ? r.marker : DEFAULT_MARKER;
    const rooms = Array.isArray(r.rooms) ? r.rooms.filter((x): x is string => typeof x === 'string') : [];
    if (existing && r.fresh === false && casefold(existing.nick) === casefold(nick)) {
      existing.owner = conn;
      existing.protocol = protocol;
      existing.marker = marker;
      existing.inRooms(rooms);
      return { ok: true, attached: true, keybot: existing.keybotState.status };
    }
    let memory;
    try {
      memory = await this.memory.memory(this.o.account, serverKeyOf({ label, ...(host !== undefined ? { host } : {}), ...(port !== undefined ? { port } : {}) }));
    } catch (err) {
      // Never guess: without the memory, a swapped member key or a replayed envelope could pass.
      throw new RequestError('bad-request', `cannot read the sealchat memory file: ${(err as Error).message}`);
    }
    existing?.close();
    const { socketPath: _s, sweepMs: _w, ...companion } = this.o;
    const session = new AgentSession({
      ...companion,
      label,
      memory,
      nick,
      ...(host !== undefined ? { host } : {}),
      ...(port !== undefined ? { port } : {}),
    });
    session.owner = conn;
    session.protocol = protocol;
    session.marker = marker;
    session.inRooms(rooms);
    this.sessions.set(label, session);
    await session.start();
    // A plugin loaded mid-session (or an agent restarted under it) is already in rooms whose
    // keys this new session lacks: ask keybot to send them again.
    session.requestRoomKeys(rooms);
    // The history catch-up needs capabilities the plugin's client may not ask for (core/history.ts).
    session.requestHistoryCaps();
    return { ok: true, attached: false, keybot: session.keybotState.status };
  }

  /** One raw line, in or out (protocol 3). */
  private async line(conn: number, r: Json): Promise<Omit<ReplyBase, 'id'> & Json> {
    const dir = r.dir;
    if (dir !== 'in' && dir !== 'out') throw new RequestError('bad-request', '"dir" must be in or out');
    const raw = str(r, 'line', true);
    if (dir === 'in' && !this.sessions.has(str(r, 'server'))) {
      // Before `connected` (a server's NOTICEs during registration) there is nothing to decide.
      const l = readLine(raw);
      if (!l || fromServer(l)) return { ok: true, action: 'pass' };
    }
    const s = this.find(r, conn);
    const { id: _id, ...reply } = dir === 'in' ? await s.lineIn(raw) : s.lineOut(raw);
    return reply;
  }

  /** A JOIN, PART, KICK or QUIT the plugin saw (protocol 2). */
  private async membership(conn: number, r: Json): Promise<Omit<ReplyBase, 'id'> & Json> {
    const s = this.find(r, conn);
    const kind = r.kind;
    if (kind !== 'join' && kind !== 'part' && kind !== 'kick' && kind !== 'quit') {
      throw new RequestError('bad-request', '"kind" must be join, part, kick or quit');
    }
    const nick = str(r, 'nick');
    if (typeof r.me === 'string' && r.me !== '' && casefold(r.me) !== casefold(this.o.account)) {
      throw new RequestError('bad-request', `this agent holds the key of ${this.o.account}, not ${r.me}`);
    }
    const room = kind === 'quit' ? undefined : str(r, 'room');
    const state = await s.membership({ kind: kind satisfies MembershipKind, nick, ...(room !== undefined ? { room } : {}) });
    return { ok: true, ...state };
  }

  /** The session a request names; the connection asking becomes the one its events go to. */
  private find(r: Json, conn: number): AgentSession {
    const label = str(r, 'server');
    const s = this.sessions.get(label);
    if (!s) throw new RequestError('unknown-server', `no session for server "${label}": send "connected" first`);
    s.owner = conn;
    return s;
  }
}

/** Start an agent; see {@link Agent}. */
export function startAgent(o: AgentOptions): Promise<Agent> {
  return Agent.start(o);
}

function errorReply(id: RequestId, code: NonNullable<ReplyBase['code']>, error: string): ReplyBase {
  return { id, ok: false, code, error };
}

/** A required string field (`empty`: '' is allowed). */
function str(r: Json, field: string, empty = false): string {
  const v = r[field];
  if (typeof v !== 'string' || (!empty && v === '')) throw new RequestError('bad-request', `"${field}" must be a ${empty ? '' : 'non-empty '}string`);
  return v;
}

/** Does something answer on this unix socket? */
function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    const done = (v: boolean): void => {
      s.destroy();
      resolve(v);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
