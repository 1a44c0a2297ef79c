/**
 * The world for the plugin journeys: the real daemon, the real keybot (in this process), a
 * sealchat agent per plugin user (in this process, socket in the client's home), SealClient
 * companions, and a raw-socket member that records exactly what the server relays into a room.
 */
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startKeybot, type Keybot } from '../../src/bot/main.js';
import { startAgent, type Agent } from '../../src/client/agent/server.js';
import { SealClient } from '../../src/client/client.js';
import { unlockPrivateKey } from '../../src/crypto/index.js';
import { RawClient, startTestDaemon, type TestDaemon, type TestUser } from './daemon.js';
import { loginAs } from './keybot.js';
import type { RealClient } from './realclients.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const WEECHAT_PLUGIN = path.join(root, 'plugins', 'weechat', 'sealchat.py');
export const IRSSI_PLUGIN = path.join(root, 'plugins', 'irssi', 'sealchat.pl');

export { ROOM_RE, until } from './poll.js';

/** Is WeeChat's Python plugin installed (Debian: weechat-python)? Without it /python load fails. */
export async function haveWeechatPython(): Promise<boolean> {
  for (const dir of ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib', '/usr/local/lib']) {
    const names = await readdir(path.join(dir, 'weechat', 'plugins')).catch(() => [] as string[]);
    if (names.some((n) => /^python\.(so|dylib)$/.test(n))) return true;
  }
  return false;
}

export interface PluginWorld {
  t: TestDaemon;
  /** The keybot running now (replaced by startKeybotAgain). */
  bot: Keybot;
  users: Record<string, TestUser>;
  /**
   * Stop keybot (its QUIT leaves the rooms and their keys as they are: the epoch goes on), so
   * that a membership change gets no new key until {@link startKeybotAgain}.
   */
  stopKeybot(): Promise<void>;
  /** A new keybot on the same data dir: it recovers the rooms and rekeys each. */
  startKeybotAgain(): Promise<Keybot>;
  stop(): Promise<void>;
}

export async function startPluginWorld(names: string[]): Promise<PluginWorld> {
  const t = await startTestDaemon();
  const users: Record<string, TestUser> = {};
  try {
    for (const n of names) users[n] = await t.addUser(n);
    const launch = (): Promise<Keybot> =>
      startKeybot({
        dataDir: t.dataDir,
        irc: { host: '127.0.0.1', port: t.port },
        rotateAfterMessages: t.config.keybot.rotateAfterMessages,
        rotateAfterMs: t.config.keybot.rotateAfterMs,
        commands: { burst: 100 },
      });
    let running = true;
    const w: PluginWorld = {
      t,
      bot: await launch(),
      users,
      async stopKeybot() {
        if (!running) return;
        running = false;
        await w.bot.close();
      },
      async startKeybotAgain() {
        await w.stopKeybot();
        w.bot = await launch();
        running = true;
        return w.bot;
      },
      async stop() {
        await w.stopKeybot();
        await t.stop();
      },
    };
    return w;
  } catch (err) {
    await t.stop();
    throw err;
  }
}

/** The agent a real client's plugin finds by default: `$HOME/.sealchat/agent-<nick>.sock`. */
export async function agentFor(w: PluginWorld, client: RealClient, opts: { trustOnFirstUse?: boolean } = {}): Promise<Agent> {
  const user = w.users[client.nick]!;
  const dir = path.join(client.home, '.sealchat');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const key = await unlockPrivateKey({ armored: user.privateKey });
  return startAgent({
    account: user.name,
    privateKey: key.key!,
    socketPath: path.join(dir, `agent-${user.name}.sock`),
    knownKeybotsFile: path.join(dir, 'known_keybots.json'),
    ...(opts.trustOnFirstUse ? {} : { keybotFingerprint: w.bot.fingerprint }),
  });
}

/** A SealClient companion with keybot's key pinned by fingerprint. */
export async function sealClient(w: PluginWorld, name: string): Promise<SealClient> {
  const u = w.users[name]!;
  const c = new SealClient();
  c.on('error', () => undefined);
  await c.connect({
    ...loginAs(w.t, u),
    keybotPublicKey: w.bot.identity.publicArmored,
    keybotFingerprint: w.bot.fingerprint,
    knownKeybotsFile: false,
  });
  return c;
}

/** One line the recorder received. */
export interface Recorded {
  from: string;
  command: string;
  target: string;
  text: string;
}

/** A logged-in raw socket: records every PRIVMSG/NOTICE the server relays to it. */
export async function recorder(w: PluginWorld, name: string): Promise<{ raw: RawClient; seen: () => Recorded[] }> {
  const raw = await RawClient.connect(w.t.port);
  await raw.login(name, w.users[name]!.password);
  const seen = (): Recorded[] =>
    raw.lines.flatMap((l) => {
      const m = /^(?:@\S+ )?:([^!\s]+)\S* (PRIVMSG|NOTICE) (\S+) :?(.*)$/.exec(l);
      return m ? [{ from: m[1]!, command: m[2]!, target: m[3]!, text: m[4]! }] : [];
    });
  return { raw, seen };
}

/** Collapse whitespace: clients split long text at spaces and drop or keep the space. */
export function squash(s: string): string {
  return s.replace(/\s+/g, '');
}
