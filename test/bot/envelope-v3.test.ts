/**
 * Envelope version 3 end to end (docs/PROTOCOL.md "Envelope version 3", "Rooms that outlive a
 * connection"): the real daemon, the real keybot and SealClient companions (the companion core).
 * A member who was offline while an epoch passed holds no epoch to follow its notice from: keybot
 * gives them a join envelope (in their mailbox, and again at their login), and they read on, and
 * follow the next epoch by its notice and their key line like everyone else.
 */
import { expect } from 'chai';
import { next } from '../client/helpers.js';
import { roomIn, sameEpoch, until, withKeybot } from '../faults/helpers.js';

describe('src/bot envelope version 3 (real daemon, real keybot, SealClient companions)', function () {
  this.timeout(60_000);
  const w = withKeybot(['alice', 'bob', 'carol']);
  const { connect } = w;

  it('a member offline while an epoch passed gets a join envelope at login and reads on, then follows the next notice', async () => {
    const [alice, bob, carol] = await Promise.all([connect('alice'), connect('bob'), connect('carol')]);
    const room = roomIn(await alice.invite(['bob']));
    const e1 = await until(() => sameEpoch([alice, bob], room, ['alice', 'bob']), `one epoch of ${room}`);
    // bob goes offline (his companion is gone); alice adds carol: an epoch bob cannot follow by its notice.
    await bob.quit();
    await until(() => w.t.daemon.server.findClient('bob') === undefined, 'bob offline');
    expect(await alice.inviteTo(room, ['carol'])).to.include(`added carol to ${room}`);
    const e2 = await until(() => sameEpoch([alice, carol], room, ['alice', 'bob', 'carol'], e1), `an epoch of ${room} with carol`);
    // bob logs in again (a new companion, nothing held): the daemon puts him back; keybot's join envelope keys him.
    const back = await connect('bob');
    expect(await until(() => sameEpoch([alice, back, carol], room, ['alice', 'bob', 'carol'], e1), `bob back on epoch ${e2}`)).to.equal(e2);
    const got = next(back, 'message', (m) => m.room === room);
    await alice.send(room, 'while you were away, carol came');
    expect(await got).to.include({ from: 'alice', text: 'while you were away, carol came', epoch: e2 });
    // The next change reaches bob as everyone: the notice and his key line.
    await carol.leave(room);
    const e3 = await until(() => sameEpoch([alice, back], room, ['alice', 'bob'], e2), `an epoch of ${room} without carol`);
    const atAlice = next(alice, 'message', (m) => m.room === room && m.from === 'bob');
    await back.send(room, 'reading on');
    expect(await atAlice).to.include({ from: 'bob', text: 'reading on', epoch: e3 });
  });
});

describe('src/bot envelope version 3 with the roster in pages (real daemon, real keybot, SealClient companions)', function () {
  this.timeout(60_000);
    // Every roster in pages, as a room past ~140 members has it.
  const w = withKeybot(['alice', 'bob', 'carol', 'dave', 'erin'], { tuning: { inlineRosterBytes: 0 } });
  const { connect } = w;

  it('keys a room whose roster comes in pages: at its opening (pages to the room), to one joiner (pages to them alone), and at a login', async () => {
    const [alice, bob, carol, dave, erin] = await Promise.all(['alice', 'bob', 'carol', 'dave', 'erin'].map(connect));
    const room = roomIn(await alice!.invite(['bob', 'carol', 'dave']));
    const four = ['alice', 'bob', 'carol', 'dave'];
    const e1 = await until(() => sameEpoch([alice!, bob!, carol!, dave!], room, four), `${room} opened with paged rosters`);
    // One joiner of five: the others follow by the notice; erin's join envelope names pages sent to her.
    expect(await alice!.inviteTo(room, ['erin'])).to.include(`added erin to ${room}`);
    const five = [...four, 'erin'];
    const e2 = await until(() => sameEpoch([alice!, bob!, carol!, dave!, erin!], room, five, e1), `erin keyed in ${room}`);
    const atAlice = next(alice!, 'message', (m) => m.room === room && m.from === 'erin');
    await erin!.send(room, 'paged in');
    expect(await atAlice).to.include({ from: 'erin', text: 'paged in', epoch: e2 });
    // bob's companion goes and comes back: keybot re-sends the current epoch's join envelope and its pages at login.
    await bob!.quit();
    await until(() => w.t.daemon.server.findClient('bob') === undefined, 'bob offline');
    const back = await connect('bob');
    await until(() => back.crypto?.roomInfo(room)?.hasKey === true && back.crypto.roomInfo(room)!.members.length === 5 ? true : undefined, `bob back in ${room}`);
    const atBob = next(back, 'message', (m) => m.room === room && m.from === 'carol');
    await carol!.send(room, 'welcome back');
    expect(await atBob).to.include({ from: 'carol', text: 'welcome back' });
  });
});
