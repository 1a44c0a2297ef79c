/**
 * Companions on ngIRCd with keybot's own accounts (issue 16; docs/NETWORKS.md "ngIRCd"), without
 * anyone typing `login`: the proxy and SealClient are given the user's keybot password and log in
 * to keybot by themselves at connect, and SealClient again after a reconnect (a login there
 * belongs to one connection). bob uses a plain IRC client through `sealchat proxy`: he registers
 * his key with `/msg keybot register` (the proxy answers keybot's nonce), is brought into alice's
 * room by keybot's INVITE (the proxy joins), and they read each other. Real ngIRCd from Debian,
 * real keybot, real crypto.
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
import { OPER, ROOMY_PACE, connectPlain, ngircdMissing, startNgircd, type TestNetwork } from './servers.js';

const ALICE_PW = 'alice-keybot-pw-1';
const BOB_PW = 'bob-keybot-pw-22';

describe('companions on ngIRCd log in to keybot by themselves (issue 16)', function () {
  this.timeout(180_000);
  const why = ngircdMissing();
  let net: TestNetwork | undefined;
  let dataDir: string;
  let bot: Keybot | undefined;
  let proxy: LocalProxy | undefined;
  const clients: SealClient[] = [];
  const plains: IrcClient[] = [];

  const keybotOn = (port: number): Promise<Keybot> =>
    startKeybot({
      dataDir,
      irc: { host: '127.0.0.1', port },
      rotateAfterMessages: 1000,
      rotateAfterMs: 3_600_000,
      commands: { burst: 100 },
      network: { account: 'keybot', password: '', accounts: 'keybot', oper: OPER, keyChangeCoolDownMs: 3_600_000, pace: ROOMY_PACE },
    });

  before(async function () {
    if (why) return this.skip();
    net = await startNgircd();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-ngcomp-'));
    bot = await keybotOn(net.port);
  });

  after(async () => {
    for (const c of clients) await c.quit().catch(() => undefined);
    for (const p of plains) p.quit();
    await proxy?.close();
    await bot?.close();
    await net?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('(skip reason) needs ngIRCd', function () {
    if (why) this.skip();
  });

  it('bob (a plain client through the proxy) and alice (SealClient) are logged in to keybot without typing login, register, are joined by INVITE and talk; alice logs in again after a reconnect', async function () {
    if (why) return this.skip();
    const up: string[] = [];
    const down: string[] = [];
    proxy = await LocalProxy.start({
      listen: { host: '127.0.0.1', port: 0 },
      upstream: { host: '127.0.0.1', port: net!.port },
      privateKey: (await unlockPrivateKey({ armored: (await keyFor('bob')).privateArmored })).key!,
      account: 'bob',
      keybotFingerprint: bot!.fingerprint,
      knownKeybotsFile: false,
      keybotPassword: BOB_PW,
      tap: (dir, line) => (dir === 'up' ? up : down).push(line),
    });
    const bob = await connectPlain(proxy.address.port, 'bob');
    plains.push(bob);
    const bobNotices: Array<{ nick: string; message: string }> = [];
    bob.on('notice', (e: { nick?: string; message: string }) => bobNotices.push({ nick: e.nick ?? '', message: e.message }));
    const fromKeybot = (re: RegExp) => bobNotices.find((n) => n.nick === 'keybot' && re.test(n.message));

    // The proxy logged bob in to keybot (the account is made the first time); bob typed nothing.
    await until(() => fromKeybot(/^login: keybot account bob created; you are logged in as bob$/), "keybot's answer to the proxy's login", 20_000);
    expect(up).to.include(`PRIVMSG keybot :login ${BOB_PW}`);
    // The password went to keybot only: nothing shown to the client carries it.
    expect(down.filter((l) => l.includes(BOB_PW))).to.deep.equal([]);

    // bob registers his key the way any IRC client can: the proxy answers keybot's nonce.
    bob.say('keybot', 'register');
    await until(() => fromKeybot(/^register: key [0-9a-f]+ registered for bob$/), "keybot's registration of bob's key", 30_000);
    expect(down.filter((l) => / :register: nonce /.test(l))).to.deep.equal([]);

    const alice = new SealClient();
    clients.push(alice);
    alice.on('error', () => undefined);
    const aliceNotices: string[] = [];
    alice.on('bot-notice', (n) => aliceNotices.push(n.text));
    await alice.connect({
      host: '127.0.0.1',
      port: net!.port,
      nick: 'alice',
      privateKeyArmored: (await keyFor('alice')).privateArmored,
      knownKeybotsFile: false,
      keybotPassword: ALICE_PW,
      reconnect: { initialMs: 200, maxMs: 1000 },
    });
    await until(() => aliceNotices.find((t) => /^login: keybot account alice created; you are logged in as alice$/.test(t)), "keybot's answer to alice's login", 20_000);
    expect((await alice.register()).join('\n')).to.match(/^register: key [0-9a-f]+ registered for alice$/m);

    // alice opens a room with bob: keybot INVITEs bob, the proxy joins, and bob's client is in it.
    const bobJoins: string[] = [];
    bob.on('join', (e: { nick: string; channel: string }) => e.nick === 'bob' && bobJoins.push(e.channel.toLowerCase()));
    const reply = (await alice.command('invite bob', 30_000)).join('\n');
    const room = ROOM_RE.exec(reply)?.[0];
    expect(room, reply).to.be.a('string');
    await until(() => bobJoins.includes(room!), 'bob to be joined to the room (keybot INVITEs, the proxy joins)', 30_000);
    await until(() => bobNotices.find((n) => n.nick === '*sealchat' && n.message.startsWith(`key: ${room} epoch`)), "bob's key, through the proxy", 30_000);
    await until(() => alice.localRooms().some((r) => r.room.toLowerCase() === room && r.hasKey), "alice's key", 20_000);

    const bobGot: Array<{ nick: string; message: string }> = [];
    bob.on('privmsg', (e: { nick: string; target: string; message: string }) => e.target.toLowerCase() === room && bobGot.push(e));
    const aliceGot: RoomMessageEvent[] = [];
    alice.on('message', (m) => aliceGot.push(m));
    await alice.send(room!, 'hello bob, through your proxy');
    await until(() => bobGot.find((m) => m.nick === 'alice' && m.message === 'hello bob, through your proxy'), "bob to read alice's message", 20_000);
    bob.say(room!, 'hello alice, from a plain client');
    await until(() => aliceGot.find((m) => m.from === 'bob' && m.text === 'hello alice, from a plain client'), "alice to read bob's message", 20_000);
    // On the wire, bob's text went out encrypted only.
    expect(up.filter((l) => l.includes('from a plain client'))).to.deep.equal([]);

    // A network operator kills alice's connection: SealClient reconnects and logs in to keybot again.
    const op = await connectPlain(net!.port, 'netop');
    plains.push(op);
    op.raw('OPER', OPER.name, OPER.password);
    await new Promise<void>((resolve) => op.on('raw', (e: { line: string }) => /^\S+ 381 /.test(e.line) && resolve()));
    const back = new Promise<void>((resolve) => alice.once('reconnected', () => resolve()));
    const before = aliceNotices.length;
    op.raw('KILL', 'alice', 'testing the reconnect');
    await back;
    await until(() => aliceNotices.slice(before).find((t) => t === 'login: you are logged in as alice'), "keybot's answer to alice's login on the new connection", 20_000);
    // keybot takes her commands on the new connection (the killed connection's login ended with it,
    // a departure from the room on ngIRCd: docs/NETWORKS.md), where a connection not logged in
    // would be told "you need an account to use rooms".
    expect((await alice.command('rooms', 20_000)).join('\n')).to.match(/^you are in no rooms/);
  });

  it('logs in to keybot again when keybot, restarted, no longer counts the connection as logged in', async function () {
    if (why) return this.skip();
    const carol = new SealClient();
    clients.push(carol);
    carol.on('error', () => undefined);
    const said: string[] = [];
    carol.on('bot-notice', (n) => said.push(n.text));
    const warnings: string[] = [];
    carol.on('warning', (w) => warnings.push(w.text));
    await carol.connect({
      host: '127.0.0.1',
      port: net!.port,
      nick: 'carol',
      privateKeyArmored: (await keyFor('carol')).privateArmored,
      knownKeybotsFile: false,
      keybotPassword: 'carol-keybot-pw-1',
      reconnect: false,
    });
    expect((await carol.command('rooms', 20_000)).join('\n')).to.match(/^you are in no rooms/);

    // keybot restarts: its logins were in memory, carol's connection is not logged in there any more.
    await bot!.close();
    bot = await keybotOn(net!.port);
    const before = said.length;
    expect((await carol.command('rooms', 20_000)).join('\n')).to.match(/^you need an account to use rooms/);
    await until(() => said.slice(before).find((t) => t === 'login: you are logged in as carol'), "keybot's answer to carol's login again", 20_000);
    expect(warnings.join('\n')).to.match(/logging in to keybot again: repeat your command/);
    expect((await carol.command('rooms', 20_000)).join('\n')).to.match(/^you are in no rooms/);
  });
});
