/**
 * The agent's `membership` request (protocol 2) against the real daemon and the real keybot: a
 * plugin double (test/helpers/agent.ts) hands the agent what alice's IRC connection receives, one
 * line at a time, so the test decides exactly what the agent has seen when alice "types". bob
 * leaves, erin quits (offline is not leaving), carol leaves; carol (SealClient) reads the room and
 * dave (a raw socket) records the wire.
 */
import { expect } from 'chai';
import path from 'node:path';
import type { Agent } from '../../src/client/agent/server.js';
import { startAgent } from '../../src/client/agent/server.js';
import type { RoomMessageEvent, SealClient } from '../../src/client/client.js';
import { peekRoomMessage, unlockPrivateKey } from '../../src/crypto/index.js';
import { PluginDouble, tempDir } from '../helpers/agent.js';
import type { RawClient } from '../helpers/daemon.js';
import { recorder, sealClient, startPluginWorld, until, type PluginWorld, type Recorded } from '../helpers/plugins.js';

const token = (): string => Math.random().toString(36).slice(2, 8);
const epochOfKey = (e: Record<string, any>): number => Number(/\(epoch (\d+)\)/.exec(e.text as string)![1]);
const epochOfLine = (text: string): number | undefined => peekRoomMessage({ payload: text }).epoch;

