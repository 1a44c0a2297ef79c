/**
 * Envelope version 3's schema and framing, field by field (issue 18: the mutants that survived
 * in src/crypto/envelope-v3.ts). keybot's side refuses to sign what breaks the schema and says
 * which field; a member refuses, as MALFORMED, anything keybot's key signed that does not parse
 * or breaks the same schema (a keybot bug or a stolen keybot key must not crash a companion or
 * slip a malformed roster in). The malformed wire forms here are signed with keybot's real key
 * over the documented domains (docs/PROTOCOL.md "Envelope version 3"), so each refusal is the
 * schema's and not the signature's.
 */
import { expect } from 'chai';
import {
  EnvelopeStatus,
  RoomOpStatus,
  RosterStatus,
  advanceRoster,
  assembleRoster,
  generateMemberKey,
  generateRoomKey,
  openJoinEnvelope,
  peekKeyLine,
  rosterHash,
  sealJoinEnvelope,
  signEpochNotice,
  signRoomOp,
  signRosterPages,
  signedJsonKind,
  unwrapEpochKey,
  verifyEpochNotice,
  verifyRosterPage,
  wrapEpochKey,
  type EnvelopeMember,
  type EpochNotice,
  type JoinPayload,
  type RosterPage,
} from '../../src/crypto/index.js';
import { createMessage, encrypt } from '../../src/crypto/openpgp.js';
import { privateState, publicState } from '../../src/crypto/keys.js';
import { signRaw } from '../../src/crypto/primitives.js';
import { concatBytes, toBase64, utf8 } from '../../src/crypto/bytes.js';
import { crowd, fixtures, memberOf as member, type Fixtures } from './fixtures.js';

const NUL = Uint8Array.of(0);

const wire = (m: EnvelopeMember): string[] => [m.account, m.fingerprint, m.signingKey.alg, m.signingKey.key];

