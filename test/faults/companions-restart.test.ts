/**
 * A daemon restart with every kind of companion connected: alice in irssi with the sealchat
 * plugin and her agent, bob through `sealchat proxy` (LocalProxy) with a plain IRC connection
 * behind it, carol a SealClient. The daemon restarts on the same port and data dir; keybot (in
 * this process) and carol reconnect on their own, irssi after its reconnect delay, bob's client
 * reconnects to the proxy (which closes the client's connection when the server's goes). The room
 * comes back with a new epoch for all three, and text flows every way again, sealed on the wire.
 */
import { expect } from 'chai';
import path from 'node:path';
import { startKeybot, type Keybot } from '../../src/bot/main.js';
import { startAgent, type Agent } from '../../src/client/agent/server.js';
import { SealClient, type RoomMessageEvent } from '../../src/client/client.js';
import { LocalProxy } from '../../src/client/proxy/proxy.js';
import { unlockPrivateKey } from '../../src/crypto/index.js';
import { RawClient, startTestDaemon, type TestDaemon, type TestUser } from '../helpers/daemon.js';
import { testKeybotOptions } from '../helpers/keybot.js';
import { IRSSI_PLUGIN } from '../helpers/plugins.js';
import { escapeRe, haveIrssi, startIrssi, type RealClient } from '../helpers/realclients.js';
import { haveCommand } from '../helpers/tmux.js';
import { mkdir } from 'node:fs/promises';
import { restartDaemon, until } from './helpers.js';

const available = (await haveIrssi()) && (await haveCommand('tmux'));
const describeIf = available ? describe : describe.skip;
const token = (): string => Math.random().toString(36).slice(2, 8);

