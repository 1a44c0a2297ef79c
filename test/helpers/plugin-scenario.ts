/**
 * The plugin journey shared by the real clients (irssi, WeeChat): the world (real daemon, real
 * keybot, a sealchat agent for alice), alice in the real client with the plugin loaded, bob a
 * SealClient, carol a raw socket recording what the server relays, and the steps that read the
 * same for every client. What differs per client (how it loads the plugin, how it shows a line)
 * comes from its driver; the steps that differ stay in the client's own test file.
 */
import { expect } from 'chai';
import type { Agent } from '../../src/client/agent/server.js';
import type { SealClient, RoomMessageEvent } from '../../src/client/client.js';
import type { RawClient } from './daemon.js';
import { agentFor, recorder, sealClient, squash, startPluginWorld, type PluginWorld, type Recorded } from './plugins.js';
import { ROOM_RE, until } from './poll.js';
import { escapeRe, type RealClient, type StartOptions } from './realclients.js';
import { sendMarker, startWireTap, type WireTap } from './wiretap.js';

export const token = (): string => Math.random().toString(36).slice(2, 8);

/** What the journey needs to know about one real client. */
export interface PluginClientDriver {
  /** The client's name as the messages in the journey spell it ("irssi", "WeeChat"). */
  name: string;
  start(opts: StartOptions): Promise<RealClient>;
  /** Load the sealchat plugin and wait until the client says it is loaded. */
  loadPlugin(client: RealClient): Promise<void>;
  /** How the client shows `nick`'s verified (✓) room message `text`. */
  verifiedLine(nick: string, text: string): RegExp;
}

/** The journey's state, filled in by its before hook. */
export interface PluginScenario {
  w: PluginWorld;
  /** alice, in the real client with the plugin loaded. */
  client: RealClient;
  /** Between alice's client and the daemon: every line her client sent. */
  tap: WireTap;
  agent: Agent | undefined;
  bob: SealClient;
  carol: { raw: RawClient; seen: () => Recorded[] };
  /** The room alice opened (set by {@link inviteAndChat}). */
  room: string;
  /** Every room message bob's SealClient delivered. */
  bobGot: RoomMessageEvent[];
}

/** Registers the journey's before/after hooks in the current describe; returns its state. */
export function pluginScenario(driver: PluginClientDriver): PluginScenario {
  const s = { bobGot: [] as RoomMessageEvent[] } as unknown as PluginScenario;
  before(async function () {
    this.timeout(60_000);
    s.w = await startPluginWorld(['alice', 'bob', 'carol']);
    s.tap = await startWireTap(s.w.t.port);
    s.client = await driver.start({ port: s.tap.port, nick: 'alice' });
    s.agent = await agentFor(s.w, s.client);
    await driver.loadPlugin(s.client);
    await s.client.connect(s.w.users.alice!.password);
    await s.client.waitForText(/Welcome to the sealchat IRC network, alice/);
    // The plugin asked keybot for its key through the client; the agent pinned it by fingerprint.
    await s.client.waitForText(new RegExp(`sealchat: keybot's key ${s.w.bot.fingerprint} is pinned`));
    s.bob = await sealClient(s.w, 'bob');
    s.bob.on('message', (m) => s.bobGot.push(m));
    s.carol = await recorder(s.w, 'carol');
  });

  after(async () => {
    await s.client?.stop();
    await s.bob?.quit();
    s.carol?.raw.close();
    await s.agent?.close();
    await s.tap?.close();
    await s.w?.stop();
  });
  return s;
}

/**
 * /msg keybot invite: alice and bob get the room without /join, and read each other in plain text
 * (non-ASCII, longer than one line); the wire carries only ciphertext.
 */
