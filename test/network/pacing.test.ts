/**
 * keybot's pacing under a network's flood limits (src/bot/network/pacing.ts), on real InspIRCd 3
 * with its DEFAULT connect class (threshold 10, commandrate 1000, recvq 8192): first the limit
 * itself (20 envelope-sized lines sent at once end a client's connection), then the same lines
 * through keybot's pacer with its defaults (DEFAULT_PACE), which all arrive, in order.
 */
import { expect } from 'chai';
import type { Client as IrcClient } from 'irc-framework';
import { DEFAULT_PACE, paceLines } from '../../src/bot/network/pacing.js';
import { until } from '../helpers/poll.js';
import { DEFAULT_CLASS, connectPlain, missing, startNetwork, type TestNetwork } from './servers.js';

describe("keybot paces its lines under InspIRCd's default flood limits (src/bot/network/pacing.ts)", function () {
  this.timeout(180_000);
  const why = missing();
  let net: TestNetwork | undefined;
  const plains: IrcClient[] = [];

  before(async function () {
    if (why) return this.skip();
    net = await startNetwork({ connectClass: DEFAULT_CLASS });
  });

  after(async () => {
    for (const p of plains) p.quit();
    await net?.stop();
  });

  it('(skip reason) needs the Debian servers', function () {
    if (why) this.skip();
  });

  it('the limit: 20 lines of 415 bytes sent at once end the connection', async function () {
    if (why) return this.skip();
    const a = await connectPlain(net!.port, 'flooder');
    const b = await connectPlain(net!.port, 'target');
    plains.push(a, b);
    const closed = new Promise<void>((resolve) => a.once('close', () => resolve()));
    a.raw(Array.from({ length: 20 }, (_, i) => `NOTICE target :${String(i).padStart(4, '0')}${'x'.repeat(400)}`).join('\r\n'));
    await closed;
  });

  it("paced by keybot's pacer with its defaults, the same 20 lines all arrive, in order, and the connection stays", async function () {
    if (why) return this.skip();
    const a = await connectPlain(net!.port, 'paced');
    const b = await connectPlain(net!.port, 'reader');
    plains.push(a, b);
    paceLines(a, DEFAULT_PACE);
    let closed = false;
    a.once('close', () => (closed = true));
    const got: string[] = [];
    b.on('notice', (e: { nick?: string; message: string }) => e.nick === 'paced' && got.push(e.message.slice(0, 4)));
    const lines = Array.from({ length: 20 }, (_, i) => `NOTICE reader :${String(i).padStart(4, '0')}${'x'.repeat(400)}`);
    a.raw(lines.join('\r\n'));
    await until(() => got.length === 20 || closed, 'the 20 lines (or a disconnect)', 40_000);
    expect(closed, 'the paced client was disconnected').to.equal(false);
    expect(got).to.deep.equal(lines.map((_, i) => String(i).padStart(4, '0')));
    // Still connected and answered: a round trip after the last line.
    const w = await new Promise<{ nick: string }>((resolve) => a.whois('reader', resolve));
    expect(w.nick).to.equal('reader');
  });
});
