/**
 * Edges of ReplayGuard that the mutation run (issue 18) showed untested: the gap it reports, and
 * misuse with something that is not an options object.
 */
import { expect } from 'chai';
import { ReplayGuard, ReplayStatus } from '../../src/crypto/index.js';

describe('src/crypto/replay.ts: what accept reports', function () {
  const m = (seq: number) => ({ room: '#ops', epoch: 5, sender: 'alice', seq });

  it("reports the sender's previous sequence number, so a gap can be shown, and none for the first message", function () {
    const g = new ReplayGuard();
    expect(g.accept(m(1))).to.deep.equal({ status: ReplayStatus.OK });
    expect(g.accept(m(4))).to.deep.equal({ status: ReplayStatus.OK, previous: 1 });
    expect(g.accept(m(5))).to.deep.equal({ status: ReplayStatus.OK, previous: 4 });
    expect(g.accept(m(5))).to.deep.equal({ status: ReplayStatus.REPLAY });
  });

  it('refuses null and a string as the options object with its own TypeError', function () {
    expect(() => new ReplayGuard().accept(null as unknown as ReturnType<typeof m>)).to.throw(TypeError, /one options object/);
    expect(() => new ReplayGuard().accept('#ops' as unknown as ReturnType<typeof m>)).to.throw(TypeError, /one options object/);
  });
});
