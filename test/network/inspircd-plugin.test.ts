/**
 * The irssi plugin (plugins/irssi/sealchat.pl) and `sealchat agent` on InspIRCd 3 + Atheme
 * (issue 16): bob's unmodified irssi logs in to his NickServ account with SASL, straight to the
 * network, with the plugin loaded; he registers his key by typing `/msg keybot register` (the
 * agent answers keybot's nonce through the plugin), and keybot's INVITE into alice's room is
 * answered by the agent with a JOIN the plugin sends; then bob and alice (SealClient) read each
 * other, verified. Asserted on irssi's screen.
 */
import { expect } from 'chai';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startAgent, type Agent } from '../../src/client/agent/server.js';
import { startKeybot, type Keybot } from '../../src/bot/main.js';
import { SealClient, type RoomMessageEvent } from '../../src/client/client.js';
import { unlockPrivateKey } from '../../src/crypto/index.js';
import { keyFor } from '../helpers/daemon.js';
import { IRSSI_PLUGIN } from '../helpers/plugins.js';
import { ROOM_RE, until } from '../helpers/poll.js';
import { escapeRe, haveIrssi, startIrssi, type RealClient } from '../helpers/realclients.js';
import { haveCommand } from '../helpers/tmux.js';
import { ROOMY_PACE, missing, registerAccount, startNetwork, type TestNetwork } from './servers.js';

const PASSWORD = 'pw-for-tests-1';
const why = missing() ?? (!(await haveIrssi()) || !(await haveCommand('tmux')) ? 'needs irssi and tmux (apt-get install irssi tmux)' : undefined);

describe('keybot on InspIRCd 3 + Atheme with irssi, its sealchat plugin and sealchat agent (issue 16)', function () {
  this.timeout(120_000);
  let net: TestNetwork | undefined;
  let dataDir: string;
  let bot: Keybot | undefined;
  let agent: Agent | undefined;
  let irssi: RealClient | undefined;
  const clients: SealClient[] = [];

  before(async function () {
    if (why) return this.skip();
    net = await startNetwork();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-netplugin-'));
    for (const name of ['keybot', 'alice', 'bob']) await registerAccount(net.port, name, PASSWORD);
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
    await agent?.close();
    for (const c of clients) await c.quit().catch(() => undefined);
    await bot?.close();
    await net?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it(`(skip reason) ${why ?? 'needs InspIRCd, Atheme, irssi and tmux'}`, function () {
    if (why) this.skip();
  });

  it('bob (irssi + plugin) registers his key, is joined by keybot’s INVITE and reads and writes verified text with alice', async function () {
    if (why) return this.skip();
    irssi = await startIrssi({ port: net!.port, nick: 'bob', sasl: { account: 'bob', password: PASSWORD } });
    const dir = path.join(irssi.home, '.sealchat');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    agent = await startAgent({
      account: 'bob',
      privateKey: (await unlockPrivateKey({ armored: (await keyFor('bob')).privateArmored })).key!,
      socketPath: path.join(dir, 'agent-bob.sock'),
      knownKeybotsFile: false,
      keybotFingerprint: bot!.fingerprint,
    });
    await irssi.send(`/script load ${IRSSI_PLUGIN}`);
    await irssi.waitForText(/Loaded script sealchat/);
    await irssi.send('/connect sc');
    await irssi.waitForText(/keybot's key [0-9a-f]{40} is pinned/, 20_000);

    // The agent answers keybot's nonce; irssi shows keybot's verdict.
    await irssi.send('/msg keybot register');
    // keybot's answer is in its query window.
    await irssi.send('/window goto keybot');
    await irssi.waitForText(/register: key [0-9a-f]+ registered for bob/, 30_000);

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

    const reply = (await alice.command('invite bob', 30_000)).join('\n');
    const room = ROOM_RE.exec(reply)?.[0];
    expect(room, reply).to.be.a('string');
    // keybot's INVITE: the agent has the plugin JOIN (keybot keys the room once bob is in); the
    // room's key arrives in irssi's window for it, verified.
    await until(() => alice.localRooms().some((r) => r.room.toLowerCase() === room && r.hasKey && r.members.includes('bob')), "alice's key with bob in it", 30_000);
    await irssi.showChannel(room!);
    await irssi.waitForText(new RegExp(`sealchat: key for ${escapeRe(room!)} \\(epoch \\d+\\) from keybot, verified; members: alice, bob`, 'i'), 30_000);

    const aliceGot: RoomMessageEvent[] = [];
    alice.on('message', (m) => aliceGot.push(m));
    await alice.send(room!, 'hello bob, to your plugin');
    await irssi.waitForText(/<[@+ ]?alice> ✓ hello bob, to your plugin/, 20_000);
    await irssi.send('hello alice, from the plugin');
    await until(() => aliceGot.find((m) => m.from === 'bob' && m.text === 'hello alice, from the plugin'), "alice to read bob's message", 20_000);
  });
});