describe('src/client/agent: membership (real daemon, keybot, agent socket)', function () {
  this.timeout(60_000);
  let w: PluginWorld;
  let agent: Agent;
  let alice: PluginDouble;
  let bob: SealClient;
  let carol: SealClient;
  let erin: SealClient;
  let dave: { raw: RawClient; seen: () => Recorded[] };
  let remove: () => Promise<void>;
  let room: string;
  let epoch: number;
  const carolGot: RoomMessageEvent[] = [];

  /** What alice's connection put on the wire into the room after dave's line `from`. */
  const aliceOnWire = (from: number): Recorded[] =>
    dave.seen().slice(from).filter((l) => l.from === 'alice' && l.command === 'PRIVMSG' && l.target.toLowerCase() === room.toLowerCase());

  before(async function () {
    w = await startPluginWorld(['alice', 'bob', 'carol', 'dave', 'erin']);
    const tmp = await tempDir('sc-agent-m-');
    remove = tmp.remove;
    const key = await unlockPrivateKey({ armored: w.users.alice!.privateKey });
    agent = await startAgent({
      account: 'alice',
      privateKey: key.key!,
      socketPath: path.join(tmp.dir, 'alice.sock'),
      knownKeybotsFile: false,
      keybotFingerprint: w.bot.fingerprint,
    });
    alice = await PluginDouble.connect({ port: w.t.port, name: 'alice', password: w.users.alice!.password, socketPath: agent.socketPath });
    // The agent asked keybot for its key through the plugin (`send`); its answer pins it.
    await alice.pumpUntil(() => alice.eventsOf('notice').some((e) => /keybot's key \S+ is pinned/.test(e.text)), "keybot's key pinned");
    [bob, carol, erin] = await Promise.all(['bob', 'carol', 'erin'].map((n) => sealClient(w, n)));
    carol.on('message', (m) => carolGot.push(m));
    dave = await recorder(w, 'dave');

    // Typed the usual way: the line goes through the agent, which signs keybot's proposal for it.
    expect((await alice.say('keybot', 'invite bob carol dave erin')).action).to.equal('pass');
    await alice.pumpUntil(() => alice.eventsOf('key').length > 0, 'the first room key');
    const k = alice.eventsOf('key')[0]!;
    room = k.room as string;
    // The agent signed the invite alice typed; its key event says who opened the room, verified.
    expect(k.text).to.match(/; room opened by alice with bob, carol, dave, erin, verified$/);
    epoch = epochOfKey(k);
    await until(() => [bob, carol, erin].every((c) => c.localRooms().some((r) => r.room === room && r.epoch === epoch)), 'everyone to hold the key');
    const hello = `hello ${token()}`;
    expect((await alice.say(room, hello)).action).to.equal('send');
    await until(() => carolGot.find((m) => m.text === hello), 'carol to read alice');
  });

  after(async () => {
    alice?.close();
    await Promise.all([bob, carol, erin].map((c) => c?.quit()));
    dave?.raw.close();
    await agent?.close();
    await w?.stop();
    await remove?.();
  });

  it('bob leaves (KICK): text typed before the new key is held, not sent; it goes out under the new epoch with a notice', async () => {
    const daveFrom = dave.seen().length;
    void bob.leave(room);
    // keybot removes bob (KICK) and sends the new key right after: the plugin hands the agent the KICK first.
    const kick = await alice.pumpUntil((p) => p.parsed.command === 'KICK' && p.parsed.params[1] === 'bob', 'the KICK of bob');
    expect(kick.reply).to.include({ ok: true });
    expect(kick.reply!.suspended).to.deep.equal([{ room, reason: `the key of ${room} is being replaced (bob left); text for it waits for the new key` }]);

    // Before the echo: the plugin learns the text would be held, so the client may show it.
    const check = await alice.call({ op: 'check', server: alice.label, target: room });
    expect(check).to.include({ ok: true, encrypted: true, canSend: true, held: true });

    const secret = `after bob left ${token()}`;
    const wrote = alice.wrote.length;
    const held = await alice.say(room, secret);
    expect(held).to.include({ ok: true, action: 'hold' });
    expect(held.reason).to.equal(`the key of ${room} is being replaced (bob left): held until the new key arrives (at most 30 s)`);
    expect(alice.wrote.length, 'nothing was written to the server').to.equal(wrote);

    // A plugin that does not speak protocol 2 would send what it does not understand: it is refused instead.
    const v1 = await alice.call({ op: 'connected', server: alice.label, nick: 'alice', fresh: false });
    expect(v1).to.include({ ok: true, attached: true });
    const refused = await alice.say(room, `v1 ${secret}`);
    expect(refused).to.include({ action: 'refuse' });
    expect(refused.reason).to.match(/being replaced \(bob left\); nothing was sent$/);
    await alice.call({ op: 'connected', server: alice.label, nick: 'alice', fresh: false, protocol: 2 });

    // The new key (without bob): the reply that carried it also carries the held text's ciphertext.
    await alice.pumpUntil(() => alice.eventsOf('key').some((k) => k.room === room && epochOfKey(k) > epoch), 'the new key');
    const next = epochOfKey(alice.eventsOf('key').find((k) => k.room === room && epochOfKey(k) > epoch)!);
    // bob's leave was signed by his companion: the key line says so, verified.
    expect(alice.eventsOf('key').at(-1)!.text).to.match(/members: alice, carol, dave, erin; bob left, verified$/);
    expect(alice.eventsOf('notice').some((n) => n.target === room && new RegExp(`^sent: a held message went out under epoch ${next} \\(held \\d+\\.\\d s\\)$`).test(n.text))).to.equal(true);

    const got = await until(() => carolGot.find((m) => m.text === secret), 'carol to read the held text');
    expect(got).to.include({ from: 'alice', epoch: next });
    // On the wire (dave records the room): alice sent nothing under the old epoch after the KICK.
    const lines = aliceOnWire(daveFrom);
    expect(lines.length).to.be.greaterThan(0);
    for (const l of lines) expect(epochOfLine(l.text), l.text).to.equal(next);
    expect(carolGot.map((m) => m.text)).not.to.include(`v1 ${secret}`);
    epoch = next;
  });

  it("erin quits while keybot is away: offline is not leaving, so alice's text goes out at once under the same epoch", async () => {
    await w.stopKeybot();
    // keybot's own QUIT does not end the epoch: the key is still good to send under.
    const kq = await alice.pumpUntil((p) => p.parsed.command === 'QUIT' && p.parsed.nick === 'keybot', "keybot's QUIT");
    expect(kq.reply!.suspended).to.deep.equal([]);
    const daveFrom = dave.seen().length;
    await erin.quit('gone');
    // Nor does a member's: erin stays a member, listed in the epoch, and keeps the key either way.
    const q = await alice.pumpUntil((p) => p.parsed.command === 'QUIT' && p.parsed.nick === 'erin', "erin's QUIT");
    expect(q.reply!.suspended).to.deep.equal([]);
    const text = `after erin went offline ${token()}`;
    expect((await alice.say(room, text)).action).to.equal('send');
    await until(() => carolGot.find((m) => m.text === text && m.epoch === epoch), 'carol to read it under the same epoch');
    const lines = aliceOnWire(daveFrom);
    expect(lines.length).to.equal(1);
    expect(epochOfLine(lines[0]!.text)).to.equal(epoch);
    await w.startKeybotAgain();
    await alice.pumpUntil(() => alice.eventsOf('key').some((k) => k.room === room && epochOfKey(k) > epoch), 'the key keybot brings back');
    epoch = epochOfKey(alice.eventsOf('key').filter((k) => k.room === room).at(-1)!);
  });

  it('alice leaves with text still held: it is reported NOT SENT, with the text, and never sent', async () => {
    // keybot away again, carol leaves (PART), alice types (held), then leaves the room herself.
    await w.stopKeybot();
    await alice.pumpUntil((p) => p.parsed.command === 'QUIT' && p.parsed.nick === 'keybot', "keybot's QUIT");
    carol['irc']!.part(room, 'gone');
    await alice.pumpUntil((p) => p.parsed.command === 'PART' && p.parsed.nick === 'carol', "carol's PART");
    const wrote = alice.wrote.length;
    const text = `never sent ${token()}`;
    expect(await alice.say(room, text)).to.include({ action: 'hold' });
    alice.write(`PART ${room} :bye`);
    const part = await alice.pumpUntil((p) => p.parsed.command === 'PART' && p.parsed.nick === 'alice', 'our own PART');
    expect(part.reply!.suspended).to.deep.equal([]);
    const notice = alice.eventsOf('notice').find((n) => n.target === room && n.text.startsWith('NOT SENT'));
    expect(notice).to.include({ level: 'error', text: `NOT SENT: you left ${room}; nothing was sent: ${JSON.stringify(text)}` });
    // Our keys went with the room: sending there is refused from now on.
    expect(await alice.say(room, 'after leaving')).to.include({ action: 'refuse' });
    // The marker: a PING round trip, every line before its PONG handed to the agent. What alice's
    // connection wrote since the text was typed is her PART and the PING, nothing for the room.
    const marker = `after-part-${token()}`;
    alice.write(`PING :${marker}`);
    await alice.pumpUntil((p) => p.parsed.command === 'PONG' && p.parsed.params.at(-1) === marker, 'the PONG');
    expect(alice.wrote.slice(wrote)).to.deep.equal([`PART ${room} :bye`, `PING :${marker}`]);
  });
});
