/**
 * A scripted sealchat agent on a unix socket, for the plugin tests: answers every request through
 * `answer` (undefined: never answers, an agent that hangs), records what it was asked. A `line`
 * request (agent protocol 3) comes with its raw line read for the script: `command`, `target` and
 * `text` (the trailing parameter).
 */
import { rm } from 'node:fs/promises';
import net from 'node:net';
import { parseLine } from '../../src/protocol/message.js';

export type Req = Record<string, any>;

/** A scripted agent: answers every request through `answer`, records what it was asked. */
export async function fakeAgent(socketPath: string, answer: (r: Req) => Record<string, unknown> | undefined): Promise<{ seen: Req[]; close: () => Promise<void> }> {
  const seen: Req[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) !== -1) {
        const req = JSON.parse(buf.slice(0, i)) as Req;
        buf = buf.slice(i + 1);
        if (req.op === 'line') Object.assign(req, readRequestLine(req.line as string));
        seen.push(req);
        const a = answer(req);
        if (a !== undefined) s.write(JSON.stringify({ id: req.id, ok: true, ...a }) + '\n');
      }
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    seen,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(socketPath, { force: true });
    },
  };
}

function readRequestLine(line: string): { command?: string; target?: string; text?: string } {
  const r = parseLine(line);
  if (!r.ok) return {};
  return { command: r.message.command, target: r.message.params[0] ?? '', text: r.message.params[1] ?? '' };
}

/** A notice event for the plugin to show (what the agent tells the user about a refused or held line). */
export function noticeEvent(server: string, target: string, text: string, level = 'error'): Record<string, unknown> {
  return { server, type: 'notice', target, text, level };
}
