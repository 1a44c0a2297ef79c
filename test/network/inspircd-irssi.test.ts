/**
 * The issue-16 journey with a real IRC client on InspIRCd 3 + Atheme (Debian): bob uses unmodified
 * irssi through `sealchat proxy` (irssi logs in to his NickServ account with SASL, through the
 * proxy), alice SealClient; carol is let in by the operator's SAJOIN. The steps and what they
 * assert are test/network/irssi-journey.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client as IrcClient } from 'irc-framework';
import { startKeybot, type Keybot } from '../../src/bot/main.js';
import { SealClient } from '../../src/client/client.js';
import { LocalProxy } from '../../src/client/proxy/proxy.js';
import { unlockPrivateKey } from '../../src/crypto/index.js';
import { keyFor } from '../helpers/daemon.js';
import { until } from '../helpers/poll.js';
import { haveIrssi, startIrssi, type RealClient } from '../helpers/realclients.js';
import { haveCommand } from '../helpers/tmux.js';
import { runIrssiJourney } from './irssi-journey.js';
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
    irssi = await startIrssi({ port: proxy.address.port, nick: 'bob', sasl: { account: 'bob', password: PASSWORD } });
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
    const carol = await connectPlain(net!.port, 'carol', { account: 'carol', password: PASSWORD });
    plains.push(carol);
    await runIrssiJourney({
      irssi,
      // irssi logs in to bob's NickServ account with SASL, through the proxy.
      connectIrssi: async () => {
        await irssi!.send('/connect sc');
        await until(() => down.find((l) => / 900 \S+ \S+ bob :You are now logged in as bob/.test(l)), 'irssi to be logged in with SASL', 20_000);
      },
      down,
      up,
      alice,
      carol,
      // The network's operator SAJOINs her.
      admitCarol: async (room) => {
        const op = await connectPlain(net!.port, 'netop');
        plains.push(op);
        op.raw('OPER', OPER.name, OPER.password);
        await new Promise<void>((resolve) => op.on('raw', (e: { line: string }) => /^\S+ 381 /.test(e.line.replace(/^@\S+ /, '')) && resolve()));
        op.raw('SAJOIN', 'carol', room);
      },
      ms: 30_000,
    });
  });
});
