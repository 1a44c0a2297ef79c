/**
 * Keys of older epochs are for reading only (src/client/core/room-keys.ts, envelopes.ts;
 * docs/PROTOCOL.md "Rooms that outlive a connection"): an envelope of an epoch we missed, delivered
 * from the mailbox after a newer one, decrypts that epoch's messages and is never sent under.
 * Attacks: a daemon that hands an old envelope to a companion whose key is suspended, or that
 * has no key to send under, must not get text out under it.
 */
import { expect } from 'chai';
import { CompanionMemory, CompanionSession, RoomCryptoEngine, type CompanionAction } from '../../../src/client/index.js';
import { encryptRoomMessage, generateRoomKey, MessageStatus, peekRoomMessage } from '../../../src/crypto/index.js';
import { envelopeLines, memberOf, party, type Party } from '../fixtures.js';

const ROOM = '#sc-oldkeys';

describe('src/client/core/room-keys.ts: keys of older epochs are for reading only', function () {
  this.timeout(30_000);
  let alice: Party, bob: Party, carol: Party, keybot: Party;
  let t0: number;

  before(async () => {
    [alice, bob, carol, keybot] = await Promise.all(['alice', 'bob', 'carol', 'keybot'].map((n) => party(n)));
  });
  beforeEach(() => {
    t0 = Date.now();
  });

  async function session(memory?: CompanionMemory): Promise<CompanionSession> {
    const s = new CompanionSession({ account: 'alice', server: 'test:1', privateKey: alice.priv, keybotPublicKey: keybot.publicArmored, knownKeybotsFile: false, ...(memory ? { memory } : {}) });
    await s.start(t0);
    s.membership({ kind: 'join', room: ROOM, nick: 'alice' });
    return s;
  }

  /** Deliver keybot's envelope of `epoch`; returns the key result and every action. */
  async function envelope(s: CompanionSession, epoch: number, members: Party[], key = generateRoomKey(), now = t0) {
    const actions: CompanionAction[] = [];
    let result;
    for (const text of await envelopeLines({ to: alice, signer: keybot, room: ROOM, epoch, key, members: members.map((m) => memberOf(m)), issuedAt: t0 })) {
      const r = await s.received({ from: 'keybot', target: 'alice', command: 'NOTICE', text, now });
      actions.push(...r.actions);
      result = r.result;
    }
    return { result: result!, actions };
  }

  /** bob's message under `key` of `epoch`, as one line. */
  function bobSays(key: Uint8Array, epoch: number, seq: number, text: string): string {
    const r = encryptRoomMessage({ roomKey: key, room: ROOM, epoch, sender: 'bob', seq, plaintext: text, signer: bob.priv });
    if (r.status !== MessageStatus.OK) throw new Error(r.status);
    return r.lines[0]!;
  }

  const sentUnder = (actions: CompanionAction[]): number[] =>
    actions.flatMap((a) => (a.type === 'send' && a.target === ROOM ? [peekRoomMessage({ payload: a.text }).epoch!] : []));

  it('an envelope of an older epoch is installed for reading: its messages decrypt, the current key stays the one sent under', async () => {
    const s = await session();
    const k199 = generateRoomKey();
    await envelope(s, 200, [alice, bob]);
    const { result } = await envelope(s, 199, [alice, bob], k199);
    expect(result).to.include({ kind: 'key', epoch: 199, readOnly: true });
    expect(s.engine.roomInfo(ROOM)).to.include({ epoch: 200, hasKey: true });
    const read = await s.received({ from: 'bob', target: ROOM, command: 'PRIVMSG', text: bobSays(k199, 199, 1, 'said under 199'), now: t0 + 10 });
    expect(read.result).to.include({ kind: 'message', text: 'said under 199', epoch: 199 });
    const r = s.send({ target: ROOM, text: 'new text', hold: true, now: t0 + 20 });
    expect(r.status).to.equal('send');
    expect(r.status === 'send' && peekRoomMessage({ payload: r.lines[0]! }).epoch).to.equal(200);
  });

  it('attack: an old envelope delivered while the key is suspended (a member left) lifts nothing; held text waits for a newer epoch', async () => {
    const s = await session();
    await envelope(s, 200, [alice, bob, carol]);
    s.membership({ kind: 'part', room: ROOM, nick: 'carol' });
    const held = s.send({ target: ROOM, text: 'after carol left', hold: true, now: t0 + 10 });
    expect(held.status).to.equal('held');
    // The daemon hands over an older epoch without carol, hoping to have the text sent under it.
    const old = await envelope(s, 150, [alice, bob], generateRoomKey(), t0 + 20);
    expect(old.result).to.include({ kind: 'key', readOnly: true });
    expect(sentUnder(old.actions)).to.deep.equal([]);
    expect(s.suspendedRooms()).to.have.length(1);
    expect(s.send({ target: ROOM, text: 'more', hold: true, now: t0 + 30 }).status).to.equal('held');
    // Only a newer epoch lets the text out, under itself.
    const next = await envelope(s, 201, [alice, bob], generateRoomKey(), t0 + 40);
    expect(sentUnder(next.actions)).to.deep.equal([201, 201]);
  });

  it('attack: after a lost connection only read-only keys are held; an old envelope then sends nothing, and the re-sent current epoch does', async () => {
    const s = await session();
    const k200 = generateRoomKey();
    await envelope(s, 200, [alice, bob], k200);
    expect(s.send({ target: ROOM, text: 'before', hold: true, now: t0 + 1 }).status).to.equal('send');
    s.connectionLost(t0 + 2);
    s.reconnected(t0 + 3);
    s.membership({ kind: 'join', room: ROOM, nick: 'alice' });
    // The key held when the connection went still reads what was said meanwhile...
    const read = await s.received({ from: 'bob', target: ROOM, command: 'PRIVMSG', text: bobSays(k200, 200, 1, 'while you were away'), now: t0 + 4 });
    expect(read.result).to.include({ kind: 'message', epoch: 200 });
    // ...but is not sent under, and neither is an older epoch handed over now.
    const held = s.send({ target: ROOM, text: 'back', hold: true, now: t0 + 5 });
    expect(held.status).to.equal('held');
    const old = await envelope(s, 199, [alice, bob], generateRoomKey(), t0 + 6);
    expect(old.result).to.include({ kind: 'key', readOnly: true });
    expect(sentUnder(old.actions)).to.deep.equal([]);
    expect(s.engine.encryptOutgoing({ room: ROOM, text: 'forced', now: t0 + 7 })).to.include({ status: 'no-key' });
    // keybot re-sends epoch 200 at our login: now it is sent under.
    const resent = await envelope(s, 200, [alice, bob], k200, t0 + 8);
    expect(resent.result).to.include({ kind: 'key', epoch: 200 }).and.not.have.property('readOnly');
    const out = resent.actions.filter((a) => a.type === 'send' && a.target === ROOM);
    expect(sentUnder(resent.actions)).to.deep.equal([200]);
    expect(out.length).to.equal(1);
  });

  it('keeps a bounded number of read-only keys, and wipes them after their lifetime', async () => {
    const s = await session();
    await envelope(s, 300, [alice, bob]);
    for (let e = 200; e < 220; e++) await envelope(s, e, [alice, bob]);
    const kept = (s.engine as unknown as { keys: { get(r: string): { older: Array<{ epoch: number }> } } }).keys.get(ROOM).older;
    expect(kept.map((k) => k.epoch)).to.deep.equal(Array.from({ length: 16 }, (_, i) => 204 + i));
    s.sweep(t0 + 11 * 60_000);
    expect((s.engine as unknown as { keys: { get(r: string): { older: unknown[] } } }).keys.get(ROOM).older).to.deep.equal([]);
  });

  it('a restarted companion given the same epoch again goes on from its own last sequence number (kept in the memory file): members do not refuse it as a replay', async () => {
    const k200 = generateRoomKey();
    const first = new CompanionMemory('alice', 'test:1');
    const a1 = await session(first);
    await envelope(a1, 200, [alice, bob], k200);
    const b = new RoomCryptoEngine({ account: 'bob', privateKey: bob.priv, keybotKey: keybot.pub });
    for (const text of await envelopeLines({ to: bob, signer: keybot, room: ROOM, epoch: 200, key: k200, members: [memberOf(alice), memberOf(bob)], issuedAt: t0 })) {
      await b.handleIncoming({ from: 'keybot', target: 'bob', command: 'NOTICE', text, now: t0 });
    }
    const bobReads = async (r: ReturnType<CompanionSession['send']>): Promise<string> => {
      if (r.status !== 'send') throw new Error(r.status);
      const got = await b.handleIncoming({ from: 'alice', target: ROOM, command: 'PRIVMSG', text: r.lines[0]!, now: t0 + 10 });
      return got.kind === 'message' ? got.text : `${got.kind}: ${(got as { reason?: string }).reason}`;
    };
    for (const t of ['one', 'two', 'three']) expect(await bobReads(a1.send({ target: ROOM, text: t, hold: true, now: t0 + 1 }))).to.equal(t);
    // A new process: the memory comes back from the file; keybot re-sends epoch 200 at the login.
    const again = new CompanionMemory('alice', 'test:1');
    again.load(JSON.parse(JSON.stringify(first.toEntry())), 'the file');
    const a2 = await session(again);
    await envelope(a2, 200, [alice, bob], k200, t0 + 5);
    expect(await bobReads(a2.send({ target: ROOM, text: 'four', hold: true, now: t0 + 6 }))).to.equal('four');
  });
});
