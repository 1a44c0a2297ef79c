import { expect } from 'chai';
import type { Client as IrcClient } from 'irc-framework';
import { connectClient, quitAll, RawClient, startTestDaemon, waitFor, type TestDaemon, type TestUser } from '../helpers/daemon.js';

function whois(c: IrcClient, nick: string): Promise<Record<string, any>> {
  return new Promise((resolve) => c.whois(nick, (e) => resolve(e)));
}

describe('ircd presence and channels (real sockets, irc-framework clients)', function () {
  this.timeout(20000);
  let t: TestDaemon;
  const users: Record<string, TestUser> = {};
  const open: IrcClient[] = [];
  const login = async (name: string, extra = {}): Promise<IrcClient> => {
    const c = await connectClient(t.port, { nick: name, password: users[name].password, ...extra });
    open.push(c);
    return c;
  };

  before(async () => {
    t = await startTestDaemon({ limits: { pingIntervalMs: 500, pingTimeoutMs: 700 } });
    for (const n of ['alice', 'bob', 'carol', 'dave']) users[n] = await t.addUser(n);
  });
  afterEach(() => quitAll(...open.splice(0)));
  after(async () => t.stop());

  it('WHOIS shows an online user with their account, and 401 + 318 once they quit', async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    const online = await whois(alice, 'bob');
    expect(online.nick).to.equal('bob');
    expect(online.account).to.equal('bob');
    expect(online.error).to.equal(undefined);
    const gone = waitFor(alice, 'raw', () => true, 100).catch(() => undefined);
    bob.quit('bye');
    await gone;
    await new Promise((r) => setTimeout(r, 200));
    const offline = await whois(alice, 'bob');
    expect(offline.error).to.equal('not_found');
  });

  it('WHOIS of an offline user answers 401 with "offline" then 318 on the wire', async () => {
    const raw = await RawClient.connect(t.port);
    await raw.login('alice', users.alice.password);
    raw.send('WHOIS carol');
    const l401 = await raw.waitLine(/ 401 alice carol /);
    expect(l401).to.match(/carol is offline/);
    await raw.waitLine(/ 318 alice carol /);
    raw.send('WHOIS ghost');
    expect(await raw.waitLine(/ 401 alice ghost /)).to.match(/No such nick/);
    raw.close();
  });

  it('ISON lists exactly the online nicks', async () => {
    const raw = await RawClient.connect(t.port);
    await raw.login('alice', users.alice.password);
    await login('bob');
    raw.send('ISON bob carol ghost alice');
    expect(await raw.waitLine(/ 303 /)).to.match(/ 303 alice :bob alice$/);
    raw.close();
  });

  it('MONITOR reports current state and pushes 730/731 at login and logout', async () => {
    const raw = await RawClient.connect(t.port);
    await raw.login('alice', users.alice.password);
    raw.send('MONITOR + carol,dave');
    await raw.waitLine(/ 731 alice :?carol,dave$/);
    const carol = await login('carol');
    await raw.waitLine(/ 730 alice :?carol!carol@127\.0\.0\.1$/);
    carol.quit();
    await raw.waitLine(/ 731 alice :?carol$/);
    raw.send('MONITOR L');
    await raw.waitLine(/ 732 alice :?(carol,dave|dave,carol)$/);
    raw.close();
  });

  it('fans a channel PRIVMSG out to every other member exactly once', async () => {
    const [alice, bob, carol] = [await login('alice'), await login('bob'), await login('carol')];
    for (const c of [alice, bob, carol]) {
      c.join('#fan');
      await waitFor(c, 'join', (e) => e.nick === c.user.nick);
    }
    const counts = { bob: 0, carol: 0, alice: 0 };
    for (const [name, c] of [['alice', alice], ['bob', bob], ['carol', carol]] as const) {
      c.on('privmsg', (e) => {
        if (e.target === '#fan' && e.message === 'one') counts[name]++;
      });
    }
    alice.say('#fan', 'one');
    await waitFor(carol, 'privmsg', (e) => e.message === 'one');
    await new Promise((r) => setTimeout(r, 150));
    expect(counts).to.deep.equal({ alice: 0, bob: 1, carol: 1 });
  });

  it('echoes a message back to the sender with echo-message', async () => {
    const alice = await login('alice', { enable_echomessage: true });
    alice.join('#echo');
    await waitFor(alice, 'join');
    const echo = waitFor(alice, 'privmsg', (e) => e.message === 'mine');
    alice.say('#echo', 'mine');
    expect((await echo).nick).to.equal('alice');
  });

  it('enforces +i: only invited users may join', async () => {
    const raw = await RawClient.connect(t.port);
    await raw.login('alice', users.alice.password);
    raw.send('JOIN #priv', 'MODE #priv +is');
    await raw.waitLine(/MODE #priv \+is/);
    const bob = await RawClient.connect(t.port);
    await bob.login('bob', users.bob.password);
    bob.send('JOIN #priv');
    expect(await bob.waitLine(/ 473 /)).to.match(/473 bob #priv :Cannot join channel \(\+i\)/);
    raw.send('INVITE bob #priv');
    await raw.waitLine(/ 341 alice bob #priv/);
    await bob.waitLine(/INVITE bob #priv/);
    bob.send('JOIN #priv');
    await bob.waitLine(/:bob!bob@127\.0\.0\.1 JOIN #priv/);
    // Secret channels are hidden from non-members.
    const carol = await RawClient.connect(t.port);
    await carol.login('carol', users.carol.password);
    carol.send('LIST', 'WHOIS bob');
    await carol.waitLine(/ 323 /);
    await carol.waitLine(/ 318 carol bob/);
    expect(carol.lines.some((l) => l.includes('#priv'))).to.equal(false);
    for (const c of [raw, bob, carol]) c.close();
  });

  it('marks a user offline after a ping timeout', async () => {
    const raw = await RawClient.connect(t.port);
    raw.autoPong = false;
    await raw.login('dave', users.dave.password);
    const alice = await login('alice');
    // dave never answers PING: the daemon drops him and he is offline.
    await raw.waitLine(/^PING /, 3000);
    await raw.waitLine(/^ERROR :Closing link: .*Ping timeout/, 5000);
    const w = await whois(alice, 'dave');
    expect(w.error).to.equal('not_found');
  });

  it('answers an overlong line with 417 and keeps the connection', async () => {
    const raw = await RawClient.connect(t.port);
    await raw.login('alice', users.alice.password);
    raw.send('PRIVMSG bob :' + 'x'.repeat(600));
    await raw.waitLine(/ 417 alice :Input line was too long/);
    raw.send('PING still-here');
    await raw.waitLine(/PONG \S+ still-here/);
    raw.close();
  });

  it('refuses to relay a line that would pass 512 bytes with the sender prefix', async () => {
    const raw = await RawClient.connect(t.port);
    await raw.login('alice', users.alice.password);
    raw.send('JOIN #long');
    await raw.waitLine(/JOIN #long/);
    raw.send('PRIVMSG #long :' + 'y'.repeat(490));
    expect(await raw.waitLine(/ 417 /)).to.match(/too long to relay/);
    raw.close();
  });
});

describe('ircd flood control', function () {
  this.timeout(20000);
  it('slows a flooding client (fakelag) and drops it past its recvq', async () => {
    const t = await startTestDaemon({ limits: { commandBurst: 5, commandsPerSecond: 5, recvqBytes: 4096 } });
    try {
      const u = await t.addUser('flood');
      const raw = await RawClient.connect(t.port);
      await raw.login('flood', u.password);
      const start = raw.lines.length;
      const sentAt = Date.now();
      // PING and PONG skip fakelag (a held PONG could become a ping timeout): flood with WHOIS.
      for (let i = 0; i < 15; i++) raw.send(`WHOIS n${i}`);
      await raw.waitLine(/ 401 flood n14 /, 8000, start);
      // 5 at once, then 5 per second: the last 10 take about two seconds.
      expect(Date.now() - sentAt).to.be.greaterThan(1500);
      // A burst far past the recvq is dropped with an error.
      raw.send(...Array.from({ length: 400 }, (_, i) => `WHOIS flood-${i}`));
      await raw.waitLine(/^ERROR :Closing link: .*Excess Flood/, 5000);
    } finally {
      await t.stop();
    }
  });
});
