import { expect } from 'chai';
import { backoffDelay } from '../../src/protocol/backoff.js';

describe('src/protocol/backoff.ts', () => {
  it('doubles the delay per attempt up to the cap, with jitter taken off the delay', function () {
    const none = (): number => 0;
    const full = (): number => 1;
    const o = { initialMs: 100, maxMs: 1000, jitter: 0.5 };
    expect([0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, o, none))).to.deep.equal([100, 200, 400, 800, 1000, 1000]);
    expect([0, 1, 4].map((a) => backoffDelay(a, o, full))).to.deep.equal([50, 100, 500]);
    expect(backoffDelay(0, {}, none)).to.equal(1000);
    expect(backoffDelay(40, {}, none)).to.equal(30_000);
    expect(backoffDelay(3, { initialMs: 100, jitter: 0 }, full)).to.equal(800);
  });

  it('uses no jitter unless asked to', () => {
    expect(backoffDelay(2, { initialMs: 100 }, () => 1)).to.equal(400);
  });
});
