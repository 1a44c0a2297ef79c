import { expect } from 'chai';
import { ChildSupervisor } from '../../src/bot/supervisor.js';

function node(script: string, opts: Partial<ConstructorParameters<typeof ChildSupervisor>[0]> = {}): ChildSupervisor {
  return new ChildSupervisor({ name: 'test-child', command: process.execPath, args: ['-e', script], stdio: 'ignore', ...opts });
}

describe('src/bot/supervisor.ts', function () {
  this.timeout(10_000);

  it('restarts a child that dies, backing off exponentially', async function () {
    const sup = node('setTimeout(() => process.exit(3), 20)', { initialBackoffMs: 50, maxBackoffMs: 400 });
    const exits: Array<{ code: number | null; restartInMs: number | null }> = [];
    sup.on('exit', (e) => exits.push(e));
    sup.start();
    const deadline = Date.now() + 5000;
    while (exits.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await sup.stop();
    expect(exits.slice(0, 4).map((e) => e.code)).to.deep.equal([3, 3, 3, 3]);
    expect(exits.slice(0, 4).map((e) => e.restartInMs)).to.deep.equal([50, 100, 200, 400]);
  });

  it('stops a running child with SIGTERM and does not restart it', async function () {
    const sup = node('setInterval(() => {}, 1000)');
    let spawns = 0;
    sup.on('spawn', () => spawns++);
    const exited = new Promise<{ signal: NodeJS.Signals | null; restartInMs: number | null }>((r) => sup.once('exit', r));
    sup.start();
    await new Promise<number>((r) => sup.once('spawn', r));
    await sup.stop();
    const e = await exited;
    expect(e.signal).to.equal('SIGTERM');
    expect(e.restartInMs).to.equal(null);
    expect(sup.pid).to.equal(undefined);
    await new Promise((r) => setTimeout(r, 200));
    expect(spawns).to.equal(1);
  });

  it('kills a child that ignores SIGTERM after the stop timeout', async function () {
    const sup = node("process.on('SIGTERM', () => {}); process.send('ready'); setInterval(() => {}, 1000)", { stopTimeoutMs: 200 });
    const exited = new Promise<{ signal: NodeJS.Signals | null }>((r) => sup.once('exit', r));
    sup.start();
    await new Promise<number>((r) => sup.once('spawn', r));
    await new Promise((r) => setTimeout(r, 300)); // let it install its SIGTERM handler
    const t0 = Date.now();
    await sup.stop();
    expect((await exited).signal).to.equal('SIGKILL');
    expect(Date.now() - t0).to.be.within(150, 2000);
  });
});
