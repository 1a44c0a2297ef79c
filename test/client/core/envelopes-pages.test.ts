/**
 * The companion core and roster pages (docs/PROTOCOL.md "Envelope version 3", item 4): a large
 * room's join envelope names its roster by hash and page count, and keybot's signed pages carry
 * it. The companion installs the epoch only once the pages join back to exactly that roster.
 */
import { expect } from 'chai';
import {
  generateMemberKey,
  generateRoomKey,
  sealJoinEnvelope,
  signRosterPages,
  type EnvelopeMember,
} from '../../../src/crypto/index.js';
import { RoomCryptoEngine } from '../../../src/client/index.js';
import { ROSTER_PAGE_WAIT_MS } from '../../../src/client/core/envelopes.js';
import { memberOf, party, type Party, envelopeParts, fromKeybot } from '../fixtures.js';

const ROOM = '#sc-pages00001';

describe('src/client/core/envelopes.ts: roster pages', function () {
  this.timeout(20_000);
  let keybot: Party, alice: Party, bob: Party, mallory: Party;
  let roster: EnvelopeMember[];

  before(async () => {
    [keybot, alice, bob, mallory] = await Promise.all(['keybot', 'alice', 'bob', 'mallory'].map((n) => party(n)));
    const signingKey = memberOf(alice).signingKey;
    const crowd = Array.from({ length: 60 }, (_, i) => ({ account: `m${String(i).padStart(3, '0')}`, fingerprint: (i + 1).toString(16).padStart(40, '0'), signingKey }));
    roster = [memberOf(alice), memberOf(bob), ...crowd];
  });

  /** keybot's pages of `r` at `epoch` (small pages: several), as lines; and bob's join envelope naming them. */
  async function epochOf(epoch: number, r: EnvelopeMember[] = roster, room = ROOM, signer: Party = keybot) {
    const pages = signRosterPages({ signer: signer.priv, room, epoch, roster: r, maxBytes: 2000 });
    const sealed = await sealJoinEnvelope({
      signer: keybot.priv,
      recipientKey: bob.pub,
      payload: {
        room, epoch, key: generateRoomKey(), issuedAt: Date.now(), memberKey: generateMemberKey(),
        recipient: { account: 'bob', fingerprint: bob.fingerprint }, roster: [], rosterPages: { hash: pages.hash, count: pages.pages.length }, ops: [],
      },
    });
    return { join: envelopeParts(sealed.data!), pages: pages.pages.map(envelopeParts) };
  }
  const engine = () => new RoomCryptoEngine({ account: 'bob', privateKey: bob.priv, keybotKey: keybot.pub });

  it('installs a paged join envelope once its pages are all in, whether they come before or after it, a repeated page counting once', async () => {
    const e = engine();
    const x = await epochOf(100);
    expect(x.pages.length).to.be.above(3);
    const held = await fromKeybot(e, 'bob', x.join);
    expect(held).to.have.length(1);
    expect(held[0]).to.include({ kind: 'held', what: 'envelope', room: ROOM, epoch: 100 });
    expect(e.roomInfo(ROOM)?.hasKey ?? false).to.equal(false);
    const got = await fromKeybot(e, ROOM, [...x.pages[0]!, ...x.pages.flat()]);
    expect(got.filter((r) => r.kind !== 'held')).to.have.length(1);
    expect(got[got.length - 1]).to.include({ kind: 'key', epoch: 100 });
    expect(e.roomInfo(ROOM)?.members).to.have.length(62);
    // Pages first, then the envelope.
    const e2 = engine();
    expect(await fromKeybot(e2, ROOM, x.pages.flat())).to.deep.equal([]);
    const [r] = await fromKeybot(e2, 'bob', x.join);
    expect(r).to.include({ kind: 'key', epoch: 100 });
  });

  it('refuses a keybot-signed page of another roster for the same room and epoch (one that adds mallory), and installs nothing', async () => {
    const e = engine();
    const x = await epochOf(100);
    const other = await epochOf(100, [...roster.slice(0, -1), memberOf(mallory)]);
    await fromKeybot(e, 'bob', x.join);
    const got = await fromKeybot(e, ROOM, [...x.pages.slice(0, -1).flat(), ...other.pages[other.pages.length - 1]!]);
    expect(got[got.length - 1]).to.include({ kind: 'envelope-rejected', code: 'bad-roster', epoch: 100 });
    // The genuine last page now finds no envelope waiting: nothing is installed.
    expect(await fromKeybot(e, ROOM, x.pages[x.pages.length - 1]!)).to.deep.equal([]);
    expect(e.roomInfo(ROOM)?.hasKey ?? false).to.equal(false);
  });

  it('refuses a forged page (not signed by the pinned keybot key) without letting it into the roster', async () => {
    const e = engine();
    const x = await epochOf(100);
    const forged = await epochOf(100, roster, ROOM, mallory);
    await fromKeybot(e, 'bob', x.join);
    const [r] = await fromKeybot(e, ROOM, forged.pages[0]!);
    expect(r).to.include({ kind: 'envelope-rejected', code: 'bad-signature' });
    const got = await fromKeybot(e, ROOM, x.pages.flat());
    expect(got[got.length - 1]).to.include({ kind: 'key', epoch: 100 });
  });

  it('does not complete a roster with pages of another room or epoch, and drops a join envelope whose pages did not all come in time', async () => {
    const e = engine();
    const x = await epochOf(100);
    const otherEpoch = await epochOf(99);
    const otherRoom = await epochOf(100, roster, '#sc-pages00002');
    const t0 = Date.now();
    await fromKeybot(e, 'bob', x.join, t0);
    const last = x.pages.length - 1;
    const got = await fromKeybot(e, ROOM, [...x.pages.slice(0, last).flat(), ...otherEpoch.pages[last]!, ...otherRoom.pages[last]!], t0);
    expect(got.every((r) => r.kind === 'held')).to.equal(true);
    expect(e.roomInfo(ROOM)?.hasKey ?? false).to.equal(false);
    // Past the wait, the envelope is gone: its missing page, come late, installs nothing.
    e.sweep(t0 + ROSTER_PAGE_WAIT_MS);
    expect(await fromKeybot(e, ROOM, x.pages[last]!, t0 + ROSTER_PAGE_WAIT_MS)).to.deep.equal([]);
    expect(e.roomInfo(ROOM)?.hasKey ?? false).to.equal(false);
  });

  it('keeps pages and a join envelope waiting for them until the wait is over, not a millisecond less', async () => {
    const x = await epochOf(100);
    const t0 = Date.now();
    // The envelope waits for its last page: a sweep just before the wait keeps it.
    const e = engine();
    await fromKeybot(e, 'bob', x.join, t0);
    await fromKeybot(e, ROOM, x.pages.slice(0, -1).flat(), t0);
    e.sweep(t0 + ROSTER_PAGE_WAIT_MS - 1);
    expect((await fromKeybot(e, ROOM, x.pages.at(-1)!, t0 + ROSTER_PAGE_WAIT_MS - 1)).at(-1)).to.include({ kind: 'key', epoch: 100 });
    // Pages that came first wait as long, and no longer.
    const kept = engine();
    await fromKeybot(kept, ROOM, x.pages.flat(), t0);
    kept.sweep(t0 + ROSTER_PAGE_WAIT_MS - 1);
    expect((await fromKeybot(kept, 'bob', x.join, t0 + ROSTER_PAGE_WAIT_MS - 1)).at(-1)).to.include({ kind: 'key', epoch: 100 });
    const dropped = engine();
    await fromKeybot(dropped, ROOM, x.pages.flat(), t0);
    dropped.sweep(t0 + ROSTER_PAGE_WAIT_MS);
    expect((await fromKeybot(dropped, 'bob', x.join, t0 + ROSTER_PAGE_WAIT_MS)).at(-1)).to.include({ kind: 'held', epoch: 100 });
    expect(dropped.roomInfo(ROOM)?.hasKey ?? false).to.equal(false);
  });
});
