/**
 * Each handler group through a real socket: channel operations, modes, queries, away, oper.
 * Wire-level (RawClient) so the numerics and their parameters are checked exactly.
 */
import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { hashPassword } from '../../src/ircd/accounts.js';
import { RawClient, startTestDaemon, type TestDaemon, type TestUser } from '../helpers/daemon.js';

describe('ircd handlers (wire level)', function () {
  this.timeout(20000);
  let t: TestDaemon;
  const u: Record<string, TestUser> = {};
  const open: RawClient[] = [];
  const as = async (name: string): Promise<RawClient> => {
    const c = await RawClient.connect(t.port);
    open.push(c);
    await c.login(name, u[name].password);
    return c;
  };

  before(async () => {
    t = await startTestDaemon({ operators: [{ name: 'admin', passwordHash: await hashPassword('op-secret') }] });
    for (const n of ['alice', 'bob', 'carol']) u[n] = await t.addUser(n);
  });
  afterEach(() => open.splice(0).forEach((c) => c.close()));
  after(async () => t.stop());

  it('JOIN makes the first member op and sends topic and NAMES; PART is seen by all', async () => {
    const alice = await as('alice');
    alice.send('JOIN #h1');
    await alice.waitLine(/:alice!alice@127\.0\.0\.1 JOIN #h1/);
    await alice.waitLine(/ 353 alice = #h1 :?@alice$/);
    await alice.waitLine(/ 366 alice #h1 :End of \/NAMES list/);
    const bob = await as('bob');
    bob.send('JOIN #h1');
    await alice.waitLine(/:bob!bob@127\.0\.0\.1 JOIN #h1/);
    await bob.waitLine(/ 353 bob = #h1 :@alice bob$/);
    bob.send('PART #h1 :see you');
    await alice.waitLine(/:bob!\S+ PART #h1 :see you/);
    bob.send('PART #h1');
    await bob.waitLine(/ 442 bob #h1 :You're not on that channel/);
    bob.send('PART #nowhere');
    await bob.waitLine(/ 403 bob #nowhere :No such channel/);
  });

  it('TOPIC: ops set it under +t, others get 482, everyone can read it', async () => {
    const alice = await as('alice');
    const bob = await as('bob');
    alice.send('JOIN #h2');
    await alice.waitLine(/JOIN #h2/);
    bob.send('JOIN #h2');
    await bob.waitLine(/ 366 bob #h2/);
    bob.send('TOPIC #h2 :mine');
    await bob.waitLine(/ 482 bob #h2 :You're not a channel operator/);
    alice.send('TOPIC #h2 :the plan');
    await bob.waitLine(/:alice!\S+ TOPIC #h2 :the plan/);
    bob.send('TOPIC #h2');
    await bob.waitLine(/ 332 bob #h2 :the plan/);
    await bob.waitLine(/ 333 bob #h2 alice \d+/);
  });

  it('MODE: +k and +l are enforced, non-ops get 482, unknown modes get 472', async () => {
    const alice = await as('alice');
    const bob = await as('bob');
    alice.send('JOIN #h3', 'MODE #h3 +kl sesame 1');
    await alice.waitLine(/MODE #h3 \+kl sesame 1/);
    alice.send('MODE #h3');
    await alice.waitLine(/ 324 alice #h3 \+ntkl sesame 1/);
    bob.send('JOIN #h3 wrong');
    await bob.waitLine(/ 475 bob #h3 /);
    alice.send('MODE #h3 -l');
    await alice.waitLine(/MODE #h3 -l/);
    bob.send('JOIN #h3 sesame');
    await bob.waitLine(/JOIN #h3/);
    bob.send('MODE #h3 +m');
    await bob.waitLine(/ 482 bob #h3 /);
    alice.send('MODE #h3 +Z');
    await alice.waitLine(/ 472 alice Z :is an unknown mode char/);
    alice.send('MODE #h3 +o bob');
    await bob.waitLine(/:alice!\S+ MODE #h3 \+o bob/);
    alice.send('MODE #h3 b');
    await alice.waitLine(/ 368 alice #h3 :End of channel ban list/);
  });

  it('MODE on users: own modes only', async () => {
    const alice = await as('alice');
    alice.send('MODE alice +i');
    await alice.waitLine(/:alice!\S+ MODE alice \+i/);
    alice.send('MODE alice');
    await alice.waitLine(/ 221 alice \+i/);
    await as('bob');
    alice.send('MODE bob +i');
    await alice.waitLine(/ 502 alice :Can't change mode for other users/);
    alice.send('MODE alice +o');
    alice.send('MODE alice +x');
    await alice.waitLine(/ 501 alice :Unknown MODE flag/);
  });

  it('KICK: ops remove members, everyone sees it; non-ops get 482', async () => {
    const alice = await as('alice');
    const bob = await as('bob');
    alice.send('JOIN #h4');
    await alice.waitLine(/JOIN #h4/);
    bob.send('JOIN #h4');
    await bob.waitLine(/ 366 bob #h4/);
    bob.send('KICK #h4 alice');
    await bob.waitLine(/ 482 bob #h4 /);
    alice.send('KICK #h4 bob :out');
    await bob.waitLine(/:alice!\S+ KICK #h4 bob :?out/);
    alice.send('KICK #h4 carol');
    await alice.waitLine(/ 441 alice carol #h4 /);
  });

  it('WHO lists a channel with flags, NAMES and LIST describe it', async () => {
    const alice = await as('alice');
    alice.send('JOIN #h5', 'TOPIC #h5 :hello', 'WHO #h5');
    await alice.waitLine(/ 352 alice #h5 alice 127\.0\.0\.1 sealchat\.local alice H@ :0 alice/);
    await alice.waitLine(/ 315 alice #h5 :End of WHO list/);
    alice.send('LIST #h5');
    await alice.waitLine(/ 322 alice #h5 1 :?hello/);
    await alice.waitLine(/ 323 alice :End of \/LIST/);
  });

  it('AWAY: 306/305, shown in WHOIS and as 301 to senders, pushed with away-notify', async () => {
    const alice = await as('alice');
    const bob = await RawClient.connect(t.port);
    open.push(bob);
    bob.send('CAP LS 302', 'CAP REQ :away-notify', 'CAP END');
    await bob.login('bob', u.bob.password);
    alice.send('JOIN #h6');
    await alice.waitLine(/JOIN #h6/);
    bob.send('JOIN #h6');
    await bob.waitLine(/ 366 bob #h6/);
    alice.send('AWAY :lunch');
    await alice.waitLine(/ 306 alice :You have been marked as being away/);
    await bob.waitLine(/:alice!\S+ AWAY :?lunch/);
    bob.send('PRIVMSG alice :you there?');
    await bob.waitLine(/ 301 bob alice :?lunch/);
    alice.send('AWAY');
    await alice.waitLine(/ 305 alice /);
  });

  it('NOTICE to an unknown target gets no reply; PRIVMSG gets 401; too many targets get 407', async () => {
    const alice = await as('alice');
    alice.send('NOTICE ghost :hi', 'PRIVMSG ghost :hi');
    const l = await alice.waitLine(/ 401 alice ghost /);
    expect(alice.lines.filter((x) => / 40\d /.test(x))).to.deep.equal([l]);
    alice.send('PRIVMSG a,b,c,d,e :hi');
    await alice.waitLine(/ 407 alice /);
    alice.send('PRIVMSG bob');
    await alice.waitLine(/ 412 alice :No text to send/);
  });

  it('OPER: a wrong password and an unknown operator get the same 464; the right one gets 381', async () => {
    const alice = await as('alice');
    alice.send('OPER admin wrong');
    const a = await alice.waitLine(/ 464 /);
    alice.send('OPER nobody wrong');
    const b = await alice.waitLine(/ 464 /, 5000, alice.lines.indexOf(a) + 1);
    expect(a).to.equal(b);
    alice.send('OPER admin op-secret');
    await alice.waitLine(/ 381 alice :You are now an IRC operator/);
    const bob = await as('bob');
    bob.send('WHOIS alice');
    await bob.waitLine(/ 313 bob alice :is an IRC operator/);
  });

  it('VERSION, LUSERS and MOTD answer with their numerics', async () => {
    const alice = await as('alice');
    alice.send('VERSION', 'LUSERS', 'MOTD');
    await alice.waitLine(/ 351 alice sealchat-\S+ sealchat\.local /);
    await alice.waitLine(/ 005 alice .*CASEMAPPING=ascii/);
    await alice.waitLine(/ 251 alice /);
    await alice.waitLine(/ 376 alice /);
  });

  it('refuses to let users create keybot room names', async () => {
    const alice = await as('alice');
    alice.send('JOIN #sc-squat');
    expect(await alice.waitLine(/ 403 alice #sc-squat /)).to.match(/opened by keybot/);
  });

  it('lets the key service open #sc- rooms, invite-only and secret from the start, one session at a time', async () => {
    const creds = JSON.parse(await readFile(path.join(t.dataDir, 'keybot.credentials'), 'utf8')) as { account: string; password: string };
    const bot = await RawClient.connect(t.port);
    open.push(bot);
    await bot.login(creds.account, creds.password);
    bot.send('JOIN #sc-fresh', 'MODE #sc-fresh');
    await bot.waitLine(/ 324 keybot #sc-fresh \+inst$/);
    const second = await RawClient.connect(t.port);
    open.push(second);
    second.send(`PASS keybot:${creds.password}`, 'NICK keybot', 'USER k 0 * :k');
    expect(await second.waitLine(/ 433 /)).to.match(/key service is already connected/);
    await second.waitClose();
  });

  it('TAGMSG reaches only message-tags clients, with client tags intact', async () => {
    const alice = await RawClient.connect(t.port);
    open.push(alice);
    alice.send('CAP LS 302', 'CAP REQ :message-tags', 'CAP END');
    await alice.login('alice', u.alice.password);
    const bob = await RawClient.connect(t.port);
    open.push(bob);
    bob.send('CAP LS 302', 'CAP REQ :message-tags', 'CAP END');
    await bob.login('bob', u.bob.password);
    alice.send('@+typing=active TAGMSG bob');
    const line = await bob.waitLine(/TAGMSG bob/);
    expect(line).to.match(/^@\+typing=active;msgid=\S+ :alice!\S+ TAGMSG bob$/);
  });
});
