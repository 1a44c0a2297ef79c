/**
 * Config forceNickEqualsAccount (docs/OPERATIONS.md): on (the default) an account holder's nick is
 * its account name; off, a session logged in with SASL or PASS may use another nick no account
 * owns, a guest may log in with SASL after registration, and such a session stays out of rooms.
 * Real sockets: NICK and USER (commands/registration.ts), AUTHENTICATE (commands/sasl.ts), JOIN,
 * WHOIS, WHO, the login (server/login.ts) and the control socket.
 */
import { expect } from 'chai';
import { ControlClient } from '../../../src/protocol/control-client.js';
import { RawClient, startTestDaemon, type TestDaemon, type TestUser } from '../../helpers/daemon.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** CAP REQ sasl (and more), SASL PLAIN as `account`, NICK and USER; resolves on 001. */
async function saslLogin(port: number, nick: string, user: TestUser, caps = 'sasl'): Promise<RawClient> {
  const c = await RawClient.connect(port);
  c.send('CAP LS 302', `CAP REQ :${caps}`);
  await c.waitLine(/ CAP \S+ ACK /);
  c.send('AUTHENTICATE PLAIN');
  await c.waitLine(/^AUTHENTICATE \+$/);
  c.send(`AUTHENTICATE ${b64(`${user.name}\0${user.name}\0${user.password}`)}`);
  await c.waitLine(/ 903 /);
  c.send(`NICK ${nick}`, 'USER u 0 * :real name', 'CAP END');
  await c.waitLine(/ 001 /);
  return c;
}

async function guest(port: number, nick: string, caps?: string): Promise<RawClient> {
  const c = await RawClient.connect(port);
  if (caps) {
    c.send('CAP LS 302', `CAP REQ :${caps}`);
    await c.waitLine(/ CAP \S+ ACK /);
    c.send('CAP END');
  }
  c.send(`NICK ${nick}`, 'USER g 0 * :guest');
  await c.waitLine(/ 001 /);
  return c;
}

/** The lines that arrived from index `from` until the server answered a PING sent now. */
async function linesUntilSync(c: RawClient, from = 0): Promise<string[]> {
  const end = await c.sync();
  return c.lines.slice(from, end);
}

