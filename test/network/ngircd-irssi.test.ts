/**
 * The issue-16 journey with a real IRC client on ngIRCd (Debian), a network without services where
 * keybot keeps the accounts: bob uses unmodified irssi through `sealchat proxy --keybot-account`
 * (the proxy logs every connection in to keybot; bob types no password to keybot), alice
 * SealClient with her keybot password; carol, logged in to keybot but not invited, is let in by a
 * network operator's invite exception. The steps and what they assert are
 * test/network/irssi-journey.ts.
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
import { OPER, ROOMY_PACE, connectPlain, ngircdMissing, startNgircd, type TestNetwork } from './servers.js';

const why = ngircdMissing() ?? (!(await haveIrssi()) || !(await haveCommand('tmux')) ? 'needs irssi and tmux (apt-get install irssi tmux)' : undefined);

describe('keybot on ngIRCd with irssi through sealchat proxy --keybot-account (issue 16)', function () {
  this.timeout(240_000);
  let net: TestNetwork | undefined;
  let dataDir: string;
  let bot: Keybot | undefined;
  let proxy: LocalProxy | undefined;
  let irssi: RealClient | undefined;
  const clients: SealClient[] = [];
  const plains: IrcClient[] = [];

  before(async function () {
    if (why) return this.skip();
    net = await startNgircd();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-ngirssi-'));
    bot = await startKeybot({
      dataDir,
      irc: { host: '127.0.0.1', port: net.port },
      rotateAfterMessages: 1000,
      rotateAfterMs: 3_600_000,
      commands: { burst: 100 },
      network: { account: 'keybot', password: '', accounts: 'keybot', oper: OPER, keyChangeCoolDownMs: 3_600_000, pace: ROOMY_PACE },
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

  it(`(skip reason) ${why ?? 'needs ngIRCd, irssi and tmux'}`, function () {
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
      keybotPassword: 'bob-keybot-pw-1',
      tap: (dir, line) => (dir === 'down' ? down : up).push(line),
    });
    irssi = await startIrssi({ port: proxy.address.port, nick: 'bob' });
    const alice = new SealClient();
    clients.push(alice);
    alice.on('error', () => undefined);
    await alice.connect({
      host: '127.0.0.1',
      port: net!.port,
      nick: 'alice',
      privateKeyArmored: (await keyFor('alice')).privateArmored,
      knownKeybotsFile: false,
      keybotFingerprint: bot!.fingerprint,
      keybotPassword: 'alice-keybot-pw-1',
      reconnect: false,
    });
    const carol = await connectPlain(net!.port, 'carol');
    plains.push(carol);
    const carolLogin = new Promise<void>((resolve) => carol.on('notice', (e: { nick?: string; message: string }) => e.nick === 'keybot' && /^login: /.test(e.message) && resolve()));
    carol.say('keybot', 'login carol-keybot-pw-1');
    await carolLogin;
    await runIrssiJourney({
      irssi,
      // No server password on ngIRCd; the proxy logs bob in to keybot (keybot's answer reaches irssi).
      connectIrssi: async () => {
        await irssi!.send(`/connect 127.0.0.1 ${proxy!.address.port}`);
        await until(() => down.find((l) => / NOTICE bob :login: keybot account bob created; you are logged in as bob$/.test(l)), "keybot's answer to the proxy's login", 30_000);
      },
      down,
      up,
      alice,
      carol,
      // A network operator lets her in with an invite exception (OperCanUseMode).
      admitCarol: async (room) => {
        const op = await connectPlain(net!.port, 'netop');
        plains.push(op);
        op.raw('OPER', OPER.name, OPER.password);
        await new Promise<void>((resolve) => op.on('raw', (e: { line: string }) => /^\S+ 381 /.test(e.line) && resolve()));
        op.raw('MODE', room, '+I', 'carol!*@*');
        await new Promise<void>((resolve) => op.on('raw', (e: { line: string }) => / MODE \S+ \+I carol!\*@\*/.test(e.line) && resolve()));
        carol.join(room);
      },
      ms: 40_000,
    });
  });
});
