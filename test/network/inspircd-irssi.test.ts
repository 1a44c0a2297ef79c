/**
 * The issue-16 journey with a real IRC client on InspIRCd 3 + Atheme (Debian): bob uses unmodified
 * irssi through `sealchat proxy` (irssi logs in to NickServ's account with SASL, through the
 * proxy), alice uses SealClient (the terminal client's library). bob registers his key with
 * `/msg keybot register` typed in irssi (the proxy answers keybot's nonce), alice invites him, the
 * proxy joins on keybot's INVITE, and they read each other both ways; carol, not invited, is kept
 * out by +i and, SAJOINed by a network operator, kicked without a key; bob leaves and reads
 * nothing after. Asserted on the lines the proxy wrote to irssi, and on irssi's screen. Every
 * "did not happen" is checked after a marker that came later.
 */
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client as IrcClient } from 'irc-framework';
import { startKeybot, type Keybot } from '../../src/bot/main.js';
import { SealClient, type RoomMessageEvent } from '../../src/client/client.js';
import { LocalProxy } from '../../src/client/proxy/proxy.js';
import { unlockPrivateKey } from '../../src/crypto/index.js';
import { keyFor } from '../helpers/daemon.js';
import { ROOM_RE, until } from '../helpers/poll.js';
import { escapeRe, haveIrssi, startIrssi, type RealClient } from '../helpers/realclients.js';
import { haveCommand } from '../helpers/tmux.js';
import { OPER, ROOMY_PACE, connectPlain, missing, registerAccount, startNetwork, type TestNetwork } from './servers.js';

const PASSWORD = 'pw-for-tests-1';
const why = missing() ?? (!(await haveIrssi()) || !(await haveCommand('tmux')) ? 'needs irssi and tmux (apt-get install irssi tmux)' : undefined);

