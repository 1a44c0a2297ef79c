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

  it('refuses an epoch older than every one it keeps, once the room is full, as STALE', function () {
    const g = new ReplayGuard({ epochsPerRoom: 2 });
    g.accept(m(1, { epoch: 5 }));
    g.accept(m(1, { epoch: 6 }));
    // Epoch 4 was never seen, but keeping it would push out a newer one: it is the one retired.
    expect(g.accept(m(1, { epoch: 4 })).status).to.equal(ReplayStatus.STALE);
    expect(g.accept(m(2, { epoch: 5 })).status).to.equal(ReplayStatus.OK);
    expect(g.accept(m(2, { epoch: 6 })).status).to.equal(ReplayStatus.OK);
    // Retiring never moves backwards: after epoch 7 retires 5, epoch 4 is still refused.
    g.accept(m(1, { epoch: 7 }));
    expect(g.accept(m(3, { epoch: 5 })).status).to.equal(ReplayStatus.STALE);
    expect(g.accept(m(9, { epoch: 4 })).status).to.equal(ReplayStatus.STALE);
    expect(g.accept(m(3, { epoch: 6 })).status).to.equal(ReplayStatus.OK);
  });

  it('keeps the most recently active senders of an epoch when it must forget one', function () {
    const g = new ReplayGuard({ maxSendersPerEpoch: 2 });
    g.accept(m(1, { sender: 'alice' }));
    g.accept(m(1, { sender: 'bob' }));
    g.accept(m(2, { sender: 'alice' })); // alice is now the most recent
    g.accept(m(1, { sender: 'carol' })); // forgets bob, the least recent
    expect(g.accept(m(2, { sender: 'alice' })).status).to.equal(ReplayStatus.REPLAY);
    expect(g.accept(m(1, { sender: 'carol' })).status).to.equal(ReplayStatus.REPLAY);
    expect(g.accept(m(1, { sender: 'bob' })).status).to.equal(ReplayStatus.OK);
  });

  it('accepts epoch 0 and sequence number 0, and forgets a room on request', function () {
    const g = new ReplayGuard();
    expect(g.accept(m(0, { epoch: 0 })).status).to.equal(ReplayStatus.OK);
    expect(g.accept(m(0, { epoch: 0 })).status).to.equal(ReplayStatus.REPLAY);
    g.forgetRoom({ room: '#OPS' });
    expect(g.accept(m(0, { epoch: 0 })).status).to.equal(ReplayStatus.OK);
  });

  it('throws on misuse', function () {
    expect(() => new ReplayGuard().accept(m(-1))).to.throw(TypeError, /non-negative integers/);
    expect(() => new ReplayGuard().accept(m(1, { epoch: -1 }))).to.throw(TypeError, /non-negative integers/);
    expect(() => new ReplayGuard().accept(m(1.5))).to.throw(TypeError, /non-negative integers/);
    expect(() => new ReplayGuard().accept(m(2 ** 53))).to.throw(TypeError, /non-negative integers/);
    expect(() => new ReplayGuard().accept(m(1, { epoch: 0.5 }))).to.throw(TypeError, /non-negative integers/);
    expect(() => new ReplayGuard().accept({ ...m(1), room: 5 as unknown as string })).to.throw(TypeError, /must be strings/);
    expect(() => new ReplayGuard().accept({ ...m(1), sender: undefined as unknown as string })).to.throw(TypeError, /must be strings/);
    expect(() => new ReplayGuard().accept(undefined as unknown as ReturnType<typeof m>)).to.throw(TypeError, /one options object/);
    expect(() => new ReplayGuard({ maxRooms: 0 })).to.throw(TypeError, /maxRooms must be a positive integer/);
    expect(() => new ReplayGuard({ epochsPerRoom: 1.5 })).to.throw(TypeError, /epochsPerRoom must be a positive integer/);
    expect(() => new ReplayGuard({ maxSendersPerEpoch: -1 })).to.throw(TypeError, /maxSendersPerEpoch must be a positive integer/);
    expect(() => new ReplayGuard({ maxRooms: 1, epochsPerRoom: 1, maxSendersPerEpoch: 1 })).to.not.throw();
  });
});
