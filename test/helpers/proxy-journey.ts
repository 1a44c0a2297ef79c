/**
 * The user journey through `sealchat proxy` with a real IRC client (irssi or WeeChat in tmux),
 * shared by test/companions/proxy-irssi.test.ts and proxy-weechat.test.ts.
 *
 * alice runs the real client through her proxy; bob is a SealClient; carol is a plain raw
 * member the proxy does not serve, so she records what any member without a companion (or the
 * server) sees. The proxy's upstream socket is tapped too.
 */
import { expect } from 'chai';
import type { SealClient } from '../../src/client/client.js';
import { unlockPrivateKey } from '../../src/crypto/index.js';
import { LocalProxy } from '../../src/client/proxy/proxy.js';
import { RawClient } from './daemon.js';
import { escapeRe, type RealClient } from './realclients.js';
import { ROOM_RE, startWorld, until, type World } from './companions.js';

export interface JourneyContext {
  w: World;
  proxy: LocalProxy;
  /** Lines the proxy wrote to the server. */
  up: string[];
  carol: RawClient;
  close(): Promise<void>;
}

/** Daemon, keybot, alice's proxy, and carol the raw recorder. */
export async function startJourney(): Promise<JourneyContext> {
  const w = await startWorld(['alice', 'bob', 'carol']);
  const up: string[] = [];
  let proxy: LocalProxy | undefined;
  let carol: RawClient | undefined;
  try {
    const key = (await unlockPrivateKey({ armored: w.users.alice!.privateKey })).key!;
    proxy = await LocalProxy.start({
      listen: { host: '127.0.0.1', port: 0 },
      upstream: { host: '127.0.0.1', port: w.t.port },
      privateKey: key,
      account: 'alice',
      keybotFingerprint: w.bot.fingerprint,
      knownKeybotsFile: false,
      tap: (dir, line) => {
        if (dir === 'up') up.push(line);
      },
    });
    carol = await RawClient.connect(w.t.port);
    await carol.login('carol', w.users.carol!.password);
  } catch (err) {
    carol?.close();
    await proxy?.close();
    await w.stop();
    throw err;
  }
  const p = proxy;
  const c = carol;
  return {
    w,
    proxy: p,
    up,
    carol: c,
    async close() {
      c.close();
      await p.close();
      await w.stop();
    },
  };
}

/** Words that make a text longer than one IRC line, ending in non-ASCII. */
export function longText(tag: string, words = 150): string {
  return Array.from({ length: words }, (_, i) => `${tag}${i}`).join(' ') + ' — ünïcødé ✓';
}

const squash = (s: string): string => s.replace(/\s+/g, '');

export interface JourneyHooks {
  /** How the client shows a channel message from `nick`. */
  messageLine(nick: string, text: string): RegExp;
  /** What the client shows for WHOIS of an online / offline bob. */
  whoisOnline: RegExp;
  whoisOffline: RegExp;
}

/**
 * The journey, from a real client `rc` already started against the proxy's port and not yet
 * connected. Each step polls with a deadline.
 */
export async function runJourney(ctx: JourneyContext, rc: RealClient, hooks: JourneyHooks): Promise<void> {
  const { w, up, carol } = ctx;
  const bob: SealClient = await w.member('bob');
  const bobGot: Array<{ from: string; text: string; room: string }> = [];
  bob.on('message', (m) => bobGot.push(m));

  // Log in with PASS, through the proxy; it pins keybot by itself.
  await rc.connect(w.users.alice!.password);
  await rc.waitForText(/end-to-end encryption is on; keybot's key [0-9a-f]{40} is pinned/, 15_000);

  // Open a room the way a user would; nobody types /join.
  await rc.showServer();
  await rc.send('/msg keybot invite bob carol');
  const key = await until(() => bob.localRooms().find((r) => r.hasKey), "bob's key for the new room");
  const room = key.room;
  expect(room).to.match(ROOM_RE);
  await rc.showChannel(room);
  await rc.waitForText(new RegExp(`key: ${escapeRe(room)} epoch \\d+ \\(first key\\), members alice, bob, carol; verified`), 10_000);

  // alice → bob, non-ASCII.
  const hello = `grüße aus ${rc.kind} ✓ 你好 ${Date.now() % 10_000}`;
  await rc.send(hello);
  await until(() => bobGot.find((m) => m.text === hello), () => `bob to read "${hello}"; got ${JSON.stringify(bobGot)}`);

  // bob → alice.
  const hi = `hi alice, bob here ✓ ${Date.now() % 10_000}`;
  await bob.send(room, hi);
  await rc.waitForText(hooks.messageLine('bob', hi));

  // Longer than one IRC line, both ways.
  const fromAlice = longText('a');
  expect(Buffer.byteLength(fromAlice)).to.be.greaterThan(512);
  const mark = bobGot.length;
  await rc.send(fromAlice);
  await until(
    () => squash(bobGot.slice(mark).map((m) => m.text).join('')) === squash(fromAlice),
    () => `bob to read the long message; got ${JSON.stringify(bobGot.slice(mark).map((m) => m.text))}`,
  );
  const fromBob = longText('b');
  await bob.send(room, fromBob);
  // It arrives as several messages (132 bytes of text each), so the tail may be on a line of its own.
  const screen = await rc.tmux.waitUntil((s) => /b149[\s\S]*ünïcødé ✓/.test(s), 'the end of the long message from bob');
  for (const word of ['b0', 'b50', 'b148']) expect(screen).to.match(new RegExp(`\\b${word}\\b`));

  // Only ciphertext crossed the proxy's upstream socket and reached carol.
  const toRoom = up.filter((l) => l.startsWith(`PRIVMSG ${room} `));
  expect(toRoom.length).to.be.greaterThan(3);
  for (const l of toRoom) expect(l).to.match(new RegExp(`^PRIVMSG ${escapeRe(room)} :SC1M [A-Za-z0-9+/=]+$`));
  await until(() => carol.lines.filter((l) => l.includes(` PRIVMSG ${room} :`)).length >= toRoom.length, 'carol to receive the ciphertext');
  const carolSaw = carol.lines.filter((l) => / PRIVMSG #sc-/.test(l));
  for (const l of carolSaw) expect(l).to.match(/ PRIVMSG #sc-\S+ :SC1M [A-Za-z0-9+/=]+$/);
  const wire = [...up, ...carol.lines].join('\n');
  for (const secret of ['grüße', 'a42 a43', 'b42 b43', 'bob here']) expect(wire).not.to.include(secret);

  // WHOIS: bob online, then offline after he quits.
  await rc.showServer();
  await rc.send('/whois bob');
  await rc.waitForText(hooks.whoisOnline);
  await bob.quit('gone');
  await until(() => carol.lines.some((l) => /^:bob!\S+ QUIT/.test(l)), "bob's quit");
  await rc.send('/whois bob');
  await rc.waitForText(hooks.whoisOffline);

  // Plaintext into a room without a key: refused, visibly, and never sent.
  const upBefore = up.length;
  await rc.send('/msg #sc-aaaaaaaaaa this must not leave');
  await rc.waitForText(/NOT SENT: no key for #sc-aaaaaaaaaa yet/);
  expect(up.slice(upBefore).join('\n')).not.to.include('this must not leave');
}
