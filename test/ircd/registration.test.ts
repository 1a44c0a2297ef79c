import { expect } from 'chai';
import path from 'node:path';
import { generateUserKey } from '../../src/crypto/index.js';
import { ControlClient } from '../../src/protocol/control-client.js';
import { CONTROL_SOCKET_NAME } from '../../src/protocol/files.js';
import { connectClient, quitAll, RawClient, startTestDaemon, waitFor, type TestDaemon, type TestUser } from '../helpers/daemon.js';

describe('ircd registration (real sockets, irc-framework clients)', function () {
  this.timeout(20000);
  let t: TestDaemon;
  let alice: TestUser;
  let bob: TestUser;

  before(async () => {
    t = await startTestDaemon();
    alice = await t.addUser('alice');
    bob = await t.addUser('bob');
  });
  after(async () => t.stop());

  it('logs in with PASS <password> and NICK = account', async () => {
    const c = await connectClient(t.port, { nick: 'alice', password: alice.password });
    expect(c.user.nick).to.equal('alice');
    c.quit();
  });

  it('logs in with PASS account:password (bouncer convention) and takes the account nick', async () => {
    const raw = await RawClient.connect(t.port);
    raw.send(`PASS bob:${bob.password}`, 'NICK somebody', 'USER x 0 * :x');
    const welcome = await raw.waitLine(/ 001 /);
    expect(welcome).to.match(/^:sealchat\.local 001 bob :Welcome/);
    raw.close();
  });

  it('logs in with SASL PLAIN', async () => {
    const c = await connectClient(t.port, { nick: 'alice', account: { account: 'alice', password: alice.password } });
    expect(c.network.cap.enabled).to.include('sasl');
    c.quit();
  });

  it('accepts CAP before PASS, as irssi sends it', async () => {
    const raw = await RawClient.connect(t.port);
    raw.send('CAP LS 302', 'JOIN :');
    await raw.waitLine(/CAP \* LS :.*sasl=PLAIN/);
    raw.send('CAP REQ :multi-prefix server-time', 'CAP END');
    await raw.waitLine(/CAP \* ACK :multi-prefix server-time/);
    raw.send(`PASS ${alice.password}`, 'NICK alice', 'USER alice 0 * :Alice');
    const line = await raw.waitLine(/ 001 /);
    expect(line).to.match(/^@time=\S+ :sealchat\.local 001 alice /);
    raw.close();
  });

  it('answers a wrong password and an unknown account with the same 464, then closes', async () => {
    const replies: string[] = [];
    for (const [nick, pass] of [['alice', 'wrong-password'], ['nobody', 'whatever']]) {
      const raw = await RawClient.connect(t.port);
      raw.send(`PASS ${pass}`, `NICK ${nick}`, `USER ${nick} 0 * :x`);
      const line = await raw.waitLine(/ 464 /);
      replies.push(line.replace(nick, 'NICK'));
      await raw.waitLine(/^ERROR :Closing link/);
      await raw.waitClose();
    }
    expect(replies[0]).to.equal(replies[1]);
    expect(replies[0]).to.match(/464 NICK :Password incorrect$/);
  });

  it('refuses a connection without any password while accounts are required', async () => {
    const raw = await RawClient.connect(t.port);
    raw.send('NICK alice', 'USER alice 0 * :x');
    expect(await raw.waitLine(/ 464 /)).to.match(/Password required/);
    await raw.waitClose();
  });

  it('reports a wrong password to irc-framework as an error and closes', async () => {
    let err: Error | undefined;
    try {
      await connectClient(t.port, { nick: 'alice', password: 'nope' });
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.match(/irc error|closed/);
  });

  it('fails SASL with a wrong password (904) without registering', async () => {
    const raw = await RawClient.connect(t.port);
    raw.send('CAP LS 302', 'CAP REQ :sasl');
    await raw.waitLine(/CAP \* ACK :?sasl$/);
    raw.send('AUTHENTICATE PLAIN');
    await raw.waitLine(/^AUTHENTICATE \+$/);
    raw.send('AUTHENTICATE ' + Buffer.from('\0alice\0bad').toString('base64'));
    expect(await raw.waitLine(/ 904 /)).to.match(/SASL authentication failed/);
    raw.close();
  });

  it('reserves the keybot nick for the service account', async () => {
    const raw = await RawClient.connect(t.port);
    raw.send('PASS whatever', 'NICK keybot', 'USER k 0 * :k');
    await raw.waitLine(/ 464 /);
    raw.close();
  });

  it('throttles password guessing per account', async () => {
    const t2 = await startTestDaemon({ limits: { loginAttemptsPerAccountPerMinute: 2, loginAttemptsPerIpPerMinute: 100 } });
    try {
      await t2.addUser('carol');
      const lines: string[] = [];
      for (let i = 0; i < 3; i++) {
        const raw = await RawClient.connect(t2.port);
        raw.send(`PASS carol:guess${i}`, 'NICK carol', 'USER c 0 * :c');
        lines.push(await raw.waitLine(/ 464 /));
        raw.close();
      }
      expect(lines[0]).to.match(/Password incorrect/);
      expect(lines[2]).to.match(/Too many login attempts/);
    } finally {
      await t2.stop();
    }
  });

  it('lets guests in when requireAccount is false, but not under a registered nick', async () => {
    const t2 = await startTestDaemon({ requireAccount: false });
    try {
      await t2.addUser('dave');
      const guest = await connectClient(t2.port, { nick: 'visitor' });
      expect(guest.user.nick).to.equal('visitor');
      const raw = await RawClient.connect(t2.port);
      raw.send('NICK dave', 'USER d 0 * :d');
      expect(await raw.waitLine(/ 433 /)).to.match(/registered or in use/);
      raw.close();
      guest.quit();
    } finally {
      await t2.stop();
    }
  });

  it('never lets a guest take an account: a guest holding the nick is disconnected when the account is created, and does not receive its messages', async () => {
    const t2 = await startTestDaemon({ requireAccount: false });
    try {
      // The attack: mallory connects as guest "erin" before the administrator creates erin's account.
      const guest = await RawClient.connect(t2.port);
      guest.send('NICK erin', 'USER m 0 * :mallory');
      await guest.waitLine(/ 001 erin /);
      const control = await ControlClient.connect(path.join(t2.dataDir, CONTROL_SOCKET_NAME));
      try {
        const key = await generateUserKey({ name: 'erin' });
        await control.call('user.add', { name: 'erin', password: 'erin-password-1', publicKey: key.publicArmored });
      } finally {
        control.close();
      }
      await guest.waitLine(/^ERROR :.*The nick erin now belongs to a registered account/);
      // erin logs in as herself (not merged into anyone), and a message to her reaches only her.
      const erin = await RawClient.connect(t2.port);
      await erin.login('erin', 'erin-password-1');
      const frank = await connectClient(t2.port, { nick: 'frank' });
      frank.say('erin', 'for erin only');
      await erin.waitLine(/PRIVMSG erin :for erin only/);
      expect(guest.lines.join('\n')).not.to.match(/for erin only/);
      erin.close();
      frank.quit();
    } finally {
      await t2.stop();
    }
  });

  it('answers 451 to commands before registration and 421 to unknown ones after', async () => {
    const raw = await RawClient.connect(t.port);
    raw.send('PRIVMSG bob :hi');
    await raw.waitLine(/ 451 \* :You have not registered/);
    await raw.login('alice', alice.password);
    raw.send('FROBNICATE x');
    await raw.waitLine(/ 421 alice FROBNICATE :Unknown command/);
    raw.send('JOIN');
    await raw.waitLine(/ 461 alice JOIN :Not enough parameters/);
    raw.close();
  });

  it('keeps one identity across two sessions of the same account', async () => {
    const a1 = await connectClient(t.port, { nick: 'alice', password: alice.password });
    const a2 = await connectClient(t.port, { nick: 'alice', password: alice.password });
    const b = await connectClient(t.port, { nick: 'bob', password: bob.password });
    const got = waitFor(a2, 'privmsg', (e) => e.message === 'to both');
    const got1 = waitFor(a1, 'privmsg', (e) => e.message === 'to both');
    b.say('alice', 'to both');
    await Promise.all([got, got1]);
    quitAll(a1, a2, b);
  });

  it('a session that attaches to an identity already in a channel gets its channel messages, one that leaves stops', async () => {
    // The channel's fan-out list of sessions is cached: attaching and closing sessions must renew it.
    const a1 = await connectClient(t.port, { nick: 'alice', password: alice.password });
    const b = await connectClient(t.port, { nick: 'bob', password: bob.password });
    a1.join('#multi');
    await waitFor(a1, 'join', (e) => e.channel === '#multi');
    b.join('#multi');
    await waitFor(a1, 'join', (e) => e.nick === 'bob');
    const zero = waitFor(a1, 'privmsg', (e) => e.target === '#multi' && e.message === 'zero');
    b.say('#multi', 'zero'); // the channel's list is in use before the second session attaches
    await zero;
    const a2 = await connectClient(t.port, { nick: 'alice', password: alice.password });
    const first = [a1, a2].map((c) => waitFor(c, 'privmsg', (e) => e.target === '#multi' && e.message === 'one'));
    b.say('#multi', 'one');
    await Promise.all(first);

    const a1Lines: string[] = [];
    a1.on('privmsg', (e: { message: string }) => a1Lines.push(e.message));
    a1.quit('bye');
    await new Promise<void>((resolve) => a1.once('close', () => resolve()));
    const second = waitFor(a2, 'privmsg', (e) => e.target === '#multi' && e.message === 'two');
    b.say('#multi', 'two');
    await second;
    expect(a1Lines).to.not.include('two');
    // bob still hears alice (the identity stayed in the channel through its other session).
    const heard = waitFor(b, 'privmsg', (e) => e.target === '#multi' && e.message === 'from a2');
    a2.say('#multi', 'from a2');
    expect((await heard).nick).to.equal('alice');
    quitAll(a2, b);
  });
});
