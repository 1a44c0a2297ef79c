/**
 * CHATHISTORY (IRCv3 draft/chathistory) over a room's stored history: the subcommands, the
 * batch, membership intervals, retention, and the FAIL answers to malformed requests.
 */
import { expect } from 'chai';
import { ControlClient } from '../../../src/protocol/control-client.js';
import { RawClient, startTestDaemon, type TestDaemon, type TestUser } from '../../helpers/daemon.js';
import { sleep } from '../../helpers/poll.js';

const CAPS = ['batch', 'server-time', 'message-tags', 'draft/chathistory', 'labeled-response'];
const DAY = 86_400_000;

interface HistoryLine {
  line: string;
  text: string;
  tags: Record<string, string>;
}

function tagsOf(line: string): Record<string, string> {
  if (!line.startsWith('@')) return {};
  return Object.fromEntries(line.slice(1, line.indexOf(' ')).split(';').map((kv) => {
    const i = kv.indexOf('=');
    return i < 0 ? [kv, ''] : [kv.slice(0, i), kv.slice(i + 1)];
  }));
}

/** Send a CHATHISTORY request; the lines of the batch it answers with (which must be one batch). */
async function history(c: RawClient, request: string): Promise<HistoryLine[]> {
  const from = c.lines.length;
  c.send(request);
  const start = await c.waitLine(/ BATCH \+\S+ (chathistory|draft\/chathistory-targets)/, 5000, from);
  const id = /BATCH \+(\S+)/.exec(start)![1]!;
  await c.waitLine(new RegExp(` BATCH -${id}$`), 5000, from);
  return c.lines.slice(from)
    .filter((l) => tagsOf(l).batch === id && !/ BATCH /.test(l))
    .map((line) => ({ line, text: / :(.*)$/.exec(line.slice(line.indexOf(' ') + 1))?.[1] ?? line.slice(line.lastIndexOf(' ') + 1), tags: tagsOf(line) }));
}

const texts = (lines: HistoryLine[]): string[] => lines.map((l) => l.text);

