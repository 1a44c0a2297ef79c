/**
 * The WeeChat plugin (plugins/weechat/sealchat.py) in a real WeeChat, driven in a private tmux
 * server, with the real daemon, the real keybot and a sealchat agent: alice uses WeeChat, bob a
 * SealClient, carol is a raw socket in the room recording what the server relays.
 */
import { expect } from 'chai';
import type { Agent } from '../../src/client/agent/server.js';
import type { SealClient, RoomMessageEvent } from '../../src/client/client.js';
import { escapeRe, haveWeechat, startWeechat, type RealClient } from '../helpers/realclients.js';
import { haveCommand } from '../helpers/tmux.js';
import {
  ROOM_RE,
  haveWeechatPython,
  WEECHAT_PLUGIN,
  agentFor,
  recorder,
  sealClient,
  squash,
  startPluginWorld,
  until,
  type PluginWorld,
  type Recorded,
} from '../helpers/plugins.js';
import type { RawClient } from '../helpers/daemon.js';

const available = (await haveWeechat()) && (await haveCommand('tmux')) && (await haveWeechatPython());
const describeIf = available ? describe : describe.skip;
const token = (): string => Math.random().toString(36).slice(2, 8);

describeIf(`plugin: WeeChat${available ? '' : ' (SKIPPED: weechat-curses, weechat-python or tmux is missing)'}`, function () {
  this.timeout(60_000);
  let w: PluginWorld;
  let weechat: RealClient;
  let agent: Agent | undefined;
  let bob: SealClient;
  let carol: { raw: RawClient; seen: () => Recorded[] };
  let room: string;
  const bobGot: RoomMessageEvent[] = [];

  before(async function () {
    this.timeout(60_000);
    w = await startPluginWorld(['alice', 'bob', 'carol']);
    weechat = await startWeechat({ port: w.t.port, nick: 'alice' });
    agent = await agentFor(w, weechat);
    await weechat.send(`/python load ${WEECHAT_PLUGIN}`);
    await weechat.waitForText(/python: registered script "sealchat"/);
    await weechat.connect(w.users.alice!.password);
    await weechat.waitForText(/Welcome to the sealchat IRC network, alice/);
    // The plugin asked keybot for its key through WeeChat; the agent pinned it by fingerprint.
    await weechat.waitForText(new RegExp(`sealchat: keybot's key ${w.bot.fingerprint} is pinned`));
    bob = await sealClient(w, 'bob');
    bob.on('message', (m) => bobGot.push(m));
    carol = await recorder(w, 'carol');
  });

  after(async () => {
    await weechat?.stop();
    await bob?.quit();
    carol?.raw.close();
    await agent?.close();
    await w?.stop();
  });

  it('/msg keybot invite: alice and bob get the room without /join, and read each other in plain text (non-ASCII, longer than one line); the wire carries only ciphertext', async () => {
    const bobJoined = new Promise<string>((resolve) => bob.on('join', (e) => e.self && ROOM_RE.test(e.room) && resolve(e.room)));
    const bobKey = new Promise<number>((resolve) => bob.on('key', (k) => resolve(k.epoch)));
    await weechat.send('/msg keybot invite bob carol');
    room = await bobJoined;
    await bobKey;
    // WeeChat opened the room's buffer on the server-side JOIN; the plugin shows the key arriving.
    await weechat.showChannel(room);
    await weechat.waitForText(new RegExp(`sealchat: key for ${escapeRe(room)} \\(epoch \\d+\\) from keybot, verified; members: .*alice`));

    const hello = `grüße aus WeeChat ✓ ${token()}`;
    await weechat.send(hello);
    const got = await until(() => bobGot.find((m) => m.text === hello), 'bob to read alice');
    expect(got).to.include({ room, from: 'alice' });

    const reply = `bonjour à toi, ça va? ${token()}`;
    await bob.send(room, reply);
    await weechat.waitForText(new RegExp(`bob \\| ✓ ${escapeRe(reply)}`));

    // Longer than one IRC line: WeeChat splits it, the plugin encrypts each piece (several SC1M lines).
    const words = Array.from({ length: 90 }, (_, i) => `wört${i}`).join(' ');
    const long = `${token()} ${words} ende`;
    await weechat.send(long);
    await until(() => squash(bobGot.map((m) => m.text).join(' ')).includes(squash(long)), 'bob to read the long message', 15_000);

    // And a long one from bob: several sealed messages, shown in order.
    const bobLong = `${token()} ${Array.from({ length: 60 }, (_, i) => `mot${i}é`).join(' ')} fin`;
    await bob.send(room, bobLong);
    const screen = await weechat.tmux.waitUntil((x) => x.includes('mot59é fin'), 'the end of bob\'s long message', 15_000);
    let at = 0;
    for (const word of bobLong.split(' ')) {
      const i = screen.indexOf(word, at);
      expect(i, `"${word}" after position ${at}`).to.be.greaterThan(-1);
      at = i + word.length;
    }

    // The recorder (a member without a companion) saw only sealchat lines in the room.
    const inRoom = carol.seen().filter((l) => l.target.toLowerCase() === room.toLowerCase() && l.command === 'PRIVMSG');
    expect(inRoom.length).to.be.greaterThan(3);
    for (const l of inRoom) {
      expect(l.text).to.match(/^SC1[MP] [A-Za-z0-9+/=]/);
      expect(l.text).not.to.include('grüße');
    }
    const all = carol.seen().map((l) => l.text).join('\n');
    for (const secret of [hello, reply, 'wört42', 'mot42é']) expect(all).not.to.include(secret);
  });

  it('refuses plaintext into a room without a key, visibly, and sends nothing', async () => {
    const before = carol.seen().length;
    await weechat.showServer();
    const secret = `secret ${token()}`;
    await weechat.send(`/msg #sc-nokeyroom ${secret}`);
    const refusal = await weechat.waitForText(/NOT SENT: no key for #sc-nokeyroom/);
    // Refused before the client echoed it: the text does not appear as if it had been sent.
    expect(refusal).not.to.include(secret);
    // A topic would be plaintext to the server: refused in the encrypted room.
    await weechat.showChannel(room);
    const topic = `topic ${token()}`;
    await weechat.send(`/topic ${topic}`);
    await weechat.waitForText(new RegExp(`NOT SENT: the topic of ${escapeRe(room)} would not be encrypted`));
    // Nothing reached the server: the recorder is not in that room, but bob's room stays quiet too.
    const ping = `after refusal ${token()}`;
    await weechat.send(ping);
    await until(() => bobGot.find((m) => m.text === ping), 'the next message');
    expect(carol.seen().slice(before).map((l) => l.text).join('\n')).not.to.include(secret);
    expect(carol.raw.lines.join('\n')).not.to.include(topic);
  });

  it("carol leaves while keybot is away: what alice types is held (she is told why), not sent under the old key, and goes out under keybot's next one", async () => {
    const before = bob.localRooms().find((r) => r.room === room)!.epoch!;
    await w.stopKeybot();
    await weechat.showChannel(room);
    carol.raw.send(`PART ${room} :bye`);
    await weechat.waitForText(/carol \(carol@127\.0\.0\.1\) has left/);
    const secret = `while carol is gone ${token()}`;
    await weechat.send(secret);
    // The user sees the line typed and, right under it, why it has not gone out.
    const held = await weechat.waitForText(new RegExp(`sealchat: held: the key of ${escapeRe(room)} is being replaced \\(carol left\\): held until the new key arrives`));
    expect(held).to.include(secret);
    await w.startKeybotAgain();
    await weechat.waitForText(new RegExp(`sealchat: key for ${escapeRe(room)} \\(epoch \\d+\\) from keybot, verified; members: alice, bob\\b`));
    const sent = await weechat.waitForText(/sealchat: sent: a held message went out under epoch \d+/);
    const epoch = Number(/sent: a held message went out under epoch (\d+)/.exec(sent)![1]);
    // bob (still a member) proves what went on the wire: the text came once, under the new epoch only.
    const got = await until(() => bobGot.find((m) => m.text === secret), 'bob to read the held text');
    expect(epoch).to.be.greaterThan(before);
    expect(bobGot.filter((m) => m.text === secret).map((m) => m.epoch)).to.deep.equal([epoch]);
    expect(got).to.include({ from: 'alice', room });
  });

  it('fails closed when the agent is gone: nothing is sent to the room, and it says why', async () => {
    await agent!.close();
    agent = undefined;
    await weechat.showChannel(room);
    const before = carol.seen().length;
    const secret = `while the agent is down ${token()}`;
    await weechat.send(secret);
    await weechat.waitForText(/NOT SENT to #sc-[a-z2-7]{10}: the sealchat agent at .* is not reachable/);
    await new Promise((r) => setTimeout(r, 300));
    expect(carol.seen().slice(before).map((l) => l.text).join('\n')).not.to.include(secret);
    expect(bobGot.map((m) => m.text)).not.to.include(secret);
  });

  it('/whois shows bob online, then offline once he quits', async () => {
    await weechat.showServer();
    await weechat.send('/whois bob');
    const online = await weechat.waitForText(/\[bob\] End of \/WHOIS list/);
    expect(online).to.match(/\[bob\] \(bob@127\.0\.0\.1\): bob/);
    await bob.quit();
    await weechat.showChannel(room);
    await weechat.waitForText(/bob \(bob@127\.0\.0\.1\) has quit/);
    await weechat.showServer();
    await weechat.send('/whois bob');
    await weechat.waitForText(/bob: bob is offline[^\n]*\n[^\n]*\[bob\] End of \/WHOIS list/);
  });
});
