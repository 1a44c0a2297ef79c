/**
 * How the tests start keybot and log companions in against a test daemon.
 */
import type { KeybotOptions } from '../../src/bot/main.js';
import type { SealConnectOptions } from '../../src/client/client.js';
import type { TestDaemon, TestUser } from './daemon.js';

/**
 * keybot against the test daemon: its data dir, no rotation within a test, and a generous command
 * budget (the tests fire commands faster than people type); `over` adds or replaces options.
 */
export function testKeybotOptions(t: Pick<TestDaemon, 'dataDir' | 'port'>, over: Partial<KeybotOptions> = {}): KeybotOptions {
  return {
    dataDir: t.dataDir,
    irc: { host: '127.0.0.1', port: t.port },
    rotateAfterMessages: 1000,
    rotateAfterMs: 3_600_000,
    commands: { burst: 100 },
    ...over,
  };
}

/** What a SealClient needs to log in as `user` on the test daemon (the nick is the account). */
export function loginAs(
  t: Pick<TestDaemon, 'port'>,
  user: TestUser,
): Pick<SealConnectOptions, 'host' | 'port' | 'nick' | 'password' | 'privateKeyArmored'> {
  return { host: '127.0.0.1', port: t.port, nick: user.name, password: user.password, privateKeyArmored: user.privateKey };
}
