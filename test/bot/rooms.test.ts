import { expect } from 'chai';
import { Room, RoomRegistry } from '../../src/bot/rooms.js';
import { isServiceRoom, keyEventText, newRoomName } from '../../src/bot/service.js';

describe('src/bot/rooms.ts', function () {
  it('counts every membership change in version, and only real changes', function () {
    const r = new Room('#sc-abc');
    expect(r.addMember('Alice')).to.equal(true);
    expect(r.addMember('alice')).to.equal(false);
    expect(r.version).to.equal(1);
    expect(r.hasMember('ALICE')).to.equal(true);
    expect(r.removeMember('bob')).to.equal(false);
    expect(r.removeMember('alice')).to.equal(true);
    expect(r.version).to.equal(2);
  });

  it('setMembers replaces the list and reports whether it changed', function () {
    const r = new Room('#sc-abc');
    expect(r.setMembers(['alice', 'bob'])).to.equal(true);
    expect(r.setMembers(['Bob', 'ALICE'])).to.equal(false);
    expect(r.version).to.equal(1);
    expect(r.setMembers(['alice'])).to.equal(true);
    expect([...r.members.values()]).to.deep.equal(['alice']);
  });

  it('tracks flag modes from parsed MODE changes', function () {
    const r = new Room('#sc-abc');
    r.applyModes([{ mode: '+i' }, { mode: '+s' }]);
    expect([...r.modes].sort()).to.deep.equal(['i', 's']);
    r.applyModes([{ mode: '-i' }]);
    expect([...r.modes]).to.deep.equal(['s']);
  });

  it('wipes the old key when a new epoch is installed, and the current one on dispose', function () {
    const r = new Room('#sc-abc');
    const k1 = new Uint8Array(32).fill(7);
    const k2 = new Uint8Array(32).fill(9);
    r.pendingReasons.push('alice joined');
    r.forced = true;
    r.install({ epoch: 1, key: k1, members: [], startedAt: 0 }, 3);
    expect(r.keyedVersion).to.equal(3);
    expect(r.pendingReasons).to.deep.equal([]);
    expect(r.forced).to.equal(false);
    r.install({ epoch: 2, key: k2, members: [], startedAt: 0 }, 4);
    expect([...k1].every((b) => b === 0)).to.equal(true);
    expect([...k2].every((b) => b === 9)).to.equal(true);
    r.dispose();
    expect([...k2].every((b) => b === 0)).to.equal(true);
    expect(r.current).to.equal(undefined);
  });

  it('until() resolves on the state change that satisfies it, and times out otherwise', async function () {
    const r = new Room('#sc-abc');
    const joined = r.until(() => r.hasMember('bob'), 1000, 'bob');
    setTimeout(() => r.addMember('bob'), 10);
    await joined;
    let err: Error | undefined;
    await r.until(() => r.hasMember('carol'), 30, 'carol').catch((e: Error) => (err = e));
    expect(err?.message).to.equal('#sc-abc: timed out waiting for carol');
  });

  it('the registry finds rooms case-insensitively and lists the rooms of a member', function () {
    const reg = new RoomRegistry();
    reg.ensure('#sc-B').addMember('alice');
    reg.ensure('#sc-a').addMember('alice');
    reg.ensure('#sc-c').addMember('bob');
    expect(reg.get('#SC-b')).to.equal(reg.ensure('#sc-b'));
    expect(reg.roomsOf('ALICE').map((r) => r.name)).to.deep.equal(['#sc-a', '#sc-B']);
    const key = new Uint8Array(32).fill(1);
    reg.get('#sc-c')!.install({ epoch: 1, key, members: [], startedAt: 0 }, 1);
    reg.clear();
    expect(reg.size).to.equal(0);
    expect(key.every((b) => b === 0)).to.equal(true);
  });
});

describe('src/bot/service.ts helpers', function () {
  it('makes random #sc- room names of 10 base32 characters', function () {
    const names = new Set(Array.from({ length: 200 }, () => newRoomName()));
    expect(names.size).to.equal(200);
    for (const n of names) expect(n).to.match(/^#sc-[a-z2-7]{10}$/);
  });

  it('recognises keybot rooms by prefix, case-insensitively', function () {
    expect(isServiceRoom('#sc-abc')).to.equal(true);
    expect(isServiceRoom('#SC-abc')).to.equal(true);
    expect(isServiceRoom('#sc-')).to.equal(false);
    expect(isServiceRoom('#chat')).to.equal(false);
  });

  it('announces an epoch with its members, or their count when there are many', function () {
    expect(keyEventText(5, ['alice', 'bob'], 'bob joined')).to.equal('new key: epoch 5 for alice, bob (bob joined)');
    const many = Array.from({ length: 11 }, (_, i) => `u${i}`);
    expect(keyEventText(6, many, 'scheduled rotation')).to.equal('new key: epoch 6 for 11 members (scheduled rotation)');
  });
});
