/**
 * What JOIN, PART, KICK and QUIT mean for a room's key (src/client/core/membership.ts, with
 * KeyTrust in outbox.ts), as docs/PROTOCOL.md "Rooms that outlive a connection" has it: offline is
 * not leaving. Real keys and envelopes; what goes out is checked by its epoch on the wire.
 */
import { expect } from 'chai';
import { CompanionSession, type SubmitResult } from '../../../src/client/index.js';
import { encryptRoomMessage, generateRoomKey, peekRoomMessage } from '../../../src/crypto/index.js';
import { envelopeLines, memberOf, party, type Party } from '../fixtures.js';

const ROOM = '#sc-offline';

describe('src/client/core/membership.ts: offline is not leaving', function () {
  this.timeout(30_000);
  let alice: Party, bob: Party, carol: Party, keybot: Party;
  let t0: number;

  before(async () => {
    [alice, bob, carol, keybot] = await Promise.all(['alice', 'bob', 'carol', 'keybot'].map((n) => party(n)));
  });
  beforeEach(() => {
    t0 = Date.now();
  });

  /** alice's session in ROOM, holding epoch 100 (under `key`) for alice, bob and carol. */
  async function aliceInRoom(key = generateRoomKey()): Promise<CompanionSession> {
    const s = new CompanionSession({ account: 'alice', server: 'test:1', privateKey: alice.priv, keybotPublicKey: keybot.publicArmored, knownKeybotsFile: false });
    await s.start(t0);
    s.membership({ kind: 'join', room: ROOM, nick: 'alice' });
    const lines = await envelopeLines({ to: alice, signer: keybot, room: ROOM, epoch: 100, key, members: [alice, bob, carol].map((p) => memberOf(p)), issuedAt: t0 });
    for (const text of lines) await s.received({ from: 'keybot', target: 'alice', command: 'NOTICE', text, now: t0 });
    return s;
  }

  const epochSent = (r: SubmitResult): number | undefined => (r.status === 'send' ? peekRoomMessage({ payload: r.lines[0]! }).epoch : undefined);

  it("a member's QUIT does not suspend the key: text goes out at once under the same epoch", async () => {
    const s = await aliceInRoom();
    s.membership({ kind: 'quit', nick: 'bob' });
    expect(s.suspendedRooms()).to.deep.equal([]);
    const r = s.send({ target: ROOM, text: 'bob is offline, still a member', hold: true, now: t0 + 10 });
    expect(r.status).to.equal('send');
    expect(epochSent(r)).to.equal(100);
  });

  it("a returning member's JOIN at login (listed in the epoch) does not suspend either", async () => {
    const s = await aliceInRoom();
    s.membership({ kind: 'quit', nick: 'bob' });
    s.membership({ kind: 'join', room: ROOM, nick: 'bob' });
    expect(s.send({ target: ROOM, text: 'welcome back', hold: true, now: t0 + 10 }).status).to.equal('send');
  });

  it('our own JOIN at login is an ordinary self-join: the room is ours, text for it waits for its key', async () => {
    const s = await aliceInRoom();
    s.connectionLost(t0 + 5);
    s.reconnected(t0 + 6);
    const { self } = s.membership({ kind: 'join', room: ROOM, nick: 'alice' });
    expect(self).to.equal(true);
    expect(s.inRoom(ROOM)).to.equal(true);
    const r = s.send({ target: ROOM, text: 'back', hold: true, now: t0 + 10 });
    expect(r.status).to.equal('held');
  });

  it('a PART of a member still suspends the key: text is held, nothing is sent under the epoch the leaver holds', async () => {
    const s = await aliceInRoom();
    s.membership({ kind: 'part', room: ROOM, nick: 'bob' });
    expect(s.suspendedRooms()).to.have.length(1);
    const r = s.send({ target: ROOM, text: 'after bob left', hold: true, now: t0 + 10 });
    expect(r).to.include({ status: 'held' });
    expect((r as { reason: string }).reason).to.match(/bob left/);
  });

  it('a KICK of a member still suspends the key, and the leaver race rule still holds for the next epoch', async () => {
    const s = await aliceInRoom();
    s.membership({ kind: 'kick', room: ROOM, nick: 'carol' });
    expect(s.send({ target: ROOM, text: 'after carol was kicked', hold: true, now: t0 + 10 })).to.include({ status: 'held' });
    // keybot sealed 101 before it saw the KICK: it still lists carol, so it is for reading only.
    for (const text of await envelopeLines({ to: alice, signer: keybot, room: ROOM, epoch: 101, members: [alice, bob, carol].map((p) => memberOf(p)), issuedAt: t0 })) {
      await s.received({ from: 'keybot', target: 'alice', command: 'NOTICE', text, now: t0 + 20 });
    }
    expect(s.suspendedRooms()[0]!.reason).to.match(/still lists carol, who left/);
    // 102 without carol: the held text goes out under it.
    let sent: number[] = [];
    for (const text of await envelopeLines({ to: alice, signer: keybot, room: ROOM, epoch: 102, members: [alice, bob].map((p) => memberOf(p)), issuedAt: t0 })) {
      const { actions } = await s.received({ from: 'keybot', target: 'alice', command: 'NOTICE', text, now: t0 + 30 });
      sent = sent.concat(actions.flatMap((a) => (a.type === 'send' && a.target === ROOM ? [peekRoomMessage({ payload: a.text }).epoch!] : [])));
    }
    expect(sent).to.deep.equal([102]);
  });

  it("our own PART or KICK wipes our keys for the room at once and gives up its held text; another member's PART wipes nothing of ours", async () => {
    const key = generateRoomKey();
    let seq = 0;
    const fromCarol = async (s: CompanionSession, text: string) =>
      (await s.received({ from: 'carol', target: ROOM, command: 'PRIVMSG', text: encryptRoomMessage({ roomKey: key, room: ROOM, epoch: 100, sender: 'carol', seq: ++seq, plaintext: text, signer: carol.priv }).payload, now: t0 + 20 })).result;
    for (const kind of ['part', 'kick'] as const) {
      const s = await aliceInRoom(key);
      expect(s.joinedRooms()).to.deep.equal([ROOM]);
      // bob leaves: our key stays (carol's line under it still reads), the room stays ours.
      s.membership({ kind, room: ROOM, nick: 'bob' });
      expect(await fromCarol(s, 'still readable')).to.include({ kind: 'message', text: 'still readable' });
      expect(s.joinedRooms()).to.deep.equal([ROOM]);
      expect(s.send({ target: ROOM, text: 'held for the next epoch', hold: true, now: t0 + 30 })).to.include({ status: 'held' });
      // We leave: the held text is given up (and said so), the room is no longer ours, the key is gone.
      const out = s.membership({ kind, room: ROOM, nick: 'alice' });
      expect(out.self).to.equal(true);
      expect(out.actions.filter((a) => a.type === 'unsent').map((a) => (a as { reason: string }).reason)).to.deep.equal([`you left ${ROOM}; nothing was sent`]);
      expect(s.joinedRooms()).to.deep.equal([]);
      expect(s.inRoom(ROOM)).to.equal(false);
      expect(await fromCarol(s, 'after we left')).to.include({ kind: 'undecryptable' });
    }
  });

  it('a PART or KICK that names no room changes nothing, and a lost connection leaves no room ours', async () => {
    const s = await aliceInRoom();
    expect(s.membership({ kind: 'part', nick: 'alice' })).to.deep.equal({ self: true, actions: [] });
    expect(s.membership({ kind: 'kick', room: '', nick: 'bob' })).to.deep.equal({ self: false, actions: [] });
    expect(s.joinedRooms()).to.deep.equal([ROOM]);
    expect(s.suspendedRooms()).to.deep.equal([]);
    s.membership({ kind: 'part', room: ROOM, nick: 'bob' });
    expect(s.suspendedRooms()).to.have.length(1);
    s.connectionLost(t0 + 5);
    expect(s.joinedRooms()).to.deep.equal([]);
    expect(s.suspendedRooms()).to.deep.equal([]);
  });
});
