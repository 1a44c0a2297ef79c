import { expect } from 'chai';
import { ReplayGuard, ReplayStatus } from '../../src/crypto/index.js';

describe('src/crypto/replay.ts', function () {
  const m = (seq: number, over: Partial<{ room: string; epoch: number; sender: string }> = {}) => ({
    room: '#ops',
    epoch: 5,
    sender: 'alice',
    seq,
    ...over,
  });

  it('accepts increasing sequence numbers', function () {
    const g = new ReplayGuard();
    for (const seq of [1, 2, 3, 10]) expect(g.accept(m(seq)).status).to.equal(ReplayStatus.OK);
  });

  it('rejects a replayed sequence number', function () {
    const g = new ReplayGuard();
    g.accept(m(1));
    expect(g.accept(m(1)).status).to.equal(ReplayStatus.REPLAY);
    expect(g.accept(m(1, { room: '#OPS', sender: 'Alice' })).status).to.equal(ReplayStatus.REPLAY);
  });

  it('rejects a stale (lower) sequence number', function () {
    const g = new ReplayGuard();
    g.accept(m(5));
    expect(g.accept(m(4)).status).to.equal(ReplayStatus.STALE);
    expect(g.accept(m(6)).status).to.equal(ReplayStatus.OK);
  });

  it('keeps rooms, epochs and senders apart', function () {
    const g = new ReplayGuard();
    g.accept(m(5));
    expect(g.accept(m(1, { sender: 'bob' })).status).to.equal(ReplayStatus.OK);
    expect(g.accept(m(1, { room: '#dev' })).status).to.equal(ReplayStatus.OK);
    expect(g.accept(m(1, { epoch: 6 })).status).to.equal(ReplayStatus.OK);
  });

  it('retires old epochs and refuses them as STALE', function () {
    const g = new ReplayGuard({ epochsPerRoom: 2 });
    g.accept(m(1, { epoch: 1 }));
    g.accept(m(1, { epoch: 2 }));
    g.accept(m(1, { epoch: 3 })); // retires epoch 1
    expect(g.accept(m(2, { epoch: 1 })).status).to.equal(ReplayStatus.STALE);
    expect(g.accept(m(2, { epoch: 2 })).status).to.equal(ReplayStatus.OK);
  });

  it('stays bounded: least recently used rooms are forgotten', function () {
    const g = new ReplayGuard({ maxRooms: 2 });
    g.accept(m(9, { room: '#a' }));
    g.accept(m(9, { room: '#b' }));
    g.accept(m(9, { room: '#a' })); // replay, but touches #a
    g.accept(m(9, { room: '#c' })); // evicts #b
    expect(g.accept(m(9, { room: '#a' })).status).to.equal(ReplayStatus.REPLAY);
    expect(g.accept(m(9, { room: '#b' })).status).to.equal(ReplayStatus.OK);
  });

  it('throws on misuse', function () {
    expect(() => new ReplayGuard().accept(m(-1))).to.throw(TypeError);
    expect(() => new ReplayGuard({ maxRooms: 0 })).to.throw(TypeError);
  });
});
