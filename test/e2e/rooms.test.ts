/**
 * The whole flow: the real daemon, the real keybot, SealClient companions on port 0, and one
 * plain irc-framework member (eve) whose view is what any IRC client without a companion, or
 * anyone reading the daemon's traffic, gets to see.
 */
import { expect } from 'chai';
import type { Client as IrcClient } from 'irc-framework';
import { startKeybot, type Keybot, type KeybotOptions } from '../../src/bot/main.js';
import { SealClient } from '../../src/client/client.js';
import {
  EnvelopeStatus,
  PartStatus,
  PartsReassembler,
  classifyLine,
  encryptRoomMessage,
  advanceRoster,
  isEpochNotice,
  openEnvelope,
  openJoinEnvelope,
  peekKeyLine,
  unwrapEpochKey,
  verifyEpochNotice,
  readPublicKey,
  type EnvelopePayload,
} from '../../src/crypto/index.js';
import { connectClient, startTestDaemon, type TestDaemon, type TestUser } from '../helpers/daemon.js';
import { loginAs, testKeybotOptions } from '../helpers/keybot.js';
import { ROOM_RE, until } from '../helpers/poll.js';
import { envelopeLines, fromArmored, memberOf, party, type Party } from '../client/fixtures.js';
import { next, record } from '../client/helpers.js';


/** A line a plain client saw: who sent what to whom. */
interface Seen {
  command: 'PRIVMSG' | 'NOTICE';
  from: string;
  target: string;
  text: string;
}

