/**
 * The irssi plugin (plugins/irssi/sealchat.pl) in a real irssi, driven in a private tmux server,
 * with the real daemon, the real keybot and a sealchat agent: alice uses irssi, bob a SealClient,
 * carol is a raw socket in the room recording what the server relays.
 */
import { expect } from 'chai';
import type { Agent } from '../../src/client/agent/server.js';
import type { SealClient, RoomMessageEvent } from '../../src/client/client.js';
import { peekRoomMessage } from '../../src/crypto/index.js';
import { escapeRe, haveIrssi, startIrssi, type RealClient } from '../helpers/realclients.js';
import { haveCommand } from '../helpers/tmux.js';
import {
  ROOM_RE,
  IRSSI_PLUGIN,
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

const available = (await haveIrssi()) && (await haveCommand('tmux'));
const describeIf = available ? describe : describe.skip;
const token = (): string => Math.random().toString(36).slice(2, 8);

describeIf(`plugin: irssi${available ? '' : ' (SKIPPED: irssi or tmux is missing)'}`, function () {
  this.timeout(60_000);
  let w: PluginWorld;
  let irssi: RealClient;
  let agent: Agent | undefined;
  let bob: SealClient;
  let carol: { raw: RawClient; seen: () => Recorded[] };
  let room: string;
  const bobGot: RoomMessageEvent[] = [];

  before(async function () {
    this.timeout(60_000);
    w = await startPluginWorld(['alice', 'bob', 'carol']);
    irssi = await startIrssi({ port: w.t.port, nick: 'alice' });
    agent = await agentFor(w, irssi);
    await irssi.send(`/script load ${IRSSI_PLUGIN}`);
    await irssi.waitForText(/Loaded script sealchat/);
    await irssi.connect(w.users.alice!.password);
    await irssi.waitForText(/Welcome to the sealchat IRC network, alice/);
    // The plugin asked keybot for its key through irssi; the agent pinned it by fingerprint.
    await irssi.waitForText(new RegExp(`sealchat: keybot's key ${w.bot.fingerprint} is pinned`));
    bob = await sealClient(w, 'bob');
    bob.on('message', (m) => bobGot.push(m));
    carol = await recorder(w, 'carol');
  });

  after(async () => {
    await irssi?.stop();
    await bob?.quit();
    carol?.raw.close();
    await agent?.close();
    await w?.stop();
  });

  it('/msg keybot invite: alice and bob get the room without /join, and read each other in plain text (non-ASCII, longer than one line); the wire carries only ciphertext', async () => {
    const bobJoined = new Promise<string>((resolve) => bob.on('join', (e) => e.self && ROOM_RE.test(e.room) && resolve(e.room)));
    const bobKey = new Promise<number>((resolve) => bob.on('key', (k) => resolve(k.epoch)));
    await irssi.send('/msg keybot invite bob carol');
    room = await bobJoined;
    await bobKey;
    // irssi opened a window for the room on the server-side JOIN; the plugin shows the key arriving.
    await irssi.showChannel(room);
    await irssi.waitForText(new RegExp(`sealchat: key for ${escapeRe(room)} \\(epoch \\d+\\) from keybot, verified; members: .*alice`));

    const hello = `grüße aus irssi ✓ ${token()}`;
    await irssi.send(hello);
    const got = await until(() => bobGot.find((m) => m.text === hello), 'bob to read alice');
    expect(got).to.include({ room, from: 'alice' });

    const reply = `bonjour à toi, ça va? ${token()}`;
    await bob.send(room, reply);
    await irssi.waitForText(new RegExp(`<[@+ ]?bob> ✓ ${escapeRe(reply)}`));

    // Longer than one IRC line: irssi splits it, the plugin encrypts each piece (several SC1M lines).
    const words = Array.from({ length: 90 }, (_, i) => `wört${i}`).join(' ');
    const long = `${token()} ${words} ende`;
    await irssi.send(long);
    await until(() => squash(bobGot.map((m) => m.text).join(' ')).includes(squash(long)), 'bob to read the long message', 15_000);

    // And a long one from bob: several sealed messages, shown in order.
    const bobLong = `${token()} ${Array.from({ length: 60 }, (_, i) => `mot${i}é`).join(' ')} fin`;
    await bob.send(room, bobLong);
    const screen = await irssi.tmux.waitUntil((x) => x.includes('mot59é fin'), 'the end of bob\'s long message', 15_000);
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
    await irssi.showServer();
    const secret = `secret ${token()}`;
    await irssi.send(`/msg #sc-nokeyroom ${secret}`);
    const refusal = await irssi.waitForText(/NOT SENT: no key for #sc-nokeyroom/);
    // Refused before the client echoed it: the text does not appear as if it had been sent.
    expect(refusal).not.to.include(secret);
    // A topic would be plaintext to the server: refused in the encrypted room.
    await irssi.showChannel(room);
    const topic = `topic ${token()}`;
    await irssi.send(`/topic ${topic}`);
    await irssi.waitForText(new RegExp(`NOT SENT: the topic of ${escapeRe(room)} would not be encrypted`));
    // Nothing reached the server: the recorder is not in that room, but bob's room stays quiet too.
    const ping = `after refusal ${token()}`;
    await irssi.send(ping);
    await until(() => bobGot.find((m) => m.text === ping), 'the next message');
    expect(carol.seen().slice(before).map((l) => l.text).join('\n')).not.to.include(secret);
    expect(carol.raw.lines.join('\n')).not.to.include(topic);
  });

  it("bob quits while keybot is away: what alice types is held (she is told why), not sent under the old key, and goes out under keybot's next one", async () => {
    const before = bob.localRooms().find((r) => r.room === room)!.epoch!;
    await w.stopKeybot();
    await irssi.showChannel(room);
    const from = carol.seen().length;
    await bob.quit('gone');
    await irssi.waitForText(/bob \[bob@127\.0\.0\.1\] has quit/);
    const secret = `while bob is gone ${token()}`;
    await irssi.send(secret);
    const held = await irssi.waitForText(new RegExp(`sealchat: held: the key of ${escapeRe(room)} is being replaced \\(bob quit\\): held until the new key arrives`));
    expect(held).to.include(secret);
    await w.startKeybotAgain();
    await irssi.waitForText(new RegExp(`sealchat: key for ${escapeRe(room)} \\(epoch \\d+\\) from keybot, verified; members: alice, carol\\b`));
    const sent = await irssi.waitForText(/sealchat: sent: a held message went out under epoch \d+/);
    const epoch = Number(/sent: a held message went out under epoch (\d+)/.exec(sent)![1]);
    expect(epoch).to.be.greaterThan(before);
    // carol records the wire: after bob quit, alice sent one sealed line, under the new epoch only.
    const mine = (): Recorded[] => carol.seen().slice(from).filter((l) => l.from === 'alice' && l.command === 'PRIVMSG' && l.target.toLowerCase() === room.toLowerCase());
    await until(() => mine().length > 0, "alice's held line on the wire");
    expect(mine().map((l) => peekRoomMessage({ payload: l.text }).epoch)).to.deep.equal([epoch]);
    expect(carol.seen().map((l) => l.text).join('\n')).not.to.include(secret);
    // bob back (not in the room any more) for the tests that follow.
    bob = await sealClient(w, 'bob');
  });

  it('fails closed when the agent is gone: nothing is sent to the room, and it says why', async () => {
    await agent!.close();
    agent = undefined;
    await irssi.showChannel(room);
    const before = carol.seen().length;
    const secret = `while the agent is down ${token()}`;
    await irssi.send(secret);
    await irssi.waitForText(/NOT SENT to #sc-[a-z2-7]{10}: the sealchat agent at .* is not reachable/);
    await new Promise((r) => setTimeout(r, 300));
    expect(carol.seen().slice(before).map((l) => l.text).join('\n')).not.to.include(secret);
    expect(bobGot.map((m) => m.text)).not.to.include(secret);
  });

  it('/whois shows bob online, then offline once he quits', async () => {
    await irssi.showServer();
    await irssi.send('/whois bob');
    const online = await irssi.waitForText(/End of WHOIS/);
    expect(online).to.match(/-!- bob \[bob@127\.0\.0\.1\]/);
    await bob.quit();
    await irssi.showChannel(room);
    await irssi.waitForText(/bob \[bob@127\.0\.0\.1\] has quit/);
    await irssi.showServer();
    await irssi.send('/clear');
    await irssi.send('/whois bob');
    await irssi.waitForText(/There is no such nick bob/);
  });
});
