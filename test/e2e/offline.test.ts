/**
 * e2e: an invitee who is offline (docs/PROTOCOL.md "Rooms that outlive a connection"), with the
 * real daemon, the real keybot and SealClient companions: she is told to join at login, keybot
 * keys her only once she logs in, relaying alice's signed operation first, and the members'
 * companions accept the epoch that adds her (the operation explains her). Then the edges of
 * history (issue 13): an invitee gets nothing said before she joined, a leaver nothing said after,
 * neither from the daemon (membership intervals) nor with the keys they hold.
 */
import { expect } from 'chai';
import { RawClient } from '../helpers/daemon.js';
import { next } from '../client/helpers.js';
import { roomIn, sameEpoch, until, withKeybot } from '../faults/helpers.js';

describe('e2e: an offline invitee joins at her login (real keybot, SealClient companions)', function () {
  this.timeout(60_000);
  const w = withKeybot(['alice', 'bob', 'carol', 'dave', 'erin']);
  const { connect } = w;

  it('alice invites the offline carol: she is pending, gets no key, and at her login every companion takes the epoch that adds her', async () => {
    const [alice, bob] = await Promise.all([connect('alice'), connect('bob')]);
    const room = roomIn(await alice.invite(['bob']));
    const e1 = await until(() => sameEpoch([alice, bob], room, ['alice', 'bob']), `one epoch of ${room}`);
    expect(await alice.inviteTo(room, ['carol'])).to.include(`carol is offline: they join ${room} when they next log in`);
    // carol logs in: the daemon puts her in the room; keybot relays the operation, then the epoch.
    const carol = await connect('carol');
    const e2 = await until(() => sameEpoch([alice, bob, carol], room, ['alice', 'bob', 'carol'], e1), `an epoch of ${room} with carol for all three`);
    expect(carol.joinedRooms()).to.deep.equal([room]);
    const got = next(carol, 'message', (m) => m.room === room);
    await alice.send(room, 'welcome, carol');
    expect(await got).to.include({ from: 'alice', text: 'welcome, carol', epoch: e2 });
    const atAlice = next(alice, 'message', (m) => m.room === room);
    await carol.send(room, 'thanks');
    expect(await atAlice).to.include({ from: 'carol', text: 'thanks', epoch: e2 });
  });

  /** A second session of `name`'s account, by hand: what the daemon serves that account from a room's history. */
  const historyOf = async (name: string, room: string): Promise<{ lines: string[]; fail?: string }> => {
    const raw = await RawClient.connect(w.t.port);
    try {
      raw.send('CAP LS 302', 'CAP REQ :draft/chathistory batch server-time message-tags', 'CAP END', `PASS ${w.users[name]!.password}`, `NICK ${name}`, `USER ${name} 0 * :${name}`);
      await raw.waitLine(/ 001 /);
      const from = raw.lines.length;
      raw.send(`CHATHISTORY LATEST ${room} * 100`, 'PING :history-done');
      await raw.waitLine(/PONG .*history-done/, 5000, from);
      const answer = raw.lines.slice(from);
      return { lines: answer.filter((l) => / PRIVMSG /.test(l)), ...(answer.some((l) => / FAIL CHATHISTORY /.test(l)) ? { fail: answer.find((l) => / FAIL CHATHISTORY /.test(l))! } : {}) };
    } finally {
      raw.send('QUIT :done');
      raw.socket.destroy();
    }
  };
  const textOf = (line: string): string => line.slice(line.indexOf(' :', line.indexOf(' PRIVMSG ')) + 2);

  it('erin, invited while offline, gets nothing said before she joined: not from the daemon, and no key of hers opens it', async () => {
    const [alice, dave] = await Promise.all([connect('alice'), connect('dave')]);
    const room = roomIn(await alice.invite(['dave']));
    const e1 = await until(() => sameEpoch([alice, dave], room, ['alice', 'dave']), `one epoch of ${room}`);
    expect(await alice.inviteTo(room, ['erin'])).to.include(`erin is offline: they join ${room} when they next log in`);
    // Said while erin is pending: dave reads it, so it is relayed and stored.
    const atDave = next(dave, 'message', (m) => m.room === room);
    await alice.send(room, 'said before erin joined');
    expect(await atDave).to.include({ text: 'said before erin joined', epoch: e1 });
    const stored = (await historyOf('dave', room)).lines;
    expect(stored.map(textOf)).to.have.length.greaterThan(0);

    const erin = await connect('erin');
    const e2 = await until(() => sameEpoch([alice, dave, erin], room, ['alice', 'dave', 'erin'], e1), `an epoch of ${room} with erin`);
    const atErin = next(erin, 'message', (m) => m.room === room);
    await alice.send(room, 'welcome, erin');
    expect(await atErin).to.include({ text: 'welcome, erin', epoch: e2 });

    // The daemon serves erin only her own membership: the welcome, none of the lines before it.
    const hers = await historyOf('erin', room);
    expect(hers.fail).to.equal(undefined);
    expect(hers.lines.map(textOf)).to.have.length(1);
    for (const line of stored) expect(hers.lines.map(textOf)).not.to.include(textOf(line));
    // And the keys: what was said before she joined does not open with any key erin holds.
    for (const line of stored) {
      const r = await erin.crypto!.handleIncoming({ from: 'alice', target: room, command: 'PRIVMSG', text: textOf(line) });
      expect(r.kind, `erin opening a line of epoch ${e1}`).to.not.equal('message');
    }
  });

  it('dave, who left, can neither fetch what is said after nor open it with the keys he kept', async () => {
    const [alice, bob, dave] = [w.clients.find((c) => c.nick === 'alice')!, await connect('bob'), w.clients.find((c) => c.nick === 'dave')!];
    const room = roomIn(await alice.invite(['bob', 'dave']));
    const e1 = await until(() => sameEpoch([alice, bob, dave], room, ['alice', 'bob', 'dave']), `one epoch of ${room}`);
    await dave.leave(room);
    const e2 = await until(() => sameEpoch([alice, bob], room, ['alice', 'bob'], e1), `an epoch of ${room} without dave`);
    const atBob = next(bob, 'message', (m) => m.room === room);
    await alice.send(room, 'said after dave left');
    expect(await atBob).to.include({ text: 'said after dave left', epoch: e2 });
    const after = (await historyOf('bob', room)).lines.filter((l) => l.includes(' PRIVMSG '));
    expect(after).to.have.length.greaterThan(0);

    const his = await historyOf('dave', room);
    for (const line of after) expect(his.lines.map(textOf)).not.to.include(textOf(line));
    for (const line of after) {
      const r = await dave.crypto!.handleIncoming({ from: 'alice', target: room, command: 'PRIVMSG', text: textOf(line) });
      expect(r.kind, `dave opening a line of epoch ${e2}`).to.not.equal('message');
    }
  });
});
