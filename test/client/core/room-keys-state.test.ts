/**
 * The key store of one engine (src/client/core/room-keys.ts, RoomKeys) on its own: which keys it
 * keeps, hands back and wipes, and when. A key it no longer needs is overwritten with zeros, so a
 * later memory dump of the companion does not hold it (docs/SECURITY.md "Keys in memory").
 */
import { expect } from 'chai';
import { isChannel, MAX_READ_ONLY_KEYS, RoomKeys, engineConfig, wipe, type EpochKey } from '../../../src/client/core/room-keys.js';
import { party, type Party } from '../fixtures.js';

const ROOM = '#sc-keystore';
const zero = (k: EpochKey): boolean => k.key.every((b) => b === 0);
const epochKey = (epoch: number, over: Partial<EpochKey> = {}): EpochKey => ({ epoch, key: new Uint8Array(32).fill(epoch % 255 || 1), members: new Map(), issuedAt: 0, ...over });

describe('src/client/core/room-keys.ts: which keys the engine keeps, and when it wipes them', function () {
  this.timeout(20_000);
  let alice: Party;
  const grace = 1_000;
  const history = 10_000;

  before(async () => {
    alice = await party('alice');
  });
  const store = (floors?: Map<string, number>) => new RoomKeys(engineConfig({ account: 'alice', privateKey: alice.priv, previousEpochGraceMs: grace, historyKeyMs: history }), floors);

  it('refuses engine options that are not an object or name no account, saying which', () => {
    for (const bad of [null, 'x']) expect(() => engineConfig(bad as never)).to.throw(TypeError, /^RoomCryptoEngine: expected one options object$/);
    for (const account of ['', 5]) {
      expect(() => engineConfig({ account, privateKey: alice.priv } as never)).to.throw(TypeError, /^RoomCryptoEngine: options\.account must be a non-empty string$/);
    }
  });

  it('counts # and & names as channels, by their first character only', () => {
    expect(['#sc-a', '&sc-a'].map(isChannel)).to.deep.equal([true, true]);
    expect(['sc#', 'sc&', 'alice'].map(isChannel)).to.deep.equal([false, false, false]);
    const k = store();
    expect(k.isEncryptedRoom('sc-room')).to.equal(false);
    expect(k.isEncryptedRoom('#sc-room')).to.equal(true);
    expect(k.isEncryptedRoom('#plain')).to.equal(false);
    k.state('#plain').highestEpoch = 3;
    expect(k.isEncryptedRoom('#PLAIN')).to.equal(true);
    expect(store(new Map([['#remembered', 4]])).isEncryptedRoom('#remembered')).to.equal(true);
  });

  it('wipes a key by overwriting its bytes, and takes no key calmly', () => {
    const k = epochKey(7);
    wipe(k);
    expect(zero(k)).to.equal(true);
    expect(() => wipe(undefined)).not.to.throw();
  });

  it('keeps the replaced key for its grace period to the millisecond, and an older read-only key for its lifetime, then wipes them', () => {
    const k = store();
    const s = k.state(ROOM);
    const previous = epochKey(1, { retiredAt: 100 });
    const older = epochKey(0, { retiredAt: 100 });
    s.previous = previous;
    s.older = [older];
    k.expirePrevious(s, 100 + grace);
    expect(s.previous).to.equal(previous);
    expect(zero(previous)).to.equal(false);
    k.expirePrevious(s, 100 + grace + 1);
    expect(s.previous).to.equal(undefined);
    expect(zero(previous)).to.equal(true);
    expect(s.older).to.deep.equal([older]);
    k.expirePrevious(s, 100 + history);
    expect(s.older).to.have.length(1);
    expect(zero(older)).to.equal(false);
    k.expirePrevious(s, 100 + history + 1);
    expect(s.older).to.deep.equal([]);
    expect(zero(older)).to.equal(true);
    expect(() => k.expirePrevious(undefined, 0)).not.to.throw();
  });

  it('keeps read-only keys oldest first, one per epoch (a replaced one wiped, the same one kept), at most 16', () => {
    const k = store();
    const s = k.state(ROOM);
    const e5 = epochKey(5);
    k.keepReadOnly(s, e5, 10);
    k.keepReadOnly(s, epochKey(3), 10);
    k.keepReadOnly(s, epochKey(4), 10);
    expect(s.older.map((x) => x.epoch)).to.deep.equal([3, 4, 5]);
    expect(s.older.every((x) => x.retiredAt === 10)).to.equal(true);
    // The same epoch with the same key again: kept, not wiped.
    k.keepReadOnly(s, { ...e5 }, 20);
    expect(zero(e5)).to.equal(false);
    expect(s.older.map((x) => x.epoch)).to.deep.equal([3, 4, 5]);
    // Another key for epoch 5: the one held is wiped and replaced.
    const e5b = epochKey(5, { key: new Uint8Array(32).fill(99) });
    k.keepReadOnly(s, e5b, 30);
    expect(zero(e5)).to.equal(true);
    expect(s.older.filter((x) => x.epoch === 5).map((x) => x.key[0])).to.deep.equal([99]);
    // Past the cap, the oldest go first, wiped.
    const first = s.older[0]!;
    for (let e = 10; e < 10 + MAX_READ_ONLY_KEYS; e++) k.keepReadOnly(s, epochKey(e), 40);
    expect(s.older).to.have.length(MAX_READ_ONLY_KEYS);
    expect(s.older[0]!.epoch).to.equal(10);
    expect(zero(first)).to.equal(true);
  });

  it('hands a read-only key back (from the older ones, else the replaced one) and keeps it no longer', () => {
    const k = store();
    const s = k.state(ROOM);
    const e2 = epochKey(2);
    const e3 = epochKey(3);
    const prev = epochKey(4);
    s.older = [e2, e3];
    s.previous = prev;
    expect(k.takeReadOnly(s, 9)).to.equal(undefined);
    expect(s.older).to.deep.equal([e2, e3]);
    expect(s.previous).to.equal(prev);
    expect(k.takeReadOnly(s, 3)).to.equal(e3);
    expect(s.older).to.deep.equal([e2]);
    expect(s.previous).to.equal(prev);
    expect(k.takeReadOnly(s, 4)).to.equal(prev);
    expect(s.previous).to.equal(undefined);
    expect(s.older).to.deep.equal([e2]);
    expect(zero(e3) || zero(prev)).to.equal(false); // handed back, not wiped
  });

  it('counts a read-only key’s lifetime from a new login, in every room', () => {
    const k = store();
    const a = epochKey(1, { retiredAt: 0 });
    const b = epochKey(2, { retiredAt: 0 });
    k.state('#sc-a').older = [a];
    k.state('#sc-b').older = [b];
    k.refreshReadOnly(50_000);
    expect([a.retiredAt, b.retiredAt]).to.deep.equal([50_000, 50_000]);
    k.expirePrevious(k.get('#sc-a'), 50_000 + history);
    expect(k.get('#sc-a')!.older).to.deep.equal([a]);
  });

  it('reports a room only once it held an epoch, with its members and highest epoch', () => {
    const k = store();
    expect(k.info('#nowhere')).to.equal(undefined);
    k.state('#sc-seen');
    const s = k.state(ROOM);
    expect(k.list(0)).to.deep.equal([]);
    expect(k.info(ROOM, 0)).to.deep.equal({ room: ROOM, members: [], hasKey: false });
    s.highestEpoch = 6;
    s.current = epochKey(6, { issuedAt: 5, members: new Map([['alice', { account: 'Alice', fingerprint: 'f', signingKey: { alg: 'ed25519', key: 'k' } }]]) });
    expect(k.list(0)).to.deep.equal([{ room: ROOM, epoch: 6, issuedAt: 5, members: ['Alice'], hasKey: true, highestEpoch: 6 }]);
  });

  it("starts a room's state with the floor remembered for it, and none where nothing is remembered", () => {
    const k = store(new Map([['#sc-floor', 9]]));
    expect(k.state('#SC-floor').floor).to.equal(9);
    expect(k.state(ROOM)).to.not.have.property('floor');
  });

  it('forgets a room it left: every key and the member key wiped, held messages dropped from the total, the highest epoch kept', () => {
    const k = store();
    const s = k.state(ROOM);
    const cur = epochKey(8);
    const prev = epochKey(7);
    const old = epochKey(6);
    const memberKey = new Uint8Array(32).fill(5);
    Object.assign(s, { current: cur, previous: prev, older: [old], memberKey, highestEpoch: 8, seq: 4 });
    const held = { from: 'bob', room: ROOM, command: 'PRIVMSG' as const, record: { payload: 'x' }, epoch: 9, heldAt: 0 };
    s.held = [held, held];
    k.state('#sc-other').held = [held];
    k.heldTotal = 3;
    k.forget(ROOM);
    expect([cur, prev, old].map(zero)).to.deep.equal([true, true, true]);
    expect(memberKey.every((b) => b === 0)).to.equal(true);
    expect(k.heldTotal).to.equal(1);
    expect(s).to.deep.include({ left: true, older: [], held: [], seq: 0, highestEpoch: 8, current: undefined, previous: undefined, memberKey: undefined });
    expect(() => k.forget('#never-seen')).not.to.throw();
  });
});
