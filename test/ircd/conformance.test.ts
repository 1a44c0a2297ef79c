/**
 * What standard clients and the specs expect of the daemon (issue #15), each over real sockets:
 * RFC 2812, modern.ircdocs.horse and IRCv3. The public suite (npm run conformance) checks the
 * same behaviours from outside; these tests keep them from regressing in CI.
 */
import { expect } from 'chai';
import { hashPassword } from '../../src/ircd/accounts.js';
import { makeChannelMethods } from '../../src/ircd/control/index.js';
import { parseLine } from '../../src/protocol/message.js';
import { RawClient, startTestDaemon, type TestDaemon } from '../helpers/daemon.js';

/** The parameters of a reply line, as a client parses them. */
function paramsOf(line: string): string[] {
  const r = parseLine(line);
  if (!r.ok) throw new Error(`unparsable: ${line}`);
  return r.message.params;
}

describe('ircd conformance (issue #15)', function () {
  this.timeout(20000);
  let t: TestDaemon;
  const open: RawClient[] = [];
  let marker = 0;

  const raw = async (): Promise<RawClient> => {
    const c = await RawClient.connect(t.port);
    open.push(c);
    return c;
  };
  /** A guest registered as `nick` (requireAccount is false here). */
  const guest = async (nick: string, user = nick): Promise<RawClient> => {
    const c = await raw();
    c.send(`NICK ${nick}`, `USER ${user} 0 * :Real ${nick}`);
    await c.waitLine(/ 001 /);
    return c;
  };
  /** Lines that arrive after `from` and before the answer to a PING sent now (a positive marker). */
  const until = async (c: RawClient, from: number): Promise<string[]> => {
    const token = `mark${++marker}`;
    c.send(`PING ${token}`);
    await c.waitLine(new RegExp(`PONG \\S+ :?${token}$`), 5000, from);
    const end = c.lines.findIndex((l, i) => i >= from && l.includes(token));
    return c.lines.slice(from, end);
  };
  const joined = async (c: RawClient, nick: string, channel: string): Promise<void> => {
    c.send(`JOIN ${channel}`);
    await c.waitLine(new RegExp(` 366 ${nick} ${channel} `));
  };

  before(async () => {
    t = await startTestDaemon({
      requireAccount: false,
      operators: [{ name: 'operuser', passwordHash: await hashPassword('operpassword') }],
      limits: { commandBurst: 1000, commandsPerSecond: 1000 },
    });
  });
  afterEach(() => open.splice(0).forEach((c) => c.close()));
  after(async () => t.stop());

  describe('src/ircd/commands/registration.ts', () => {
    it('gives 001 to only one of two connections registering the same nick at once; the other gets 433', async () => {
      const a = await raw();
      const b = await raw();
      a.send('NICK racer');
      b.send('NICK racer');
      a.send('USER u 0 * :Real');
      b.send('USER u 0 * :Real');
      const first = await Promise.race([a.waitLine(/ (001|433) /).then(() => a), b.waitLine(/ (001|433) /).then(() => b)]);
      const other = first === a ? b : a;
      await other.waitLine(/ (001|433) /);
      const welcomed = [a, b].filter((c) => c.lines.some((l) => / 001 /.test(l)));
      expect(welcomed, 'connections welcomed as racer').to.have.length(1);
      const loser = welcomed[0] === a ? b : a;
      expect(loser.lines.some((l) => / 433 \S+ racer :/.test(l)), loser.lines.join('\n')).to.equal(true);
      // The loser stays unregistered and may pick another nick.
      loser.send('NICK racer2');
      await loser.waitLine(/ 001 racer2 /);
    });

    it('refuses USER with an empty realname with 461 and does not register', async () => {
      const c = await raw();
      c.send('NICK norealname', 'USER u 0 * :');
      await c.waitLine(/ 461 norealname USER :Not enough parameters/);
      const seen = await until(c, 0);
      expect(seen.some((l) => / 001 /.test(l))).to.equal(false);
      c.send('USER u 0 * :Now a name');
      await c.waitLine(/ 001 norealname /);
    });

    it('lets a client change the case of its own nick, seen by itself and its channels, but not take another nick in another case', async () => {
      const alice = await guest('casey');
      const bob = await guest('bobby');
      await joined(alice, 'casey', '#case');
      await joined(bob, 'bobby', '#case');
      const mark = bob.lines.length;
      bob.send('NICK Casey');
      await bob.waitLine(/ 433 bobby Casey /, 5000, mark);
      alice.send('NICK Casey');
      await alice.waitLine(/^:casey!\S+ NICK :?Casey$/);
      await bob.waitLine(/^:casey!\S+ NICK :?Casey$/);
      const m2 = alice.lines.length;
      alice.send('NICK Casey');
      expect((await until(alice, m2)).filter((l) => / NICK /.test(l)), 'a no-op NICK says nothing').to.deep.equal([]);
      bob.send('WHOIS casey');
      await bob.waitLine(/ 311 bobby Casey /);
    });
  });

  describe('src/ircd/commands/users.ts WHOWAS', () => {
    it('answers 314 and 312 per past use of a nick, newest first, then 369; count limits, 0 or negative is all', async () => {
      const asker = await guest('asker');
      for (const ident of ['identtwo', 'identthree']) {
        const gone = await guest('goner', ident);
        gone.send('QUIT :bye');
        await gone.waitClose();
      }
      // The quits are processed before the asker's WHOWAS once the server answers a later PING.
      await until(asker, asker.lines.length);
      const ask = async (cmd: string): Promise<string[]> => {
        const from = asker.lines.length;
        asker.send(cmd);
        await asker.waitLine(/ 369 asker goner /, 5000, from);
        return asker.lines.slice(from).filter((l) => / (314|312|369|406) /.test(l));
      };
      const all = await ask('WHOWAS goner');
      expect(all.map((l) => l.split(' ')[1])).to.deep.equal(['314', '312', '314', '312', '369']);
      expect(paramsOf(all[0]!)).to.deep.equal(['asker', 'goner', '~identthree', '127.0.0.1', '*', 'Real goner']);
      expect(paramsOf(all[1]!).slice(0, 3)).to.deep.equal(['asker', 'goner', t.config.serverName]);
      expect(paramsOf(all[2]!)[2]).to.equal('~identtwo');
      expect((await ask('WHOWAS goner 1')).map((l) => l.split(' ')[1])).to.deep.equal(['314', '312', '369']);
      expect(await ask('WHOWAS goner 0')).to.have.length(5);
      expect(await ask('WHOWAS goner -1')).to.have.length(5);
      const from = asker.lines.length;
      asker.send('WHOWAS neverwas');
      await asker.waitLine(/ 406 asker neverwas /, 5000, from);
      await asker.waitLine(/ 369 asker neverwas /, 5000, from);
    });

    it('keeps no WHOWAS history of an account holder: 406, so no one learns where a member last connected from', async () => {
      const member = await t.addUser('wasmember');
      const asker = await guest('asker3');
      const c = await raw();
      await c.login('wasmember', member.password);
      c.send('QUIT :bye');
      await c.waitClose();
      await until(asker, asker.lines.length);
      asker.send('WHOWAS wasmember');
      await asker.waitLine(/ 406 asker3 wasmember /);
      await asker.waitLine(/ 369 asker3 wasmember /);
      expect(asker.lines.some((l) => / 314 asker3 wasmember /.test(l))).to.equal(false);
    });

    it('remembers a nick given up by a NICK change', async () => {
      const asker = await guest('asker2');
      const changer = await guest('oldnick');
      changer.send('NICK newnick');
      await changer.waitLine(/ NICK :?newnick$/);
      asker.send('WHOWAS oldnick');
      await asker.waitLine(/ 314 asker2 oldnick ~oldnick /);
    });
  });

  describe('src/ircd/commands/modes.ts', () => {
    it('keeps a ban list (+b, 367/368) and refuses a banned JOIN with 474 until -b', async () => {
      const op = await guest('banop');
      await joined(op, 'banop', '#bans');
      op.send('MODE #bans +b bar');
      await op.waitLine(/^:banop!\S+ MODE #bans \+b :?bar!\*@\*$/);
      op.send('MODE #bans +b');
      const entry = await op.waitLine(/ 367 banop #bans /);
      expect(paramsOf(entry).slice(0, 4)).to.deep.equal(['banop', '#bans', 'bar!*@*', 'banop!~banop@127.0.0.1']);
      expect(paramsOf(entry)[4]).to.match(/^\d+$/);
      await op.waitLine(/ 368 banop #bans /);
      const bar = await guest('Bar');
      bar.send('JOIN #bans');
      await bar.waitLine(/ 474 Bar #bans /);
      op.send('MODE #bans -b BAR!*@*');
      await op.waitLine(/ MODE #bans -b :?bar!\*@\*$/);
      bar.send('JOIN #bans');
      await bar.waitLine(/^:Bar!\S+ JOIN :?#bans$/);
    });

    it("does not stop keybot's server-side join into a room by a ban", async () => {
      const op = await guest('roomop');
      const member = await guest('member');
      const methods = makeChannelMethods(t.daemon.server);
      await methods['channel.join']!({ channel: '#sc-banned', nick: 'roomop' });
      await op.waitLine(/ 366 roomop #sc-banned /);
      op.send('MODE #sc-banned +b member!*@*');
      await op.waitLine(/ MODE #sc-banned \+b /);
      await methods['channel.join']!({ channel: '#sc-banned', nick: 'member' });
      await member.waitLine(/^:member!\S+ JOIN :?#sc-banned$/);
    });

    it('answers an invalid +k or +l with 696 <target> <mode> <parameter> :<why>, the parameter never split or missing', async () => {
      const op = await guest('keyop');
      await joined(op, 'keyop', '#keys');
      for (const [cmd, mode] of [['MODE #keys +k :with spaces', 'k'], ['MODE #keys +k :', 'k'], ['MODE #keys +l :', 'l'], ['MODE #keys +l :no way', 'l']] as const) {
        const from = op.lines.length;
        op.send(cmd);
        const line = await op.waitLine(/ 696 /, 5000, from);
        const p = paramsOf(line);
        expect(p, line).to.have.length(5);
        expect(p.slice(0, 4), line).to.deep.equal(['keyop', '#keys', mode, '*']);
      }
    });

    it('answers MODE +o for a nick that does not exist with 401, and 441 for one not in the channel', async () => {
      const op = await guest('opop');
      await guest('outsider');
      await joined(op, 'opop', '#ops');
      op.send('MODE #ops +o nobodyhere');
      await op.waitLine(/ 401 opop nobodyhere /);
      op.send('MODE #ops +o outsider');
      await op.waitLine(/ 441 opop outsider #ops /);
    });
  });

  describe('src/ircd/commands/presence.ts MONITOR', () => {
    it('follows a nick change: 731 for the old nick, 730 for the new one', async () => {
      const watcher = await guest('watcher');
      const mover = await guest('mover');
      watcher.send('MONITOR + mover,moved');
      await watcher.waitLine(/ 730 watcher :?mover!/);
      const from = watcher.lines.length;
      mover.send('NICK moved');
      await watcher.waitLine(/ 731 watcher :?mover$/, 5000, from);
      await watcher.waitLine(/ 730 watcher :?moved!~mover@127\.0\.0\.1$/, 5000, from);
    });
  });

  describe('src/ircd/commands/operator.ts KILL', () => {
    it('refuses KILL from a non-operator with 481 and leaves the target connected', async () => {
      const alice = await guest('killer');
      const bob = await guest('victim');
      alice.send('KILL victim :go away');
      await alice.waitLine(/ 481 killer /);
      const seen = await until(bob, 0);
      expect(seen.some((l) => l.startsWith('ERROR'))).to.equal(false);
      expect(bob.closed).to.equal(false);
    });

    it("lets an operator KILL: the target's connection closes with the reason, co-members see its QUIT", async () => {
      const oper = await guest('theoper');
      const bob = await guest('target');
      const carol = await guest('witness');
      await joined(bob, 'target', '#kill');
      await joined(carol, 'witness', '#kill');
      oper.send('OPER operuser operpassword');
      await oper.waitLine(/ 381 theoper /);
      oper.send('KILL nosuchnick :x');
      await oper.waitLine(/ 401 theoper nosuchnick /);
      oper.send('KILL target :spamming');
      await bob.waitLine(/^ERROR :Closing link: .*Killed \(theoper \(spamming\)\)/);
      await bob.waitClose();
      await carol.waitLine(/^:target!\S+ QUIT :Killed \(theoper \(spamming\)\)$/);
    });
  });

  describe('src/ircd/commands/info.ts', () => {
    it('answers TIME with 391 <server> <timestamp> 0 :<time>', async () => {
      const c = await guest('timer');
      const before = Math.floor(Date.now() / 1000);
      c.send('TIME');
      const p = paramsOf(await c.waitLine(/ 391 timer /));
      expect(p.slice(0, 2)).to.deep.equal(['timer', t.config.serverName]);
      expect(Number(p[2])).to.be.within(before, Math.ceil(Date.now() / 1000));
      expect(p[3]).to.equal('0');
      c.send('TIME other.server');
      await c.waitLine(/ 402 timer other\.server /);
    });

    it('answers INFO with 371 lines then 374, and 402 for another server', async () => {
      const c = await guest('infoer');
      c.send('INFO');
      await c.waitLine(/ 374 infoer :/);
      const info = c.lines.filter((l) => / 371 infoer :/.test(l));
      expect(info.length).to.be.greaterThan(0);
      c.send(`INFO ${t.config.serverName}`);
      await c.waitLine(/ 374 infoer :/, 5000, c.lines.length - 1);
      c.send('INFO elsewhere.example');
      await c.waitLine(/ 402 infoer elsewhere\.example /);
    });

    it('gives the highest number of users seen as the maximum in LUSERS 265/266', async () => {
      const a = await guest('lusa');
      const b = await guest('lusb');
      const now = t.daemon.server.clients.size;
      b.send('QUIT');
      await b.waitClose();
      await until(a, a.lines.length);
      const from = a.lines.length;
      a.send('LUSERS');
      const local = paramsOf(await a.waitLine(/ 265 lusa /, 5000, from));
      const global = paramsOf(await a.waitLine(/ 266 lusa /, 5000, from));
      expect(local.slice(1, 3)).to.deep.equal([String(now - 1), String(t.daemon.server.maxUsersSeen)]);
      expect(global.slice(1, 3)).to.deep.equal([String(now - 1), String(t.daemon.server.maxUsersSeen)]);
      expect(t.daemon.server.maxUsersSeen).to.be.at.least(now);
      expect(t.daemon.server.maxUsersSeen).to.not.equal(t.config.limits.maxClients);
    });
  });

  describe('src/ircd/commands/sasl.ts', () => {
    const plain = (name: string, password: string): string => Buffer.from(`${name}\0${name}\0${password}`).toString('base64');

    it('refuses AUTHENTICATE after registration with 462 (nick = account: no re-login under open channels)', async () => {
      const c = await raw();
      c.send('CAP LS 302', 'CAP REQ :sasl', 'NICK latesasl', 'USER u 0 * :Real', 'CAP END');
      await c.waitLine(/ 001 latesasl /);
      c.send('AUTHENTICATE PLAIN');
      await c.waitLine(/ 462 latesasl :/);
      const seen = await until(c, 0);
      expect(seen.some((l) => /^AUTHENTICATE \+/.test(l))).to.equal(false);
    });

    it('aborts SASL in progress with 906 when registration completes, then registers without it', async () => {
      const c = await raw();
      c.send('CAP LS 302', 'CAP REQ :sasl');
      await c.waitLine(/ CAP \S+ ACK /);
      c.send('AUTHENTICATE PLAIN');
      await c.waitLine(/^AUTHENTICATE \+$/);
      c.send('NICK midsasl', 'USER u 0 * :Real', 'CAP END');
      await c.waitLine(/ 906 midsasl /);
      await c.waitLine(/ 001 midsasl /);
    });

    it('fails an endless PLAIN response with 904 and a single overlong chunk with 905', async () => {
      const c = await raw();
      c.send('CAP LS 302', 'CAP REQ :sasl');
      await c.waitLine(/ CAP \S+ ACK /);
      c.send('AUTHENTICATE PLAIN');
      await c.waitLine(/^AUTHENTICATE \+$/);
      const chunk = 'A'.repeat(400);
      c.send(...Array.from({ length: 4 }, () => `AUTHENTICATE ${chunk}`));
      await c.waitLine(/ 904 \* :SASL authentication failed: response too long/);
      c.send('AUTHENTICATE PLAIN');
      await c.waitLine(/^AUTHENTICATE \+$/, 5000, c.lines.length - 1);
      c.send(`AUTHENTICATE ${'A'.repeat(401)}`);
      await c.waitLine(/ 905 \* /);
    });

    it('shows 330 in WHOIS for a user logged in with SASL, and none for a guest', async () => {
      const user = await t.addUser('saslwho');
      const c = await raw();
      c.send('CAP LS 302', 'CAP REQ :sasl');
      await c.waitLine(/ CAP \S+ ACK /);
      c.send('AUTHENTICATE PLAIN');
      await c.waitLine(/^AUTHENTICATE \+$/);
      c.send(`AUTHENTICATE ${plain('saslwho', user.password)}`);
      await c.waitLine(/ 903 /);
      c.send('NICK saslwho', 'USER u 0 * :Real', 'CAP END');
      await c.waitLine(/ 001 saslwho /);
      const asker = await guest('curious');
      asker.send('WHOIS saslwho');
      const line = await asker.waitLine(/ 330 curious saslwho /);
      expect(paramsOf(line)).to.deep.equal(['curious', 'saslwho', 'saslwho', 'is logged in as']);
      const from = asker.lines.length;
      asker.send('WHOIS curious');
      await asker.waitLine(/ 318 curious curious /, 5000, from);
      expect(asker.lines.slice(from).some((l) => / 330 /.test(l))).to.equal(false);
    });
  });
});
