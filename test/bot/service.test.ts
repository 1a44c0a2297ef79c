/**
 * KeyService on its own: a fake directory and a recording transport, real crypto. Events are fed
 * in by hand, so the timing-sensitive rules (coalescing, never keying a leaver, epoch numbers,
 * rotation) can be pinned down deterministically.
 */
import { follow } from './v3-follow.js';
import { RoomCryptoEngine, type IncomingResult } from '../../src/client/index.js';
import { expect } from 'chai';
import type { DirectoryRoom, DirectoryUser, Placement, PresenceChange, UserDirectory } from '../../src/bot/directory.js';
import type { Transport } from '../../src/bot/delivery.js';
import { randomBytes } from 'node:crypto';
import { KeyService, type Authorised, type KeyServiceOptions } from '../../src/bot/service.js';
import {
  EnvelopeStatus,
  PartStatus,
  PartsReassembler,
  MAX_OP_TARGETS,
  ROOM_OP_NONCE_BYTES,
  classifyLine,
  rosterHash,
  signRoomOp,
  generateUserKey,
  openEnvelope,
  unlockPrivateKey,
  type EnvelopePayload,
  type PrivateKeyHandle,
} from '../../src/crypto/index.js';
import { keyFor } from '../helpers/daemon.js';
import { sleep } from './helpers.js';

class FakeDirectory implements UserDirectory {
  /** false: a QUIT is a departure (an ordinary network); true: sealchatd's rooms that outlive a connection. */
  persistentRooms = false;
  users = new Map<string, DirectoryUser>();
  /** While set, lookups wait for it. */
  gate: Promise<void> | undefined;
  lookups = 0;
  kicked: string[] = [];
  /** The reason of each removal, in the order of `kicked`. */
  kickReasons: string[] = [];
  /** What listRooms answers (a daemon that kept running, for recover()). */
  rooms: DirectoryRoom[] = [];
  /** Every server-side join keybot asked for, as "room nick", in order. */
  placed: string[] = [];

  async lookupUser(name: string): Promise<DirectoryUser | null> {
    this.lookups++;
    if (this.gate) await this.gate;
    return this.users.get(name.toLowerCase()) ?? null;
  }
  async listOnline(): Promise<string[]> {
    return [...this.users.values()].filter((u) => u.online).map((u) => u.name);
  }
  async putInRoom(room: string, nick: string): Promise<void> {
    this.placed.push(`${room} ${nick}`);
  }
  async putManyInRoom(room: string, nicks: string[]): Promise<Placement[]> {
    for (const nick of nicks) this.placed.push(`${room} ${nick}`);
    // As room.add: someone offline becomes a pending member.
    return nicks.map((nick) => ({ nick, ok: true as const, ...(this.persistentRooms && !this.users.get(nick.toLowerCase())?.online ? { pending: true } : {}) }));
  }
  async removeFromRoom(room: string, nick: string, reason: string): Promise<void> {
    this.kicked.push(`${room} ${nick}`);
    this.kickReasons.push(reason);
  }
  async listRooms(): Promise<DirectoryRoom[]> {
    return this.rooms;
  }
  async publishServiceKey(): Promise<DirectoryUser> {
    throw new Error('not used');
  }
  onPresence(_l: (c: PresenceChange) => void): void {}
  onClose(_l: (err: Error) => void): void {}
  close(): void {}
}

class RecordingTransport implements Transport {
  readonly nick = 'keybot';
  lines: Array<{ target: string; text: string }> = [];
  notice(target: string, text: string): void {
    this.lines.push({ target, text });
  }
  notices(lines: ReadonlyArray<{ target: string; text: string }>): void {
    this.lines.push(...lines);
  }
  setModes(): void {}
  requestNames(): void {}
  parts: string[] = [];
  part(room: string): void {
    this.parts.push(room);
  }
  /** Key-event announcements sent to a room. */
  events(room: string): string[] {
    return this.lines.filter((l) => l.target === room && classifyLine(l.text) !== 'envelope-part').map((l) => l.text);
  }
  envelopeLinesTo(nick: string): string[] {
    return this.lines.filter((l) => l.target === nick && (classifyLine(l.text) === 'envelope-part' || l.text.startsWith('SC1K '))).map((l) => l.text);
  }
}

interface Member {
  name: string;
  key: PrivateKeyHandle;
}

const ROOM = '#sc-testroom00';