describe('e2e: rooms with the real keybot and SealClient companions', function () {
  this.timeout(60_000);
  let t: TestDaemon;
  let bot: Keybot;
  let users: Record<string, TestUser & { party: Party }>;
  let keybotArmored: string;
  let keybotFingerprint: string;
  const sessions: SealClient[] = [];
  let eve: IrcClient;
  const eveSaw: Seen[] = [];
  const eveKeys: EnvelopePayload[] = [];

  let alice: SealClient, bob: SealClient, dave: SealClient;
  let room: string;

  const botOptions = (): KeybotOptions => testKeybotOptions(t);

  async function companion(name: string): Promise<SealClient> {
    const c = new SealClient();
    c.on('error', (err) => {
      throw err;
    });
    sessions.push(c);
    const r = await c.connect({
      ...loginAs(t, users[name]!),
      // The key is handed over directly here (as from a published file); the test below has the
      // client fetch it from keybot with `pubkey` and pin it by the published fingerprint.
      keybotPublicKey: keybotArmored,
      keybotFingerprint,
      knownKeybotsFile: false,
    });
    expect(r.keybot).to.deep.equal({ status: 'pinned', fingerprint: keybotFingerprint, source: 'configured' });
    return c;
  }

  /** Wait until every client holds the same current epoch for the room, with exactly `members`. */
  async function sameKey(clients: SealClient[], members: string[], after = 0): Promise<number> {
    return until(() => {
      const infos = clients.map((c) => c.crypto!.roomInfo(room));
      const e = infos[0]?.epoch;
      if (e === undefined || e <= after) return undefined;
      const ok = infos.every((i) => i?.epoch === e && [...i.members].sort().join() === [...members].sort().join());
      return ok ? e : undefined;
    }, `${clients.map((c) => c.nick).join(', ')} on one epoch of ${room} for ${members.join(', ')}`);
  }

  before(async function () {
    t = await startTestDaemon();
    users = {};
    for (const name of ['alice', 'bob', 'carol', 'dave', 'eve']) {
      const u = await t.addUser(name);
      users[name] = { ...u, party: await fromArmored(name, u.publicKey, u.privateKey) };
    }
    bot = await startKeybot(botOptions());
    const rec = await t.daemon.accounts.get('keybot');
    keybotArmored = rec!.publicKey!;
    keybotFingerprint = rec!.fingerprint!;
    expect(keybotFingerprint).to.equal(bot.fingerprint);

    // eve: a member without a companion. She records every line, and (as a member with a key
    // of her own) can open the envelopes keybot sends her: the insider of the forgery test.
    eve = await connectClient(t.port, { nick: 'eve', password: users.eve!.password });
    const eveBot = (await readPublicKey({ armored: keybotArmored })).key!;
    const parts = new PartsReassembler();
    const roomParts = new PartsReassembler();
    // Envelope version 3: her join envelopes, the epoch notices to the room, her key lines, in order.
    let opening: Promise<unknown> = Promise.resolve();
    const memberKeys = new Map<string, Uint8Array>();
    const notices = new Map<string, { epoch: number; digest: Uint8Array; roster: EnvelopePayload['members']; issuedAt: number }>();
    const latest = (room: string): EnvelopePayload | undefined => eveKeys.filter((k) => k.room.toLowerCase() === room.toLowerCase()).at(-1);
    const seen = (command: Seen['command']) => (e: { nick?: string; target: string; message: string }) => {
      eveSaw.push({ command, from: e.nick ?? '', target: e.target, text: e.message });
      if (command !== 'NOTICE' || e.nick !== 'keybot') return;
      const text = e.message;
      if (text.startsWith('SC1K ')) {
        opening = opening.then(() => {
          const peek = peekKeyLine(text);
          const n = peek && notices.get(peek.room.toLowerCase());
          const mk = peek && memberKeys.get(peek.room.toLowerCase());
          const k = n && mk && n.epoch === peek.epoch ? unwrapEpochKey({ line: text, memberKey: mk, account: 'eve', digest: n.digest }) : undefined;
          if (k && n) eveKeys.push({ room: k.room, epoch: k.epoch, key: k.key, members: n.roster, issuedAt: n.issuedAt });
        });
        return;
      }
      if (classifyLine(text) !== 'envelope-part') return;
      if (e.target.startsWith('#')) {
        const r = roomParts.accept({ sender: e.target, line: text, now: Date.now() });
        if (r.status !== PartStatus.COMPLETE || !isEpochNotice(r.data!)) return;
        const data = r.data!;
        opening = opening.then(() => {
          const v = verifyEpochNotice({ data, keybotKey: eveBot, now: Date.now() });
          const held = v.notice && latest(v.notice.room);
          if (!v.notice || !held || held.epoch !== v.notice.prev) return;
          const adv = advanceRoster({ roster: held.members, notice: v.notice });
          if (adv.roster) notices.set(v.notice.room.toLowerCase(), { epoch: v.notice.epoch, digest: v.digest!, roster: adv.roster, issuedAt: v.notice.issuedAt });
        });
        return;
      }
      const r = parts.accept({ sender: 'keybot', line: text, now: Date.now() });
      if (r.status !== PartStatus.COMPLETE) return;
      const data = r.data!;
      opening = opening.then(async () => {
        const j = await openJoinEnvelope({ data, decryptionKey: users.eve!.party.priv, keybotKey: eveBot, expectedAccount: 'eve', now: Date.now() });
        if (j.payload) {
          memberKeys.set(j.payload.room.toLowerCase(), j.payload.memberKey);
          eveKeys.push({ room: j.payload.room, epoch: j.payload.epoch, key: j.payload.key, members: j.payload.roster, issuedAt: j.payload.issuedAt });
          return;
        }
        const o = await openEnvelope({ data, decryptionKey: users.eve!.party.priv, signerKey: eveBot, expectedAccount: 'eve', now: Date.now() });
        if (o.status === EnvelopeStatus.OK) eveKeys.push(o.payload!);
      });
    };
    eve.on('privmsg', seen('PRIVMSG'));
    eve.on('notice', seen('NOTICE'));

    [alice, bob, dave] = await Promise.all([companion('alice'), companion('bob'), companion('dave')]);
  });

  after(async function () {
    await Promise.all(sessions.map((c) => c.quit()));
    eve?.quit();
    await bot?.close();
    await t?.stop();
  });

  it('a companion that knows only keybot\'s fingerprint fetches its key with pubkey and pins it', async function () {
    const c = new SealClient();
    sessions.push(c);
    const r = await c.connect({
      ...loginAs(t, users.carol!),
      keybotFingerprint,
      knownKeybotsFile: false,
    });
    expect(r.keybot).to.deep.equal({ status: 'pinned', fingerprint: keybotFingerprint, source: 'configured' });
    c.quit();
    await until(() => !t.daemon.server.isOnline('carol') || undefined, 'carol offline again');
  });

  it('alice invites bob, eve and the offline carol: carol is told to join at her login, the room opens for the others', async function () {
    const keyA = next(alice, 'key');
    const keyB = next(bob, 'key');
    const reply = await alice.invite(['bob', 'carol', 'eve']);
    const opened = reply.find((l) => l.startsWith('opened '));
    expect(opened).to.match(/^opened #sc-[a-z2-7]{10} with bob, eve; keys follow$/);
    room = ROOM_RE.exec(opened!)![0];
    expect(reply).to.include(`carol is offline: they join ${room} when they next log in`);
    await Promise.all([keyA, keyB]);
    await sameKey([alice, bob], ['alice', 'bob', 'eve']);
    expect(alice.joinedRooms()).to.deep.equal([room]);
    expect(bob.joinedRooms()).to.deep.equal([room]);
  });

  it('bob and alice exchange messages and both read them; the plain member sees only ciphertext', async function () {
    const epoch = await sameKey([alice, bob], ['alice', 'bob', 'eve']);
    // Live arrays (record pushes into the array it returns).
    const aliceWarned = record(alice, 'plaintext-warning');
    const bobWarned = record(bob, 'plaintext-warning');
    const toBob = next(bob, 'message');
    await alice.send(room, 'bob, the vault code is 4711');
    const got = await toBob;
    // Live, not history; the daemon's msgid comes along (the catch-up dedupes by it).
    expect(got.msgid).to.be.a('string');
    expect(got).to.deep.equal({ room, from: 'alice', text: 'bob, the vault code is 4711', epoch, command: 'PRIVMSG', action: false, msgid: got.msgid });
    const toAlice = next(alice, 'message');
    await bob.send(room, 'got it, alice ✓');
    expect(await toAlice).to.include({ from: 'bob', text: 'got it, alice ✓', epoch });

    const inRoom = await until(() => {
      const lines = eveSaw.filter((s) => s.target === room && s.command === 'PRIVMSG');
      return lines.length >= 2 ? lines : undefined;
    }, 'eve to see both lines');
    expect(inRoom.map((s) => s.from)).to.deep.equal(['alice', 'bob']);
    for (const s of inRoom) {
      expect(s.text).to.match(/^SC1M [A-Za-z0-9+/=]+$/);
      expect(s.text).to.not.match(/vault|4711|got it/);
    }
    // Nothing anyone sent in the room was readable to eve, and no companion ever saw plaintext there.
    expect(eveSaw.filter((s) => s.target === room && s.from !== 'keybot').every((s) => classifyLine(s.text) === 'message')).to.equal(true);
    // The marker: eve, who has no companion, says a plain line after both. The daemon relays the
    // room's lines in order, so once both companions warn about hers, they have handled every line
    // before it: the only warning each may hold is eve's.
    eve.say(room, 'plain marker from eve');
    await until(() => (aliceWarned.length > 0 && bobWarned.length > 0) || undefined, "both companions to warn about eve's plain line");
    for (const warned of [aliceWarned, bobWarned]) {
      expect(warned.map((w) => [w.from, w.text])).to.deep.equal([['eve', 'plain marker from eve']]);
    }
  });

  it('dave, invited into the ongoing room, reads what is said now but not what was said before', async function () {
    const before = eveSaw.filter((s) => s.target === room && s.command === 'PRIVMSG');
    expect(before.length).to.be.greaterThan(0);
    const old = await sameKey([alice, bob], ['alice', 'bob', 'eve']);
    const daveKey = next(dave, 'key');
    const reply = await alice.inviteTo(room, ['dave']);
    expect(reply).to.include(`added dave to ${room}`);
    await daveKey;
    const epoch = await sameKey([alice, bob, dave], ['alice', 'bob', 'dave', 'eve'], old);

    const results = [];
    for (const s of before) results.push(await dave.crypto!.handleIncoming({ from: s.from, target: s.target, command: s.command, text: s.text }));
    for (const r of results) expect(r).to.include({ kind: 'undecryptable', code: 'unknown-epoch' });

    const got = next(dave, 'message');
    await alice.send(room, 'welcome, dave');
    expect(await got).to.include({ from: 'alice', text: 'welcome, dave', epoch });
  });

  it('an envelope from any nick but keybot, or signed by another key, is rejected', async function () {
    const epoch = bob.crypto!.roomInfo(room)!.epoch!;
    // eve sends bob an envelope that even carries keybot's real signature: wrong nick, refused.
    const rejected = next(bob, 'envelope-rejected');
    for (const line of await envelopeLines({ to: users.bob!.party, signer: { priv: bot.identity.key }, room, epoch: epoch + 100, members: [memberOf(users.bob!.party)] })) {
      eve.notice('bob', line);
    }
    expect(await rejected).to.include({ from: 'eve', code: 'not-keybot' });
    // Under keybot's nick (as a compromised server could deliver it) but signed by mallory: refused.
    const mallory = await party('mallory');
    const forged = await envelopeLines({ to: users.bob!.party, signer: mallory, room, epoch: epoch + 200, members: [memberOf(users.bob!.party)] });
    let last;
    for (const text of forged) last = await bob.crypto!.handleIncoming({ from: 'keybot', target: 'bob', command: 'NOTICE', text });
    expect(last).to.include({ kind: 'envelope-rejected', code: 'bad-signature' });
    expect(bob.crypto!.roomInfo(room)!.epoch).to.equal(epoch);
  });

  it('a message forged in bob\'s name fails verification', async function () {
    const epoch = await sameKey([alice, bob, dave], ['alice', 'bob', 'dave', 'eve']);
    // eve is a member: she holds the room key, and signs a message claiming to be bob.
    const payload = await until(() => eveKeys.find((k) => k.room === room && k.epoch === epoch), 'eve\'s key of the current epoch');
    const forged = encryptRoomMessage({ roomKey: payload.key, room, epoch, sender: 'bob', seq: 1000, plaintext: 'I, bob, resign', signer: users.eve!.party.priv });
    const bad = next(alice, 'undecryptable');
    const shown = record(alice, 'message');
    eve.say(room, forged.payload);
    expect(await bad).to.include({ from: 'eve', code: 'decrypt-failed' });
    // The same bytes delivered under bob's nick: bob's registered key does not verify them.
    expect(await alice.crypto!.handleIncoming({ from: 'bob', target: room, command: 'PRIVMSG', text: forged.payload })).to.include({
      kind: 'undecryptable',
      code: 'bad-signature',
    });
    // And alice's own genuine line relabelled as bob's: bound to alice, refused.
    const seenBefore = eveSaw.length;
    await alice.send(room, 'only alice says this');
    const line = await until(() => eveSaw.slice(seenBefore).find((s) => s.from === 'alice' && s.target === room), 'alice\'s line');
    expect(await dave.crypto!.handleIncoming({ from: 'bob', target: room, command: 'PRIVMSG', text: line.text })).to.include({
      kind: 'undecryptable',
      code: 'decrypt-failed',
    });
    // Nothing forged was shown: the marker is a genuine line of dave's, which alice receives after
    // everything above (a companion does not show its own lines, so alice's cannot be the marker).
    const marker = next(alice, 'message', (m) => m.from === 'dave' && m.text === 'marker after the forgery');
    await dave.send(room, 'marker after the forgery');
    await marker;
    expect(shown.map((m) => [m.from, m.text])).to.deep.equal([['dave', 'marker after the forgery']]);
  });

  it('bob leaves and cannot decrypt what is said after', async function () {
    const old = await sameKey([alice, bob, dave], ['alice', 'bob', 'dave', 'eve']);
    const bobKeys = record(bob, 'key');
    const gone = next(bob, 'part', (e) => e.self);
    const reply = await bob.leave(room);
    expect(reply).to.include(`you left ${room}`);
    expect(await gone).to.include({ room, self: true });
    expect(bob.crypto!.roomInfo(room)).to.include({ hasKey: false });
    const epoch = await sameKey([alice, dave], ['alice', 'dave', 'eve'], old);

    const seenBefore = eveSaw.length;
    const got = next(dave, 'message');
    await alice.send(room, 'now that bob is gone');
    expect(await got).to.include({ text: 'now that bob is gone', epoch });
    const line = await until(() => eveSaw.slice(seenBefore).find((s) => s.from === 'alice' && s.target === room), 'the line');
    const r = await bob.crypto!.handleIncoming({ from: 'alice', target: room, command: 'PRIVMSG', text: line.text });
    expect(r.kind).to.equal('undecryptable');
    expect(bobKeys).to.deep.equal([]);
    const err = await bob.send(room, 'can I still talk?').catch((e: Error) => e);
    expect((err as { code?: string }).code).to.equal('no-key');
  });

  it('after keybot restarts, the room is rekeyed and the talk goes on', async function () {
    const old = await sameKey([alice, dave], ['alice', 'dave', 'eve']);
    const keys = Promise.all([next(alice, 'key', (k) => k.room === room, 15_000), next(dave, 'key', (k) => k.room === room, 15_000)]);
    await bot.close();
    bot = await startKeybot(botOptions());
    expect(bot.fingerprint).to.equal(keybotFingerprint);
    await keys;
    const epoch = await sameKey([alice, dave], ['alice', 'dave', 'eve'], old);
    expect(epoch).to.be.greaterThan(old);
    const got = next(dave, 'message');
    await alice.send(room, 'still here after the restart');
    expect(await got).to.include({ from: 'alice', text: 'still here after the restart', epoch });
    const back = next(alice, 'message');
    await dave.send(room, 'me too');
    expect(await back).to.include({ from: 'dave', text: 'me too', epoch });
  });
});
