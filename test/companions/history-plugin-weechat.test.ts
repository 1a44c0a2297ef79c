/**
 * Rooms that outlive a connection with real WeeChat and the sealchat plugin
 * (plugins/weechat/sealchat.py) over the agent: bob (WeeChat) disconnects, alice (SealClient)
 * writes 20 messages (one longer than an IRC line, one not ASCII), bob connects again: the daemon
 * places him back in the room, the agent has the plugin ask for the capabilities and the room's
 * history, decrypts the batch, and the plugin shows all 20, in order, verified, marked as history,
 * once, with the summary. Asserted on the agent's events as the plugin got them (WeeChat's screen
 * wraps long lines), and on WeeChat's screen for the summary and a short message.
 */
import { expect } from 'chai';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { startAgent, type Agent } from '../../src/client/agent/server.js';
import type { SealClient } from '../../src/client/client.js';
import { unlockPrivateKey } from '../../src/crypto/index.js';
import { startAgentTap, type AgentTap } from '../helpers/agent-tap.js';
import { haveWeechatPython, sealClient, startPluginWorld, until, WEECHAT_PLUGIN, type PluginWorld } from '../helpers/plugins.js';
import { escapeRe, haveWeechat, startWeechat, type RealClient } from '../helpers/realclients.js';
import { haveCommand } from '../helpers/tmux.js';

const available = (await haveWeechat()) && (await haveCommand('tmux')) && (await haveWeechatPython());
const describeIf = available ? describe : describe.skip;

/** Read `got` as the texts typed: consecutive pieces of one long text joined again, in order. */
function typedAs(got: string[], typed: string[]): string[] {
  const out: string[] = [];
  let i = 0;
  for (const want of typed) {
    let text = got[i++] ?? '';
    while (text !== want && want.startsWith(text) && i < got.length) text += got[i++];
    out.push(text);
  }
  return i === got.length ? out : [...out, ...got.slice(i)];
}

describeIf(`plugin: WeeChat catches up on a room${available ? '' : ' (SKIPPED: weechat-curses, weechat-python or tmux is missing)'}`, function () {
  this.timeout(90_000);
  let w: PluginWorld | undefined;
  let weechat: RealClient | undefined;
  let agent: Agent | undefined;
  let tap: AgentTap | undefined;
  let alice: SealClient | undefined;

  after(async () => {
    await weechat?.stop();
    await alice?.quit().catch(() => undefined);
    await tap?.close();
    await agent?.close();
    await w?.stop();
  });

  it('bob (WeeChat, plugin) reads the 20 messages alice wrote while he was offline, in order, verified, marked, once, with the summary', async () => {
    w = await startPluginWorld(['alice', 'bob']);
    weechat = await startWeechat({ port: w.t.port, nick: 'bob' });
    const dir = path.join(weechat.home, '.sealchat');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    agent = await startAgent({
      account: 'bob',
      privateKey: (await unlockPrivateKey({ armored: w.users.bob!.privateKey })).key!,
      socketPath: path.join(dir, 'agent-real.sock'),
      knownKeybotsFile: path.join(dir, 'known_keybots.json'),
      keybotFingerprint: w.bot.fingerprint,
    });
    // Where the plugin looks for bob's agent: the tap, which relays to it and records its events.
    tap = await startAgentTap(path.join(dir, 'agent-bob.sock'), agent.socketPath);
    await weechat.send(`/python load ${WEECHAT_PLUGIN}`);
    await weechat.waitForText(/python: registered script "sealchat"/);
    await weechat.connect(w.users.bob!.password);
    await weechat.waitForText(new RegExp(`sealchat: keybot's key ${w.bot.fingerprint} is pinned`), 15_000);

    alice = await sealClient(w, 'alice');
    await alice.invite(['bob']);
    const room = (await until(() => alice!.localRooms().find((r) => r.hasKey && r.members.includes('bob')), "alice's key")).room;
    await until(() => tap!.events.some((e) => e.type === 'key' && e.room === room), "bob's key");
    await alice.send(room, 'before bob leaves');
    await until(() => tap!.events.some((e) => e.type === 'shown' && e.text === '✓ before bob leaves'), 'bob to read it live');

    // bob goes offline (a QUIT: he stays a member); alice writes meanwhile.
    const quit = new Promise<void>((resolve) => alice!.on('quit', (q) => q.nick === 'bob' && resolve()));
    await weechat.send('/disconnect t');
    await quit;
    const texts = Array.from({ length: 20 }, (_, i) => `while bob was offline ${i + 1}`);
    texts[4] = `long: ${'more than one IRC line can carry, so it goes in parts; '.repeat(11)}end`;
    texts[11] = 'non-ASCII: grüße, naïve café, 日本語 ✓';
    expect(Buffer.byteLength(texts[4]!)).to.be.greaterThan(512);
    for (const t of texts) await alice.send(room, t);
    // The daemon answers alice's WHOIS after it relayed (and kept) all 20.
    expect(await alice.whois('bob')).to.include({ error: 'not_found' });

    const from = tap.events.length;
    await weechat.send('/connect t');
    const summary = await until(() => tap!.events.slice(from).find((e) => e.type === 'notice' && / messages while you were away$/.test(e.text)), 'the summary', 30_000);
    // The marker: a message alice sends after; once the plugin got it, a second copy of anything would have come.
    await alice.send(room, 'after bob is back');
    await until(() => tap!.events.slice(from).some((e) => e.type === 'shown' && e.text === '✓ after bob is back'), 'the marker', 15_000);

    const history = tap.events.slice(from).filter((e) => e.type === 'message' && e.history === true);
    for (const e of history) {
      expect(e).to.include({ target: room, from: 'alice', verified: true });
      expect(e.text).to.match(/^✓ \[history \d\d:\d\d\] /);
      expect(e.time).to.be.a('number');
    }
    expect(typedAs(history.map((e) => (e.text as string).replace(/^✓ \[history \d\d:\d\d\] /, '')), texts)).to.deep.equal(texts);
    expect(summary).to.include({ target: room, text: `${history.length} messages while you were away` });
    // Once: nothing of it came again, live or from history, before the marker.
    const messages = tap.events.slice(from).filter((e) => e.type === 'message' || e.type === 'shown');
    expect(messages.length).to.equal(history.length + 1);
    expect(tap.events.filter((e) => (e.type === 'message' || e.type === 'shown') && /before bob leaves$/.test(e.text))).to.have.length(1);

    // What WeeChat shows in the room's buffer.
    await weechat.showChannel(room);
    await weechat.waitForText(new RegExp(`sealchat: ${history.length} messages while you were away`), 10_000);
    await weechat.waitForText(new RegExp(`alice \\| ✓ \\[history \\d\\d:\\d\\d\\] ${escapeRe('while bob was offline 20')}`), 10_000);
  });
});
