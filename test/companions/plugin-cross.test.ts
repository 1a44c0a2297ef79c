/**
 * Both plugins at once: alice in WeeChat, bob in irssi, each with their own agent (bob's trusts
 * keybot's key on first use), in a room keybot opened; carol is a raw socket recording the room.
 */
import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Agent } from '../../src/client/agent/server.js';
import type { RawClient } from '../helpers/daemon.js';
import { escapeRe, haveIrssi, haveWeechat, startIrssi, startWeechat, type RealClient } from '../helpers/realclients.js';
import { haveCommand } from '../helpers/tmux.js';
import {
  IRSSI_PLUGIN,
  haveWeechatPython,
  ROOM_RE,
  WEECHAT_PLUGIN,
  agentFor,
  recorder,
  startPluginWorld,
  until,
  type PluginWorld,
  type Recorded,
} from '../helpers/plugins.js';
import { sendMarker, startWireTap, type WireTap } from '../helpers/wiretap.js';

const available = (await haveWeechat()) && (await haveIrssi()) && (await haveCommand('tmux')) && (await haveWeechatPython());
const describeIf = available ? describe : describe.skip;
const token = (): string => Math.random().toString(36).slice(2, 8);

describeIf(`plugins: WeeChat and irssi together${available ? '' : ' (SKIPPED: weechat, irssi or tmux is missing)'}`, function () {
  this.timeout(60_000);
  let w: PluginWorld;
  let weechat: RealClient;
  let irssi: RealClient;
  const agents: Agent[] = [];
  let carol: { raw: RawClient; seen: () => Recorded[] };
  /** Between bob's irssi and the daemon: every line it sent. */
  let bobTap: WireTap;
  let room: string;

  before(async function () {
    this.timeout(60_000);
    w = await startPluginWorld(['alice', 'bob', 'carol']);
    bobTap = await startWireTap(w.t.port);
    [weechat, irssi] = await Promise.all([startWeechat({ port: w.t.port, nick: 'alice' }), startIrssi({ port: bobTap.port, nick: 'bob' })]);
    agents.push(await agentFor(w, weechat), await agentFor(w, irssi, { trustOnFirstUse: true }));
    await weechat.send(`/python load ${WEECHAT_PLUGIN}`);
    await irssi.send(`/script load ${IRSSI_PLUGIN}`);
    await Promise.all([weechat.waitForText(/python: registered script "sealchat"/), irssi.waitForText(/Loaded script sealchat/)]);
    await Promise.all([weechat.connect(w.users.alice!.password), irssi.connect(w.users.bob!.password)]);
    await weechat.waitForText(new RegExp(`sealchat: keybot's key ${w.bot.fingerprint} is pinned \\(matches the fingerprint you configured\\)`));
    await irssi.waitForText(new RegExp(`sealchat: keybot's key ${w.bot.fingerprint} is pinned \\(trusted on first use`));
    carol = await recorder(w, 'carol');
  });

  after(async () => {
    await Promise.all([weechat?.stop(), irssi?.stop()]);
    carol?.raw.close();
    await Promise.all(agents.map((a) => a.close()));
    await bobTap?.close();
    await w?.stop();
  });

  it('alice (WeeChat) and bob (irssi) chat in a keybot room: text, /me and a long message, ciphertext only on the wire', async () => {
    await weechat.send('/msg keybot invite bob carol');
    const join = await until(() => carol.raw.lines.find((l) => / JOIN :?#sc-/.test(l) && l.startsWith(':carol!')), 'carol in the room');
    room = ROOM_RE.exec(join)![0];
    // bob's irssi was put in the room by the server (no /join) and its plugin installed the key.
    await irssi.showChannel(room);
    // WeeChat's agent signed the invite typed the usual way (who opened the room is checked on the agent's key event: agent-membership.test.ts).
    await irssi.waitForText(new RegExp(`sealchat: key for ${escapeRe(room)} \\(epoch \\d+\\) from keybot, verified`));
    await weechat.showChannel(room);
    await weechat.waitForText(new RegExp(`sealchat: key for ${escapeRe(room)} \\(epoch \\d+\\) from keybot, verified`));

    const fromAlice = `Grüße von WeeChat, ¿qué tal? ${token()}`;
    await weechat.send(fromAlice);
    await irssi.waitForText(new RegExp(`<[@+ ]?alice> ✓ ${escapeRe(fromAlice)}`));

    const action = `winkt fröhlich ${token()}`;
    await irssi.send(`/me ${action}`);
    await weechat.waitForText(new RegExp(`bob ✓ ${escapeRe(action)}`));

    // And the other way: irssi's own CTCP handling sees the decrypted /me (the plugin runs first).
    const action2 = `nickt zurück ${token()}`;
    await weechat.send(`/me ${action2}`);
    await irssi.waitForText(new RegExp(`\\* alice ✓ ${escapeRe(action2)}`));

    const long = `${token()} ${Array.from({ length: 80 }, (_, i) => `wörtchen${i}`).join(' ')} schluss`;
    await irssi.send(long);
    // irssi split it into wire lines, each became one or more sealed messages; WeeChat shows them all, in order.
    const screen = await weechat.tmux.waitUntil((x) => /wörtchen79 schluss/.test(x), 'the end of the long message', 15_000);
    let at = 0;
    for (const word of long.split(' ')) {
      const i = screen.indexOf(word, at);
      expect(i, `"${word}" on WeeChat's screen after position ${at}`).to.be.greaterThan(-1);
      at = i + word.length;
    }
    expect(screen).to.match(/bob \| ✓ wörtchen\d+/);

    const all = carol.seen();
    const inRoom = all.filter((l) => l.target.toLowerCase() === room.toLowerCase() && l.command === 'PRIVMSG');
    expect(inRoom.length).to.be.greaterThan(4);
    for (const l of inRoom) expect(l.text).to.match(/^SC1[MP] /);
    const text = all.map((l) => l.text).join('\n');
    for (const secret of [fromAlice, action, action2, 'wörtchen7']) expect(text).not.to.include(secret);
  });

  it('a reloaded WeeChat plugin re-attaches to its agent session and keeps reading the room', async () => {
    await weechat.send('/buffer core.weechat');
    await weechat.send('/python reload sealchat');
    await weechat.waitForText(/python: script "sealchat" unloaded[\s\S]*python: registered script "sealchat"/);
    const msg = `after the reload ${token()}`;
    await irssi.showChannel(room);
    await irssi.send(msg);
    await weechat.showChannel(room);
    await weechat.waitForText(new RegExp(`bob \\| ✓ ${escapeRe(msg)}`));
  });

  it('bob leaves through keybot: his keys are wiped, so irssi refuses to send there; alice gets a new key', async () => {
    const known = JSON.parse(await readFile(path.join(irssi.home, '.sealchat', 'known_keybots.json'), 'utf8'));
    expect(Object.values(known).map((k) => (k as { fingerprint: string }).fingerprint)).to.deep.equal([w.bot.fingerprint]);
    await irssi.showServer();
    await irssi.send(`/msg keybot leave ${room}`);
    await weechat.showChannel(room);
    // bob's agent signed the leave irssi sent; alice's key line shows it verified.
    await weechat.waitForText(/has kicked bob \(left \(signed with their key\)\)/);
    await weechat.waitForText(/sealchat: key for \S+ \(epoch \d+\) from keybot, verified; members: alice, carol; bob left, verified/);
    const secret = `bob after leaving ${token()}`;
    await irssi.showServer();
    const before = bobTap.sent.length;
    await irssi.send(`/msg ${room} ${secret}`);
    await irssi.waitForText(new RegExp(`NOT SENT: you no longer hold a key for ${escapeRe(room)}`));
    // bob is out of the room, so carol could not see what he sends: read his connection instead.
    const marker = await sendMarker(bobTap, irssi, before);
    expect(bobTap.sent.slice(before, marker).filter((l) => /^(PRIVMSG|NOTICE) /i.test(l)), 'lines bob sent').to.deep.equal([]);
  });
});