describe('src/ircd/commands/registration.ts, sasl.ts: config forceNickEqualsAccount', function () {
  this.timeout(20000);
  const open: RawClient[] = [];
  const keep = (c: RawClient): RawClient => (open.push(c), c);
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });

  describe('on (the default): the nick is the account', () => {
    let t: TestDaemon;
    let val: TestUser;
    before(async () => {
      t = await startTestDaemon({ requireAccount: false });
      val = await t.addUser('val');
    });
    after(async () => t.stop());

    it('registers a SASL login under its account name whatever NICK it sent', async () => {
      const c = keep(await saslLogin(t.port, 'nick2', val));
      expect(await c.waitLine(/ 001 /)).to.match(/ 001 val :Welcome/);
    });

    it('refuses a nick change (432) and SASL after registration (462)', async () => {
      const c = keep(await saslLogin(t.port, 'val', val));
      const from = c.lines.length;
      c.send('NICK other', 'AUTHENTICATE PLAIN');
      const lines = await linesUntilSync(c, from);
      expect(lines.some((l) => / 432 val other /.test(l))).to.equal(true);
      expect(lines.some((l) => / 462 val /.test(l))).to.equal(true);
    });

    it('refuses SASL after registration to a guest (462), leaving it a guest', async () => {
      const g = keep(await guest(t.port, 'someguest', 'sasl'));
      const from = g.lines.length;
      g.send('AUTHENTICATE PLAIN');
      const lines = await linesUntilSync(g, from);
      expect(lines.some((l) => / 462 someguest /.test(l))).to.equal(true);
      expect(lines.some((l) => l === 'AUTHENTICATE +')).to.equal(false);
    });
  });

  describe('off: another nick for an account holder', () => {
    let t: TestDaemon;
    let control: ControlClient;
    const users: Record<string, TestUser> = {};
    before(async () => {
      t = await startTestDaemon({ requireAccount: false, forceNickEqualsAccount: false });
      for (const n of ['val', 'jilles', 'foo', 'rita', 'dora', 'gone']) users[n] = await t.addUser(n);
      control = await ControlClient.connect(t.daemon.controlPath);
    });
    after(async () => {
      control.close();
      await t.stop();
    });

    it('registers a SASL login under the NICK it sent; WHOIS gives 330 and WHOX the account', async () => {
      const c = keep(await saslLogin(t.port, 'nick2', users.val!));
      expect(await c.waitLine(/ 001 /)).to.match(/ 001 nick2 :Welcome to the sealchat IRC network, nick2!val@/);
      const o = keep(await guest(t.port, 'watcher'));
      const from = o.lines.length;
      o.send('WHOIS nick2', 'WHO nick2 %na');
      const lines = await linesUntilSync(o, from);
      expect(lines).to.include(':sealchat.local 330 watcher nick2 val :is logged in as');
      expect(lines).to.include(':sealchat.local 354 watcher nick2 val');
      expect((await control.call('user.get', { name: 'val' }))?.online).to.equal(true);
    });

    it('registers a PASS account:password login under the NICK it sent, with the account in account-tag', async () => {
      const c = keep(await RawClient.connect(t.port));
      c.send(`PASS rita:${users.rita!.password}`, 'NICK rr', 'USER r 0 * :r');
      expect(await c.waitLine(/ 001 /)).to.match(/ 001 rr /);
      const o = keep(await guest(t.port, 'tagwatch', 'account-tag'));
      c.send('PRIVMSG tagwatch :hello');
      expect(await o.waitLine(/PRIVMSG tagwatch :?hello/)).to.match(/^@account=rita :rr!rita@\S+ PRIVMSG tagwatch :?hello$/);
    });

    it('falls back to the account name when the NICK sent is another account or keybot', async () => {
      const a = keep(await saslLogin(t.port, 'jilles', users.foo!));
      expect(await a.waitLine(/ 001 /)).to.match(/ 001 foo /);
      a.close();
      const k = keep(await saslLogin(t.port, 'keybot', users.foo!));
      expect(await k.waitLine(/ 001 /)).to.match(/ 001 foo /);
    });

    it('joins a further session of an online account to its identity, under the nick it holds', async () => {
      const first = keep(await saslLogin(t.port, 'dd', users.dora!));
      const second = keep(await saslLogin(t.port, 'other', users.dora!));
      expect(await second.waitLine(/ 001 /)).to.match(/ 001 dd /);
      first.send('JOIN #both');
      await second.waitLine(/^:dd!\S+ JOIN #both/);
    });

    it('changes nick: not to an account name or keybot (433), back to its own name, and not away from it inside a room (432)', async () => {
      const c = keep(await saslLogin(t.port, 'vv', users.val!));
      let from = c.lines.length;
      c.send('NICK jilles', 'NICK keybot', 'NICK vv2');
      let lines = await linesUntilSync(c, from);
      expect(lines.some((l) => / 433 vv jilles /.test(l))).to.equal(true);
      expect(lines.some((l) => / 433 vv keybot /.test(l))).to.equal(true);
      expect(lines).to.include(':vv!val@127.0.0.1 NICK vv2');
      from = c.lines.length;
      c.send('NICK VAL');
      lines = await linesUntilSync(c, from);
      expect(lines).to.include(':vv2!val@127.0.0.1 NICK val'); // the account's own spelling
      await control.call('room.add', { room: '#sc-nickroom1', accounts: ['val'] });
      await c.waitLine(/^:val!\S+ JOIN #sc-nickroom1/);
      from = c.lines.length;
      c.send('NICK elsewhere');
      lines = await linesUntilSync(c, from);
      expect(lines.some((l) => / 432 val elsewhere :You are in an encrypted room/.test(l))).to.equal(true);
      expect(lines.some((l) => / NICK elsewhere/.test(l))).to.equal(false);
    });

    it('keeps a session under another nick out of its rooms: not placed at login, refused by room.add, JOIN refused', async () => {
      await control.call('room.add', { room: '#sc-nickroom2', accounts: ['jilles'] });
      const c = keep(await saslLogin(t.port, 'jj', users.jilles!));
      const notice = await c.waitLine(/ NOTICE jj :/);
      expect(notice).to.match(/encrypted rooms need your account name as nick: they wait until you connect as jilles/);
      let lines = await linesUntilSync(c);
      expect(lines.some((l) => / JOIN #sc-nickroom2/.test(l))).to.equal(false);
      const [out] = await control.call('room.add', { room: '#sc-nickroom3', accounts: ['jilles'] });
      expect(out).to.deep.equal({ account: 'jilles', joined: false, error: { code: 'forbidden', message: 'jilles is connected as jj; encrypted rooms need the account name as nick' } });
      expect((await control.call('channel.get', { channel: '#sc-nickroom3' }))?.accounts).to.deep.equal([]);
      const from = c.lines.length;
      c.send('JOIN #sc-nickroom2');
      lines = await linesUntilSync(c, from);
      expect(lines.some((l) => / 473 jj #sc-nickroom2 :Cannot join channel: an encrypted room needs your account name jilles as nick/.test(l))).to.equal(true);
      const info = await control.call('channel.get', { channel: '#sc-nickroom2' });
      expect(info?.members).to.not.include('jj');
      c.close();
      await t.daemon.server.rooms.flush();
      const own = keep(await saslLogin(t.port, 'jilles', users.jilles!));
      await own.waitLine(/^:jilles!\S+ JOIN #sc-nickroom2/);
    });

    it('logs a guest in with SASL after registration: 900, 903, ACCOUNT to co-members with account-notify, then 907', async () => {
      const g = keep(await guest(t.port, 'latecomer', 'sasl'));
      const w = keep(await guest(t.port, 'cowatch', 'account-notify'));
      g.send('JOIN #late');
      await g.waitLine(/ 366 latecomer #late /);
      w.send('JOIN #late');
      await w.waitLine(/ 366 cowatch #late /);
      let from = g.lines.length;
      g.send('AUTHENTICATE PLAIN');
      await g.waitLine(/^AUTHENTICATE \+$/, 5000, from);
      g.send(`AUTHENTICATE ${b64('rita\0rita\0' + users.rita!.password)}`);
      // rita is online (as rr, above) only while that test's socket is open: it closed in afterEach.
      expect(await g.waitLine(/ 900 /, 5000, from)).to.match(/ 900 latecomer latecomer!~g@127\.0\.0\.1 rita :You are now logged in as rita$/);
      await g.waitLine(/ 903 latecomer /, 5000, from);
      expect(await w.waitLine(/ ACCOUNT /)).to.match(/^:latecomer!~g@127\.0\.0\.1 ACCOUNT rita$/);
      const o = keep(await guest(t.port, 'asker'));
      o.send('WHOIS latecomer');
      await o.waitLine(/ 330 asker latecomer rita :is logged in as/);
      from = g.lines.length;
      g.send('AUTHENTICATE PLAIN');
      const lines = await linesUntilSync(g, from);
      expect(lines.some((l) => / 907 latecomer /.test(l))).to.equal(true);
      expect(lines).to.not.include('AUTHENTICATE +');
    });

    it('tells MONITOR watchers with extended-monitor of ACCOUNT (with account-notify) and AWAY (with away-notify), once', async () => {
      const g = keep(await guest(t.port, 'watched', 'sasl'));
      const caps = 'extended-monitor account-notify away-notify';
      const em = keep(await guest(t.port, 'emwatch', caps));
      const co = keep(await guest(t.port, 'cowatch2', caps)); // also shares a channel: told once
      const plain = keep(await guest(t.port, 'monwatch', 'account-notify away-notify'));
      const nocap = keep(await guest(t.port, 'emonly', 'extended-monitor'));
      const watchers = [em, co, plain, nocap];
      for (const w of watchers) {
        w.send('MONITOR + watched');
        await w.waitLine(/ 730 \S+ :?watched!/);
      }
      g.send('JOIN #em');
      await g.waitLine(/ 366 watched #em /);
      co.send('JOIN #em');
      await co.waitLine(/ 366 cowatch2 #em /);
      const from = watchers.map((w) => w.lines.length);
      g.send('AUTHENTICATE PLAIN');
      await g.waitLine(/^AUTHENTICATE \+$/);
      g.send(`AUTHENTICATE ${b64('dora\0dora\0' + users.dora!.password)}`);
      await g.waitLine(/ 903 /);
      g.send('AWAY :gone fishing');
      await g.waitLine(/ 306 /);
      const seen = await Promise.all(watchers.map((w, i) => linesUntilSync(w, from[i])));
      const relayed = seen.map((lines) => lines.filter((l) => / (ACCOUNT|AWAY) /.test(l)));
      const both = [':watched!~g@127.0.0.1 ACCOUNT dora', ':watched!~g@127.0.0.1 AWAY :gone fishing'];
      expect(relayed).to.deep.equal([both, both, [], []]);
    });

    it('refuses SASL after registration to an account that is online (904) and re-authentication (907)', async () => {
      keep(await saslLogin(t.port, 'val', users.val!));
      const g = keep(await guest(t.port, 'intruder', 'sasl'));
      g.send('AUTHENTICATE PLAIN');
      await g.waitLine(/^AUTHENTICATE \+$/);
      g.send(`AUTHENTICATE ${b64('val\0val\0' + users.val!.password)}`);
      expect(await g.waitLine(/ 904 /)).to.match(/ 904 intruder :SASL authentication failed: val is already connected/);
      const a = keep(await saslLogin(t.port, 'fooish', users.foo!));
      const from = a.lines.length;
      a.send('AUTHENTICATE PLAIN');
      const lines = await linesUntilSync(a, from);
      expect(lines.some((l) => / 907 fooish /.test(l))).to.equal(true);
    });

    it('disconnects an account online under another nick when it is deleted, and whoever holds a name that becomes an account', async () => {
      const c = keep(await saslLogin(t.port, 'stillhere', users.gone!));
      await control.call('user.del', { name: 'gone' });
      await c.waitClose();
      const holder = keep(await saslLogin(t.port, 'newname', users.foo!));
      await control.call('user.add', { name: 'newname', password: 'pw-newname-secret', publicKey: users.foo!.publicKey });
      expect(await holder.waitLine(/^ERROR /)).to.match(/now belongs to a registered account/);
    });
  });
});
