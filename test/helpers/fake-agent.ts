/**
 * A scripted sealchat agent on a unix socket, for the plugin tests: answers every request through
 * `answer` (undefined: never answers, an agent that hangs), records what it was asked.
 */
import { rm } from 'node:fs/promises';
import net from 'node:net';

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

