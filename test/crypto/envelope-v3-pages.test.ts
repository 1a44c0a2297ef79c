import { expect } from 'chai';
import {
  EnvelopeStatus,
  RosterStatus,
  assembleRoster,
  generateMemberKey,
  generateRoomKey,
  openJoinEnvelope,
  rosterHash,
  sealJoinEnvelope,
  signRosterPages,
  signedJsonKind,
  verifyRosterPage,
  type EnvelopeMember,
  type RosterPage,
} from '../../src/crypto/index.js';
import { crowd, fixtures, memberOf as member, type Fixtures } from './fixtures.js';
import { hex, vector } from './vectors.js';


describe('src/crypto/envelope-v3.ts roster pages', function () {
  this.timeout(30_000);
  let f: Fixtures;
  let bob: EnvelopeMember;
  const room = '#sc-pages';
  const t0 = 1_800_000_000_000;

  before(async () => {
    f = await fixtures();
    bob = member(f.v6ids);
  });

  /** A 2,000-member roster with bob in it, its signed pages (small pages, so there are several), verified. */
  function paged(over: { room?: string; epoch?: number; roster?: EnvelopeMember[]; maxBytes?: number } = {}) {
    const roster = over.roster ?? [...crowd(1999), bob];
    const signed = signRosterPages({ signer: f.keybot.priv, room: over.room ?? room, epoch: over.epoch ?? 10, roster, maxBytes: over.maxBytes ?? 40 * 1024 });
    const pages = signed.pages.map((data) => verifyRosterPage({ data, keybotKey: f.keybot.pub }).page!);
    return { roster, hash: signed.hash, data: signed.pages, pages };
  }
  const assemble = (pages: RosterPage[], hash: Uint8Array, count: number, over: { epoch?: number; room?: string } = {}) =>
    assembleRoster({ pages, room: over.room ?? room, epoch: over.epoch ?? 10, hash, count, recipient: { account: 'bob', fingerprint: bob.fingerprint } });

  it('carries a 2,000-member roster in signed pages under the 64 KiB cap that join back to exactly that roster', () => {
    const { roster, hash, data, pages } = paged();
    expect(data.length).to.be.within(5, 10);
    for (const d of data) {
      expect(d.length).to.be.below(48 * 1024);
      expect(signedJsonKind(d)).to.equal('roster');
    }
    expect(pages.every((p) => p !== undefined)).to.equal(true);
    const r = assemble([...pages].reverse(), hash, pages.length); // arrival order does not matter
    expect(r.status).to.equal(RosterStatus.OK);
    expect(Buffer.from(rosterHash(r.roster!))).to.deep.equal(Buffer.from(rosterHash(roster)));
    expect(r.roster!.length).to.equal(2000);
  });

  it('refuses a forged page: one not signed by the pinned keybot key, or altered after signing', () => {
    const forged = signRosterPages({ signer: f.mallory.priv, room, epoch: 10, roster: [bob] }).pages[0]!;
    expect(verifyRosterPage({ data: forged, keybotKey: f.keybot.pub }).status).to.equal(EnvelopeStatus.BAD_SIGNATURE);
    const { data } = paged();
    const altered = data[1]!.slice();
    const at = altered.indexOf(0x7d) - 5; // a byte of the JSON
    altered[at] = altered[at]! ^ 1;
    expect(verifyRosterPage({ data: altered, keybotKey: f.keybot.pub }).status).to.equal(EnvelopeStatus.BAD_SIGNATURE);
  });

  it('refuses a page of another room or another epoch among the pages of the roster the join envelope names', () => {
    const { hash, pages } = paged();
    const otherRoom = paged({ room: '#sc-other' }).pages;
    const otherEpoch = paged({ epoch: 9 }).pages;
    expect(otherRoom.length).to.equal(pages.length);
    const swapped = (other: RosterPage[]) => pages.map((p, i) => (i === 2 ? other[2]! : p));
    expect(assemble(swapped(otherRoom), hash, pages.length).status).to.equal(RosterStatus.FOREIGN_PAGE);
    expect(assemble(swapped(otherEpoch), hash, pages.length).status).to.equal(RosterStatus.FOREIGN_PAGE);
    // The same pages are those of another epoch when the join envelope names another.
    expect(assemble(pages, hash, pages.length, { epoch: 11 }).status).to.equal(RosterStatus.FOREIGN_PAGE);
  });

  it('refuses a roster with a page missing, a page twice, or a page count other than the join envelope names', () => {
    const { hash, pages } = paged();
    expect(assemble(pages.slice(1), hash, pages.length).status).to.equal(RosterStatus.INCOMPLETE);
    const twice = [...pages.slice(0, 3), pages[2]!, ...pages.slice(4)];
    expect(assemble(twice, hash, pages.length).status).to.equal(RosterStatus.DUPLICATE_PAGE);
    expect(assemble(pages, hash, pages.length + 1).status).to.equal(RosterStatus.DUPLICATE_PAGE);
  });

  it('refuses keybot-signed pages that are out of canonical order, even when their members hash right', () => {
    // Re-paged by hand with two pages' members swapped, each page still signed by keybot: the
    // hash is order-independent, so only the order check can tell.
    const { hash, pages } = paged();
    const moved = pages.map((p, i) => ({ ...p, members: i === 0 ? pages[1]!.members : i === 1 ? pages[0]!.members : p.members }));
    expect(assemble(moved, hash, pages.length).status).to.equal(RosterStatus.BAD_ROSTER);
  });

  it("refuses keybot-signed pages whose members do not hash to the roster the join envelope names", () => {
    const real = paged();
    // A roster with mallory in place of one member, paged under the real roster's hash.
    const other = paged({ roster: [...crowd(1998), member(f.mallory), bob] });
    const relabelled = other.pages.map((p) => ({ ...p, hash: real.hash }));
    expect(assemble(relabelled, real.hash, relabelled.length).status).to.equal(RosterStatus.BAD_ROSTER);
    // And a genuine roster of other pages is another hash: foreign to this join envelope.
    expect(assemble(other.pages, real.hash, other.pages.length).status).to.equal(RosterStatus.FOREIGN_PAGE);
  });

  it('refuses a roster that does not list the recipient with their key', () => {
    const { hash, pages } = paged({ roster: crowd(300) });
    expect(assemble(pages, hash, pages.length).status).to.equal(RosterStatus.NOT_LISTED);
  });

  it('names the pages in the join envelope (hash and count) under keybot\'s signature, instead of listing the roster', async () => {
    const { hash, data } = paged();
    const payload = {
      room, epoch: 10, key: generateRoomKey(), issuedAt: t0, memberKey: generateMemberKey(),
      recipient: { account: 'bob', fingerprint: bob.fingerprint }, roster: [], rosterPages: { hash, count: data.length }, ops: [],
    };
    const sealed = await sealJoinEnvelope({ signer: f.keybot.priv, recipientKey: f.v6ids.pub, payload });
    expect(sealed.data!.length).to.be.below(1024);
    const opened = await openJoinEnvelope({ data: sealed.data!, decryptionKey: f.v6ids.priv, keybotKey: f.keybot.pub, expectedAccount: 'bob', now: t0 });
    expect(opened.status).to.equal(EnvelopeStatus.OK);
    expect(opened.payload).to.deep.equal(payload);
  });

  it('matches the roster-page test vector of docs/PROTOCOL.md', () => {
    const v = vector('roster-page');
    const signingKey = { alg: 'ed25519' as const, key: v.ed25519_public_base64! };
    const roster = [
      { account: v.member_2!, fingerprint: v.fingerprint_2!, signingKey },
      { account: v.member_1!, fingerprint: v.fingerprint_1!, signingKey },
    ];
    expect(Buffer.from(rosterHash(roster)).toString('hex')).to.equal(v.roster_hash);
    const signed = signRosterPages({ signer: f.keybot.priv, room: v.room!, epoch: Number(v.epoch), roster });
    expect(signed.pages.length).to.equal(1);
    const page = signed.pages[0]!;
    const json = page.subarray(0, page.indexOf(0));
    expect(new TextDecoder().decode(json)).to.equal(v.page_json!.replace(/\n/g, ''));
    expect(Buffer.from(signed.hash)).to.deep.equal(Buffer.from(hex(v.roster_hash!)));
    expect(verifyRosterPage({ data: page, keybotKey: f.keybot.pub }).status).to.equal(EnvelopeStatus.OK);
  });
});