describe('src/bot/service.ts (fake directory, recording transport, real crypto)', function () {
  this.timeout(15_000);
  let dir: FakeDirectory;
  let tx: RecordingTransport;
  let svc: KeyService;
  let keybotKey: PrivateKeyHandle;
  const members: Record<string, Member> = {};

  before(async () => {
    keybotKey = (await unlockPrivateKey({ armored: (await generateUserKey({ name: 'keybot' })).privateArmored })).key!;
    for (const name of ['alice', 'bob', 'carol', 'dave']) {
      const k = await keyFor(name);
      members[name] = { name, key: (await unlockPrivateKey({ armored: k.privateArmored })).key! };
    }
  });

  function start(opts: Partial<KeyServiceOptions> = {}): void {
    dir = new FakeDirectory();
    tx = new RecordingTransport();
    for (const name of Object.keys(members)) {
      dir.users.set(name, { name, fingerprint: members[name]!.key.fingerprint, publicKey: members[name]!.key.publicKey.armored, online: true, service: false });
    }
    svc = new KeyService({
      directory: dir,
      transport: tx,
      signer: keybotKey,
      rotateAfterMessages: 0,
      rotateAfterMs: 0,
      settleMs: 20,
      maxSettleMs: 200,
      minEpochIntervalMs: 0,
      ...opts,
    });
  }
  afterEach(() => svc?.shutdown());

  /** Every envelope `name` got, opened with their key. */
  async function opened(name: string): Promise<EnvelopePayload[]> {
    return follow(tx.lines, name, members[name]!.key, keybotKey.publicKey);
  }

  async function settle(check: () => boolean, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out; lines: ${JSON.stringify(tx.lines.map((l) => `${l.target} ${l.text.slice(0, 40)}`))}`);
      await sleep(10);
    }
  }

  /** A JOIN keybot asked for (as after a member's signed invite): the daemon's echo of a placement. */
  function placedJoin(nick: string): void {
    svc.rooms.get(ROOM)!.expectJoin(nick, 5000);
    svc.memberJoined(ROOM, nick);
  }

  function openRoom(nicks: string[]): void {
    svc.selfJoined(ROOM);
    svc.namesReceived(ROOM, ['@keybot', ...nicks].map((n) => n.replace('@', '')));
  }

  it('proposes an invite for at most MAX_OP_TARGETS people and refuses the rest by name, saying why', async function () {
    start();
    // 102 online accounts (one key shared: what matters here is the count).
    const names = Array.from({ length: 102 }, (_, i) => `u${String(i).padStart(3, '0')}`);
    for (const name of names) dir.users.set(name, { ...dir.users.get('bob')!, name });
    const r = await svc.proposeInvite('alice', undefined, names);
    expect(r.status).to.equal('proposed');
    const p = r as { names: string[]; refused: Array<{ name: string; reason: string; detail?: string }> };
    expect(p.names).to.deep.equal(names.slice(0, MAX_OP_TARGETS));
    expect(p.refused.map((x) => [x.name, x.reason])).to.deep.equal(names.slice(MAX_OP_TARGETS).map((n) => [n, 'too_many']));
    expect(p.refused[0]!.detail).to.equal(`one invite adds at most ${MAX_OP_TARGETS} people`);
    // The proposal went to alice as SC1Q parts; nobody was placed before she signs.
    expect(tx.lines.filter((l) => l.target === 'alice' && classifyLine(l.text) === 'proposal-part').length).to.be.greaterThan(0);
    expect(dir.placed).to.deep.equal([]);
  });

  it('a burst of joins makes one epoch for everyone', async function () {
    start();
    openRoom(['alice']);
    placedJoin('bob');
    placedJoin('carol');
    placedJoin('dave');
    await settle(() => tx.events(ROOM).length >= 1);
    const all = await Promise.all(['alice', 'bob', 'carol', 'dave'].map(opened));
    for (const envs of all) expect(envs).to.have.length(1);
    expect(new Set(all.map((e) => e[0]!.epoch)).size).to.equal(1);
    expect(all[0]![0]!.members.map((m) => m.account).sort()).to.deep.equal(['alice', 'bob', 'carol', 'dave']);
    // The marker: one more change. Epochs are made one after another, so a second epoch from the
    // burst would come before this one, or be merged into it (its reasons would then name a join).
    svc.memberLeft(ROOM, 'dave', false);
    await settle(() => tx.events(ROOM).length >= 2);
    expect(tx.events(ROOM)).to.have.length(2);
    expect(tx.events(ROOM)[1]).to.match(/ \(dave left\)$/);
  });

  it('never sends the new key to someone who leaves while it is being prepared', async function () {
    start();
    openRoom(['alice', 'bob', 'carol']);
    await settle(() => tx.events(ROOM).length === 1);
    const first = (await opened('alice'))[0]!.epoch;
    // Hold the directory while the next epoch is prepared; carol leaves during it.
    let release!: () => void;
    dir.gate = new Promise((r) => (release = r));
    const looked = dir.lookups;
    placedJoin('dave');
    await settle(() => dir.lookups === looked + 4);
    svc.memberLeft(ROOM, 'carol', false);
    dir.gate = undefined;
    release();
    await settle(() => tx.events(ROOM).length >= 2);
    // No wait needed: an epoch's envelopes are handed to the transport before its announcement.
    const carolGot = await opened('carol');
    expect(carolGot.map((e) => e.epoch)).to.deep.equal([first]);
    const daveGot = await opened('dave');
    expect(daveGot).to.have.length(1);
    expect(daveGot[0]!.members.map((m) => m.account).sort()).to.deep.equal(['alice', 'bob', 'dave']);
    expect(tx.events(ROOM).at(-1)).to.match(/\(dave joined, carol left\)$/);
  });

  it('epochs follow max(last + 1, unix seconds), start no earlier than notBefore, and keep their spacing', async function () {
    const notBefore = Date.now() + 400;
    start({ notBefore, minEpochIntervalMs: 300 });
    openRoom(['alice', 'bob']);
    await settle(() => tx.events(ROOM).length === 1);
    const t1 = Date.now();
    expect(t1).to.be.at.least(notBefore);
    const e1 = (await opened('alice'))[0]!;
    expect(e1.epoch).to.be.at.least(Math.floor(notBefore / 1000));
    expect(e1.issuedAt).to.be.at.least(notBefore);
    svc.memberLeft(ROOM, 'bob', false);
    await settle(() => tx.events(ROOM).length === 2);
    const e2 = (await opened('alice'))[1]!;
    expect(e2.epoch).to.be.greaterThan(e1.epoch);
    expect(e2.issuedAt - e1.issuedAt).to.be.at.least(300);
  });

  it('rotates after rotateAfterMessages room lines and after rotateAfterMs', async function () {
    start({ rotateAfterMessages: 3, rotateAfterMs: 400 });
    openRoom(['alice', 'bob']);
    await settle(() => tx.events(ROOM).length === 1);
    svc.roomMessage(ROOM, 'alice');
    svc.roomMessage(ROOM, 'keybot'); // keybot's own lines do not count
    svc.roomMessage(ROOM, 'bob');
    expect(tx.events(ROOM)).to.have.length(1);
    svc.roomMessage(ROOM, 'bob');
    await settle(() => tx.events(ROOM).length === 2);
    expect(tx.events(ROOM)[1]).to.match(/\(3 messages\)$/);
    await settle(() => tx.events(ROOM).length === 3, 2000);
    expect(tx.events(ROOM)[2]).to.match(/\(scheduled rotation\)$/);
    expect((await opened('bob')).map((e) => e.epoch)).to.have.length(3);
  });

  it('removes a member whose key is no longer usable, and keys the others', async function () {
    start();
    dir.users.get('carol')!.publicKey = undefined;
    openRoom(['alice', 'carol']);
    await settle(() => tx.events(ROOM).length === 1);
    expect(dir.kicked).to.deep.equal([`${ROOM} carol`]);
    expect((await opened('alice'))[0]!.members.map((m) => m.account)).to.deep.equal(['alice']);
    expect(tx.envelopeLinesTo('carol')).to.deep.equal([]);
  });

  it('leaves a room in which it is the last one', async function () {
    start();
    openRoom(['alice']);
    await settle(() => tx.events(ROOM).length === 1);
    svc.memberQuit('alice');
    await settle(() => tx.parts.length === 1);
    expect(tx.parts).to.deep.equal([ROOM]);
    expect(svc.rooms.get(ROOM)).to.equal(undefined);
  });

  it('re-sends the current epoch only to a member listed in it', async function () {
    start();
    openRoom(['alice', 'bob']);
    await settle(() => tx.events(ROOM).length === 1);
    expect(await svc.resendKey('carol', ROOM)).to.deep.equal({ status: 'not_member' });
    const before = tx.envelopeLinesTo('bob').length;
    const r = await svc.resendKey('bob', ROOM);
    expect(r.status).to.equal('sent');
    expect(tx.envelopeLinesTo('bob').length).to.be.greaterThan(before);
    const got = await opened('bob');
    expect(got).to.have.length(2);
    expect(got[1]!.epoch).to.equal(got[0]!.epoch);
    expect(Buffer.from(got[1]!.key).equals(Buffer.from(got[0]!.key))).to.equal(true);
  });
  describe('pinned member keys (the daemon swaps a registered key)', function () {
    /** The directory now answers carol's key for `name` (what `sealchatd user setkey` would do). */
    function swapKey(name: string, to = 'carol'): void {
      const u = dir.users.get(name)!;
      u.publicKey = members[to]!.key.publicKey.armored;
      u.fingerprint = members[to]!.key.fingerprint;
    }

    it('removes a member whose registered key changed ("key changed"), tells the room and them, and keys only the others', async function () {
      start();
      openRoom(['alice', 'bob']);
      await settle(() => tx.events(ROOM).length === 1);
      const bobLines = tx.envelopeLinesTo('bob').length;
      swapKey('bob');
      placedJoin('dave'); // any rekey
      await settle(() => (tx.events(ROOM).filter((t) => t.startsWith('new key')).length === 2));
      expect(dir.kicked).to.deep.equal([`${ROOM} bob`]);
      expect(dir.kickReasons).to.deep.equal(['key changed']);
      // No envelope for bob's nick (it would be sealed to the swapped-in key).
      expect(tx.envelopeLinesTo('bob').length).to.equal(bobLines);
      const latest = (await opened('alice')).at(-1)!;
      expect(latest.members.map((m) => m.account).sort()).to.deep.equal(['alice', 'dave']);
      const said = tx.events(ROOM).find((t) => t.startsWith('bob removed'));
      expect(said).to.include(members.bob!.key.fingerprint).and.include(members.carol!.key.fingerprint).and.include('invite bob again');
      expect(tx.lines.some((l) => l.target === 'bob' && /removed from .*key registered for your account changed/.test(l.text))).to.equal(true);
      // The KICK echo: members read why.
      svc.memberLeft(ROOM, 'bob', true);
      await settle(() => tx.events(ROOM).filter((t) => t.startsWith('new key')).length === 3);
      expect(tx.events(ROOM).at(-1)).to.match(/\(bob was removed \(key changed\)\)$/);
    });

    it('does not re-send the current key to a member whose key changed: removes them', async function () {
      start();
      openRoom(['alice', 'bob']);
      await settle(() => tx.events(ROOM).length === 1);
      const before = tx.envelopeLinesTo('bob').length;
      swapKey('bob');
      expect((await svc.resendKey('bob', ROOM)).status).to.equal('pending');
      expect(dir.kicked).to.deep.equal([`${ROOM} bob`]);
      expect(dir.kickReasons).to.deep.equal(['key changed']);
      // Marker: alice's own re-send goes out after anything bob's request could have started.
      const aliceBefore = tx.envelopeLinesTo('alice').length;
      expect((await svc.resendKey('alice', ROOM)).status).to.equal('sent');
      await settle(() => tx.envelopeLinesTo('alice').length > aliceBefore);
      expect(tx.envelopeLinesTo('bob').length).to.equal(before);
    });

    it('keys a member under a new key only after a member invites them again', async function () {
      start({ echoTimeoutMs: 2000 });
      openRoom(['alice', 'bob']);
      await settle(() => tx.events(ROOM).length === 1);
      swapKey('bob');
      svc.roomMessage(ROOM, 'alice');
      expect((await svc.resendKey('bob', ROOM)).status).to.equal('pending');
      svc.memberLeft(ROOM, 'bob', true);
      await settle(() => tx.events(ROOM).filter((t) => t.startsWith('new key')).length === 2);
      // Joining by other means (the daemon placing bob, no member's signed invite): removed again, never keyed.
      svc.memberJoined(ROOM, 'bob');
      await settle(() => dir.kicked.length === 2);
      expect(dir.kickReasons).to.deep.equal(['key changed', 'not invited by a member of the room']);
      svc.memberLeft(ROOM, 'bob', true);
      await settle(() => tx.events(ROOM).filter((t) => t.startsWith('new key')).length >= 3);
      const bobBefore = tx.envelopeLinesTo('bob').length;
      // alice invites bob again (visible): now his new key is pinned and keyed.
      const placedBefore = dir.placed.length;
      const invited = svc.addToRoom('alice', ROOM, ['bob']);
      await settle(() => dir.placed.slice(placedBefore).includes(`${ROOM} bob`));
      svc.memberJoined(ROOM, 'bob');
      const r = await invited;
      expect(r).to.deep.include({ status: 'added', joined: ['bob'] });
      await settle(() => tx.envelopeLinesTo('bob').length > bobBefore);
      expect(dir.kicked).to.have.length(2);
      const latest = (await opened('alice')).at(-1)!;
      expect(latest.members.find((m) => m.account === 'bob')?.fingerprint).to.equal(members.carol!.key.fingerprint);
    });

    it('keeps the pins across a lost session (remembered rooms) and removes a member whose key changed meanwhile', async function () {
      start();
      openRoom(['alice', 'bob']);
      await settle(() => tx.events(ROOM).length === 1);
      const memory = svc.snapshot();
      expect(memory[0]!.fingerprints).to.deep.equal({ alice: members.alice!.key.fingerprint, bob: members.bob!.key.fingerprint });
      svc.shutdown();
      // A new session; the daemon kept the room, and bob's key was swapped while keybot was away.
      const users = dir.users;
      start();
      dir.users = users;
      swapKey('bob');
      dir.rooms = [{ name: ROOM, modes: '+is', members: ['keybot', 'alice', 'bob'] }];
      expect(await svc.recover(memory)).to.equal(1);
      svc.namesReceived(ROOM, ['keybot', 'alice', 'bob']);
      await settle(() => tx.events(ROOM).some((t) => t.startsWith('new key')));
      expect(dir.kicked).to.deep.equal([`${ROOM} bob`]);
      expect(tx.envelopeLinesTo('bob')).to.deep.equal([]);
      expect((await opened('alice'))[0]!.members.map((m) => m.account)).to.deep.equal(['alice']);
    });

    it('after a restart, removes an offline member whose key was swapped meanwhile, and keys the others', async function () {
      start();
      openRoom(['alice', 'bob']);
      await settle(() => tx.events(ROOM).length === 1);
      const memory = svc.snapshot();
      svc.shutdown();
      const users = dir.users;
      start();
      dir.users = users;
      dir.persistentRooms = true;
      swapKey('bob');
      // The daemon kept the room; bob is offline.
      dir.rooms = [{ name: ROOM, modes: '+is', members: ['keybot', 'alice'], accounts: [{ account: 'alice', state: 'joined' }, { account: 'bob', state: 'offline' }] }];
      expect(await svc.recover(memory)).to.equal(1);
      svc.namesReceived(ROOM, ['keybot', 'alice']);
      await settle(() => tx.events(ROOM).some((t) => t.startsWith('new key')));
      expect(dir.kicked).to.deep.equal([`${ROOM} bob`]);
      expect(dir.kickReasons).to.deep.equal(['key changed']);
      expect(tx.envelopeLinesTo('bob')).to.deep.equal([]);
      expect((await opened('alice'))[0]!.members.map((m) => m.account)).to.deep.equal(['alice']);
    });
  });

  describe('rooms that outlive a connection (docs/PROTOCOL.md)', function () {
    type State = 'joined' | 'offline' | 'pending';
    /** A room the daemon keeps, taken over as after a restart (no memory: the daemon's roster is believed). */
    async function daemonRoom(accounts: Array<[string, State]>, memory: Parameters<KeyService['recover']>[0] = []): Promise<void> {
      dir.persistentRooms = true;
      const present = accounts.filter(([, st]) => st === 'joined').map(([n]) => n);
      for (const [n, st] of accounts) dir.users.get(n)!.online = st === 'joined';
      dir.rooms = [{ name: ROOM, modes: '+is', members: ['keybot', ...present], accounts: accounts.map(([account, state]) => ({ account, state })) }];
      expect(await svc.recover(memory)).to.equal(1);
      svc.namesReceived(ROOM, ['keybot', ...present]);
    }
    const keyEvents = (): string[] => tx.events(ROOM).filter((t) => t.startsWith('new key'));
    /** alice's signed `add` of `target` for the room's current roster, as her companion makes it. */
    function signedAdd(target: string, by = 'alice'): Authorised {
      const actor = members[by]!.key;
      const op = signRoomOp({
        signer: actor,
        op: {
          action: 'add',
          room: ROOM,
          roster: rosterHash(svc.rooms.get(ROOM)!.current!.members),
          actor: { account: by, fingerprint: actor.fingerprint },
          targets: [{ account: target, fingerprint: members[target]!.key.fingerprint }],
          issuedAt: Date.now(),
          nonce: randomBytes(ROOM_OP_NONCE_BYTES),
        },
      });
      return { fingerprints: new Map([[target, members[target]!.key.fingerprint]]), op };
    }

    it('sends envelope version 3: a join envelope once per member, then per change one signed notice naming only the change and one key line per member; companions install it', async function () {
      start();
      await daemonRoom([['alice', 'joined'], ['bob', 'joined'], ['carol', 'joined']]);
      await settle(() => keyEvents().length === 1);
      // Each member's companion (the core every companion uses) reads what keybot sent, in order.
      const engines = Object.fromEntries(
        ['alice', 'bob', 'carol', 'dave'].map((n) => [n, new RoomCryptoEngine({ account: n, privateKey: members[n]!.key, keybotKey: keybotKey.publicKey })]),
      );
      let fed = 0;
      const feed = async (): Promise<Record<string, IncomingResult[]>> => {
        const got: Record<string, IncomingResult[]> = { alice: [], bob: [], carol: [], dave: [] };
        const present = new Set(svc.rooms.get(ROOM)!.present);
        for (const l of tx.lines.slice(fed)) {
          for (const n of Object.keys(engines)) {
            if (l.target !== n && !(l.target === ROOM && present.has(n))) continue;
            const r = await engines[n]!.handleIncoming({ from: 'keybot', target: l.target, command: 'NOTICE', text: l.text });
            if (r.kind !== 'hidden' && r.kind !== 'bot-notice') got[n]!.push(r);
          }
        }
        fed = tx.lines.length;
        return got;
      };
      const linesTo = (from: number, target: string): string[] => tx.lines.slice(from).filter((l) => l.target === target).map((l) => l.text);
      const first = await feed();
      for (const n of ['alice', 'bob', 'carol']) {
        expect(first[n]!.map((r) => r.kind), n).to.deep.equal(['key']);
        expect(linesTo(0, n).every((t) => classifyLine(t) === 'envelope-part'), `${n}: a join envelope`).to.equal(true);
      }
      const e1 = (first.alice![0] as { epoch: number }).epoch;

      // dave added by alice's signed invite: the members who hold epoch 1 get one key line each; dave a join envelope.
      let mark = tx.lines.length;
      const adding = svc.addToRoom('alice', ROOM, ['dave'], signedAdd('dave'));
      await settle(() => svc.rooms.get(ROOM)!.expectedJoins.has('dave'));
      svc.memberJoined(ROOM, 'dave');
      await adding;
      await settle(() => keyEvents().length === 2);
      for (const n of ['alice', 'bob', 'carol']) {
        expect(linesTo(mark, n).length, `${n}: one line`).to.equal(1);
        expect(linesTo(mark, n)[0]).to.match(/^SC1K /);
      }
      expect(linesTo(mark, 'dave').every((t) => classifyLine(t) === 'envelope-part')).to.equal(true);
      const added = await feed();
      for (const n of ['alice', 'bob', 'carol']) expect(added[n], n).to.deep.equal([added[n]![0]]);
      expect(added.alice![0]).to.deep.include({ kind: 'key', changes: ['dave added by alice, verified'] });
      expect(added.bob![0]).to.deep.include({ kind: 'key', previousEpoch: e1, changes: ['dave added by alice, verified'] });
      expect(added.dave![0]).to.include({ kind: 'key' });
      const e2 = (added.alice![0] as { epoch: number }).epoch;

      // bob leaves: the notice states only that (O(changes), the same size whatever the roster), one key line each.
      mark = tx.lines.length;
      svc.memberLeft(ROOM, 'bob', false);
      await settle(() => keyEvents().length === 3);
      const noticeLines = linesTo(mark, ROOM).filter((t) => classifyLine(t) === 'envelope-part');
      const notice = Buffer.from(noticeLines.map((t) => t.split(' ')[3]).join(''), 'base64');
      const json = JSON.parse(notice.subarray(0, notice.indexOf(0)).toString('utf8')) as Record<string, unknown>;
      expect(json).to.deep.include({ v: 3, t: 'epoch', prev: e2, ops: [], add: [], gone: ['bob'] });
      expect(notice.length).to.be.lessThan(400);
      expect(noticeLines.length).to.equal(2);
      for (const n of ['alice', 'carol', 'dave']) expect(linesTo(mark, n).map((t) => t.slice(0, 5)), n).to.deep.equal(['SC1K ']);
      expect(linesTo(mark, 'bob')).to.deep.equal([]);
      const left = await feed();
      for (const n of ['alice', 'carol', 'dave']) expect(left[n]![0], n).to.deep.include({ kind: 'key', previousEpoch: e2 });
      expect(left.bob).to.deep.equal([]);
      for (const n of ['alice', 'carol', 'dave']) expect(engines[n]!.roomInfo(ROOM)?.members.sort()).to.deep.equal(['alice', 'carol', 'dave']);
    });

    it('a member who disconnects stays in the roster, no epoch is made, and the next epoch is sealed for them too', async function () {
      start();
      await daemonRoom([['alice', 'joined'], ['bob', 'joined']]);
      await settle(() => keyEvents().length === 1);
      svc.memberQuit('bob');
      dir.users.get('bob')!.online = false;
      expect(svc.snapshot()[0]!.members.sort()).to.deep.equal(['alice', 'bob']);
      // The marker: carol joins. A quit epoch would come before hers, or be merged into it.
      placedJoin('carol');
      await settle(() => keyEvents().length === 2);
      expect(keyEvents()[1]).to.match(/\(carol joined\)$/);
      const bobGot = await opened('bob');
      expect(bobGot.map((e) => e.members.map((m) => m.account).sort())).to.deep.equal([['alice', 'bob'], ['alice', 'bob', 'carol']]);
      expect(dir.kicked).to.deep.equal([]);
    });

    it("a member's JOIN at login is no intruder: they get the current epoch again, and no new one is made", async function () {
      start();
      await daemonRoom([['alice', 'joined'], ['bob', 'offline']]);
      await settle(() => keyEvents().length === 1);
      // bob was offline: the first epoch was sealed for him all the same (his mailbox keeps it).
      const lines = tx.envelopeLinesTo('bob').length;
      expect(lines).to.be.greaterThan(0);
      svc.memberJoined(ROOM, 'bob');
      await settle(() => tx.envelopeLinesTo('bob').length > lines);
      const got = await opened('bob');
      expect(got.length).to.equal(2);
      expect(got[1]!.epoch).to.equal(got[0]!.epoch);
      // The marker: alice leaves; the next epoch names only that.
      svc.memberLeft(ROOM, 'alice', false);
      placedJoin('carol');
      await settle(() => keyEvents().length === 2);
      expect(keyEvents()[1]).to.match(/\(alice left, carol joined\)$|\(carol joined, alice left\)$/);
      expect(dir.kicked).to.deep.equal([]);
    });

    it('skips the scheduled rotation while no member is online, and replaces the stale key when the first one is back', async function () {
      start({ rotateAfterMs: 300 });
      await daemonRoom([['alice', 'joined'], ['bob', 'offline']]);
      await settle(() => keyEvents().length === 1);
      svc.memberQuit('alice');
      // Past two rotation periods with nobody online.
      await sleep(700);
      // The marker: alice is back; the key is older than rotateAfterMs, so a new epoch follows (and
      // had a rotation run meanwhile, it would have come before this one).
      svc.memberJoined(ROOM, 'alice');
      await settle(() => keyEvents().length === 2);
      expect(keyEvents()[1]).to.match(/\(scheduled rotation\)$/);
      expect((await opened('bob')).map((e) => e.members.map((m) => m.account).sort())).to.deep.equal([['alice', 'bob'], ['alice', 'bob']]);
    });

    it('a KICK of an offline member (room.remove, account deleted) ends their membership: the next epoch leaves them out', async function () {
      start();
      await daemonRoom([['alice', 'joined'], ['bob', 'offline']]);
      await settle(() => keyEvents().length === 1);
      svc.memberLeft(ROOM, 'bob', true);
      await settle(() => keyEvents().length === 2);
      expect(keyEvents()[1]).to.match(/\(bob was removed\)$/);
      expect((await opened('alice')).at(-1)!.members.map((m) => m.account)).to.deep.equal(['alice']);
    });

    it('an offline invitee becomes pending: no key until their JOIN at login, then a new epoch with them', async function () {
      start();
      await daemonRoom([['alice', 'joined'], ['bob', 'joined']]);
      await settle(() => keyEvents().length === 1);
      dir.users.get('carol')!.online = false;
      const r = await svc.addToRoom('alice', ROOM, ['carol']);
      expect(r).to.deep.include({ status: 'added', joined: [], pending: ['carol'] });
      expect(svc.snapshot()[0]!.pending!.map((p) => [p.account, p.by, p.fingerprint])).to.deep.equal([['carol', 'alice', members.carol!.key.fingerprint]]);
      // The marker: bob leaves and the room is rekeyed; carol is in no epoch yet.
      svc.memberLeft(ROOM, 'bob', false);
      await settle(() => keyEvents().length === 2);
      expect(tx.envelopeLinesTo('carol')).to.deep.equal([]);
      // carol logs in; the daemon places her.
      dir.users.get('carol')!.online = true;
      svc.memberJoined(ROOM, 'carol');
      await settle(() => keyEvents().length === 3);
      expect(keyEvents()[2]).to.match(/\(carol added by alice\)$/);
      expect((await opened('carol'))[0]!.members.map((m) => m.account).sort()).to.deep.equal(['alice', 'carol']);
      expect(dir.kicked).to.deep.equal([]);
    });

    it('cancel drops a pending invite: the invitee is removed at the directory and, logging in, is an intruder', async function () {
      start();
      await daemonRoom([['alice', 'joined'], ['bob', 'joined']]);
      await settle(() => keyEvents().length === 1);
      dir.users.get('carol')!.online = false;
      await svc.addToRoom('alice', ROOM, ['carol']);
      expect(await svc.cancelInvite('dave', ROOM, 'carol')).to.deep.equal({ status: 'not_member' });
      expect(await svc.cancelInvite('bob', ROOM, 'dave')).to.deep.equal({ status: 'not_pending', room: ROOM, name: 'dave' });
      expect(await svc.cancelInvite('bob', ROOM, 'carol')).to.deep.equal({ status: 'cancelled', room: ROOM, name: 'carol' });
      expect(dir.kicked).to.deep.equal([`${ROOM} carol`]);
      expect(svc.snapshot()[0]!.pending).to.deep.equal([]);
      svc.memberJoined(ROOM, 'carol');
      await settle(() => dir.kicked.length === 2);
      expect(dir.kickReasons[1]).to.equal('not invited by a member of the room');
      expect(tx.envelopeLinesTo('carol')).to.deep.equal([]);
    });

    it('a pending invite lapses when the member who signed it leaves first', async function () {
      start();
      await daemonRoom([['alice', 'joined'], ['bob', 'joined']]);
      await settle(() => keyEvents().length === 1);
      dir.users.get('carol')!.online = false;
      await svc.addToRoom('alice', ROOM, ['carol']);
      svc.memberLeft(ROOM, 'alice', false);
      expect(dir.kicked).to.deep.equal([`${ROOM} carol`]);
      expect(svc.snapshot()[0]!.pending).to.deep.equal([]);
    });

    it('after a restart: offline members and pending invites come back; an account the daemon lists that keybot never keyed is removed', async function () {
      start();
      await daemonRoom([['alice', 'joined'], ['bob', 'joined']]);
      await settle(() => keyEvents().length === 1);
      dir.users.get('carol')!.online = false;
      await svc.addToRoom('alice', ROOM, ['carol'], signedAdd('carol'));
      const memory = svc.snapshot();
      svc.shutdown();
      const users = dir.users;
      start();
      dir.users = users;
      // bob went offline; dave was put in by someone other than keybot while it was away.
      await daemonRoom([['alice', 'joined'], ['bob', 'offline'], ['carol', 'pending'], ['dave', 'offline']], memory);
      await settle(() => keyEvents().length === 1 && dir.kicked.length === 1);
      expect(dir.kicked).to.deep.equal([`${ROOM} dave`]);
      expect(keyEvents()[0]).to.match(/for alice, bob \(/);
      expect(svc.snapshot()[0]!.pending!.map((p) => p.account)).to.deep.equal(['carol']);
      dir.users.get('carol')!.online = true;
      svc.memberJoined(ROOM, 'carol');
      await settle(() => keyEvents().length === 2);
      expect(keyEvents()[1]).to.match(/\(carol added by alice\)$/);
    });

    it('after a restart, a pending invite whose kept operation does not verify (the memory on disk was changed) lapses: the invitee is removed, never keyed', async function () {
      start();
      await daemonRoom([['alice', 'joined'], ['bob', 'joined']]);
      await settle(() => keyEvents().length === 1);
      dir.users.get('carol')!.online = false;
      dir.users.get('dave')!.online = false;
      await svc.addToRoom('alice', ROOM, ['carol'], signedAdd('carol'));
      const memory = svc.snapshot();
      // Someone with write access to keybot.rooms.json adds dave under carol's signed operation,
      // and an entry with no operation at all.
      const carolInvite = memory[0]!.pending![0]!;
      memory[0]!.pending!.push({ ...carolInvite, account: 'dave', fingerprint: members.dave!.key.fingerprint });
      memory[0]!.pending!.push({ account: 'erin', fingerprint: members.dave!.key.fingerprint, by: 'alice', at: Date.now() });
      svc.shutdown();
      const users = dir.users;
      start();
      dir.users = users;
      await daemonRoom([['alice', 'joined'], ['bob', 'joined'], ['carol', 'pending'], ['dave', 'joined']], memory);
      await settle(() => dir.kicked.includes(`${ROOM} dave`));
      expect(tx.events(ROOM).find((t) => t.startsWith('the invite of dave by alice lapsed'))).to.include('does not name them with that key');
      expect(svc.snapshot()[0]!.pending!.map((p) => p.account)).to.deep.equal(['carol']);
      // The marker: carol, whose invite is sound, is keyed at her login; dave never is.
      dir.users.get('carol')!.online = true;
      svc.memberJoined(ROOM, 'carol');
      await settle(() => keyEvents().some((e) => e.includes('carol added by alice')));
      expect(tx.envelopeLinesTo('dave')).to.deep.equal([]);
      expect(keyEvents().every((e) => !e.includes('dave'))).to.equal(true);
    });

    it('after a restart, a pending invitee who logged in while keybot was away is keyed under the invite; one the memory holds no invite for is removed', async function () {
      start();
      await daemonRoom([['alice', 'joined'], ['bob', 'joined']]);
      await settle(() => keyEvents().length === 1);
      dir.users.get('carol')!.online = false;
      await svc.addToRoom('alice', ROOM, ['carol'], signedAdd('carol'));
      const memory = svc.snapshot();
      svc.shutdown();
      const users = dir.users;
      start();
      dir.users = users;
      // carol logged in meanwhile (the daemon placed her); dave is pending by nobody keybot knows of.
      await daemonRoom([['alice', 'joined'], ['bob', 'joined'], ['carol', 'joined'], ['dave', 'pending']], memory);
      await settle(() => keyEvents().length >= 1 && dir.kicked.length === 1);
      expect(dir.kicked).to.deep.equal([`${ROOM} dave`]);
      await settle(() => keyEvents().some((e) => /carol/.test(e)));
      const last = keyEvents().at(-1)!;
      expect(last).to.match(/for alice, bob, carol \(/);
      expect(last).to.include('carol added by alice');
      expect((await opened('carol')).at(-1)!.members.map((m) => m.account).sort()).to.deep.equal(['alice', 'bob', 'carol']);
    });
  });
});
