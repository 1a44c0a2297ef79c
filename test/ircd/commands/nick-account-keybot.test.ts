/**
 * With config forceNickEqualsAccount off, keybot still knows who sends a command by account
 * (the account-tag the daemon always offers and keybot's client requests), never by nick: the
 * real daemon and the real keybot, raw clients (docs/OPERATIONS.md "Nicks other than the account").
 */
import { expect } from 'chai';
import { startKeybot, type Keybot } from '../../../src/bot/main.js';
import { RawClient, startTestDaemon, type TestDaemon, type TestUser } from '../../helpers/daemon.js';
import { testKeybotOptions } from '../../helpers/keybot.js';

describe('keybot with config forceNickEqualsAccount off (real daemon, real keybot)', function () {
  this.timeout(30_000);
  let t: TestDaemon;
  let bot: Keybot;
  let val: TestUser;
  const open: RawClient[] = [];

  before(async () => {
    t = await startTestDaemon({ requireAccount: false, forceNickEqualsAccount: false });
    val = await t.addUser('val');
    bot = await startKeybot(testKeybotOptions(t));
  });
  after(async () => {
    for (const c of open) c.close();
    await bot?.close();
    await t?.stop();
  });

  const ask = async (c: RawClient, nick: string, text: string): Promise<string> => {
    const from = c.lines.length;
    c.send(`PRIVMSG keybot :${text}`);
    return c.waitLine(new RegExp(`^(@\\S+ )?:keybot!\\S+ NOTICE ${nick} :`), 10_000, from);
  };

  it('takes a guest for a guest and an account under another nick for its account', async () => {
    const g = await RawClient.connect(t.port);
    open.push(g);
    g.send('NICK ghost', 'USER g 0 * :g');
    await g.waitLine(/ 001 ghost /);
    // Were keybot to take the nick for the account, the guest would be an account with no rooms.
    expect(await ask(g, 'ghost', 'rooms')).to.match(/you need an account to use rooms/);
    const v = await RawClient.connect(t.port);
    open.push(v);
    v.send(`PASS val:${val.password}`, 'NICK vv', 'USER v 0 * :v');
    await v.waitLine(/ 001 vv /);
    expect(await ask(v, 'vv', 'rooms')).to.match(/you are in no rooms/);
  });
});
