/**
 * Test helpers for the plugin agent: a JSON-lines client over its unix socket (what the WeeChat
 * and irssi plugins do in Python and Perl), a plugin double that connects it to the real daemon,
 * and short socket paths in a private temp dir.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseLine } from '../../src/protocol/message.js';
import { RawClient } from './daemon.js';

export type Reply = Record<string, any>;

/** A plugin's view of the agent: one request at a time, one reply line each. */
export class AgentClient {
  private buf = '';
  private waiting: Array<(line: string) => void> = [];
  private lines: string[] = [];
  private nextId = 1;
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buf += d;
      let i: number;
      while ((i = this.buf.indexOf('\n')) !== -1) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        const w = this.waiting.shift();
        if (w) w(line);
        else this.lines.push(line);
      }
    });
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => undefined);
  }

  static connect(socketPath: string): Promise<AgentClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(socketPath, () => resolve(new AgentClient(s)));
      s.once('error', reject);
    });
  }

  /** The next reply line, raw. */
  nextLine(ms = 5000): Promise<string> {
    const ready = this.lines.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no reply from the agent')), ms);
      this.waiting.push((line) => {
        clearTimeout(t);
        resolve(line);
      });
    });
  }

  /** Send raw bytes (for malformed-input tests). */
  raw(text: string): void {
    this.socket.write(text);
  }

  /** Send a request (an id is added) and wait for its reply. */
  async call(req: Record<string, unknown>, ms = 5000): Promise<Reply> {
    const id = this.nextId++;
    this.socket.write(JSON.stringify({ id, ...req }) + '\n');
    const reply = JSON.parse(await this.nextLine(ms)) as Reply;
    if (reply.id !== id) throw new Error(`reply for id ${String(reply.id)}, expected ${id}: ${JSON.stringify(reply)}`);
    return reply;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A private temp dir (short path: unix socket paths are limited to ~108 bytes). */
export async function tempDir(prefix = 'sc-agent-'): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** One IRC line, split the way a plugin sees it. */
interface Parsed {
  nick: string;
  command: string;
  params: string[];
}

function parseIrc(line: string): Parsed | undefined {
  // The daemon's own parser: the grammar is the same on both sides of the socket.
  const r = parseLine(line);
  if (!r.ok) return undefined;
  return { nick: (r.message.source ?? '').split('!')[0]!, command: r.message.command, params: r.message.params };
}

/** What a plugin does with one received line (and what the agent answered), for `pumpUntil`. */
export interface Pumped {
  line: string;
  parsed: Parsed;
  reply?: Reply;
}

/**
 * A plugin in TypeScript, for the agent protocol tests: a raw IRC connection to the real daemon
 * plus the agent's socket, doing what a version-2 plugin does (hand PRIVMSG/NOTICE to the agent,
 * report JOIN/PART/KICK/QUIT in sealchat rooms, send what `send` asks as it is), one received line
 * at a time, only when told to: the test decides what the agent has seen before the user "types".
 * The agent still serves version-2 plugins; today's WeeChat and irssi scripts speak version 3
 * (raw `line`s: test/client/agent/lines.test.ts, test/companions/plugin-table.test.ts).
 */
export class PluginDouble {
  /** Every event the agent pushed. */
  readonly events: Array<Record<string, any>> = [];
  /** Every line this plugin wrote to the server. */
  readonly wrote: string[] = [];
  private at = 0;

  private constructor(
    readonly raw: RawClient,
    readonly agent: AgentClient,
    readonly label: string,
    readonly nick: string,
  ) {}

  /** Log in on the daemon and tell the agent (`connected`; `protocol` 2 unless given). */
  static async connect(o: { port: number; name: string; password: string; socketPath: string; protocol?: number }): Promise<PluginDouble> {
    const raw = await RawClient.connect(o.port);
    await raw.login(o.name, o.password);
    const agent = await AgentClient.connect(o.socketPath);
    const p = new PluginDouble(raw, agent, `double/${o.name}`, o.name);
    p.at = raw.lines.length;
    const r = await p.call({ op: 'connected', server: p.label, nick: o.name, host: '127.0.0.1', port: o.port, fresh: true, ...(o.protocol === 1 ? {} : { protocol: o.protocol ?? 2 }) });
    if (!r.ok) throw new Error(`connected: ${JSON.stringify(r)}`);
    return p;
  }

  /** One request; its events are kept and its `send` lines written. */
  async call(req: Record<string, unknown>): Promise<Reply> {
    const r = await this.agent.call(req);
    for (const e of (r.events as Array<Record<string, any>> | undefined) ?? []) this.events.push(e);
    for (const s of (r.send as Array<{ line: string }> | undefined) ?? []) this.write(s.line);
    return r;
  }

  write(line: string): void {
    this.wrote.push(line);
    this.raw.send(line);
  }

  /** The user typed `text` in `room`: what the plugin's outgoing hook does with the wire line. */
  async say(room: string, text: string): Promise<Reply> {
    const r = await this.call({ op: 'outgoing', server: this.label, target: room, command: 'PRIVMSG', text });
    if (r.action === 'send') for (const l of r.lines as string[]) this.write(`PRIVMSG ${room} :${l}`);
    if (r.action === 'pass') this.write(`PRIVMSG ${room} :${text}`);
    return r;
  }

  /** Hand received lines to the agent, in order, until `done` is true for one; returns that one. */
  async pumpUntil(done: (p: Pumped) => boolean, what: string, ms = 15_000): Promise<Pumped> {
    const deadline = Date.now() + ms;
    for (;;) {
      while (this.at < this.raw.lines.length) {
        const line = this.raw.lines[this.at++]!;
        const p = await this.handle(line);
        if (p && done(p)) return p;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; seen:\n${this.raw.lines.join('\n')}`);
      await this.raw.waitLine(/^/, left, this.at).catch(() => undefined);
    }
  }

  /** Events the agent pushed of one type. */
  eventsOf(type: string): Array<Record<string, any>> {
    return this.events.filter((e) => e.type === type);
  }

  close(): void {
    this.agent.close();
    this.raw.close();
  }

  private async handle(line: string): Promise<Pumped | undefined> {
    const parsed = parseIrc(line);
    if (!parsed) return undefined;
    const { nick, command, params } = parsed;
    const room = params[0] ?? '';
    const sealed = room.toLowerCase().startsWith('#sc-');
    let reply: Reply | undefined;
    switch (command) {
      case 'PRIVMSG':
      case 'NOTICE':
        if (nick !== '' && params.length >= 2) {
          reply = await this.call({ op: 'incoming', server: this.label, from: nick, target: room, command, text: params[1] });
        }
        break;
      case 'JOIN':
      case 'PART':
        if (sealed) reply = await this.call({ op: 'membership', server: this.label, kind: command.toLowerCase(), room, nick, me: this.nick });
        break;
      case 'KICK':
        if (sealed) reply = await this.call({ op: 'membership', server: this.label, kind: 'kick', room, nick: params[1], me: this.nick });
        break;
      case 'QUIT':
        reply = await this.call({ op: 'membership', server: this.label, kind: 'quit', nick, me: this.nick });
        break;
    }
    return { line, parsed, ...(reply ? { reply } : {}) };
  }
}