describe('src/crypto/envelope-v3.ts schema and framing', function () {
  this.timeout(60_000);
  let f: Fixtures;
  let alice: EnvelopeMember;
  let bob: EnvelopeMember;
  let carol: EnvelopeMember;
  const room = '#sc-schema';
  const t0 = 1_800_000_000_000;

  before(async () => {
    f = await fixtures();
    alice = member(f.ecc);
    bob = member(f.v6ids);
    carol = member(f.rsa);
  });

  /** keybot's raw signature over a domain and bytes, as envelope-v3.ts makes it. */
  const keybotSign = (domain: string, json: Uint8Array): Uint8Array => {
    const k = privateState(f.keybot.priv, 'test');
    return signRaw(k.signingAlg, k.signingKeyObject, concatBytes(utf8.encode(domain), json));
  };
  const text = (v: unknown): Uint8Array => utf8.encode(typeof v === 'string' ? v : JSON.stringify(v));

  describe('join envelopes', () => {
    function join(over: Partial<JoinPayload> = {}): JoinPayload {
      return { room, epoch: 10, key: generateRoomKey(), issuedAt: t0, memberKey: generateMemberKey(), recipient: { account: 'bob', fingerprint: bob.fingerprint }, roster: [alice, bob], ops: [], ...over };
    }
    const seal = (payload: JoinPayload) => sealJoinEnvelope({ signer: f.keybot.priv, recipientKey: f.v6ids.pub, payload });
    /** What `p` rejects with (undefined if it resolves). */
    async function rejection(p: Promise<unknown>): Promise<unknown> {
      try {
        await p;
      } catch (err) {
        return err;
      }
      return undefined;
    }
    async function sealError(payload: JoinPayload): Promise<string> {
      const err = await rejection(seal(payload));
      if (err === undefined) return 'sealed';
      expect(err).to.be.instanceOf(TypeError);
      return (err as Error).message;
    }
    /** A literal (JSON, NUL, keybot's signature over bob's fingerprint and the JSON), encrypted to `to`. */
    async function envelope(literal: Uint8Array, to = [f.v6ids.pub]): Promise<Uint8Array> {
      return (await encrypt({ message: await createMessage({ binary: literal }), encryptionKeys: to.map((k) => publicState(k, 'test').key), format: 'binary' })) as Uint8Array;
    }
    const signedJoin = (json: Uint8Array): Uint8Array => concatBytes(json, NUL, keybotSign(`sealchat-join-v3\0${bob.fingerprint}\0`, json));
    const open = (data: Uint8Array, now = t0) => openJoinEnvelope({ data, decryptionKey: f.v6ids.priv, keybotKey: f.keybot.pub, expectedAccount: 'bob', now });
    /** The wire form encodeJoin writes for `join()`, with fields replaced or removed (undefined). */
    function wireJoin(over: Record<string, unknown> = {}): Record<string, unknown> {
      const w: Record<string, unknown> = { v: 3, t: 'join', room, epoch: 10, key: toBase64(generateRoomKey()), iat: t0, mk: toBase64(generateMemberKey()), to: ['bob', bob.fingerprint], m: [wire(alice), wire(bob)], ops: [], ...over };
      for (const k of Object.keys(w)) if (w[k] === undefined) delete w[k];
      return w;
    }

    it('refuses to seal each payload that breaks the schema, naming the field', async () => {
      const cases: Array<[Partial<JoinPayload>, RegExp]> = [
        [{ room: 'a room' }, /^sealJoinEnvelope: payload: room must be a channel name$/],
        [{ epoch: -1 }, /: epoch must be a u32$/],
        [{ epoch: 2 ** 32 }, /: epoch must be a u32$/],
        [{ key: new Uint8Array(31) }, /: key must be 32 bytes$/],
        [{ key: [...new Uint8Array(32)] as unknown as Uint8Array }, /: key must be 32 bytes$/],
        [{ issuedAt: -1 }, /: issuedAt must be a time in ms$/],
        [{ issuedAt: 1.5 }, /: issuedAt must be a time in ms$/],
        [{ memberKey: new Uint8Array(33) }, /: memberKey must be 32 bytes$/],
        [{ memberKey: [...new Uint8Array(32)] as unknown as Uint8Array }, /: memberKey must be 32 bytes$/],
        [{ recipient: undefined as unknown as JoinPayload['recipient'] }, /: recipient must be an account and a fingerprint$/],
        [{ recipient: { account: 'b b', fingerprint: bob.fingerprint } }, /: recipient must be an account and a fingerprint$/],
        [{ recipient: { account: 'bob', fingerprint: 'XYZ' } }, /: recipient must be an account and a fingerprint$/],
        [{ roster: [] }, /: roster must list 1 to 5000 members$/],
        [{ roster: 'alice' as unknown as EnvelopeMember[] }, /: roster must list 1 to 5000 members$/],
        [{ roster: [...crowd(5000), bob] }, /: roster must list 1 to 5000 members$/],
        [{ roster: [alice, bob, { ...alice, account: 'ALICE' }] }, /: roster: member ALICE is listed twice$/],
        [{ roster: [alice, carol] }, /: the roster must list the recipient with its fingerprint$/],
        [{ roster: [alice, { ...bob, fingerprint: carol.fingerprint }] }, /: the roster must list the recipient with its fingerprint$/],
        [{ rosterPages: null as unknown as JoinPayload['rosterPages'], roster: [] }, /: rosterPages.hash must be a 32-byte hash$/],
        [{ rosterPages: { hash: new Uint8Array(31), count: 1 }, roster: [] }, /: rosterPages.hash must be a 32-byte hash$/],
        [{ rosterPages: { hash: [...new Uint8Array(32)] as unknown as Uint8Array, count: 1 }, roster: [] }, /: rosterPages.hash must be a 32-byte hash$/],
        [{ rosterPages: { hash: new Uint8Array(32), count: 0 }, roster: [] }, /: rosterPages.count must be 1 to 128$/],
        [{ rosterPages: { hash: new Uint8Array(32), count: 129 }, roster: [] }, /: rosterPages.count must be 1 to 128$/],
        [{ rosterPages: { hash: new Uint8Array(32), count: 1.5 }, roster: [] }, /: rosterPages.count must be 1 to 128$/],
        [{ rosterPages: { hash: new Uint8Array(32), count: 1 } }, /: a paged roster lists no members inline$/],
        [{ rosterPages: { hash: new Uint8Array(32), count: 1 }, roster: 'x' as unknown as EnvelopeMember[] }, /: a paged roster lists no members inline$/],
        [{ ops: 'x' as unknown as Uint8Array[] }, /: ops must be a list of operations$/],
        [{ ops: Array.from({ length: 65 }, () => Uint8Array.of(1)) }, /: ops must be a list of operations$/],
        [{ ops: [new Uint8Array(0)] }, /: ops must be a list of operations$/],
        [{ ops: ['op' as unknown as Uint8Array] }, /: ops must be a list of operations$/],
      ];
      for (const [over, message] of cases) expect(await sealError(join(over)), JSON.stringify(Object.keys(over))).to.match(message);
      // The bounds themselves are allowed.
      for (const over of [{ ops: Array.from({ length: 64 }, () => Uint8Array.of(1)) }, { rosterPages: { hash: new Uint8Array(32), count: 1 }, roster: [] }, { rosterPages: { hash: new Uint8Array(32), count: 128 }, roster: [] }, { roster: [...crowd(4999), bob] }] as Array<Partial<JoinPayload>>) {
        expect((await seal(join(over))).status, JSON.stringify(Object.keys(over))).to.equal(EnvelopeStatus.OK);
      }
    });

    it('refuses misuse: no options object, or a recipient key that is not the payload recipient', async () => {
      for (const bad of [null, 'x']) {
        expect(String(await rejection(sealJoinEnvelope(bad as never)))).to.equal('TypeError: sealJoinEnvelope: expected one options object');
        expect(String(await rejection(openJoinEnvelope(bad as never)))).to.equal('TypeError: openJoinEnvelope: expected one options object');
      }
      const wrongKey = await rejection(sealJoinEnvelope({ signer: f.keybot.priv, recipientKey: f.ecc.pub, payload: join() }));
      expect(String(wrongKey)).to.equal("TypeError: sealJoinEnvelope: the recipient key is not the payload's recipient");
    });

    it('opens the wire form this test signs (the helper is faithful), also when encrypted to others beside the recipient', async () => {
      const r = await open(await envelope(signedJoin(text(wireJoin()))));
      expect(r.status).to.equal(EnvelopeStatus.OK);
      expect(r.payload!.roster).to.deep.equal([alice, bob]);
      const paged = await open(await envelope(signedJoin(text(wireJoin({ m: undefined, r: toBase64(new Uint8Array(32).fill(7)), pn: 3 })))));
      expect(paged.status).to.equal(EnvelopeStatus.OK);
      expect(paged.payload!.rosterPages).to.deep.equal({ hash: new Uint8Array(32).fill(7), count: 3 });
      expect(paged.payload!.roster).to.deep.equal([]);
      // Issued at time 0 is a time (an OpenPGP key cannot encrypt at that date, so only a signed wire form shows it).
      expect((await open(await envelope(signedJoin(text(wireJoin({ iat: 0 })))), 0)).status).to.equal(EnvelopeStatus.OK);
      // One message for carol and bob: bob opens it (one of the recipients is enough).
      expect((await open(await envelope(signedJoin(text(wireJoin())), [f.rsa.pub, f.v6ids.pub]))).status).to.equal(EnvelopeStatus.OK);
    });

    it('refuses, as MALFORMED, each keybot-signed join that does not parse or breaks the schema', async () => {
      const cases: Array<[string, Uint8Array]> = [
        ['not JSON', text('{"v":3,')],
        ['a JSON array', text([3, 'join'])],
        ['JSON null', text('null')],
        ['a JSON number', text('3')],
        ['t is not join', text(wireJoin({ t: 'epoch' }))],
        ['v is a string', text(wireJoin({ v: '3' }))],
        ['no key', text(wireJoin({ key: undefined }))],
        ['key is not base64', text(wireJoin({ key: '!!' }))],
        ['key is a number', text(wireJoin({ key: 5 }))],
        ['no member key', text(wireJoin({ mk: undefined }))],
        ['ops is not a list', text(wireJoin({ ops: 'x' }))],
        ['65 ops', text(wireJoin({ ops: Array.from({ length: 65 }, () => 'AQ==') }))],
        ['an op that is not a string', text(wireJoin({ ops: [1] }))],
        ['an op that is not base64', text(wireJoin({ ops: ['!!'] }))],
        ['no roster at all', text(wireJoin({ m: undefined }))],
        ['a roster that is not a list', text(wireJoin({ m: 'alice' }))],
        ['a member of three fields', text(wireJoin({ m: [wire(alice).slice(0, 3), wire(bob)] }))],
        ['a member of five fields', text(wireJoin({ m: [[...wire(alice), 'x'], wire(bob)] }))],
        ['a member field that is a number', text(wireJoin({ m: [[...wire(alice).slice(0, 3), 1], wire(bob)] }))],
        ['a member that is an object', text(wireJoin({ m: [alice, wire(bob)] }))],
        ['to is not a list', text(wireJoin({ to: 'bob' }))],
        ['to of three', text(wireJoin({ to: ['bob', bob.fingerprint, 'x'] }))],
        ['to[0] is a number', text(wireJoin({ to: [1, bob.fingerprint] }))],
        ['to[1] is a number', text(wireJoin({ to: ['bob', 1] }))],
        ['inline roster with a page count', text(wireJoin({ pn: 1 }))],
        ['both an inline roster and pages', text(wireJoin({ r: toBase64(new Uint8Array(32)), pn: 1 }))],
        ['paged without a page count', text(wireJoin({ m: undefined, r: toBase64(new Uint8Array(32)) }))],
        ['paged with a string page count', text(wireJoin({ m: undefined, r: toBase64(new Uint8Array(32)), pn: '1' }))],
        ['paged with a hash that is not base64', text(wireJoin({ m: undefined, r: '!!', pn: 1 }))],
        ['paged with a hash that is a number', text(wireJoin({ m: undefined, r: 5, pn: 1 }))],
        ['paged with a short hash', text(wireJoin({ m: undefined, r: toBase64(new Uint8Array(31)), pn: 1 }))],
        ['an epoch past u32', text(wireJoin({ epoch: 2 ** 32 }))],
        ['a short room key', text(wireJoin({ key: toBase64(new Uint8Array(31)) }))],
      ];
      for (const [what, json] of cases) expect((await open(await envelope(signedJoin(json)))).status, what).to.equal(EnvelopeStatus.MALFORMED);
    });

    it('tells a version it does not know from a malformed join, and says which older version an unsigned literal holds', async () => {
      expect((await open(await envelope(signedJoin(text(wireJoin({ v: 4 })))))).status).to.equal(EnvelopeStatus.UNSUPPORTED_VERSION);
      expect((await open(await envelope(signedJoin(text(wireJoin({ v: 2 })))))).status).to.equal(EnvelopeStatus.UNSUPPORTED_VERSION);
      for (const v of [1, 2] as const) {
        const r = await open(await envelope(text({ v, room })));
        expect(r).to.deep.equal({ status: EnvelopeStatus.UNSUPPORTED_VERSION, legacy: v });
      }
      // Not a v1/v2 payload, or not JSON at all, or JSON after a leading space: unsigned.
      for (const literal of [text({ v: 4 }), text({ v: '1' }), text(' {"v":1}'), text('{"v":1'), text('hello')]) {
        expect(await open(await envelope(literal))).to.deep.equal({ status: EnvelopeStatus.UNSIGNED });
      }
      // The NUL that ends the JSON must have JSON before it and a signature after it.
      const json = text(wireJoin());
      expect((await open(await envelope(concatBytes(NUL, json)))).status).to.equal(EnvelopeStatus.UNSIGNED);
      expect((await open(await envelope(concatBytes(json, NUL)))).status).to.equal(EnvelopeStatus.UNSIGNED);
    });

    it('refuses a message that is not encrypted to a public key, and names the other account a join was for', async () => {
      const sym = (await encrypt({ message: await createMessage({ binary: signedJoin(text(wireJoin())) }), passwords: ['pw'], format: 'binary' })) as Uint8Array;
      expect(await open(sym)).to.deep.include({ status: EnvelopeStatus.MALFORMED, reason: 'not a public-key encrypted message' });
      const sealed = (await seal(join())).data!;
      const other = await openJoinEnvelope({ data: sealed, decryptionKey: f.v6ids.priv, keybotKey: f.keybot.pub, expectedAccount: 'carol', now: t0 });
      expect(other).to.deep.equal({ status: EnvelopeStatus.WRONG_RECIPIENT, reason: 'for bob' });
      // Signed over bob's fingerprint, but the payload names another key of bob's: not for this key.
      const otherKey = await open(await envelope(signedJoin(text(wireJoin({ to: ['bob', carol.fingerprint], m: [wire(alice), ['bob', carol.fingerprint, bob.signingKey.alg, bob.signingKey.key]] })))));
      expect(otherKey).to.deep.equal({ status: EnvelopeStatus.WRONG_RECIPIENT, reason: 'for bob' });
    });

    it('opens exactly at the edges of its time window (5 min ahead, 15 min old) and not a millisecond past', async () => {
      const sealed = (await seal(join())).data!;
      expect((await open(sealed, t0 - 5 * 60_000)).status).to.equal(EnvelopeStatus.OK);
      expect((await open(sealed, t0 - 5 * 60_000 - 1)).status).to.equal(EnvelopeStatus.NOT_YET_VALID);
      expect((await open(sealed, t0 + 15 * 60_000)).status).to.equal(EnvelopeStatus.OK);
      expect((await open(sealed, t0 + 15 * 60_000 + 1)).status).to.equal(EnvelopeStatus.EXPIRED);
    });
  });

  describe('roster pages', () => {
    const pageJson = (over: Record<string, unknown> = {}): Record<string, unknown> => {
      const w: Record<string, unknown> = { v: 3, t: 'roster', room, epoch: 10, r: toBase64(new Uint8Array(32).fill(1)), i: 1, n: 1, m: [wire(alice), wire(bob)], ...over };
      for (const k of Object.keys(w)) if (w[k] === undefined) delete w[k];
      return w;
    };
    const signedPage = (json: Uint8Array): Uint8Array => concatBytes(json, NUL, keybotSign('sealchat-roster-v3\0', json));
    const verify = (data: Uint8Array) => verifyRosterPage({ data, keybotKey: f.keybot.pub });

    it('verifies the page wire form this test signs, up to index = count = 128', () => {
      const ok = verify(signedPage(text(pageJson())));
      expect(ok.status).to.equal(EnvelopeStatus.OK);
      expect(ok.page).to.deep.equal({ room, epoch: 10, hash: new Uint8Array(32).fill(1), index: 1, count: 1, members: [alice, bob] });
      expect(verify(signedPage(text(pageJson({ i: 128, n: 128 })))).status).to.equal(EnvelopeStatus.OK);
      expect(verify(signedPage(text(pageJson({ i: 3, n: 3 })))).status).to.equal(EnvelopeStatus.OK);
    });

    it('refuses, as MALFORMED, each keybot-signed page that does not parse or breaks the schema', () => {
      const cases: Array<[string, Uint8Array]> = [
        ['not JSON', text('{"v":3')],
        ['v is not 3', text(pageJson({ v: 2 }))],
        ['t is not roster', text(pageJson({ t: 'epoch' }))],
        ['a bad room', text(pageJson({ room: 'a room' }))],
        ['an epoch past u32', text(pageJson({ epoch: 2 ** 32 }))],
        ['a hash that is a number', text(pageJson({ r: 1 }))],
        ['a short hash', text(pageJson({ r: toBase64(new Uint8Array(31)) }))],
        ['no members', text(pageJson({ m: [] }))],
        ['members not a list', text(pageJson({ m: 'alice' }))],
        ['a member of three fields', text(pageJson({ m: [wire(alice).slice(0, 3)] }))],
        ['a member listed twice', text(pageJson({ m: [wire(alice), wire(alice)] }))],
        ['count 0', text(pageJson({ i: 1, n: 0 }))],
        ['count 129', text(pageJson({ i: 1, n: 129 }))],
        ['count 1.5', text(pageJson({ i: 1, n: 1.5 }))],
        ['count as a string', text(pageJson({ i: 1, n: '1' }))],
        ['index 0', text(pageJson({ i: 0, n: 2 }))],
        ['index past count', text(pageJson({ i: 3, n: 2 }))],
        ['index 1.5', text(pageJson({ i: 1.5, n: 2 }))],
      ];
      for (const [what, json] of cases) expect(verify(signedPage(json)).status, what).to.equal(EnvelopeStatus.MALFORMED);
      // Framing: JSON, then NUL, then a signature; neither part may be empty.
      const json = text(pageJson());
      expect(verify(concatBytes(NUL, json)).status).to.equal(EnvelopeStatus.MALFORMED);
      expect(verify(concatBytes(json, NUL)).status).to.equal(EnvelopeStatus.MALFORMED);
      expect(verify(json).status).to.equal(EnvelopeStatus.MALFORMED);
    });

    it("packs members by bytes: each page's entries fit its budget, no page is empty, and each page is as full as the next member allows", () => {
      const roster = [...crowd(300), bob, carol];
      for (const maxBytes of [1024, 4096, 40 * 1024]) {
        const { pages } = signRosterPages({ signer: f.keybot.priv, room, epoch: 10, roster, maxBytes });
        const members = pages.map((d) => verify(d).page!.members);
        const cost = (ms: EnvelopeMember[]): number => ms.reduce((n, m) => n + JSON.stringify(wire(m)).length + 1, 0);
        for (const [i, ms] of members.entries()) {
          expect(ms.length, `page ${i + 1} at ${maxBytes}`).to.be.greaterThan(0);
          expect(cost(ms), `page ${i + 1} at ${maxBytes}`).to.be.at.most(maxBytes - 200);
          if (i + 1 < members.length) expect(cost([...ms, members[i + 1]![0]!]), `page ${i + 1} at ${maxBytes}`).to.be.greaterThan(maxBytes - 200);
        }
        expect(members.flat().length).to.equal(roster.length);
      }
      // A member larger than the budget still gets a page of its own, and no page is empty.
      const { pages } = signRosterPages({ signer: f.keybot.priv, room, epoch: 10, roster: [alice, bob, carol], maxBytes: 100 });
      expect(pages.map((d) => verify(d).page!.members.length)).to.deep.equal([1, 1, 1]);
    });

    it('refuses to sign pages for a bad room, epoch or roster, or one that needs more than 128 pages, naming the problem', () => {
      const sign = (over: { room?: string; epoch?: number; roster?: EnvelopeMember[]; maxBytes?: number }) => () =>
        signRosterPages({ signer: f.keybot.priv, room: over.room ?? room, epoch: over.epoch ?? 10, roster: over.roster ?? [alice, bob], ...(over.maxBytes ? { maxBytes: over.maxBytes } : {}) });
      expect(sign({ room: 'a room' })).to.throw(TypeError, /^signRosterPages: room and epoch$/);
      expect(sign({ epoch: -1 })).to.throw(TypeError, /^signRosterPages: room and epoch$/);
      expect(sign({ roster: [] })).to.throw(TypeError, /^signRosterPages: roster must list 1 to 5000 members$/);
      expect(sign({ roster: 'x' as unknown as EnvelopeMember[] })).to.throw(TypeError, /^signRosterPages: roster must list 1 to 5000 members$/);
      expect(sign({ roster: crowd(5001) })).to.throw(TypeError, /^signRosterPages: roster must list 1 to 5000 members$/);
      expect(sign({ roster: crowd(5000) })).not.to.throw();
      expect(sign({ roster: [alice, alice] })).to.throw(TypeError, /^signRosterPages: roster: member alice is listed twice$/);
      expect(sign({ roster: crowd(129), maxBytes: 100 })).to.throw(TypeError, /^signRosterPages: the roster needs more than 128 pages$/);
      expect(sign({ roster: crowd(128), maxBytes: 100 })).not.to.throw();
      expect(() => signRosterPages(undefined as never)).to.throw(TypeError, /signRosterPages/);
      expect(() => verifyRosterPage(undefined as never)).to.throw(TypeError, /verifyRosterPage/);
    });

    it('assembles a roster whose recipient is not its first member, and says why it refuses each other set of pages', () => {
      const roster = [...crowd(40, 'a'), ...crowd(40, 'z'), bob];
      const signed = signRosterPages({ signer: f.keybot.priv, room, epoch: 10, roster, maxBytes: 1024 });
      const pages = signed.pages.map((d) => verify(d).page!);
      const count = pages.length;
      const assemble = (ps: RosterPage[], over: { hash?: Uint8Array; count?: number; recipient?: { account: string; fingerprint: string } } = {}) =>
        assembleRoster({ pages: ps, room, epoch: 10, hash: over.hash ?? signed.hash, count: over.count ?? count, recipient: over.recipient ?? { account: 'Bob', fingerprint: bob.fingerprint } });
      expect(assemble(pages).status).to.equal(RosterStatus.OK);
      expect(assemble(pages, { recipient: { account: 'bob', fingerprint: carol.fingerprint } })).to.deep.equal({ status: RosterStatus.NOT_LISTED });
      expect(assemble(pages, { recipient: { account: 'carol', fingerprint: carol.fingerprint } })).to.deep.equal({ status: RosterStatus.NOT_LISTED });
      expect(assemble(pages, { hash: new Uint8Array(32) })).to.deep.equal({ status: RosterStatus.FOREIGN_PAGE, reason: `a page of ${room} epoch 10` });
      expect(assemble([pages[0]!, pages[0]!])).to.deep.equal({ status: RosterStatus.DUPLICATE_PAGE, reason: `page 1/${count}` });
      expect(assemble(pages.slice(1))).to.deep.equal({ status: RosterStatus.INCOMPLETE, reason: `page 1 of ${count} is missing` });
      // Pages signed for the right hash but out of order, or repeating the last account of a page.
      const swap = (a: RosterPage, b: RosterPage): RosterPage[] => [{ ...a, index: b.index }, { ...b, index: a.index }];
      expect(assemble([...swap(pages[0]!, pages[1]!), ...pages.slice(2)])).to.deep.equal({ status: RosterStatus.BAD_ROSTER, reason: 'page 2 is out of order' });
      const again = pages.map((p, i) => (i === 1 ? { ...p, members: [pages[0]!.members.at(-1)!, ...p.members] } : p));
      expect(assemble(again)).to.deep.equal({ status: RosterStatus.BAD_ROSTER, reason: 'page 2 is out of order' });
      const fewer = pages.map((p, i) => (i === 1 ? { ...p, members: p.members.slice(1) } : p));
      expect(assemble(fewer)).to.deep.equal({ status: RosterStatus.BAD_ROSTER, reason: 'the pages do not hash to the roster the join envelope names' });
    });

    it('assembles a roster of exactly 5000 members', () => {
    const roster = crowd(5000);
    const signed = signRosterPages({ signer: f.keybot.priv, room, epoch: 10, roster });
    const pages = signed.pages.map((d) => verify(d).page!);
    const r = assembleRoster({ pages, room, epoch: 10, hash: signed.hash, count: pages.length, recipient: { account: 'm4999', fingerprint: roster[4999]!.fingerprint } });
    expect(r.status).to.equal(RosterStatus.OK);
    expect(r.roster).to.have.length(5000);
  });

  it('refuses pages that join to more than 5000 members, even when they hash right', () => {
      const big = crowd(5001);
      // keybot refuses to sign such a roster (above); a member gets such pages only if they were signed one by one.
      const pages: RosterPage[] = [];
      for (let i = 0; i < 3; i++) pages.push({ room, epoch: 10, hash: new Uint8Array(32), index: i + 1, count: 3, members: big.slice(i * 1667, (i + 1) * 1667) });
      expect(assembleRoster({ pages, room, epoch: 10, hash: new Uint8Array(32), count: 3, recipient: { account: 'm0000', fingerprint: big[0]!.fingerprint } })).to.deep.equal({ status: RosterStatus.BAD_ROSTER, reason: 'not a roster' });
    });

    it('tells an epoch notice from a roster page by its type, and neither from anything else', () => {
      expect(signedJsonKind(signedPage(text(pageJson())))).to.equal('roster');
      expect(signedJsonKind(signedPage(text(pageJson({ t: 'epoch' }))))).to.equal('epoch');
      expect(signedJsonKind(signedPage(text(pageJson({ t: 'join' }))))).to.equal(undefined);
      expect(signedJsonKind(text(pageJson()))).to.equal(undefined); // no NUL, no signature
      expect(signedJsonKind(concatBytes(text('[1]'), NUL, Uint8Array.of(1)))).to.equal(undefined);
      expect(signedJsonKind(new Uint8Array(0))).to.equal(undefined);
    });
  });

  describe('epoch notices', () => {
    function notice(over: Partial<EpochNotice> = {}): EpochNotice {
      return { room, epoch: 11, prev: 10, issuedAt: t0, roster: rosterHash([alice, bob]), ops: [], added: [], gone: [], ...over };
    }
    const noticeWire = (over: Record<string, unknown> = {}): Record<string, unknown> => {
      const w: Record<string, unknown> = { v: 3, t: 'epoch', room, epoch: 11, prev: 10, iat: t0, r: toBase64(rosterHash([alice, bob])), ops: [], add: [], gone: [], ...over };
      for (const k of Object.keys(w)) if (w[k] === undefined) delete w[k];
      return w;
    };
    const signedNotice = (json: Uint8Array): Uint8Array => concatBytes(json, NUL, keybotSign('sealchat-epoch-v3\0', json));
    const verify = (data: Uint8Array, now = t0) => verifyEpochNotice({ data, keybotKey: f.keybot.pub, now });

    it('refuses to sign each notice that breaks the schema, naming the field', () => {
      const cases: Array<[Partial<EpochNotice>, RegExp]> = [
        [{ room: 'a room' }, /^signEpochNotice: room must be a channel name$/],
        [{ epoch: 10, prev: 10 }, /^signEpochNotice: epoch must be a u32 greater than prev$/],
        [{ epoch: 9, prev: 10 }, /: epoch must be a u32 greater than prev$/],
        [{ epoch: 2 ** 32 }, /: epoch must be a u32 greater than prev$/],
        [{ prev: -1 }, /: epoch must be a u32 greater than prev$/],
        [{ issuedAt: -1 }, /: issuedAt must be a time in ms$/],
        [{ issuedAt: 0.5 }, /: issuedAt must be a time in ms$/],
        [{ roster: new Uint8Array(31) }, /: roster must be a 32-byte hash$/],
        [{ roster: [...new Uint8Array(32)] as unknown as Uint8Array }, /: roster must be a 32-byte hash$/],
        [{ ops: 'x' as unknown as Uint8Array[] }, /: ops must be a list of operations$/],
        [{ ops: Array.from({ length: 65 }, () => Uint8Array.of(1)) }, /: ops must be a list of operations$/],
        [{ ops: [new Uint8Array(0)] }, /: ops must be a list of operations$/],
        [{ ops: ['x' as unknown as Uint8Array] }, /: ops must be a list of operations$/],
        [{ added: 'x' as unknown as EnvelopeMember[] }, /: added must be a list of members$/],
        [{ added: crowd(5001) }, /: added must be a list of members$/],
        [{ added: [alice, alice] }, /: added: member alice is listed twice$/],
        [{ gone: 'bob' as unknown as string[] }, /: gone must be a list of accounts$/],
        [{ gone: ['b b'] }, /: gone must be a list of accounts$/],
        [{ gone: Array.from({ length: 5001 }, (_, i) => `g${i}`) }, /: gone must be a list of accounts$/],
      ];
      for (const [over, message] of cases) expect(() => signEpochNotice({ signer: f.keybot.priv, notice: notice(over) }), JSON.stringify(Object.keys(over))).to.throw(TypeError, message);
      for (const over of [{ issuedAt: 0, epoch: 1, prev: 0 }, { ops: Array.from({ length: 64 }, () => Uint8Array.of(1)) }, { added: crowd(5000) }, { gone: Array.from({ length: 5000 }, (_, i) => `g${i}`) }] as Array<Partial<EpochNotice>>) {
        expect(() => signEpochNotice({ signer: f.keybot.priv, notice: notice(over) }), JSON.stringify(Object.keys(over))).not.to.throw();
      }
      expect(() => signEpochNotice(undefined as never)).to.throw(TypeError, /signEpochNotice/);
      expect(() => verifyEpochNotice(undefined as never)).to.throw(TypeError, /verifyEpochNotice/);
    });

    it('verifies the wire form this test signs, and refuses, as MALFORMED, each signed notice that does not parse or breaks the schema', () => {
      expect(verify(signEpochNotice({ signer: f.keybot.priv, notice: notice({ ops: Array.from({ length: 64 }, () => Uint8Array.of(1)) }) }).data).status).to.equal(EnvelopeStatus.OK);
      const ok = verify(signedNotice(text(noticeWire({ add: [wire(carol)], gone: ['bob'], ops: ['AQ=='] }))));
      expect(ok.status).to.equal(EnvelopeStatus.OK);
      expect(ok.notice).to.deep.equal(notice({ added: [carol], gone: ['bob'], ops: [Uint8Array.of(1)] }));
      const cases: Array<[string, Uint8Array]> = [
        ['not JSON', text('{"v":3')],
        ['v is not 3', text(noticeWire({ v: 2 }))],
        ['t is not epoch', text(noticeWire({ t: 'roster' }))],
        ['a roster hash that is a number', text(noticeWire({ r: 1 }))],
        ['a roster hash not base64', text(noticeWire({ r: '!!' }))],
        ['ops not a list', text(noticeWire({ ops: 'x' }))],
        ['add not a list', text(noticeWire({ add: 'x' }))],
        ['an added member of three fields', text(noticeWire({ add: [wire(carol).slice(0, 3)] }))],
        ['gone not a list', text(noticeWire({ gone: 'bob' }))],
        ['epoch not after prev', text(noticeWire({ epoch: 10 }))],
        ['a bad account gone', text(noticeWire({ gone: ['b b'] }))],
      ];
      for (const [what, json] of cases) expect(verify(signedNotice(json)).status, what).to.equal(EnvelopeStatus.MALFORMED);
      const json = text(noticeWire());
      expect(verify(concatBytes(NUL, json)).status).to.equal(EnvelopeStatus.MALFORMED);
      expect(verify(concatBytes(json, NUL)).status).to.equal(EnvelopeStatus.MALFORMED);
    });

    it('verifies exactly at the edges of its time window (5 min ahead, 15 min old) and not a millisecond past', () => {
      const data = signEpochNotice({ signer: f.keybot.priv, notice: notice() }).data;
      expect(verify(data, t0 - 5 * 60_000).status).to.equal(EnvelopeStatus.OK);
      expect(verify(data, t0 - 5 * 60_000 - 1).status).to.equal(EnvelopeStatus.NOT_YET_VALID);
      expect(verify(data, t0 + 15 * 60_000).status).to.equal(EnvelopeStatus.OK);
      expect(verify(data, t0 + 15 * 60_000 + 1).status).to.equal(EnvelopeStatus.EXPIRED);
    });

    it('applies a removal by a member, refuses a removal of a non-member and a create inside an epoch, and says why', () => {
      const op = (action: 'remove' | 'create', target: EnvelopeMember, by = alice, signer = f.ecc) =>
        signRoomOp({ op: { action, room, roster: rosterHash([alice, bob]), actor: { account: by.account, fingerprint: member(signer).fingerprint }, targets: [{ account: target.account, fingerprint: target.fingerprint }], issuedAt: t0, nonce: new Uint8Array(16).fill(3) }, signer: signer.priv });
      const removed = advanceRoster({ roster: [alice, bob], notice: notice({ ops: [op('remove', bob)], roster: rosterHash([alice]) }) });
      expect(removed.status).to.equal(RoomOpStatus.OK);
      expect(removed.roster).to.deep.equal([alice]);
      expect(removed.changes).to.deep.equal([{ action: 'remove', actor: 'alice', targets: ['bob'] }]);
      const notMember = advanceRoster({ roster: [alice, bob], notice: notice({ ops: [op('remove', carol)] }) });
      expect(notMember.status).to.equal(RoomOpStatus.BAD_TARGET);
      const create = advanceRoster({ roster: [alice, bob], notice: notice({ ops: [op('create', carol)] }) });
      expect(create).to.deep.equal({ status: RoomOpStatus.STALE_ROSTER, reason: 'a create inside an epoch of an existing room' });
      const stranger = advanceRoster({ roster: [bob], notice: notice({ ops: [op('remove', bob)] }) });
      expect(stranger).to.deep.equal({ status: RoomOpStatus.NOT_A_MEMBER, reason: 'alice acted without being a member' });
      const forged = advanceRoster({ roster: [alice, bob], notice: notice({ ops: [op('remove', bob, alice, f.mallory)] }) });
      expect(forged).to.deep.include({ reason: 'an operation by alice does not verify' });
      expect(advanceRoster({ roster: [alice, bob], notice: notice({ ops: [Uint8Array.of(1, 2, 3)] }) })).to.deep.include({ reason: 'an operation does not parse' });
      expect(advanceRoster({ roster: [alice, bob], notice: notice({ roster: new Uint8Array(32) }) })).to.deep.equal({ status: RoomOpStatus.STALE_ROSTER, reason: 'the announced roster is not the one the operations give' });
      expect(advanceRoster({ roster: [alice, bob], notice: notice({ added: [carol] }) })).to.deep.equal({ status: RoomOpStatus.BAD_TARGET, reason: 'carol added without an operation' });
      const dave = { ...carol, account: 'dave' };
      expect(advanceRoster({ roster: [alice, bob], notice: notice({ added: [carol, dave] }) })).to.deep.equal({ status: RoomOpStatus.BAD_TARGET, reason: 'carol, dave added without an operation' });
      const addCarol = signRoomOp({ op: { action: 'add', room, roster: rosterHash([alice, bob]), actor: { account: 'alice', fingerprint: alice.fingerprint }, targets: [{ account: 'carol', fingerprint: carol.fingerprint }], issuedAt: t0, nonce: new Uint8Array(16).fill(4) }, signer: f.ecc.priv });
      expect(advanceRoster({ roster: [alice, bob], notice: notice({ ops: [addCarol], added: [] }) })).to.deep.equal({ status: RoomOpStatus.BAD_TARGET, reason: 'no entry for carol' });
    });
  });

  describe('key lines', () => {
    const digest = new Uint8Array(32).fill(5);

    it('opens only a whole, well-formed line: nothing before SC1K or after the key, an epoch within u32', () => {
      const mk = generateMemberKey();
      const key = generateRoomKey();
      const line = wrapEpochKey({ memberKey: mk, key, room, epoch: 0, account: 'bob', digest });
      expect(unwrapEpochKey({ line, memberKey: mk, account: 'bob', digest })).to.deep.equal({ room, epoch: 0, key });
      expect(unwrapEpochKey({ line: `x${line}`, memberKey: mk, account: 'bob', digest })).to.equal(undefined);
      expect(unwrapEpochKey({ line: `${line} x`, memberKey: mk, account: 'bob', digest })).to.equal(undefined);
      // 2^32 is epoch 0 modulo 2^32 in the additional data: it must not open as epoch 4294967296.
      expect(unwrapEpochKey({ line: line.replace(' 0 ', ' 4294967296 '), memberKey: mk, account: 'bob', digest })).to.equal(undefined);
      expect(peekKeyLine(line)).to.deep.equal({ room, epoch: 0 });
      expect(peekKeyLine(`x${line}`)).to.equal(undefined);
    });

    it('refuses to wrap with a member key or room key of the wrong size', () => {
      const wrap = (memberKey: Uint8Array, key: Uint8Array) => () => wrapEpochKey({ memberKey, key, room, epoch: 1, account: 'bob', digest });
      expect(wrap(new Uint8Array(31), generateRoomKey())).to.throw(TypeError, /^wrapEpochKey: key sizes$/);
      expect(wrap(generateMemberKey(), new Uint8Array(33))).to.throw(TypeError, /^wrapEpochKey: key sizes$/);
    });
  });
});