describe('keybot on InspIRCd 3 + Atheme with irssi through sealchat proxy (issue 16)', function () {
  this.timeout(180_000);
  let net: TestNetwork | undefined;
  let dataDir: string;
  let bot: Keybot | undefined;
  let proxy: LocalProxy | undefined;
  let irssi: RealClient | undefined;
  const clients: SealClient[] = [];
  const plains: IrcClient[] = [];

  before(async function () {
    if (why) return this.skip();
    net = await startNetwork();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-netirssi-'));
    for (const name of ['keybot', 'alice', 'bob', 'carol']) await registerAccount(net.port, name, PASSWORD);
    bot = await startKeybot({
      dataDir,
      irc: { host: '127.0.0.1', port: net.port },
      rotateAfterMessages: 1000,
      rotateAfterMs: 3_600_000,
      commands: { burst: 100 },
      network: { account: 'keybot', password: PASSWORD, keyChangeCoolDownMs: 3_600_000, pace: ROOMY_PACE },
    });
  });

  after(async () => {
    await irssi?.stop();
    await proxy?.close();
    for (const c of clients) await c.quit().catch(() => undefined);
    for (const p of plains) p.quit();
    await bot?.close();
    await net?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it(`(skip reason) ${why ?? 'needs InspIRCd, Atheme, irssi and tmux'}`, function () {
    if (why) this.skip();
  });

  it('bob in irssi registers his key, is brought into alice’s room by INVITE and talks with her; carol is kept out; bob leaves and reads nothing after', async function () {
    if (why) return this.skip();
    const down: string[] = [];
    const up: string[] = [];
    proxy = await LocalProxy.start({
      listen: { host: '127.0.0.1', port: 0 },
      upstream: { host: '127.0.0.1', port: net!.port },
      privateKey: (await unlockPrivateKey({ armored: (await keyFor('bob')).privateArmored })).key!,
      account: 'bob',
      keybotFingerprint: bot!.fingerprint,
      knownKeybotsFile: false,
      tap: (dir, line) => (dir === 'down' ? down : up).push(line),
    });
    const toIrssi = (re: RegExp, from = 0): string | undefined => down.slice(from).find((l) => re.test(l));

    // irssi logs in to bob's NickServ account with SASL, through the proxy.
    irssi = await startIrssi({ port: proxy.address.port, nick: 'bob', sasl: { account: 'bob', password: PASSWORD } });
    await irssi.send('/connect sc');
    await until(() => toIrssi(/ 900 \S+ \S+ bob :You are now logged in as bob/), () => `irssi to be logged in with SASL; the proxy wrote:\n${down.join('\n')}\nand sent up:\n${up.join('\n')}`, 20_000);
    await irssi.waitForText(/end-to-end encryption is on; keybot's key [0-9a-f]{40} is pinned/, 20_000);

    // bob registers his key from irssi: the proxy answers keybot's nonce, irssi sees keybot's verdict.
    await irssi.send('/msg keybot register');
    await until(() => toIrssi(/ NOTICE bob :register: key [0-9a-f]+ registered for bob$/), "keybot's registration of bob's key", 30_000);
    expect(down.filter((l) => / :register: nonce /.test(l))).to.deep.equal([]);

    const alice = new SealClient();
    clients.push(alice);
    alice.on('error', () => undefined);
    await alice.connect({
      host: '127.0.0.1',
      port: net!.port,
      nick: 'alice',
      sasl: { account: 'alice', password: PASSWORD },
      privateKeyArmored: (await keyFor('alice')).privateArmored,
      knownKeybotsFile: false,
      keybotFingerprint: bot!.fingerprint,
      reconnect: false,
    });
    expect((await alice.register()).join('\n')).to.match(/^register: key [0-9a-f]+ registered for alice$/m);

    // alice opens a room with bob: keybot INVITEs bob, the proxy joins, irssi is in the room with its key.
    const reply = (await alice.invite(['bob'])).join('\n');
    const room = ROOM_RE.exec(reply)?.[0];
    expect(room, reply).to.be.a('string');
    await until(() => toIrssi(new RegExp(`^(?:@\\S+ )?:bob!\\S+ JOIN :?${escapeRe(room!)}`, 'i')), 'irssi to be joined to the room', 30_000);
    await until(() => toIrssi(new RegExp(`NOTICE ${escapeRe(room!)} :key: ${escapeRe(room!)} epoch \\d+ \\(first key\\), members alice, bob; verified`, 'i')), "bob's key for the room", 30_000);
    await until(() => alice.localRooms().some((r) => r.room.toLowerCase() === room && r.hasKey), "alice's key", 20_000);

    const aliceGot: RoomMessageEvent[] = [];
    alice.on('message', (m) => aliceGot.push(m));
    await alice.send(room!, 'hello bob, over InspIRCd');
    await until(() => toIrssi(new RegExp(`^(?:@\\S+ )?:alice!\\S+ PRIVMSG ${escapeRe(room!)} :hello bob, over InspIRCd$`, 'i')), "irssi to get alice's message in plain text", 20_000);
    await irssi.showChannel(room!);
    await irssi.waitForText(/<[@+ ]?alice> hello bob, over InspIRCd/, 10_000);
    await irssi.send('hello alice, from irssi');
    await until(() => aliceGot.find((m) => m.from === 'bob' && m.text === 'hello alice, from irssi'), "alice to read bob's message", 20_000);
    // The server got ciphertext only.
    expect(up.filter((l) => l.includes('from irssi'))).to.deep.equal([]);

    // carol, logged in but not invited: +i keeps her out by name...
    const carol = await connectPlain(net!.port, 'carol', { account: 'carol', password: PASSWORD });
    plains.push(carol);
    const carolNotices: string[] = [];
    carol.on('notice', (e: { nick?: string; message: string }) => e.nick === 'keybot' && carolNotices.push(e.message));
    const refused = new Promise<string>((resolve) => carol.on('irc error', (e: { error: string }) => resolve(e.error)));
    carol.join(room!);
    expect(await refused).to.equal('invite_only_channel');
    // ...and SAJOINed by the network's operator, keybot kicks her and keys nobody new.
    const op = await connectPlain(net!.port, 'netop');
    plains.push(op);
    op.raw('OPER', OPER.name, OPER.password);
    await new Promise<void>((resolve) => op.on('raw', (e: { line: string }) => /^\S+ 381 /.test(e.line.replace(/^@\S+ /, '')) && resolve()));
    const kicked = new Promise<{ kicked: string; nick: string }>((resolve) => carol.on('kick', (e: { kicked: string; nick: string }) => resolve(e)));
    op.raw('SAJOIN', 'carol', room);
    expect(await kicked).to.include({ kicked: 'carol', nick: 'keybot' });
    // Marker: a message after the kick reaches irssi, so a key for carol would have been sent by now.
    await alice.send(room!, 'after carol');
    await until(() => toIrssi(/ :after carol$/), 'irssi to get the message after the kick', 20_000);
    expect(carolNotices.filter((n) => n.startsWith('SC1E'))).to.deep.equal([]);

    // bob leaves from irssi: keybot kicks him and keys alice alone; bob reads nothing after.
    const aliceAlone = new Promise<{ epoch: number; members: string[] }>((resolve) => alice.on('key', (e) => e.members.length === 1 && resolve(e)));
    await irssi.send(`/msg keybot leave ${room}`);
    const alone = await aliceAlone;
    expect(alone.members).to.deep.equal(['alice']);
    await until(() => toIrssi(new RegExp(`KICK ${escapeRe(room!)} bob`, 'i')), 'irssi to see bob removed', 20_000);
    const from = down.length;
    await alice.send(room!, 'bob is gone');
    // Marker: something for bob sent after alice's message (carol's private message) reaches irssi first.
    carol.say('bob', 'marker after bob left');
    await until(() => toIrssi(/ PRIVMSG bob :marker after bob left$/, from), "the marker to reach bob's irssi", 20_000);
    expect(down.slice(from).filter((l) => l.includes('bob is gone') || l.includes(`epoch ${alone.epoch}`))).to.deep.equal([]);
  });
});
