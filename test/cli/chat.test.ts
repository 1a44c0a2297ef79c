/**
 * `sealchat chat` as a child process against the real daemon and the real keybot, with a
 * SealClient on the other side: opening a room with /invite, messages both ways, presence,
 * refusals, and the errors a user meets before getting in.
 */
import { expect } from 'chai';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { startKeybot } from '../../src/bot/main.js';
import type { SealClient } from '../../src/client/client.js';
import { CliProcess, ROOM_RE, startWorld, tempDir, until, type World } from '../helpers/companions.js';
import { connectClient, startTestDaemon } from '../helpers/daemon.js';
import { startWireTap } from '../helpers/wiretap.js';

describe('src/cli/sealchat.ts chat (src/cli/chat.ts)', function () {
  this.timeout(40_000);
  let w: World;
  let dir: string;
  let remove: () => Promise<void>;
  let aliceKey: string;
  const procs: CliProcess[] = [];

  before(async () => {
    w = await startWorld(['alice', 'bob', 'carol', 'dave']);
    ({ dir, remove } = await tempDir('sc-chat-'));
    aliceKey = path.join(dir, 'alice.key.asc');
    await writeFile(aliceKey, w.users.alice!.privateKey, { mode: 0o600 });
    await writeFile(path.join(dir, 'dave.key.asc'), w.users.dave!.privateKey, { mode: 0o600 });
  });
  afterEach(() => {
    for (const p of procs.splice(0)) p.kill();
  });
  after(async () => {
    await w?.stop();
    await remove?.();
  });

  function chatArgs(extra: string[] = [], port = w.t.port): string[] {
    return ['chat', '--server', `127.0.0.1:${port}`, '--user', 'alice', '--key', aliceKey, '--password-env', 'SC_PW', '--keybot-fingerprint', w.bot.fingerprint, ...extra];
  }

  function startChat(password = w.users.alice!.password, extra: string[] = [], port = w.t.port): CliProcess {
    const p = CliProcess.start(chatArgs(extra, port), { env: { SC_PW: password }, home: dir });
    procs.push(p);
    return p;
  }

  /** alice's chat in a room with bob (a SealClient); resolves with the room. */
  async function roomWithBob(chat: CliProcess, bob: SealClient): Promise<string> {
    let bobRoom: string | undefined;
    bob.on('key', (k) => (bobRoom = k.room));
    await chat.waitOut(/keybot's key [0-9A-F ]+ is pinned/);
    const from = chat.stdout.length;
    chat.send('/invite bob');
    const room = (await chat.waitOut(new RegExp(`-keybot- opened (${ROOM_RE.source}) with bob`), 10_000, from))[1]!;
    await chat.waitOut(new RegExp(`now talking in ${room}`), 10_000, from);
    await chat.waitOut(new RegExp(`key for ${room}: epoch \\d+, members alice, bob; verified`), 10_000, from);
    await until(() => bobRoom === room, "bob's key");
    return room;
  }

  it('opens a room with /invite, exchanges messages with a SealClient both ways, and shows presence', async () => {
    const bob: SealClient = await w.member('bob');
    const bobGot: Array<{ room: string; from: string; text: string }> = [];
    bob.on('message', (m) => bobGot.push(m));
    let bobRoom: string | undefined;
    bob.on('key', (k) => (bobRoom = k.room));

    const chat = startChat();
    await chat.waitOut(/connected to 127\.0\.0\.1:\d+ as alice/);
    await chat.waitOut(/keybot's key [0-9A-F ]+ is pinned \(it matches --keybot-fingerprint\)/);

    chat.send('/invite bob carol');
    // carol is not online: keybot says she joins at her next login; the room opens with bob.
    await chat.waitOut(/-keybot- carol is offline: they join #sc-\S+ when they next log in/);
    const opened = await chat.waitOut(new RegExp(`-keybot- opened (${ROOM_RE.source}) with bob`));
    const room = opened[1]!;
    await chat.waitOut(new RegExp(`key for ${room}: epoch \\d+, members alice, bob; verified \\(signed by keybot\\); room opened by alice with bob, verified`));
    await chat.waitOut(new RegExp(`now talking in ${room}`));
    await until(() => bobRoom === room, "bob's key");

    const hello = 'grüße aus dem Terminal ✓ 你好';
    chat.send(hello);
    await until(() => bobGot.find((m) => m.text === hello), 'bob to read alice');
    expect(bobGot[0]).to.include({ room, from: 'alice' });

    await bob.send(room, 'hi alice, bob here');
    await chat.waitOut(new RegExp(`\\d\\d:\\d\\d ${room} <bob> hi alice, bob here`));

    // A long message goes out as several encrypted pieces, and arrives whole.
    const long = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');
    const mark = bobGot.length;
    chat.send(long);
    await until(() => bobGot.slice(mark).map((m) => m.text).join('') === long, () => `the long message; bob got ${JSON.stringify(bobGot.slice(mark))}`);
    expect(bobGot.length - mark).to.be.greaterThan(1);

    chat.send('/whois bob');
    await chat.waitOut(/-!- bob is online: bob@127\.0\.0\.1, account bob, in #sc-/);
    chat.send('/online');
    await chat.waitOut(/-keybot- online \(\d\): .*alice/);

    // No key for a room: nothing is sent, and the reason is shown.
    chat.send('/msg #sc-aaaaaaaaaa not for anyone');
    await chat.waitOut(/not sent: no key for #sc-aaaaaaaaaa yet/);
    chat.send('/msg bob psst');
    await chat.waitOut(/not sent: private messages are not encrypted; open a room with \/invite bob/);
    chat.send('/bogus');
    await chat.waitOut(/unknown command \/bogus; \/help lists them/);

    await bob.quit('off to lunch');
    await chat.waitOut(/-!- bob quit/);
    chat.send('/whois bob');
    await chat.waitOut(/-!- bob is offline \(or there is no such user\)/);

    chat.send('/quit done');
    expect(await chat.exit()).to.equal(0);
    expect(chat.stderr).to.equal('');
    expect(chat.stdout).not.to.include(w.users.alice!.password);
  });

  it('shows private messages and notices from users, marked as not encrypted', async () => {
    const chat = startChat();
    await chat.waitOut(/connected to 127\.0\.0\.1:\d+ as alice/);
    const carol = await connectClient(w.t.port, { nick: 'carol', password: w.users.carol!.password });
    try {
      carol.say('alice', 'psst \x1b[31malice\x07, in the clear');
      await chat.waitOut(/\d\d:\d\d \*carol\* psst \[31malice, in the clear \[not encrypted\]\n/);
      carol.notice('alice', 'a notice from carol');
      await chat.waitOut(/\d\d:\d\d -carol- a notice from carol \[not encrypted\]\n/);
      carol.say('alice', '\x01ACTION waves\x01');
      await chat.waitOut(/\d\d:\d\d \* carol waves \[not encrypted\]\n/);
    } finally {
      carol.quit();
    }
    expect(chat.stdout).not.to.include('\x1b');
    chat.send('/quit');
    expect(await chat.exit()).to.equal(0);
  });

  it('reconnects after a lost connection, holds text typed meanwhile without blocking, and reports it not sent at /quit', async () => {
    const bob: SealClient = await w.member('bob');
    // alice's chat goes through a relay, which holds back keybot's notices to her once she is
    // back: the room's key is then certainly not back when she quits.
    const tap = await startWireTap(w.t.port);
    const chat = startChat(undefined, [], tap.port);
    const room = await roomWithBob(chat, bob);
    const from = chat.stdout.length;
    tap.rewriteDown = (l) => (/^(@\S+ )?:keybot!\S+ NOTICE alice :/.test(l) ? null : l);
    w.t.daemon.server.disconnectAccount('alice', 'testing');
    await chat.waitOut(/-!- lost the connection to 127\.0\.0\.1:\d+; reconnecting/, 10_000, from);
    await chat.waitOut(/-!- reconnecting to 127\.0\.0\.1:\d+ \(attempt 1, in \d+\.\d s\)/, 10_000, from);
    // Typed while the connection is away: held, and the next line is read at once.
    chat.send('said while away');
    chat.send('/help quit');
    await chat.waitOut(new RegExp(`-!- ${room}: message held: the connection to the server was lost and ${room}'s key with it: held until the new key arrives \\(at most 30 s\\)`), 10_000, from);
    await chat.waitOut(/\/quit \[MESSAGE\]/, 10_000, from);
    await chat.waitOut(/-!- reconnected to 127\.0\.0\.1:\d+ as alice; rooms come back as keybot sends their keys/, 10_000, from);
    // alice quits before keybot's key for the room is back (the relay holds it back): the text is not sent.
    chat.send('/quit');
    await chat.waitOut(new RegExp(`-!- ${room}: NOT SENT: you quit; nothing was sent: "said while away"`), 10_000, from);
    expect(await chat.exit()).to.equal(0);
    expect(chat.stdout).not.to.match(/<alice> said while away/);
    await bob.quit();
    await tap.close();
  });

  it('a restarted chat shows what was said while it was not running: marked, at its time, in order, once, with the count', async () => {
    const bob: SealClient = await w.member('bob');
    const chat = startChat();
    const room = await roomWithBob(chat, bob);
    await bob.send(room, 'seen live');
    await chat.waitOut(new RegExp(`\\d\\d:\\d\\d ${room} <bob> seen live`));
    chat.send('/quit');
    expect(await chat.exit()).to.equal(0);
    // alice is offline, still a member; bob writes. His WHOIS answer comes after the daemon kept all three.
    for (const t of ['missed one', 'missed two', 'missed three, grüße']) await bob.send(room, t);
    expect(await bob.whois('alice')).to.include({ error: 'not_found' });
    const again = startChat();
    await again.waitOut(new RegExp(`-!- ${room}: 3 messages while you were away`), 20_000);
    const shown = again.stdout.split('\n').filter((l) => l.includes(` ${room} `) && l.includes('<bob>'));
    expect(shown.map((l) => l.replace(/^\d\d:\d\d /, ''))).to.deep.equal([
      `${room} [history] <bob> missed one`,
      `${room} [history] <bob> missed two`,
      `${room} [history] <bob> missed three, grüße`,
    ]);
    // Asked AFTER the newest message seen (kept in the memory file): "seen live" is not shown again.
    await bob.send(room, 'after the restart');
    await again.waitOut(new RegExp(`\\d\\d:\\d\\d ${room} <bob> after the restart`));
    expect(again.stdout).not.to.include('seen live');
    again.send('/quit');
    expect(await again.exit()).to.equal(0);
    await bob.quit();
  });

  it('exits 1 with the reason when the login is refused after a reconnect', async () => {
    const p = CliProcess.start(['chat', '--server', `127.0.0.1:${w.t.port}`, '--user', 'dave', '--password-env', 'SC_PW', '--keybot-fingerprint', w.bot.fingerprint], {
      env: { SC_PW: w.users.dave!.password },
      home: dir,
    });
    procs.push(p);
    await p.waitOut(/connected to 127\.0\.0\.1:\d+ as dave/);
    await w.t.daemon.accounts.remove('dave');
    w.t.daemon.server.disconnectAccount('dave', 'account removed');
    expect(await p.exit(20_000)).to.equal(1);
    expect(p.stdout).to.match(/-!- reconnecting to 127\.0\.0\.1:\d+ \(attempt 1/);
    expect(p.stdout).to.match(/-!- disconnected from 127\.0\.0\.1:\d+: the server refused the login/);
    expect(p.stderr).to.match(/^sealchat: lost the connection to 127\.0\.0\.1:\d+: the server refused the login: .+\n$/);
  });

  it('exits 1 when reconnecting gives up (--reconnect-attempts), and refuses a count that is not a number', async () => {
    const t2 = await startTestDaemon();
    try {
      const frank = await t2.addUser('frank');
      const frankKey = path.join(dir, 'frank-only.key.asc');
      await writeFile(frankKey, frank.privateKey, { mode: 0o600 });
      const args = (n: string): string[] => ['chat', '--server', `127.0.0.1:${t2.port}`, '--user', 'frank', '--key', frankKey, '--password-env', 'SC_PW', '--reconnect-attempts', n];
      const p = CliProcess.start(args('2'), { env: { SC_PW: frank.password }, home: dir });
      procs.push(p);
      await p.waitOut(/connected to 127\.0\.0\.1:\d+ as frank/);
      await t2.daemon.close();
      expect(await p.exit(20_000)).to.equal(1);
      expect(p.stdout).to.match(/attempt 2, in/);
      expect(p.stderr).to.equal(`sealchat: lost the connection to 127.0.0.1:${t2.port}: gave up reconnecting after 2 attempts\n`);
      const bad = await CliProcess.run(args('many'), { env: { SC_PW: frank.password }, home: dir });
      expect(bad.code).to.equal(2);
      expect(bad.stderr).to.match(/--reconnect-attempts: "many" is not a number of attempts/);
    } finally {
      await t2.stop();
    }
  });

  it('ends at end of input with exit 0', async () => {
    const chat = startChat();
    await chat.waitOut(/connected to/);
    chat.child.stdin.end();
    expect(await chat.exit()).to.equal(0);
  });

  it('says the password is wrong and exits 1', async () => {
    const chat = startChat('not-the-password');
    expect(await chat.exit()).to.equal(1);
    expect(chat.stderr).to.match(/^sealchat: cannot log in to 127\.0\.0\.1:\d+ as alice: wrong account name or password/);
    expect(chat.stderr).not.to.include('not-the-password');
  });

  it('says the server is down, and that a key file or a passphrase is missing (exit 1)', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));

    const pw = path.join(dir, 'pw');
    await writeFile(pw, 'whatever\n');
    const [down, noKey, noPass] = await Promise.all([
      CliProcess.run(['chat', '--server', `127.0.0.1:${port}`, '--user', 'alice', '--key', aliceKey, '--password-file', pw], { home: dir }),
      CliProcess.run(['chat', '--server', `127.0.0.1:${w.t.port}`, '--user', 'zoe', '--password-file', pw], { home: dir }),
      CliProcess.run(['chat', '--server', `127.0.0.1:${w.t.port}`, '--user', 'alice', '--key', aliceKey], { home: dir }),
    ]);
    expect(down.code).to.equal(1);
    expect(down.stderr).to.equal(`sealchat: cannot connect to 127.0.0.1:${port}: connection refused (is the server running, on that port?)\n`);
    expect(noKey.code).to.equal(1);
    expect(noKey.stderr).to.match(/^sealchat: no key at .*zoe\.key\.asc: make one with 'sealchat keygen zoe', or pass --key FILE\n$/);
    expect(noPass.code).to.equal(2);
    expect(noPass.stderr).to.equal('sealchat: no terminal to ask for the password on: use --password-file FILE or --password-env VAR\n');
  });

  it('holds text while a departed member\'s key awaits keybot, and sends it under the next epoch', async () => {
    const bob: SealClient = await w.member('bob');
    const chat = startChat();
    const room = await roomWithBob(chat, bob);
    // keybot goes away; then bob leaves (PART: a QUIT is only going offline): alice's key may no longer be sent under.
    await w.bot.close();
    const from = chat.stdout.length;
    bob['irc']!.part(room, 'gone');
    await chat.waitOut(/-!- bob left/, 10_000, from);
    chat.send('after bob left');
    await chat.waitOut(new RegExp(`-!- ${room}: message held: the key of ${room} is being replaced \\(bob left\\)`), 10_000, from);
    // keybot is back: a new epoch for alice alone, and the held text goes out under it.
    const bot = await startKeybot({ dataDir: w.t.dataDir, irc: { host: '127.0.0.1', port: w.t.port }, rotateAfterMessages: 1000, rotateAfterMs: 3_600_000, commands: { burst: 100 } });
    try {
      await chat.waitOut(new RegExp(`key for ${room}: epoch \\d+, members alice; verified`), 20_000, from);
      await chat.waitOut(new RegExp(`-!- ${room}: held message sent under epoch \\d+ \\(after \\d+\\.\\d s\\)\n\\d\\d:\\d\\d ${room} <alice> after bob left`), 10_000, from);
      chat.send('/quit');
      expect(await chat.exit()).to.equal(0);
    } finally {
      await bot.close();
    }
  });
});
