/**
 * The mailbox (docs/PROTOCOL.md "Rooms that outlive a connection"): keybot's NOTICEs to an
 * offline account wait for its next login; nobody else's messages do.
 */
import { expect } from 'chai';
import { ControlClient } from '../../../src/protocol/control-client.js';
import { keybotPassword, RawClient, startTestDaemon, type TestDaemon, type TestUser } from '../../helpers/daemon.js';
import { sleep } from '../../helpers/poll.js';

describe('src/ircd/commands/messaging.ts: the mailbox of an offline account', function () {
  this.timeout(20000);
  let t: TestDaemon;
  let keybot: RawClient;
  const users: Record<string, TestUser> = {};
  const open: RawClient[] = [];

  const login = async (name: string, caps: string[] = []): Promise<RawClient> => {
    const c = await RawClient.connect(t.port);
    open.push(c);
    if (caps.length) c.send('CAP LS 302', `CAP REQ :${caps.join(' ')}`, 'CAP END');
    await c.login(name, users[name]!.password);
    return c;
  };

  before(async () => {
    t = await startTestDaemon({ history: { maxMessages: 10_000, maxAgeDays: 30, mailboxMax: 3 } });
    for (const n of ['alice', 'bob', 'carol']) users[n] = await t.addUser(n);
    keybot = await RawClient.connect(t.port);
    await keybot.login('keybot', await keybotPassword(t));
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });
  after(async () => {
    keybot.close();
    await t.stop();
  });

  it("keeps keybot's NOTICE to an offline account and delivers it once at login, with its original time and msgid", async () => {
    const from = keybot.lines.length;
    keybot.send('NOTICE alice :SC1E envelope part 1', 'NOTICE alice :SC1E envelope part 2');
    await keybot.sync();
    expect(keybot.lines.slice(from).filter((l) => / 401 /.test(l))).to.deep.equal([]);
    const sentBy = Date.now();
    await sleep(20); // so that a time stamped at delivery could not pass for the original one
    const alice = await login('alice', ['server-time', 'message-tags']);
    const first = await alice.waitLine(/NOTICE alice :SC1E envelope part 1$/);
    const second = await alice.waitLine(/NOTICE alice :SC1E envelope part 2$/);
    expect(alice.lines.indexOf(first)).to.be.lessThan(alice.lines.indexOf(second));
    expect(first).to.match(/^@\S*msgid=[^; ]+/);
    expect(first).to.match(/^@\S*time=\S+ :keybot!\S+ NOTICE/);
    const time = Date.parse(/time=([^; ]+)/.exec(first)![1]!);
    expect(time).to.be.at.most(sentBy);
    // The mailbox was emptied: the next login gets nothing.
    alice.close();
    const again = await login('alice');
    const end = await again.sync();
    expect(again.lines.slice(0, end).filter((l) => /SC1E envelope/.test(l))).to.deep.equal([]);
  });

  it('delivers the mailbox after the room JOINs, and a client without tags gets the plain line', async () => {
    const control = await ControlClient.connect(t.daemon.controlPath);
    try {
      await control.call('room.add', { room: '#sc-mailboxroom', accounts: ['bob'] });
    } finally {
      control.close();
    }
    keybot.send('NOTICE bob :SC1E for bob');
    await keybot.sync();
    const bob = await login('bob');
    const notice = await bob.waitLine(/NOTICE bob :SC1E for bob$/);
    expect(notice).to.match(/^:keybot!/);
    const join = bob.lines.findIndex((l) => / JOIN #sc-mailboxroom$/.test(l));
    expect(join).to.be.greaterThan(-1);
    expect(join).to.be.lessThan(bob.lines.indexOf(notice));
  });

  it('keeps at most history.mailboxMax lines per account, dropping the oldest', async () => {
    keybot.send(...[1, 2, 3, 4, 5].map((i) => `NOTICE carol :line ${i}`));
    await keybot.sync();
    const carol = await login('carol');
    const end = await carol.sync();
    expect(carol.lines.slice(0, end).filter((l) => / NOTICE carol /.test(l)).map((l) => l.replace(/^.* :/, ''))).to.deep.equal(['line 3', 'line 4', 'line 5']);
  });

  it("keeps nobody else's messages: a PRIVMSG to an offline account gets 401, a NOTICE is dropped", async () => {
    const bob = await login('bob');
    bob.send('PRIVMSG alice :hello', 'NOTICE alice :not for the mailbox');
    await bob.waitLine(/ 401 bob alice /);
    await bob.sync();
    keybot.send('PRIVMSG alice :keybot privmsg is not kept either');
    await keybot.waitLine(/ 401 keybot alice /);
    const alice = await login('alice');
    const end = await alice.sync();
    expect(alice.lines.slice(0, end).filter((l) => /not for the mailbox|not kept/.test(l))).to.deep.equal([]);
  });

  it('drops a NOTICE from keybot to a nick that is no account', async () => {
    const from = keybot.lines.length;
    keybot.send('NOTICE ghost :nobody');
    await keybot.sync();
    expect(keybot.lines.slice(from).filter((l) => / 401 /.test(l))).to.deep.equal([]);
    expect(t.daemon.server.rooms.mailCount('ghost')).to.equal(0);
  });
});
