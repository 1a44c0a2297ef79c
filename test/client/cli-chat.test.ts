/**
 * `sealchat chat` as a child process against the real daemon and the real keybot, with a
 * SealClient on the other side: opening a room with /invite, messages both ways, presence,
 * refusals, and the errors a user meets before getting in.
 */
import { expect } from 'chai';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { SealClient } from '../../src/client/client.js';
import { CliProcess, ROOM_RE, startWorld, tempDir, until, type World } from '../helpers/companions.js';

describe('src/bin/sealchat.ts chat (src/client/cli/chat.ts)', function () {
  this.timeout(40_000);
  let w: World;
  let dir: string;
  let remove: () => Promise<void>;
  let aliceKey: string;
  const procs: CliProcess[] = [];

  before(async () => {
    w = await startWorld(['alice', 'bob', 'carol']);
    ({ dir, remove } = await tempDir('sc-chat-'));
    aliceKey = path.join(dir, 'alice.key.asc');
    await writeFile(aliceKey, w.users.alice!.privateKey, { mode: 0o600 });
  });
  afterEach(() => {
    for (const p of procs.splice(0)) p.kill();
  });
  after(async () => {
    await w?.stop();
    await remove?.();
  });

  function chatArgs(extra: string[] = []): string[] {
    return ['chat', '--server', `127.0.0.1:${w.t.port}`, '--user', 'alice', '--key', aliceKey, '--password-env', 'SC_PW', '--keybot-fingerprint', w.bot.fingerprint, ...extra];
  }

  function startChat(password = w.users.alice!.password): CliProcess {
    const p = CliProcess.start(chatArgs(), { env: { SC_PW: password }, home: dir });
    procs.push(p);
    return p;
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
    // carol is not online: keybot says so; the room opens with bob.
    await chat.waitOut(/-keybot- cannot invite carol: offline/);
    const opened = await chat.waitOut(new RegExp(`-keybot- opened (${ROOM_RE.source}) with bob`));
    const room = opened[1]!;
    await chat.waitOut(new RegExp(`key for ${room}: epoch \\d+, members alice, bob; verified`));
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
});
