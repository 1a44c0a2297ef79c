/**
 * The history journey of the plugins (WeeChat, irssi) over the agent, shared by
 * test/companions/history-plugin-weechat.test.ts and history-plugin-irssi.test.ts: bob (the real
 * client with the plugin) disconnects, alice (SealClient) writes 20 messages (one longer than an
 * IRC line, one not ASCII), bob connects again: the daemon places him back in the room, the agent
 * has the plugin ask for the capabilities and the room's history, decrypts the batch, and the
 * plugin shows all 20, in order, verified, marked as history, once, with the summary. Asserted on
 * the agent's events as the plugin got them (a screen wraps long lines), and on the screen for the
 * summary and a short message.
 */
import { expect } from 'chai';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { startAgent, type Agent } from '../../src/client/agent/server.js';
import type { SealClient } from '../../src/client/client.js';
import { unlockPrivateKey } from '../../src/crypto/index.js';
import { startAgentTap, type AgentTap } from './agent-tap.js';
import { sealClient, startPluginWorld, until, type PluginWorld } from './plugins.js';
import { escapeRe, type RealClient, type StartOptions } from './realclients.js';

/** What the journey needs to know about one real client with the plugin. */
export interface HistoryPluginDriver {
  start(opts: StartOptions): Promise<RealClient>;
  loadPlugin(client: RealClient): Promise<void>;
  /** Leave the server (a QUIT), and come back. */
  disconnect(client: RealClient): Promise<void>;
  reconnect(client: RealClient, password: string): Promise<void>;
  /** How the client shows `nick`'s message `text` (the plugin's text, marker included). */
  messageLine(nick: string, text: string): RegExp;
}

/** Read `got` as the texts typed: consecutive pieces of one long text joined again, in order. */
export function typedAs(got: string[], typed: string[]): string[] {
  const out: string[] = [];
  let i = 0;
  for (const want of typed) {
    let text = got[i++] ?? '';
    while (text !== want && want.startsWith(text) && i < got.length) text += got[i++];
    out.push(text);
  }
  return i === got.length ? out : [...out, ...got.slice(i)];
}

/** Registers the journey as one test's body; cleans up in `after`. */
export function historyJourney(driver: HistoryPluginDriver): () => Promise<void> {
  let w: PluginWorld | undefined;
  let client: RealClient | undefined;
  let agent: Agent | undefined;
  let tap: AgentTap | undefined;
  let alice: SealClient | undefined;

  after(async () => {
    await client?.stop();
    await alice?.quit().catch(() => undefined);
    await tap?.close();
    await agent?.close();
    await w?.stop();
  });

  return async () => {
    w = await startPluginWorld(['alice', 'bob']);
    const rc = (client = await driver.start({ port: w.t.port, nick: 'bob' }));
    const dir = path.join(rc.home, '.sealchat');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    agent = await startAgent({
      account: 'bob',
      privateKey: (await unlockPrivateKey({ armored: w.users.bob!.privateKey })).key!,
      socketPath: path.join(dir, 'agent-real.sock'),
      knownKeybotsFile: path.join(dir, 'known_keybots.json'),
      keybotFingerprint: w.bot.fingerprint,
    });
    // Where the plugin looks for bob's agent: the tap, which relays to it and records its events.
    const t = (tap = await startAgentTap(path.join(dir, 'agent-bob.sock'), agent.socketPath));
    await driver.loadPlugin(rc);
    await rc.connect(w.users.bob!.password);
    await rc.waitForText(new RegExp(`sealchat: keybot's key ${w.bot.fingerprint} is pinned`), 15_000);

    const a = (alice = await sealClient(w, 'alice'));
    await a.invite(['bob']);
    const room = (await until(() => a.localRooms().find((r) => r.hasKey && r.members.includes('bob')), "alice's key")).room;
    await until(() => t.events.some((e) => e.type === 'key' && e.room === room), "bob's key");
    await a.send(room, 'before bob leaves');
    await until(() => t.events.some((e) => e.type === 'shown' && e.text === '✓ before bob leaves'), 'bob to read it live');

    // bob goes offline (a QUIT: he stays a member); alice writes meanwhile.
    const quit = new Promise<void>((resolve) => a.on('quit', (q) => q.nick === 'bob' && resolve()));
    await driver.disconnect(rc);
    await quit;
    const texts = Array.from({ length: 20 }, (_, i) => `while bob was offline ${i + 1}`);
    texts[4] = `long: ${'more than one IRC line can carry, so it goes in parts; '.repeat(11)}end`;
    texts[11] = 'non-ASCII: grüße, naïve café, 日本語 ✓';
    expect(Buffer.byteLength(texts[4]!)).to.be.greaterThan(512);
    for (const text of texts) await a.send(room, text);
    // The daemon answers alice's WHOIS after it relayed (and kept) all 20.
    expect(await a.whois('bob')).to.include({ error: 'not_found' });

    const from = t.events.length;
    await driver.reconnect(rc, w.users.bob!.password);
    const summary = await until(() => t.events.slice(from).find((e) => e.type === 'notice' && / messages while you were away$/.test(e.text)), 'the summary', 30_000);
    // The marker: a message alice sends after; once the plugin got it, a second copy of anything would have come.
    await a.send(room, 'after bob is back');
    await until(() => t.events.slice(from).some((e) => e.type === 'shown' && e.text === '✓ after bob is back'), 'the marker', 15_000);

    const history = t.events.slice(from).filter((e) => e.type === 'message' && e.history === true);
    for (const e of history) {
      expect(e).to.include({ target: room, from: 'alice', verified: true });
      expect(e.text).to.match(/^✓ \[history \d\d:\d\d\] /);
      expect(e.time).to.be.a('number');
    }
    expect(typedAs(history.map((e) => (e.text as string).replace(/^✓ \[history \d\d:\d\d\] /, '')), texts)).to.deep.equal(texts);
    expect(summary).to.include({ target: room, text: `${history.length} messages while you were away` });
    // Once: nothing of it came again, live or from history, before the marker.
    const messages = t.events.slice(from).filter((e) => e.type === 'message' || e.type === 'shown');
    expect(messages.length).to.equal(history.length + 1);
    expect(t.events.filter((e) => (e.type === 'message' || e.type === 'shown') && /before bob leaves$/.test(e.text))).to.have.length(1);

    // What the client shows in the room's window.
    await rc.showChannel(room);
    await rc.waitForText(new RegExp(`sealchat: ${history.length} messages while you were away`), 10_000);
    await rc.waitForText(driver.messageLine('alice', '✓ [history ') , 10_000);
    await rc.waitForText(new RegExp(escapeRe('while bob was offline 20')), 10_000);
  };
}
