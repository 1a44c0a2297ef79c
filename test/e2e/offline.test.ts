/**
 * e2e: an invitee who is offline (docs/PROTOCOL.md "Rooms that outlive a connection"), with the
 * real daemon, the real keybot and SealClient companions: she is told to join at login, keybot
 * keys her only once she logs in, relaying alice's signed operation first, and the members'
 * companions accept the epoch that adds her (the operation explains her).
 */
import { expect } from 'chai';
import { startKeybot, type Keybot } from '../../src/bot/main.js';
import type { SealClient } from '../../src/client/client.js';
import { startTestDaemon, type TestDaemon, type TestUser } from '../helpers/daemon.js';
import { loginAs, testKeybotOptions } from '../helpers/keybot.js';
import { next } from '../client/helpers.js';
import { companion, roomIn, sameEpoch, until } from '../faults/helpers.js';

describe('e2e: an offline invitee joins at her login (real keybot, SealClient companions)', function () {
  this.timeout(60_000);
  let t: TestDaemon;
  let bot: Keybot;
  const users: Record<string, TestUser> = {};
  const clients: SealClient[] = [];

  before(async () => {
    t = await startTestDaemon();
    for (const n of ['alice', 'bob', 'carol']) users[n] = await t.addUser(n);
    bot = await startKeybot(testKeybotOptions(t));
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
    await bot?.close();
    await t?.stop();
  });

  const connect = async (name: string): Promise<SealClient> => {
    const c = await companion({ ...loginAs(t, users[name]!), keybotFingerprint: bot.fingerprint, reconnect: false });
    clients.push(c);
    return c;
  };

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
});
