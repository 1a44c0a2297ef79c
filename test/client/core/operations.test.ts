/**
 * The companion's half of member-signed room operations (src/client/core/operations.ts, through
 * the engine): it signs only the invites its user typed, and it refuses an epoch that adds anyone
 * no operation signed by a member explains (docs/PROTOCOL.md "Room operations").
 */
import { expect } from 'chai';
import { EMPTY_ROSTER_HASH, FrameStatus, encodeRoomOp, frameParts, readRoomOp, rosterHash, type RoomOp } from '../../../src/crypto/index.js';
import { CompanionMemory, RoomCryptoEngine, type IncomingResult } from '../../../src/client/core/index.js';
import { envelopeLines, memberOf, party, relayedOpLines, type Party } from '../fixtures.js';

const ROOM = '#sc-opsroom';

describe('src/client/core/operations.ts', function () {
  let alice: Party, bob: Party, carol: Party, dave: Party, keybot: Party, mallory: Party;
  let t0: number;

  before(async function () {
    this.timeout(30_000);
    [alice, bob, carol, dave, keybot, mallory] = await Promise.all(['alice', 'bob', 'carol', 'dave', 'keybot', 'mallory'].map((n) => party(n)));
  });
  beforeEach(() => {
    t0 = Date.now();
  });

  const engineFor = (p: Party): RoomCryptoEngine => new RoomCryptoEngine({ account: p.name, privateKey: p.priv, keybotKey: keybot.pub });

  async function keyUp(engine: RoomCryptoEngine, to: Party, epoch: number, members: Party[], now = t0): Promise<IncomingResult> {
    const lines = await envelopeLines({ to, signer: keybot, room: ROOM, epoch, members: members.map((m) => memberOf(m)), issuedAt: now });
    let last!: IncomingResult;
    for (const text of lines) last = await engine.handleIncoming({ from: 'keybot', target: to.name, command: 'NOTICE', text, now });
    return last;
  }

  async function relay(engine: RoomCryptoEngine, lines: string[], room = ROOM, from = 'keybot'): Promise<void> {
    for (const text of lines) expect(await engine.handleIncoming({ from, target: room, command: 'NOTICE', text, now: t0 })).to.deep.equal({ kind: 'hidden' });
  }

  /** keybot's proposal of `op`, as `SC1Q` lines, fed to `engine`; the engine's answer to the last. */
  async function propose(engine: RoomCryptoEngine, to: Party, op: RoomOp): Promise<IncomingResult> {
    const framed = frameParts({ data: encodeRoomOp(op), kind: 'proposal' });
    expect(framed.status).to.equal(FrameStatus.OK);
    let last!: IncomingResult;
    for (const text of framed.parts) last = await engine.handleIncoming({ from: 'keybot', target: to.name, command: 'NOTICE', text, now: t0 });
    return last;
  }

  const addOp = (actor: Party, roster: Party[], targets: Party[], room = ROOM): RoomOp => ({
    action: 'add',
    room,
    roster: rosterHash(roster.map((m) => memberOf(m))),
    actor: { account: actor.name, fingerprint: actor.fingerprint },
    targets: targets.map((t) => ({ account: t.name, fingerprint: t.fingerprint })),
    issuedAt: t0,
    nonce: new Uint8Array(16).fill(3),
  });

  describe('an epoch that adds someone', function () {
    it('is installed when a member signed their addition for the roster held, and says who added whom', async function () {
      const a = engineFor(alice);
      await keyUp(a, alice, 100, [alice, bob]);
      await relay(a, relayedOpLines({ actor: bob, room: ROOM, roster: [alice, bob], targets: [carol], issuedAt: t0 }));
      expect(await keyUp(a, alice, 101, [alice, bob, carol])).to.deep.include({ kind: 'key', epoch: 101, changes: ['carol added by bob, verified'] });
    });

    it('is refused when no member signed it (keybot, or whoever holds its key, adding a reader), and the old key stays', async function () {
      const a = engineFor(alice);
      await keyUp(a, alice, 100, [alice, bob]);
      const r = await keyUp(a, alice, 101, [alice, bob, mallory]);
      expect(r).to.include({ kind: 'envelope-rejected', code: 'unexplained-member', epoch: 101 });
      expect((r as { accounts: string[] }).accounts).to.deep.equal(['mallory']);
      expect(a.roomInfo(ROOM)).to.include({ epoch: 100 });
    });

    it('is refused when the operation was signed by someone not in the roster, named another key, was made for another room, or came from someone other than keybot', async function () {
      const cases: Array<[string, string[], string?]> = [
        ['signed by a non-member', relayedOpLines({ actor: mallory, room: ROOM, roster: [alice, bob], targets: [carol], issuedAt: t0 })],
        ['another key for carol', relayedOpLines({ actor: bob, room: ROOM, roster: [alice, bob], targets: [{ ...carol, fingerprint: dave.fingerprint }], issuedAt: t0 })],
        ['for another room', relayedOpLines({ actor: bob, room: '#sc-elsewhere', roster: [alice, bob], targets: [carol], issuedAt: t0 })],
        ['relayed by someone else', relayedOpLines({ actor: bob, room: ROOM, roster: [alice, bob], targets: [carol], issuedAt: t0 }), 'mallory'],
      ];
      for (const [what, lines, from] of cases) {
        const a = engineFor(alice);
        await keyUp(a, alice, 100, [alice, bob]);
        await relay(a, lines, ROOM, from);
        expect(await keyUp(a, alice, 101, [alice, bob, carol]), what).to.include({ kind: 'envelope-rejected', code: 'unexplained-member' });
      }
    });

    it('an operation made for another roster explains an addition only as a pending invite, labelled with its age, once, and never for someone already in the room', async function () {
      // carol was invited while offline (the roster was [alice, bob, dave] then); dave has left since.
      const a = engineFor(alice);
      await keyUp(a, alice, 100, [alice, bob]);
      const lines = relayedOpLines({ actor: bob, room: ROOM, roster: [alice, bob, dave], targets: [carol], issuedAt: t0 - 3 * 3_600_000 });
      await relay(a, lines);
      expect(await keyUp(a, alice, 101, [alice, bob, carol])).to.deep.include({ kind: 'key', epoch: 101, changes: ['carol added by bob (invited 3 h ago, while offline), verified'] });
      // carol leaves; the same operation relayed again does not bring her back.
      await keyUp(a, alice, 102, [alice, bob]);
      await relay(a, lines);
      expect(await keyUp(a, alice, 103, [alice, bob, carol])).to.include({ kind: 'envelope-rejected', code: 'unexplained-member' });
      // Older than a pending invite may be (30 days): refused.
      const b = engineFor(alice);
      await keyUp(b, alice, 100, [alice, bob]);
      await relay(b, relayedOpLines({ actor: bob, room: ROOM, roster: [alice, bob, dave], targets: [carol], issuedAt: t0 - 31 * 86_400_000 }));
      expect(await keyUp(b, alice, 101, [alice, bob, carol])).to.include({ kind: 'envelope-rejected', code: 'unexplained-member' });
    });

    it('after a reconnect, a member of the roster held before may come back unsigned (keybot restoring the room); a member who had left may not', async function () {
      const memory = new CompanionMemory('alice', 'test');
      const before = new RoomCryptoEngine({ account: 'alice', privateKey: alice.priv, keybotKey: keybot.pub, memory });
      await keyUp(before, alice, 100, [alice, bob, carol]);
      // The daemon restarts: a new connection, and keybot restores the room for those back so far.
      const after = new RoomCryptoEngine({ account: 'alice', privateKey: alice.priv, keybotKey: keybot.pub, memory });
      await keyUp(after, alice, 101, [alice, bob]);
      expect(await keyUp(after, alice, 102, [alice, bob, carol])).to.deep.include({ kind: 'key', epoch: 102, changes: ['carol back in the room after a reconnect (restored by keybot, not signed)'] });
      // carol left (an epoch without her) before the connection ended: she cannot come back unsigned.
      const m2 = new CompanionMemory('alice', 'test');
      const e1 = new RoomCryptoEngine({ account: 'alice', privateKey: alice.priv, keybotKey: keybot.pub, memory: m2 });
      await keyUp(e1, alice, 100, [alice, bob, carol]);
      await keyUp(e1, alice, 101, [alice, bob]);
      const e2 = new RoomCryptoEngine({ account: 'alice', privateKey: alice.priv, keybotKey: keybot.pub, memory: m2 });
      await keyUp(e2, alice, 102, [alice, bob]);
      expect(await keyUp(e2, alice, 103, [alice, bob, carol])).to.include({ kind: 'envelope-rejected', code: 'unexplained-member' });
    });

    it('a first key for a room cannot be checked against a roster: it is installed, and a verified opening is shown', async function () {
      const b = engineFor(bob);
      await relay(b, relayedOpLines({ actor: alice, action: 'create', room: ROOM, roster: [], targets: [bob, carol], issuedAt: t0 }));
      expect(await keyUp(b, bob, 100, [alice, bob, carol])).to.deep.include({ kind: 'key', changes: ['room opened by alice with you, carol, verified'] });
      // An opening that does not name someone the first epoch lists: refused.
      const c = engineFor(carol);
      await relay(c, relayedOpLines({ actor: alice, action: 'create', room: ROOM, roster: [], targets: [carol], issuedAt: t0 }));
      expect(await keyUp(c, carol, 100, [alice, carol, mallory])).to.include({ kind: 'envelope-rejected', code: 'unexplained-member' });
    });
  });

  describe('signing what keybot proposes', function () {
    it("signs an invite the user typed, unchanged, with the user's key", async function () {
      const a = engineFor(alice);
      await keyUp(a, alice, 100, [alice, bob]);
      a.typedToKeybot(`invite ${ROOM} carol`, t0);
      const op = addOp(alice, [alice, bob], [carol]);
      const r = await propose(a, alice, op);
      expect(r.kind).to.equal('proposal');
      const lines = (r as { lines: string[] }).lines;
      expect(lines.every((l) => l.startsWith('SC1O '))).to.equal(true);
      // The same proposal again is not signed twice (the typed invite was used).
      expect(await propose(a, alice, op)).to.include({ kind: 'proposal' }).and.have.property('refused').that.includes('you did not ask for it');
    });

    it('refuses a proposal the user did not type, for other people, another room, another roster, or in another name', async function () {
      const a = engineFor(alice);
      await keyUp(a, alice, 100, [alice, bob]);
      const cases: Array<[string, RoomOp, string]> = [
        ['nobody typed it', addOp(alice, [alice, bob], [mallory]), 'you did not ask for it'],
        ['other people', addOp(alice, [alice, bob], [carol, mallory]), 'you did not ask for it'],
        ['another roster', addOp(alice, [alice, bob, dave], [carol]), 'another membership'],
        ['another name', addOp(bob, [alice, bob], [carol]), 'not in your name and key'],
        ['another room', addOp(alice, [alice, bob], [carol], '#sc-otherroom'), 'you did not ask for it'],
        ['a new room that exists', { ...addOp(alice, [], [carol]), action: 'create', roster: EMPTY_ROSTER_HASH }, 'not a new room'],
      ];
      for (const [what, op, why] of cases) {
        a.typedToKeybot(what === 'a new room that exists' ? 'invite carol' : `invite ${ROOM} carol`, t0);
        const r = (await propose(a, alice, op)) as { kind: string; refused?: string; lines?: string[] };
        expect(r.kind, what).to.equal('proposal');
        expect(r.lines, what).to.equal(undefined);
        expect(r.refused, what).to.include(why);
      }
    });

    it('the signature verifies under the roster entry keybot checks against', async function () {
      const a = engineFor(alice);
      await keyUp(a, alice, 100, [alice, bob]);
      a.typedToKeybot(`INVITE ${ROOM.toUpperCase()} Carol`, t0);
      const r = (await propose(a, alice, addOp(alice, [alice, bob], [carol]))) as { lines: string[] };
      const data = Buffer.from(r.lines.map((l) => l.split(' ')[3]).join(''), 'base64');
      expect(readRoomOp({ data: new Uint8Array(data) }).op?.targets).to.deep.equal([{ account: 'carol', fingerprint: carol.fingerprint }]);
    });
  });
});
