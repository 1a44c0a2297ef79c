/**
 * Test helpers for the plugin agent: a JSON-lines client over its unix socket (what the WeeChat
 * and irssi plugins do in Python and Perl), and short socket paths in a private temp dir.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

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
