import { expect } from 'chai';
import { ChildSupervisor } from '../../src/bot/supervisor.js';

function node(script: string, opts: Partial<ConstructorParameters<typeof ChildSupervisor>[0]> = {}): ChildSupervisor {
  return new ChildSupervisor({ name: 'test-child', command: process.execPath, args: ['-e', script], stdio: 'ignore', ...opts });
}

/** The next `message` the child sends that equals `want`. */
function message(sup: ChildSupervisor, want: string): Promise<void> {
  return new Promise((resolve) => {
    const on = (m: unknown): void => {
      if (m !== want) return;
      sup.off('message', on);
      resolve();
    };
    sup.on('message', on);
  });
}

describe('src/bot/supervisor.ts', function () {
  this.timeout(10_000);

  it('restarts a child that dies, backing off exponentially', async function () {
    const sup = node('setTimeout(() => process.exit(3), 20)', { initialBackoffMs: 50, maxBackoffMs: 400 });
    const exits: Array<{ code: number | null; restartInMs: number | null }> = [];
    const four = new Promise<void>((resolve) =>
      sup.on('exit', (e) => {
        exits.push(e);
        if (exits.length === 4) resolve();
      }),
    );
    sup.start();
    await four;
    await sup.stop();
    expect(exits.slice(0, 4).map((e) => e.code)).to.deep.equal([3, 3, 3, 3]);
    expect(exits.slice(0, 4).map((e) => e.restartInMs)).to.deep.equal([50, 100, 200, 400]);
  });

  it('stops a running child with SIGTERM and does not restart it', async function () {
    const sup = node('setInterval(() => {}, 1000)', { initialBackoffMs: 1 });
    let spawns = 0;
    sup.on('spawn', () => spawns++);
    const exited = new Promise<{ signal: NodeJS.Signals | null; restartInMs: number | null }>((r) => sup.once('exit', r));
    sup.start();
    await new Promise<number>((r) => sup.once('spawn', r));
    await sup.stop();
    const e = await exited;
    expect(e.signal).to.equal('SIGTERM');
    // No restart is scheduled (a restart would be announced here with its delay).
    expect(e.restartInMs).to.equal(null);
    expect(sup.pid).to.equal(undefined);
    expect(spawns).to.equal(1);
  });

  it('kills a child that ignores SIGTERM after the stop timeout', async function () {
    // The child says 'ready' once its SIGTERM handler is in place, and 'term' when SIGTERM comes.
    const sup = node("process.on('SIGTERM', () => process.send('term')); process.send('ready'); setInterval(() => {}, 1000)", { stopTimeoutMs: 200 });
    const exited = new Promise<{ signal: NodeJS.Signals | null }>((r) => sup.once('exit', r));
    const ready = message(sup, 'ready');
    sup.start();
    await ready;
    const events: string[] = [];
    const term = message(sup, 'term').then(() => events.push('term'));
    const t0 = performance.now();
    await sup.stop();
    const e = await exited;
    events.push(`exit ${e.signal}`);
    await term;
    // SIGTERM first (the child saw it and lived on), then SIGKILL.
    expect(events).to.deep.equal(['term', 'exit SIGKILL']);
    console.log(`      [figure] stop of a child ignoring SIGTERM (stopTimeoutMs 200): killed after ${(performance.now() - t0).toFixed(0)} ms`);
  });
});
