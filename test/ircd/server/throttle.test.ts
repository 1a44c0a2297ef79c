import { expect } from 'chai';
import { KeyedRateLimiter } from '../../../src/ircd/server/throttle.js';

describe('src/ircd/server/throttle.ts', () => {
  it('allows `perMinute` attempts at once, then refills over the minute', () => {
    const l = new KeyedRateLimiter(3);
    const t0 = 1_000_000;
    expect([l.take('ip', t0), l.take('ip', t0), l.take('ip', t0), l.take('ip', t0)]).to.deep.equal([true, true, true, false]);
    expect(l.take('other', t0)).to.equal(true);
    expect(l.take('ip', t0 + 20_000)).to.equal(true); // one token back after a third of a minute
    expect(l.take('ip', t0 + 20_000)).to.equal(false);
  });

  it('refunds successful attempts so only failures count', () => {
    const l = new KeyedRateLimiter(1);
    expect(l.take('acct', 0)).to.equal(true);
    l.refund('acct');
    expect(l.take('acct', 0)).to.equal(true);
    expect(l.take('acct', 0)).to.equal(false);
  });

  it('forgets keys that are full again, and treats a rate of 0 as unlimited', () => {
    const l = new KeyedRateLimiter(2);
    l.take('a', 0);
    l.sweep(120_000);
    expect((l as unknown as { buckets: Map<string, unknown> }).buckets.size).to.equal(0);
    const open = new KeyedRateLimiter(0);
    for (let i = 0; i < 100; i++) expect(open.take('x')).to.equal(true);
  });
});
