/**
 * The sealchat daemon under test, in its own process so that its CPU time and memory can be
 * read from /proc without the load generators' share. Started by bench/run.ts with
 * `node --import tsx --expose-gc bench/daemon-proc.ts <config.json>`; talks over the fork IPC
 * channel: 'ready' with the port, 'mem' (after a full GC) on request, 'stop'.
 */
import v8 from 'node:v8';
import { loadConfig } from '../src/ircd/config.js';
import { startDaemon } from '../src/ircd/daemon.js';
import { setLogLevel } from '../src/util/log.js';

export type ToDaemon = { cmd: 'mem' } | { cmd: 'stop' };
export type FromDaemon =
  | { ev: 'ready'; port: number }
  | { ev: 'mem'; rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number; youngResident: number }
  | { ev: 'error'; message: string };

const file = process.argv[2];
if (!file) {
  console.error('usage: daemon-proc.ts <config.json>');
  process.exit(2);
}
// One log line per login is the daemon's normal behaviour, but the benchmark output should stay
// readable; warnings and errors still show.
setLogLevel('warn');

const reply = (m: FromDaemon): void => void process.send?.(m);

try {
  const config = await loadConfig({ file });
  const daemon = await startDaemon(config);
  const port = daemon.listeners.find((l) => !l.tls)!.port;
  process.on('message', (msg: ToDaemon) => {
    if (msg.cmd === 'mem') {
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      gc?.();
      const m = process.memoryUsage();
      // V8's young generation as resident pages: it grows with the allocation of a burst of
      // logins once, whatever the number of connections kept (docs/PERFORMANCE.md, idle memory).
      const young = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.physical_space_size ?? 0;
      reply({ ev: 'mem', rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, youngResident: young });
    } else if (msg.cmd === 'stop') {
      void daemon.close().finally(() => process.exit(0));
    }
  });
  process.on('disconnect', () => void daemon.close().finally(() => process.exit(0)));
  reply({ ev: 'ready', port });
} catch (err) {
  reply({ ev: 'error', message: (err as Error)?.stack ?? String(err) });
  process.exit(1);
}