describeIf(`faults: daemon restart with the plugin, the proxy and SealClient connected${available ? '' : ' (SKIPPED: irssi or tmux missing)'}`, function () {
  this.timeout(60_000);
  let t: TestDaemon;
  let bot: Keybot;
  let users: Record<string, TestUser>;
  let irssi: RealClient;
  let agent: Agent;
  let proxy: LocalProxy;
  let bob: RawClient;
  let carol: SealClient;
  const carolGot: RoomMessageEvent[] = [];
  const up: string[] = [];

  /** bob's plain client through the proxy, logged in once the proxy says encryption is on. */
  async function bobThroughProxy(): Promise<RawClient> {
    const c = await RawClient.connect(proxy.address.port);
    c.send(`PASS ${users.bob!.password}`, 'NICK bob', 'USER bob 0 * :bob');
    // After a daemon restart keybot must log in again before its key can be fetched: allow for a slow machine.
    await c.waitLine(/NOTICE bob :end-to-end encryption is on/, 30_000);
    return c;
  }

  before(async function () {
    t = await startTestDaemon();
    users = {};
    for (const n of ['alice', 'bob', 'carol']) users[n] = await t.addUser(n);
    bot = await startKeybot(testKeybotOptions(t, { reconnect: { initialMs: 100, maxMs: 400 } }));
    irssi = await startIrssi({ port: t.port, nick: 'alice' });
    await mkdir(path.join(irssi.home, '.sealchat'), { recursive: true, mode: 0o700 });
    agent = await startAgent({
      account: 'alice',
      privateKey: (await unlockPrivateKey({ armored: users.alice!.privateKey })).key!,
      socketPath: path.join(irssi.home, '.sealchat', 'agent-alice.sock'),
      knownKeybotsFile: false,
      keybotFingerprint: bot.fingerprint,
    });
    await irssi.send(`/script load ${IRSSI_PLUGIN}`);
    await irssi.waitForText(/Loaded script sealchat/);
    await irssi.send('/set server_reconnect_time 1');
    await irssi.connect(users.alice!.password);
    await irssi.waitForText(new RegExp(`sealchat: keybot's key ${bot.fingerprint} is pinned`));
    proxy = await LocalProxy.start({
      listen: { host: '127.0.0.1', port: 0 },
      upstream: { host: '127.0.0.1', port: t.port },
      privateKey: (await unlockPrivateKey({ armored: users.bob!.privateKey })).key!,
      account: 'bob',
      keybotFingerprint: bot.fingerprint,
      knownKeybotsFile: false,
      tap: (dir, line) => {
        if (dir === 'up') up.push(line);
      },
    });
    bob = await bobThroughProxy();
    carol = new SealClient();
    carol.on('error', () => undefined);
    carol.on('message', (m) => carolGot.push(m));
    await carol.connect({
      host: '127.0.0.1', port: t.port, nick: 'carol', password: users.carol!.password, privateKeyArmored: users.carol!.privateKey,
      keybotFingerprint: bot.fingerprint, knownKeybotsFile: false, reconnect: { initialMs: 100, maxMs: 400 },
    });
  });

  after(async () => {
    bob?.close();
    await carol?.quit().catch(() => undefined);
    await irssi?.stop();
    await agent?.close();
    await proxy?.close();
    await bot?.close();
    await t?.daemon.close();
    await t?.stop();
  });

  /** Text from each companion reaches the others, and only ciphertext crosses the daemon. */
  async function talk(room: string, epoch: number): Promise<void> {
    const fromCarol = `carol says ${token()}`;
    await carol.send(room, fromCarol);
    await irssi.waitForText(new RegExp(`carol> ✓ ${escapeRe(fromCarol)}`));
    await bob.waitLine(new RegExp(`^:carol!\\S* PRIVMSG ${escapeRe(room)} :${escapeRe(fromCarol)}$`, 'i'), 10_000);
    const fromAlice = `alice says ${token()}`;
    await irssi.showChannel(room);
    await irssi.send(fromAlice);
    expect(await until(() => carolGot.find((m) => m.text === fromAlice), 'carol to read alice')).to.include({ from: 'alice', epoch });
    await bob.waitLine(new RegExp(`PRIVMSG ${escapeRe(room)} :${escapeRe(fromAlice)}$`, 'i'), 10_000);
    const fromBob = `bob says ${token()}`;
    const upFrom = up.length;
    bob.send(`PRIVMSG ${room} :${fromBob}`);
    expect(await until(() => carolGot.find((m) => m.text === fromBob), 'carol to read bob')).to.include({ from: 'bob', epoch });
    await irssi.waitForText(new RegExp(`bob> ✓ ${escapeRe(fromBob)}`));
    const toRoom = up.slice(upFrom).filter((l) => l.includes(`PRIVMSG ${room}`));
    expect(toRoom.length).to.be.greaterThan(0);
    for (const l of toRoom) expect(l).to.match(/ :SC1[MP] /);
  }

  it('brings the room back for the plugin, the proxy and SealClient with a new epoch, and text flows every way', async () => {
    const reply = await carol.invite(['alice', 'bob']);
    const room = /#sc-[a-z2-7]{10}/.exec(reply.find((l) => l.startsWith('opened '))!)![0];
    const e1 = await until(() => carol.crypto!.roomInfo(room)?.epoch, "carol's key");
    await irssi.showChannel(room);
    await irssi.waitForText(new RegExp(`sealchat: key for ${escapeRe(room)} \\(epoch ${e1}\\) from keybot, verified`));
    await bob.waitLine(new RegExp(`NOTICE ${escapeRe(room)} :key: ${escapeRe(room)} epoch ${e1}`), 10_000);
    await talk(room, e1);

    const carolBack = new Promise<void>((resolve) => carol.once('reconnected', () => resolve()));
    await restartDaemon(t, async () => {
      // The proxy closes bob's connection when the server's goes.
      await bob.waitClose(10_000);
    });
    await carolBack;
    bob = await bobThroughProxy();
    // keybot, back, restores the room for those who returned: a new epoch for all three.
    const e2 = await until(() => {
      const e = carol.crypto!.roomInfo(room)?.epoch;
      return e !== undefined && e > e1 && carol.crypto!.roomInfo(room)!.members.length === 3 ? e : undefined;
    }, 'the room back with alice, bob and carol', 30_000);
    await irssi.showChannel(room);
    await irssi.waitForText(new RegExp(`sealchat: key for ${escapeRe(room)} \\(epoch ${e2}\\) from keybot, verified`), 20_000);
    await bob.waitLine(new RegExp(`NOTICE ${escapeRe(room)} :key: ${escapeRe(room)} epoch ${e2}`), 20_000);
    await talk(room, e2);
  });
});
