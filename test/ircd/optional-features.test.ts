/**
 * The optional IRC features that the public suite skipped as "not offered" before (issue #15,
 * docs/OPERATIONS.md "IRC conformance"): HELP, WHOX, ELIST, WALLOPS, LINKS, +e/+I, STATUSMSG,
 * UTF8ONLY, +C, several targets for KICK and NAMES, INVITE without arguments. Each over real
 * sockets, as modern.ircdocs.horse and the IRCv3 specs describe it.
 */
import { expect } from 'chai';
import { hashPassword } from '../../src/ircd/accounts.js';
import { parseLine } from '../../src/protocol/message.js';
import { RawClient, startTestDaemon, type TestDaemon } from '../helpers/daemon.js';

/** The parameters of a reply line, as a client parses them. */
function paramsOf(line: string): string[] {
  const r = parseLine(line);
  if (!r.ok) throw new Error(`unparsable: ${line}`);
  return r.message.params;
}

/** The command (or numeric) of a line. */
function commandOf(line: string): string {
  const r = parseLine(line);
  if (!r.ok) throw new Error(`unparsable: ${line}`);
  return r.message.command;
}

describe('ircd optional features (issue #15)', function () {
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
  /** Lines after the current end that arrive before the answer to a PING sent after `cmds` (a positive marker). */
  const ask = async (c: RawClient, ...cmds: string[]): Promise<string[]> => {
    const from = c.lines.length;
    const token = `mark${++marker}`;
    c.send(...cmds, `PING ${token}`);
    await c.waitLine(new RegExp(`PONG \\S+ :?${token}$`), 5000, from);
    const end = c.lines.findIndex((l, i) => i >= from && l.includes(token));
    return c.lines.slice(from, end);
  };
  /** Every line from index `from` up to the answer to a PING sent now (a positive marker). */
  const since = async (c: RawClient, from: number): Promise<string[]> => {
    await ask(c);
    return c.lines.slice(from).filter((l) => !/ PONG \S+ :?mark\d+$/.test(l));
  };
  const joined = async (c: RawClient, nick: string, channel: string): Promise<void> => {
    const from = c.lines.length;
    c.send(`JOIN ${channel}`);
    await c.waitLine(new RegExp(` 366 ${nick} ${channel} `), 5000, from);
  };
  const oper = async (c: RawClient, nick: string): Promise<void> => {
    const from = c.lines.length;
    c.send('OPER operuser operpassword');
    await c.waitLine(new RegExp(` 381 ${nick} `), 5000, from);
  };

  before(async () => {
    t = await startTestDaemon({
      requireAccount: false,
      utf8Only: true,
      operators: [{ name: 'operuser', passwordHash: await hashPassword('operpassword') }],
      limits: { commandBurst: 1000, commandsPerSecond: 1000 },
    });
  });
  afterEach(() => open.splice(0).forEach((c) => c.close()));
  after(async () => t.stop());

  describe('src/ircd/commands/info.ts HELP', () => {
    it('answers HELP with 704, the command names in 705 lines, then 706, all under subject *', async () => {
      const c = await guest('helper');
      const lines = await ask(c, 'HELP');
      expect(lines.map(commandOf)).to.include.ordered.members(['704', '705']);
      expect(commandOf(lines[lines.length - 1]!)).to.equal('706');
      expect(lines.every((l) => paramsOf(l)[1] === '*'), lines.join('\n')).to.equal(true);
      const names = lines.filter((l) => commandOf(l) === '705').flatMap((l) => paramsOf(l)[2]!.split(' '));
      expect(names).to.include.members(['JOIN', 'PRIVMSG', 'WHOIS', 'HELP']);
    });

    it('answers HELP <command> and HELPOP <command> (any case) with its syntax between 704 and 706', async () => {
      const c = await guest('helper2');
      for (const cmd of ['HELP privmsg', 'HELPOP PRIVMSG']) {
        const lines = await ask(c, cmd);
        expect(lines.map(commandOf), cmd).to.deep.equal(['704', '705', '706']);
        expect(lines.map((l) => paramsOf(l)[1])).to.deep.equal(['PRIVMSG', 'PRIVMSG', 'PRIVMSG']);
        expect(paramsOf(lines[0]!)[2]).to.match(/^PRIVMSG <target>/);
      }
    });

    it('answers HELP about an unknown subject with one 524, echoing the subject only when it is a plain word', async () => {
      const c = await guest('helper3');
      expect(await ask(c, 'HELP THISISNOTACOMMAND')).to.have.length(1).and.satisfy((l: string[]) =>
        /^:\S+ 524 helper3 THISISNOTACOMMAND :/.test(l[0]!));
      const odd = await ask(c, 'HELP ::colon');
      expect(odd).to.have.length(1);
      expect(paramsOf(odd[0]!).slice(0, 2)).to.deep.equal(['helper3', '*']);
    });
  });

  describe('src/ircd/commands/users.ts WHOX', () => {
    it('advertises WHOX and answers WHO <nick> %<fields>,<token> with one 354 in the fixed order t c u i h s n f d l a o r', async () => {
      const target = await guest('whoxed', 'someuser');
      await joined(target, 'whoxed', '#whox');
      const asker = await guest('whoxer');
      expect(asker.lines.some((l) => / 005 .* WHOX /.test(l))).to.equal(true);
      for (const fields of ['tcuihsnfdlaor', 'roaldfnshiuct']) {
        const lines = await ask(asker, `WHO whoxed %${fields},123`);
        expect(lines.map(commandOf)).to.deep.equal(['354', '315']);
        const p = paramsOf(lines[0]!);
        expect(p.slice(0, 9)).to.deep.equal(['whoxer', '123', '*', '~someuser', '127.0.0.1', '127.0.0.1', t.config.serverName, 'whoxed', 'H']);
        expect(p[9]).to.equal('0');
        expect(p[10]).to.match(/^\d+$/);
        expect(p.slice(11)).to.deep.equal(['0', 'n/a', 'Real whoxed']);
        expect(paramsOf(lines[1]!).slice(0, 2)).to.deep.equal(['whoxer', 'whoxed']);
      }
    });

    it('gives only the fields asked for, the token as given, and WHO #channel %cnf with channel prefixes', async () => {
      const op = await guest('chanx');
      await joined(op, 'chanx', '#whoxchan');
      const asker = await guest('askx');
      expect((await ask(asker, 'WHO chanx %tn,321')).map(paramsOf)[0]).to.deep.equal(['askx', '321', 'chanx']);
      expect((await ask(asker, 'WHO chanx %n,notdigits')).map(paramsOf)[0]).to.deep.equal(['askx', 'chanx']);
      expect((await ask(asker, 'WHO chanx %tn,notdigits')).map(paramsOf)[0]).to.deep.equal(['askx', '0', 'chanx']);
      const lines = await ask(asker, 'WHO #whoxchan %cnf');
      expect(lines.map(paramsOf)).to.deep.equal([['askx', '#whoxchan', 'chanx', 'H@'], ['askx', '#whoxchan', 'End of WHO list']]);
    });

    it("shows an account holder's account (a) and nothing WHOIS does not: the same user, host and account", async () => {
      const member = await t.addUser('whoxmember');
      const m = await raw();
      await m.login('whoxmember', member.password);
      const asker = await guest('askacct');
      const [whox] = (await ask(asker, 'WHO whoxmember %uhna')).map(paramsOf);
      expect(whox).to.deep.equal(['askacct', 'whoxmember', '127.0.0.1', 'whoxmember', 'whoxmember']);
      const whois = await ask(asker, 'WHOIS whoxmember');
      const user = paramsOf(whois.find((l) => commandOf(l) === '311')!);
      const account = paramsOf(whois.find((l) => commandOf(l) === '330')!);
      expect([user[2], user[3], user[1], account[2]]).to.deep.equal(whox!.slice(1));
    });

    it('hides a secret channel and its members from WHOX as from WHO', async () => {
      const op = await guest('secretx');
      await joined(op, 'secretx', '#hiddenx');
      await ask(op, 'MODE #hiddenx +s');
      const asker = await guest('outsidex');
      expect((await ask(asker, 'WHO #hiddenx %cn')).map(commandOf)).to.deep.equal(['315']);
    });

    it('answers a WHO mask that could not go back as one parameter with 315 *', async () => {
      const c = await guest('oddwho');
      expect((await ask(c, 'WHO :a b')).map(paramsOf)).to.deep.equal([['oddwho', '*', 'End of WHO list']]);
    });
  });

  describe('src/ircd/commands/channels.ts LIST (ELIST=CMNTU)', () => {
    const listed = async (c: RawClient, cmd: string): Promise<string[]> =>
      (await ask(c, cmd)).filter((l) => commandOf(l) === '322').map((l) => paramsOf(l)[1]!).sort();

    it('advertises ELIST=CMNTU and filters by mask (M), negated mask (N) and member count (U)', async () => {
      const a = await guest('lister');
      await joined(a, 'lister', '#elist1');
      await joined(a, 'lister', '#elist2');
      const b = await guest('lister2');
      await joined(b, 'lister2', '#elist2');
      expect(a.lines.some((l) => / 005 .* ELIST=CMNTU /.test(l))).to.equal(true);
      expect(await listed(b, 'LIST *ist1')).to.deep.equal(['#elist1']);
      expect(await listed(b, 'LIST #E*2')).to.deep.equal(['#elist2']);
      expect(await listed(b, 'LIST #elist1,#nosuch')).to.deep.equal(['#elist1']);
      expect(await listed(b, 'LIST !*ist1')).to.include('#elist2').and.not.include('#elist1');
      expect(await listed(b, 'LIST #elist*,!*2')).to.deep.equal(['#elist1']);
      expect(await listed(b, 'LIST #elist*,>1')).to.deep.equal(['#elist2']);
      expect(await listed(b, 'LIST #elist*,<2')).to.deep.equal(['#elist1']);
      expect(await listed(b, 'LIST #elist* <1')).to.deep.equal([]);
    });

    it('filters by minutes since creation (C) and since the topic was set (T); no topic matches no T', async () => {
      const a = await guest('timelister');
      await joined(a, 'timelister', '#told');
      await joined(a, 'timelister', '#tnew');
      await ask(a, 'TOPIC #told :old topic', 'TOPIC #tnew :new topic');
      await joined(a, 'timelister', '#tnotopic');
      const now = Math.floor(Date.now() / 1000);
      const old = t.daemon.server.channels.get('#told')!;
      (old as { createdAt: number }).createdAt = now - 180;
      old.topicSetAt = now - 180;
      t.daemon.server.channels.get('#tnew')!.topicSetAt = now - 60;
      expect(await listed(a, 'LIST #t*,C>2')).to.deep.equal(['#told']);
      expect(await listed(a, 'LIST #t*,C<2')).to.deep.equal(['#tnew', '#tnotopic']);
      expect(await listed(a, 'LIST #t*,C<0')).to.deep.equal([]);
      expect(await listed(a, 'LIST #t*,T>2')).to.deep.equal(['#told']);
      expect(await listed(a, 'LIST #t*,T<2')).to.deep.equal(['#tnew']);
      expect(await listed(a, 'LIST #t*,T<10')).to.deep.equal(['#tnew', '#told']);
    });

    it('never lists a secret channel to a non-member, whatever the filter', async () => {
      const a = await guest('secretlister');
      await joined(a, 'secretlister', '#elistsecret');
      await ask(a, 'MODE #elistsecret +s');
      const b = await guest('nosy');
      for (const cmd of ['LIST', 'LIST #elistsecret', 'LIST *secret', 'LIST >0', 'LIST !#nothing']) {
        expect(await listed(b, cmd), cmd).to.not.include('#elistsecret');
      }
      expect(await listed(a, 'LIST *secret')).to.deep.equal(['#elistsecret']);
    });
  });

  describe('src/ircd/commands/operator.ts WALLOPS and user mode +w', () => {
    it('delivers WALLOPS from an operator to every user with +w, and to nobody without it', async () => {
      const op = await guest('wallop');
      const listener = await guest('listens');
      const deaf = await guest('deaf');
      expect(await ask(listener, 'MODE listens +w')).to.satisfy((l: string[]) => l.some((x) => /^:listens!\S+ MODE listens :?\+w$/.test(x)));
      await oper(op, 'wallop');
      const mark = deaf.lines.length;
      op.send('WALLOPS :hi everyone');
      await listener.waitLine(/^:wallop!\S+ WALLOPS :hi everyone$/);
      expect((await since(deaf, mark)).some((l) => / WALLOPS /.test(l))).to.equal(false);
      await ask(listener, 'MODE listens -w');
      const from = listener.lines.length;
      op.send('WALLOPS :again');
      await ask(op);
      expect((await since(listener, from)).some((l) => / WALLOPS /.test(l))).to.equal(false);
    });

    it('refuses WALLOPS from a non-operator with 481 and sends it to no one', async () => {
      const listener = await guest('listens2');
      await ask(listener, 'MODE listens2 +w');
      const c = await guest('notoper');
      expect((await ask(c, 'WALLOPS :hi')).map(commandOf)).to.deep.equal(['481']);
      expect((await ask(listener)).some((l) => / WALLOPS /.test(l))).to.equal(false);
    });

    it('answers WALLOPS without text with 461', async () => {
      const op = await guest('wallop2');
      await oper(op, 'wallop2');
      expect((await ask(op, 'WALLOPS :')).map(commandOf)).to.deep.equal(['461']);
    });
  });

  describe('src/ircd/commands/info.ts LINKS', () => {
    it('lists this server alone with its hop count 0 and server info, then 365', async () => {
      const c = await guest('linker');
      expect((await ask(c, 'LINKS')).map(paramsOf)).to.deep.equal([
        ['linker', t.config.serverName, t.config.serverName, `0 ${t.config.serverInfo}`],
        ['linker', '*', 'End of /LINKS list'],
      ]);
      expect((await ask(c, 'LINKS *.nowhere')).map(commandOf)).to.deep.equal(['365']);
    });
  });

  describe('src/ircd/commands/modes.ts ban exceptions (+e) and invite exceptions (+I)', () => {
    it('advertises EXCEPTS=e and INVEX=I with both in CHANMODES list group A', async () => {
      const c = await guest('isupporter');
      const tokens = c.lines.filter((l) => / 005 /.test(l)).flatMap((l) => paramsOf(l).slice(1, -1));
      expect(tokens).to.include.members(['EXCEPTS=e', 'INVEX=I']);
      expect(tokens.find((x) => x.startsWith('CHANMODES='))!.split('=')[1]!.split(',')[0]).to.equal('beI');
    });

    it('lets a user matching +I into a +i channel without an invitation, until -I', async () => {
      const op = await guest('invexop');
      await joined(op, 'invexop', '#invex');
      await ask(op, 'MODE #invex +i');
      const bar = await guest('Barx');
      expect((await ask(bar, 'JOIN #invex')).map(commandOf)).to.deep.equal(['473']);
      const set = await ask(op, 'MODE #invex +I barx');
      expect(set.some((l) => /^:invexop!\S+ MODE #invex \+I :?barx!\*@\*$/.test(l)), set.join('\n')).to.equal(true);
      await joined(bar, 'Barx', '#invex');
      await ask(bar, 'PART #invex');
      await ask(op, 'MODE #invex -I BARX!*@*');
      expect((await ask(bar, 'JOIN #invex')).map(commandOf)).to.deep.equal(['473']);
      const other = await guest('bazx');
      expect((await ask(other, 'JOIN #invex')).map(commandOf), '+I for one mask lets no one else in').to.deep.equal(['473']);
    });

    it('lets a banned user matching +e join, and a +e does not open a +i channel', async () => {
      const op = await guest('exceptop');
      await joined(op, 'exceptop', '#except');
      await ask(op, 'MODE #except +b *!*@*');
      const bar = await guest('barex', 'goodident');
      expect((await ask(bar, 'JOIN #except')).map(commandOf)).to.deep.equal(['474']);
      await ask(op, 'MODE #except +e *!~goodident@*');
      await joined(bar, 'barex', '#except');
      const other = await guest('bazex');
      expect((await ask(other, 'JOIN #except')).map(commandOf)).to.deep.equal(['474']);
      await ask(op, 'MODE #except -b *!*@*', 'MODE #except +i');
      expect((await ask(other, 'JOIN #except')).map(commandOf)).to.deep.equal(['473']);
      expect((await ask(bar, 'PART #except', 'JOIN #except')).map(commandOf)).to.include('473');
    });

    it('lists +e with 348/349 and +I with 346/347 (mask, setter, time) to operators, and answers 482 to other members', async () => {
      const op = await guest('listop');
      await joined(op, 'listop', '#lists');
      await ask(op, 'MODE #lists +e ex!*@*', 'MODE #lists +I in!*@*');
      const e = (await ask(op, 'MODE #lists e')).map(paramsOf);
      expect(e.map((p) => p.slice(0, 4))).to.deep.equal([['listop', '#lists', 'ex!*@*', 'listop!~listop@127.0.0.1'], ['listop', '#lists', 'End of channel ban exception list']]);
      const inv = await ask(op, 'MODE #lists +I');
      expect(inv.map(commandOf)).to.deep.equal(['346', '347']);
      expect(paramsOf(inv[0]!).slice(2, 3)).to.deep.equal(['in!*@*']);
      const member = await guest('plainmember');
      await joined(member, 'plainmember', '#lists');
      expect((await ask(member, 'MODE #lists e')).map(commandOf)).to.deep.equal(['482']);
      expect((await ask(member, 'MODE #lists I')).map(commandOf)).to.deep.equal(['482']);
      expect((await ask(member, 'MODE #lists b')).map(commandOf)).to.deep.equal(['368']);
      expect((await ask(member, 'MODE #lists +I sneaky!*@*')).map(commandOf)).to.deep.equal(['482']);
      expect(t.daemon.server.channels.get('#lists')!.lists.I.size).to.equal(1);
    });
  });

  describe('src/ircd/commands/channels.ts several targets and INVITE without arguments', () => {
    it('kicks several users from one channel, or pairs channels with users, each KICK seen by the members', async () => {
      const op = await guest('kicker');
      const witness = await guest('kwitness');
      const victims = await Promise.all(['kv1', 'kv2', 'kv3'].map((n) => guest(n)));
      for (const [c, n] of [[op, 'kicker'], [witness, 'kwitness'], [victims[0]!, 'kv1'], [victims[1]!, 'kv2']] as const) await joined(c, n, '#kick1');
      await joined(op, 'kicker', '#kick2');
      await joined(victims[2]!, 'kv3', '#kick2');
      const from = witness.lines.length;
      await ask(op, 'KICK #kick1 kv1,kv2 :bye');
      const seen = (await since(witness, from)).filter((l) => / KICK /.test(l)).map(paramsOf);
      expect(seen).to.deep.equal([['#kick1', 'kv1', 'bye'], ['#kick1', 'kv2', 'bye']]);
      await joined(victims[0]!, 'kv1', '#kick1');
      const pairs = await ask(op, 'KICK #kick1,#kick2 kv1,kv3 :pairs');
      expect(pairs.filter((l) => / KICK /.test(l)).map(paramsOf)).to.deep.equal([['#kick1', 'kv1', 'pairs'], ['#kick2', 'kv3', 'pairs']]);
      expect((await ask(op, 'KICK #kick1,#kick2 kwitness')).map(commandOf)).to.deep.equal(['461']);
      expect((await ask(op, 'KICK #kick1 a,b,c,d,e')).map(commandOf)).to.deep.equal(['407']);
      expect(op.lines.some((l) => / 005 .*TARGMAX=\S*KICK:4/.test(l))).to.equal(true);
    });

    it('answers NAMES of several channels with their 353 lines and one 366 naming the list as asked', async () => {
      const c = await guest('namer');
      await joined(c, 'namer', '#names1');
      await joined(c, 'namer', '#names2');
      const lines = (await ask(c, 'NAMES #names1,#names2,#nosuch')).map(paramsOf);
      expect(lines).to.deep.equal([
        ['namer', '=', '#names1', '@namer'], ['namer', '=', '#names2', '@namer'], ['namer', '#names1,#names2,#nosuch', 'End of /NAMES list'],
      ]);
      expect((await ask(c, 'NAMES #names1')).map(commandOf)).to.deep.equal(['353', '366']);
      expect((await ask(c, 'NAMES #a,#b,#c,#d,#e')).map(commandOf)).to.deep.equal(['407']);
    });

    it('lists the channels one is invited to on INVITE without arguments (336, then 337); one argument is 461', async () => {
      const op = await guest('inviter');
      const bar = await guest('invitee');
      await joined(op, 'inviter', '#invlist');
      expect((await ask(bar, 'INVITE')).map(commandOf)).to.deep.equal(['337']);
      await ask(op, 'INVITE invitee #invlist');
      await bar.waitLine(/^:inviter!\S+ INVITE invitee :?#invlist$/);
      expect((await ask(bar, 'INVITE')).map(paramsOf)).to.deep.equal([['invitee', '#invlist'], ['invitee', 'End of /INVITE list']]);
      expect((await ask(bar, 'INVITE inviter')).map(commandOf)).to.deep.equal(['461']);
    });
  });

  describe('src/ircd/commands/messaging.ts STATUSMSG and +C', () => {
    it('delivers PRIVMSG @#chan only to operators and +#chan to operators and voiced members, with the prefix kept', async () => {
      const op = await guest('statop');
      await joined(op, 'statop', '#status');
      const voiced = await guest('statvoice');
      const plain = await guest('statplain');
      await joined(voiced, 'statvoice', '#status');
      await joined(plain, 'statplain', '#status');
      await ask(op, 'MODE #status +v statvoice');
      for (const c of [voiced, plain]) await c.waitLine(/ MODE #status \+v :?statvoice$/);
      const fromV = voiced.lines.length;
      const fromP = plain.lines.length;
      expect(await ask(plain, 'PRIVMSG @#status :for ops')).to.deep.equal([]);
      await op.waitLine(/^:statplain!\S+ PRIVMSG @#status :for ops$/);
      plain.send('PRIVMSG +#status :for voices');
      await op.waitLine(/^:statplain!\S+ PRIVMSG \+#status :for voices$/);
      await voiced.waitLine(/^:statplain!\S+ PRIVMSG \+#status :for voices$/, 5000, fromV);
      expect((await since(voiced, fromV)).some((l) => /for ops/.test(l))).to.equal(false);
      op.send('PRIVMSG @#status :ops only');
      await ask(op);
      expect((await since(plain, fromP)).some((l) => /PRIVMSG/.test(l))).to.equal(false);
      expect(op.lines.some((l) => / 005 .*STATUSMSG=@\+/.test(l))).to.equal(true);
    });

    it('refuses STATUSMSG from someone who may not send to the channel itself (+n)', async () => {
      const op = await guest('statop2');
      await joined(op, 'statop2', '#status2');
      const outsider = await guest('statout');
      expect((await ask(outsider, 'PRIVMSG @#status2 :hi')).map(commandOf)).to.deep.equal(['404']);
      expect((await ask(op)).some((l) => / PRIVMSG /.test(l))).to.equal(false);
    });

    it('refuses CTCP but ACTION in a +C channel with 404, and passes both without +C', async () => {
      const op = await guest('ctcpop');
      await joined(op, 'ctcpop', '#noctcp');
      const user = await guest('ctcper');
      await joined(user, 'ctcper', '#noctcp');
      expect(await ask(user, 'PRIVMSG #noctcp :\x01ACTION waves\x01', 'PRIVMSG #noctcp :\x01PING 1\x01')).to.deep.equal([]);
      await op.waitLine(/PRIVMSG #noctcp :\x01PING 1\x01$/);
      await ask(op, 'MODE #noctcp +C');
      await user.waitLine(/ MODE #noctcp :?\+C$/);
      const from = op.lines.length;
      expect(await ask(user, 'PRIVMSG #noctcp :\x01ACTION waves again\x01')).to.deep.equal([]);
      const refused = await ask(user, 'PRIVMSG #noctcp :\x01VERSION\x01', 'NOTICE #noctcp :\x01PING 2\x01');
      expect(refused.map(paramsOf)).to.deep.equal([['ctcper', '#noctcp', 'Cannot send CTCP to channel (+C)']]);
      const got = (await since(op, from)).filter((l) => / (PRIVMSG|NOTICE) /.test(l));
      expect(got).to.have.length(1);
      expect(got[0]).to.match(/ACTION waves again/);
    });
  });

  describe('src/ircd/server/session.ts UTF8ONLY', () => {
    const sendBytes = (c: RawClient, ...parts: Array<string | number[]>): void => {
      c.socket.write(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p)))));
    };

    it('advertises UTF8ONLY and refuses a PRIVMSG that is not UTF-8 with FAIL PRIVMSG INVALID_UTF8, relaying nothing', async () => {
      const a = await guest('utfsender');
      const b = await guest('utfreader');
      expect(a.lines.some((l) => / 005 .*UTF8ONLY/.test(l))).to.equal(true);
      const from = b.lines.length;
      const mark = a.lines.length;
      sendBytes(a, 'PRIVMSG utfreader :hi', [0xaa], '\r\n');
      const refused = await a.waitLine(/ FAIL /, 5000, mark);
      expect(paramsOf(refused).slice(0, 2)).to.deep.equal(['PRIVMSG', 'INVALID_UTF8']);
      a.send('PRIVMSG utfreader :h\u00e9 \u263a');
      await b.waitLine(/ PRIVMSG utfreader :h\u00e9 \u263a$/, 5000, from);
      expect((await since(b, from)).filter((l) => / PRIVMSG /.test(l))).to.have.length(1);
    });

    it('refuses a USER line that is not UTF-8 and leaves the connection unregistered until a valid one', async () => {
      const c = await raw();
      c.send('NICK utfuser');
      sendBytes(c, 'USER u * * :i', [0xe8], 'rc', [0xe9], '\r\n');
      await c.waitLine(/^:\S+ FAIL USER INVALID_UTF8 :/);
      expect((await since(c, 0)).some((l) => / 001 /.test(l))).to.equal(false);
      c.send('USER u * * :valid name');
      await c.waitLine(/ 001 utfuser /);
    });

    it('with utf8Only off (the default) neither advertises UTF8ONLY nor refuses: bad bytes read as U+FFFD', async () => {
      const d = await startTestDaemon({ requireAccount: false });
      try {
        const a = await RawClient.connect(d.port);
        const b = await RawClient.connect(d.port);
        open.push(a, b);
        a.send('NICK lax1', 'USER u 0 * :lax');
        b.send('NICK lax2', 'USER u 0 * :lax');
        await a.waitLine(/ 001 /);
        await b.waitLine(/ 001 /);
        expect(a.lines.some((l) => /UTF8ONLY/.test(l))).to.equal(false);
        sendBytes(a, 'PRIVMSG lax2 :hi', [0xaa], '\r\n');
        await b.waitLine(/ PRIVMSG lax2 :?hi\ufffd$/);
      } finally {
        await d.stop();
      }
    });

    it('answers FAIL * for a line whose command cannot be read, and keeps the connection', async () => {
      const c = await guest('utfodd');
      const from = c.lines.length;
      sendBytes(c, [0xff, 0xfe], ' x\r\n');
      await c.waitLine(/^:\S+ FAIL \* INVALID_UTF8 :/, 5000, from);
      await ask(c);
    });
  });

  describe('src/ircd/accounts.ts long passwords', () => {
    it('takes an 800-byte password and logs in with it over SASL PLAIN: two 400-character chunks, then AUTHENTICATE +', async () => {
      const pw = 'x'.repeat(800);
      await t.addUser('longpw', pw);
      const auth = Buffer.from(`\0longpw\0${pw}`).toString('base64');
      expect(auth.length).to.be.greaterThan(800);
      const c = await raw();
      c.send('CAP LS 302', 'CAP REQ :sasl');
      await c.waitLine(/ CAP \S+ ACK /);
      c.send('AUTHENTICATE PLAIN');
      await c.waitLine(/^AUTHENTICATE \+$/);
      const chunks = auth.match(/.{1,400}/g)!;
      c.send(...chunks.map((ch) => `AUTHENTICATE ${ch}`), ...(chunks.at(-1)!.length === 400 ? ['AUTHENTICATE +'] : []));
      await c.waitLine(/ 903 /);
      c.send('NICK longpw', 'USER u 0 * :Real', 'CAP END');
      await c.waitLine(/ 001 longpw /);
      let refused: unknown = null;
      await t.addUser('toolongpw', 'x'.repeat(801)).catch((e: unknown) => (refused = e));
      expect(String(refused)).to.match(/at most 800 bytes/);
    });
  });

  describe('src/ircd/server/session.ts labeled-response', () => {
    const labeledClient = async (nick: string, caps = 'batch labeled-response'): Promise<RawClient> => {
      const c = await raw();
      c.send('CAP LS 302', `CAP REQ :${caps}`, `NICK ${nick}`, 'USER u 0 * :Real', 'CAP END');
      await c.waitLine(/ 001 /);
      return c;
    };

    it('puts the label on the one reply line: NICK from the old nick', async () => {
      const c = await labeledClient('labeler');
      const lines = await ask(c, '@label=abc NICK labeler2');
      expect(lines).to.deep.equal(['@label=abc :labeler!~u@127.0.0.1 NICK labeler2']);
    });

    it('answers a labeled command without replies with ACK, and one with several in a labeled-response BATCH', async () => {
      const c = await labeledClient('batcher');
      expect(await ask(c, '@label=q1 PONG x')).to.deep.equal([`@label=q1 :${t.config.serverName} ACK`]);
      const lines = await ask(c, '@label=q2 WHOIS batcher');
      const start = /^@label=q2 :\S+ BATCH \+(\S+) labeled-response$/.exec(lines[0]!);
      expect(start, lines[0]).to.not.equal(null);
      const id = start![1]!;
      expect(lines.at(-1)).to.equal(`:${t.config.serverName} BATCH -${id}`);
      const inner = lines.slice(1, -1);
      expect(inner.map(commandOf)).to.include.members(['311', '318']);
      expect(inner.every((l) => l.startsWith(`@batch=${id} `)), inner.join('\n')).to.equal(true);
    });

    it('labels the refusal of a line the parser cannot read (421), and leaves a line without a label alone', async () => {
      const c = await labeledClient('badlabel');
      expect(await ask(c, '@label=dead NO_SUCH_COMMAND')).to.deep.equal([`@label=dead :${t.config.serverName} 421 badlabel * :Malformed line`]);
      expect(await ask(c, '@foo=1 NO_SUCH_COMMAND')).to.deep.equal([`:${t.config.serverName} 421 badlabel * :Malformed line`]);
    });

    it('ignores a label without the caps, or longer than 64 bytes', async () => {
      const plain = await guest('nolabels');
      expect(await ask(plain, '@label=z PING tok')).to.deep.equal([`:${t.config.serverName} PONG ${t.config.serverName} tok`]);
      const c = await labeledClient('longlabel');
      expect(await ask(c, `@label=${'x'.repeat(65)} PING tok`)).to.deep.equal([`:${t.config.serverName} PONG ${t.config.serverName} tok`]);
    });
  });

  describe('src/ircd/commands/messaging.ts mute extban (+b m:)', () => {
    it('advertises EXTBAN with m and keeps a muted member from speaking (404) but not from joining, until -b', async () => {
      const op = await guest('muteop');
      await joined(op, 'muteop', '#mute');
      expect(op.lines.some((l) => / 005 .*EXTBAN=,am /.test(l))).to.equal(true);
      const set = await ask(op, 'MODE #mute +b m:Muted');
      expect(set.some((l) => / MODE #mute \+b :?m:Muted!\*@\*$/.test(l)), set.join('\n')).to.equal(true);
      const muted = await guest('muted');
      await joined(muted, 'muted', '#mute');
      const from = op.lines.length;
      expect((await ask(muted, 'PRIVMSG #mute :hi')).map(commandOf)).to.deep.equal(['404']);
      expect((await ask(muted, 'MODE #mute b')).map(paramsOf)[0]!.slice(2, 4)).to.deep.equal(['m:Muted!*@*', 'muteop!~muteop@127.0.0.1']);
      await ask(op, 'MODE #mute -b m:muted!*@*');
      await muted.waitLine(/ MODE #mute -b :?m:Muted!\*@\*$/);
      expect(await ask(muted, 'PRIVMSG #mute :hi again')).to.deep.equal([]);
      const heard = (await since(op, from)).filter((l) => / PRIVMSG /.test(l));
      expect(heard).to.have.length(1);
      expect(heard[0]).to.match(/hi again$/);
    });

    it('lets a muted member speak once voiced, or when a +e m: or plain +e matches', async () => {
      const op = await guest('muteop2');
      await joined(op, 'muteop2', '#mute2');
      await ask(op, 'MODE #mute2 +b m:*!*@*');
      const a = await guest('mutea', 'identa');
      await joined(a, 'mutea', '#mute2');
      expect((await ask(a, 'PRIVMSG #mute2 :x')).map(commandOf)).to.deep.equal(['404']);
      expect(await ask(op, 'PRIVMSG #mute2 :ops talk')).to.deep.equal([]);
      await ask(op, 'MODE #mute2 +v mutea');
      await a.waitLine(/ MODE #mute2 \+v :?mutea$/);
      expect(await ask(a, 'PRIVMSG #mute2 :voiced')).to.deep.equal([]);
      await ask(op, 'MODE #mute2 -v mutea', 'MODE #mute2 +e m:*!~identa@*');
      await a.waitLine(/ MODE #mute2 \+e :?m:\*!~identa@\*$/);
      expect(await ask(a, 'PRIVMSG #mute2 :excepted')).to.deep.equal([]);
      await ask(op, 'MODE #mute2 -e m:*!~identa@*', 'MODE #mute2 +e mutea');
      await a.waitLine(/ MODE #mute2 \+e :?mutea!\*@\*$/);
      expect(await ask(a, 'PRIVMSG #mute2 :plain exception')).to.deep.equal([]);
    });
  });

  describe('src/ircd/server/model.ts account extban (a:)', () => {
    it('advertises ACCOUNTEXTBAN=a and bans (+b a:) a logged-in account, never a guest with that nick', async () => {
      const op = await guest('acctop');
      await joined(op, 'acctop', '#acctban');
      await joined(op, 'acctop', '#acctban2');
      expect(op.lines.some((l) => / 005 .*ACCOUNTEXTBAN=a /.test(l))).to.equal(true);
      await ask(op, 'MODE #acctban +b a:Banned*', 'MODE #acctban2 +b a:guestlike');
      const member = await t.addUser('bannedacct');
      const m = await raw();
      await m.login('bannedacct', member.password);
      expect((await ask(m, 'JOIN #acctban')).map(commandOf)).to.deep.equal(['474']);
      const g = await guest('guestlike');
      await joined(g, 'guestlike', '#acctban2');
      await ask(op, 'MODE #acctban -b a:banned*');
      await joined(m, 'bannedacct', '#acctban');
    });

    it('refuses an extban that names nobody (m:, a:, m:a:) with 696 and sets nothing', async () => {
      const op = await guest('emptyext');
      await joined(op, 'emptyext', '#emptyext');
      for (const mask of ['m:', 'a:', 'm:a:']) {
        const lines = await ask(op, `MODE #emptyext +b ${mask}`);
        expect(lines.map((l) => paramsOf(l).slice(0, 4)), mask).to.deep.equal([['emptyext', '#emptyext', 'b', '*']]);
      }
      expect(t.daemon.server.channels.get('#emptyext')!.lists.b.size).to.equal(0);
    });

    it('lets an account past a ban (+e a:) and past +i (+I a:)', async () => {
      const op = await guest('acctop2');
      await joined(op, 'acctop2', '#accte');
      await ask(op, 'MODE #accte +b *!*@*', 'MODE #accte +e a:exempted', 'MODE #accte +I a:exempted', 'MODE #accte +i');
      const member = await t.addUser('exempted');
      const m = await raw();
      await m.login('exempted', member.password);
      await joined(m, 'exempted', '#accte');
      const g = await guest('notexempt');
      expect((await ask(g, 'JOIN #accte')).map(commandOf)).to.deep.equal(['473']);
    });
  });
});