export async function inviteAndChat(s: PluginScenario, driver: PluginClientDriver): Promise<void> {
  const { client, bob, bobGot, carol } = s;
  const bobJoined = new Promise<string>((resolve) => bob.on('join', (e) => e.self && ROOM_RE.test(e.room) && resolve(e.room)));
  const bobKey = new Promise<number>((resolve) => bob.on('key', (k) => resolve(k.epoch)));
  await client.send('/msg keybot invite bob carol');
  const room = (s.room = await bobJoined);
  await bobKey;
  // The client opened the room's window/buffer on the server-side JOIN; the plugin shows the key arriving.
  await client.showChannel(room);
  await client.waitForText(new RegExp(`sealchat: key for ${escapeRe(room)} \\(epoch \\d+\\) from keybot, verified; members: .*alice`));

  const hello = `grüße aus ${driver.name} ✓ ${token()}`;
  await client.send(hello);
  const got = await until(() => bobGot.find((m) => m.text === hello), 'bob to read alice');
  expect(got).to.include({ room, from: 'alice' });

  const reply = `bonjour à toi, ça va? ${token()}`;
  await bob.send(room, reply);
  await client.waitForText(driver.verifiedLine('bob', reply));

  // Longer than one IRC line: the client splits it, the plugin encrypts each piece (several SC1M lines).
  const words = Array.from({ length: 90 }, (_, i) => `wört${i}`).join(' ');
  const long = `${token()} ${words} ende`;
  await client.send(long);
  await until(() => squash(bobGot.map((m) => m.text).join(' ')).includes(squash(long)), 'bob to read the long message', 15_000);

  // And a long one from bob: several sealed messages, shown in order.
  const bobLong = `${token()} ${Array.from({ length: 60 }, (_, i) => `mot${i}é`).join(' ')} fin`;
  await bob.send(room, bobLong);
  const screen = await client.tmux.waitUntil((x) => x.includes('mot59é fin'), 'the end of bob\'s long message', 15_000);
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
}

/** Refuses plaintext into a room without a key, visibly, and sends nothing. */
export async function refusesWithoutKey(s: PluginScenario): Promise<void> {
  const { client, bobGot, tap, room } = s;
  const before = tap.sent.length;
  await client.showServer();
  const secret = `secret ${token()}`;
  await client.send(`/msg #sc-nokeyroom ${secret}`);
  const refusal = await client.waitForText(/NOT SENT: no key for #sc-nokeyroom/);
  // Refused before the client echoed it: the text does not appear as if it had been sent.
  expect(refusal).not.to.include(secret);
  // A topic would be plaintext to the server: refused in the encrypted room.
  await client.showChannel(room);
  const topic = `topic ${token()}`;
  await client.send(`/topic ${topic}`);
  await client.waitForText(new RegExp(`NOT SENT: the topic of ${escapeRe(room)} would not be encrypted`));
  // Nothing reached the server: everything alice's client sent up to the marker, which it sent after.
  const marker = await sendMarker(tap, client, before);
  const sent = tap.sent.slice(before, marker);
  expect(sent.filter((l) => /^(PRIVMSG|NOTICE|TOPIC) /i.test(l)), 'lines to the server').to.deep.equal([]);
  expect(sent.join('\n')).not.to.include(secret).and.not.to.include(topic);
  // And the room still works.
  const ping = `after refusal ${token()}`;
  await client.send(ping);
  await until(() => bobGot.find((m) => m.text === ping), 'the next message');
}

/** Fails closed when the agent is gone: nothing is sent to the room, and it says why. */
export async function failsClosedWithoutAgent(s: PluginScenario): Promise<void> {
  await s.agent!.close();
  s.agent = undefined;
  const { client, bobGot, tap, room } = s;
  await client.showChannel(room);
  const before = tap.sent.length;
  const secret = `while the agent is down ${token()}`;
  await client.send(secret);
  await client.waitForText(/NOT SENT to #sc-[a-z2-7]{10}: the sealchat agent at .* is not reachable/);
  const marker = await sendMarker(tap, client, before);
  expect(tap.sent.slice(before, marker).filter((l) => /^(PRIVMSG|NOTICE) /i.test(l)), 'lines to the server').to.deep.equal([]);
  expect(bobGot.map((m) => m.text)).not.to.include(secret);
}