describe('src/ircd/commands/chathistory.ts: CHATHISTORY over a room', function () {
  this.timeout(20000);
  let t: TestDaemon;
  let control: ControlClient;
  const users: Record<string, TestUser> = {};
  const open: RawClient[] = [];
  let n = 0;

  const login = async (name: string, caps = CAPS): Promise<RawClient> => {
    const c = await RawClient.connect(t.port);
    open.push(c);
    c.send('CAP LS 302', `CAP REQ :${caps.join(' ')}`, 'CAP END');
    await c.login(name, users[name]!.password);
    return c;
  };
  /** alice says each text into the room and waits until it was relayed (its echo). */
  const say = async (c: RawClient, room: string, ...lines: string[]): Promise<void> => {
    for (const text of lines) {
      c.send(`PRIVMSG ${room} :${text}`);
      await c.waitLine(new RegExp(`PRIVMSG ${room} :?${text}$`));
    }
  };
  const newRoom = async (accounts: string[], waitFor: RawClient): Promise<string> => {
    const room = `#sc-history${++n}`;
    await control.call('room.add', { room, accounts });
    await waitFor.waitLine(new RegExp(` 366 \\S+ ${room} `));
    return room;
  };

  before(async () => {
    // No fakelag: the tests say many lines quickly.
    t = await startTestDaemon({ limits: { commandBurst: 1000, commandsPerSecond: 1000 } });
    for (const u of ['alice', 'bob', 'carol', 'dave']) users[u] = await t.addUser(u);
    control = await ControlClient.connect(t.daemon.controlPath);
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
    t.daemon.server.rooms.now = () => Date.now();
  });
  after(async () => {
    control.close();
    await t.stop();
  });

  it('advertises draft/chathistory, CHATHISTORY=<max> and MSGREFTYPES=msgid,timestamp', async () => {
    const c = await RawClient.connect(t.port);
    open.push(c);
    c.send('CAP LS 302');
    expect(await c.waitLine(/ CAP \* LS /)).to.match(/draft\/chathistory/);
    c.send('CAP END');
    await c.login('alice', users.alice!.password);
    const isupport = c.lines.filter((l) => / 005 /.test(l)).join(' ');
    expect(isupport).to.match(/ CHATHISTORY=1000 /).and.to.match(/ MSGREFTYPES=msgid,timestamp /);
  });

  describe('the subcommands', () => {
    let alice: RawClient;
    let room: string;
    let all: HistoryLine[];
    const id = (i: number): string => all[i - 1]!.tags.msgid!;

    beforeEach(async () => {
      alice = await login('alice', [...CAPS, 'echo-message']);
      room = await newRoom(['alice'], alice);
      await say(alice, room, ...Array.from({ length: 10 }, (_, i) => `msg ${i + 1}`));
      all = await history(alice, `CHATHISTORY LATEST ${room} * 100`);
    });

    it('LATEST * answers the newest lines, oldest first, in a chathistory batch with time and msgid tags', async () => {
      expect(texts(all)).to.deep.equal(Array.from({ length: 10 }, (_, i) => `msg ${i + 1}`));
      for (const l of all) {
        expect(l.tags.time).to.match(/^\d{4}-\d\d-\d\dT/);
        expect(l.tags.msgid).to.be.a('string').and.not.equal('');
        expect(l.line).to.match(new RegExp(`:alice!\\S+ PRIVMSG ${room} :msg`));
      }
      expect(new Set(all.map((l) => l.tags.msgid)).size).to.equal(10);
      const start = alice.lines.find((l) => / BATCH \+\S+ chathistory /.test(l))!;
      expect(start).to.match(new RegExp(`BATCH \\+\\S+ chathistory ${room}$`));
      expect(texts(await history(alice, `CHATHISTORY LATEST ${room} * 3`))).to.deep.equal(['msg 8', 'msg 9', 'msg 10']);
    });

    it('LATEST after a reference answers the newest lines after it', async () => {
      expect(texts(await history(alice, `CHATHISTORY LATEST ${room} msgid=${id(8)} 10`))).to.deep.equal(['msg 9', 'msg 10']);
      const old = new Date(Date.now() - DAY).toISOString();
      expect(texts(await history(alice, `CHATHISTORY LATEST ${room} timestamp=${old} 1`))).to.deep.equal(['msg 10']);
    });

    it('BEFORE and AFTER answer the lines nearest the reference, excluding it', async () => {
      expect(texts(await history(alice, `CHATHISTORY BEFORE ${room} msgid=${id(5)} 2`))).to.deep.equal(['msg 3', 'msg 4']);
      expect(texts(await history(alice, `CHATHISTORY AFTER ${room} msgid=${id(5)} 2`))).to.deep.equal(['msg 6', 'msg 7']);
      const future = new Date(Date.now() + DAY).toISOString();
      expect(texts(await history(alice, `CHATHISTORY BEFORE ${room} timestamp=${future} 1`))).to.deep.equal(['msg 10']);
      expect(texts(await history(alice, `CHATHISTORY AFTER ${room} timestamp=${future} 5`))).to.deep.equal([]);
    });

    it('AROUND answers lines on both sides of the reference', async () => {
      expect(texts(await history(alice, `CHATHISTORY AROUND ${room} msgid=${id(5)} 4`))).to.deep.equal(['msg 3', 'msg 4', 'msg 5', 'msg 6']);
    });

    it('BETWEEN answers the lines between two references, nearest the first', async () => {
      expect(texts(await history(alice, `CHATHISTORY BETWEEN ${room} msgid=${id(2)} msgid=${id(6)} 10`))).to.deep.equal(['msg 3', 'msg 4', 'msg 5']);
      expect(texts(await history(alice, `CHATHISTORY BETWEEN ${room} msgid=${id(2)} msgid=${id(6)} 2`))).to.deep.equal(['msg 3', 'msg 4']);
      expect(texts(await history(alice, `CHATHISTORY BETWEEN ${room} msgid=${id(6)} msgid=${id(2)} 2`))).to.deep.equal(['msg 4', 'msg 5']);
      const old = new Date(Date.now() - DAY).toISOString();
      expect(texts(await history(alice, `CHATHISTORY BETWEEN ${room} timestamp=${old} msgid=${id(3)} 10`))).to.deep.equal(['msg 1', 'msg 2']);
    });

    it('TARGETS names the rooms with lines between two times, in a draft/chathistory-targets batch', async () => {
      const from = new Date(Date.now() - DAY).toISOString();
      const to = new Date(Date.now() + DAY).toISOString();
      const lines = await history(alice, `CHATHISTORY TARGETS timestamp=${from} timestamp=${to} 1000`);
      const mine = lines.find((l) => l.line.includes(` ${room} `));
      expect(mine?.line).to.match(new RegExp(`CHATHISTORY TARGETS ${room} ${all[9]!.tags.time!.replace(/\./g, '\\.')}$`));
      const none = await history(alice, `CHATHISTORY TARGETS timestamp=${to} timestamp=${new Date(Date.now() + 2 * DAY).toISOString()} 10`);
      expect(none).to.deep.equal([]);
    });

    it('inside a labeled response, the history lines keep their own batch', async () => {
      const from = alice.lines.length;
      alice.send(`@label=h1 CHATHISTORY LATEST ${room} * 2`);
      const outer = await alice.waitLine(/^@label=h1[; ]\S* ?\S+ BATCH \+\S+ labeled-response$/, 5000, from);
      const outerId = /BATCH \+(\S+)/.exec(outer)![1]!;
      await alice.waitLine(new RegExp(` BATCH -${outerId}$`), 5000, from);
      const got = alice.lines.slice(from).filter((l) => / PRIVMSG /.test(l));
      expect(got).to.have.length(2);
      for (const l of got) expect(l.match(/batch=/g)).to.have.length(1);
      const inner = alice.lines.slice(from).find((l) => / BATCH \+\S+ chathistory /.test(l))!;
      expect(tagsOf(inner).batch).to.equal(outerId);
    });
  });

  it('serves only lines from inside the requester\'s own membership intervals', async () => {
    const alice = await login('alice', [...CAPS, 'echo-message']);
    const room = await newRoom(['alice'], alice);
    await say(alice, room, 'before bob was added');
    await control.call('room.add', { room, accounts: ['bob'] }); // bob is offline: pending
    await say(alice, room, 'while bob was pending');
    // A pending member may read nothing yet.
    expect(t.daemon.server.rooms.readable(room, 'bob')).to.equal(null);
    await sleep(5);
    const bob = await login('bob');
    await bob.waitLine(new RegExp(` 366 bob ${room} `));
    await sleep(5);
    await say(alice, room, 'bob is a member', 'still a member');
    await bob.waitLine(/still a member$/);
    await sleep(5);
    bob.send(`PART ${room}`);
    await alice.waitLine(new RegExp(`:bob!\\S+ PART ${room}`));
    await say(alice, room, 'after bob left');
    expect(texts(await history(bob, `CHATHISTORY LATEST ${room} * 100`))).to.deep.equal(['bob is a member', 'still a member']);
    expect(texts(await history(bob, `CHATHISTORY BEFORE ${room} timestamp=${new Date(Date.now() + DAY).toISOString()} 100`)))
      .to.deep.equal(['bob is a member', 'still a member']);
    expect(texts(await history(alice, `CHATHISTORY LATEST ${room} * 100`)))
      .to.deep.equal(['before bob was added', 'while bob was pending', 'bob is a member', 'still a member', 'after bob left']);
  });

  it('answers FAIL INVALID_TARGET to someone who was never a member, and for an ordinary channel', async () => {
    const alice = await login('alice');
    const room = await newRoom(['alice'], alice);
    const carol = await login('carol');
    carol.send(`CHATHISTORY LATEST ${room} * 10`);
    await carol.waitLine(new RegExp(`^(@\\S+ )?:sealchat.local FAIL CHATHISTORY INVALID_TARGET LATEST ${room} :`));
    carol.send('JOIN #ordinary', 'CHATHISTORY LATEST #ordinary * 10');
    await carol.waitLine(/FAIL CHATHISTORY INVALID_TARGET LATEST #ordinary :/);
    carol.send('CHATHISTORY LATEST alice * 10');
    await carol.waitLine(/FAIL CHATHISTORY INVALID_TARGET LATEST alice :/);
    const end = await carol.sync();
    expect(carol.lines.slice(0, end).filter((l) => / BATCH /.test(l))).to.deep.equal([]);
  });

  it('answers malformed requests with the spec\'s FAIL codes', async () => {
    const alice = await login('alice');
    const room = await newRoom(['alice'], alice);
    const cases: Array<[string, RegExp]> = [
      ['CHATHISTORY', /FAIL CHATHISTORY NEED_MORE_PARAMS \* :/],
      [`CHATHISTORY FROB ${room} * 10`, /FAIL CHATHISTORY UNKNOWN_COMMAND FROB :/],
      [`CHATHISTORY LATEST ${room}`, /FAIL CHATHISTORY NEED_MORE_PARAMS LATEST :/],
      [`CHATHISTORY BETWEEN ${room} * 10`, /FAIL CHATHISTORY NEED_MORE_PARAMS BETWEEN :/],
      [`CHATHISTORY LATEST ${room} * ten`, /FAIL CHATHISTORY INVALID_PARAMS LATEST ten :/],
      [`CHATHISTORY LATEST ${room} * -1`, /FAIL CHATHISTORY INVALID_PARAMS LATEST -1 :/],
      [`CHATHISTORY BEFORE ${room} * 10`, /FAIL CHATHISTORY INVALID_PARAMS BEFORE \* :/],
      [`CHATHISTORY AFTER ${room} timestamp=yesterday 10`, /FAIL CHATHISTORY INVALID_PARAMS AFTER timestamp=yesterday :/],
      [`CHATHISTORY AROUND ${room} when=now 10`, /FAIL CHATHISTORY INVALID_PARAMS AROUND when=now :/],
      ['CHATHISTORY TARGETS msgid=x timestamp=2026-01-01T00:00:00.000Z 10', /FAIL CHATHISTORY INVALID_PARAMS TARGETS :/],
    ];
    for (const [request, expected] of cases) {
      const from = alice.lines.length;
      alice.send(request);
      await alice.waitLine(expected, 5000, from);
    }
  });

  describe('retention', () => {
    it('keeps at most history.maxMessages lines per room', async () => {
      const t2 = await startTestDaemon({ history: { maxMessages: 5, maxAgeDays: 30, mailboxMax: 10 }, limits: { commandBurst: 1000, commandsPerSecond: 1000 } });
      try {
        const alice = await t2.addUser('alice');
        const c2 = await ControlClient.connect(t2.daemon.controlPath);
        const c = await RawClient.connect(t2.port);
        c.send('CAP LS 302', `CAP REQ :${[...CAPS, 'echo-message'].join(' ')}`, 'CAP END');
        await c.login('alice', alice.password);
        expect(c.lines.filter((l) => / 005 /.test(l)).join(' ')).to.match(/ CHATHISTORY=5 /);
        await c2.call('room.add', { room: '#sc-retention', accounts: ['alice'] });
        await c.waitLine(/ 366 alice #sc-retention /);
        await say(c, '#sc-retention', ...Array.from({ length: 80 }, (_, i) => `m${i + 1}`));
        expect(texts(await history(c, 'CHATHISTORY LATEST #sc-retention * 0'))).to.deep.equal(['m76', 'm77', 'm78', 'm79', 'm80']);
        expect(texts(await history(c, 'CHATHISTORY AFTER #sc-retention timestamp=2000-01-01T00:00:00.000Z 5'))).to.deep.equal(['m76', 'm77', 'm78', 'm79', 'm80']);
        c.close();
        c2.close();
      } finally {
        await t2.stop();
      }
    });

    it('drops lines older than history.maxAgeDays (by the daemon\'s clock)', async () => {
      const alice = await login('alice', [...CAPS, 'echo-message']);
      const room = await newRoom(['alice'], alice);
      await say(alice, room, 'old');
      await sleep(5);
      await say(alice, room, 'new');
      const [, newer] = await history(alice, `CHATHISTORY LATEST ${room} * 10`);
      // 30 days after "new" was sent: "new" is exactly at the limit (kept), "old" is past it.
      t.daemon.server.rooms.now = () => Date.parse(newer!.tags.time!) + 30 * DAY;
      expect(texts(await history(alice, `CHATHISTORY LATEST ${room} * 10`))).to.deep.equal(['new']);
      t.daemon.server.rooms.now = () => Date.parse(newer!.tags.time!) + 30 * DAY + 1;
      expect(texts(await history(alice, `CHATHISTORY LATEST ${room} * 10`))).to.deep.equal([]);
    });
  });
});
