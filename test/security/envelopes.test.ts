/**
 * Attack 2: forged key envelopes, built from genuine ones. The real keybot opens a room and
 * rekeys it; a second session of bob's account (what the ircd, or anyone on a network without
 * TLS, sees of bob's traffic) records every SC1E line keybot sent him. The attacker then delivers
 * replays, tampered parts and spliced parts *under keybot's nick*: the sealchat daemon never lets
 * anyone else use that nick, so this is what only a compromised daemon or a network attacker
 * could do; here the lines go straight into bob's engine (RoomCryptoEngine.handleIncoming, the
 * path every PRIVMSG/NOTICE from the socket takes).
 *
 * Already proven elsewhere, end to end, and not repeated here:
 * - an envelope from any nick but keybot, even one with keybot's real signature:
 *   test/e2e/rooms.test.ts "an envelope from any nick but keybot, or signed by another key, is
 *   rejected" (`not-keybot`, delivered by the real daemon), test/client/client.test.ts "rejects
 *   an envelope that does not come from keybot";
 * - an envelope under keybot's nick signed by another key: the same e2e test (`bad-signature`),
 *   test/client/engine.test.ts "rejects an envelope signed by another key than the pinned keybot key";
 * - a keybot that offers another key than the pinned one: test/client/client.test.ts "refuses,
 *   loudly, a keybot key other than the remembered one, and every envelope after it".
 */
import { expect } from 'chai';
import type { SealClient } from '../../src/client/client.js';
import { RoomCryptoEngine, type IncomingResult } from '../../src/client/index.js';
import { parsePart } from '../../src/crypto/index.js';
import { insiderHas, next, openRoom, sameEpoch, startSecWorld, until, type CapturedEnvelope, type Insider, type SecWorld } from './world.js';

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Rewrite a part's id and/or count, keeping its index and chunk. */
function relabel(line: string, id: string, count?: number): string {
  const p = parsePart(line)!;
  return `SC1E ${id} ${p.index}/${count ?? p.count} ${p.chunk}`;
}

describe('security: forged envelopes made from genuine ones', function () {
  this.timeout(30_000);
  let w: SecWorld;
  let tap: Insider;
  let alice: SealClient, bob: SealClient, carol: SealClient;
  let room: string;
  let e1: number, e2: number;
  /** bob's envelopes: epoch 1, and epoch 2 twice (re-sent on `key #room`). */
  let env1: CapturedEnvelope, env2: CapturedEnvelope, env2again: CapturedEnvelope;
  /** alice's line in epoch 2, as the room carried it. */
  let aliceLine: string;

  before(async function () {
    w = await startSecWorld(['alice', 'bob', 'carol']);
    tap = await w.insider('bob');
    [alice, bob, carol] = await Promise.all([w.member('alice'), w.member('bob'), w.member('carol')]);
    room = await openRoom(alice, ['bob']);
    e1 = await sameEpoch(room, [alice, bob], ['alice', 'bob']);
    expect(await alice.inviteTo(room, ['carol'])).to.include(`added carol to ${room}`);
    e2 = await sameEpoch(room, [alice, bob, carol], ['alice', 'bob', 'carol'], e1);
    // bob followed epoch 2 by its notice and his key line (envelope version 3): his envelopes of
    // epoch 2 are the join envelopes keybot re-sends on `key #room`, asked for twice.
    expect(await bob.requestKey(room)).to.include(`sent you the key of ${room} again (epoch ${e2})`);
    expect(await bob.requestKey(room)).to.include(`sent you the key of ${room} again (epoch ${e2})`);
    await until(() => tap.envelopes.filter((e) => e.payload?.epoch === e2).length === 2, 'the re-sent envelope');
    await insiderHas(tap, room, e1);
    [env1, env2, env2again] = [tap.envelopes.find((e) => e.payload?.epoch === e1)!, ...tap.envelopes.filter((e) => e.payload?.epoch === e2)] as [
      CapturedEnvelope,
      CapturedEnvelope,
      CapturedEnvelope,
    ];
    expect(env2.id).to.not.equal(env2again.id);
    const from = tap.lines.length;
    await alice.send(room, 'spoken in epoch 2');
    aliceLine = (await tap.waitFor((l) => l.nick === 'alice' && l.command === 'PRIVMSG', "alice's line", from)).params[1]!;
  });
  after(async () => w?.stop());

  /** A companion of bob's that has seen nothing yet (say, just restarted). */
  function fresh(): RoomCryptoEngine {
    return new RoomCryptoEngine({ account: 'bob', privateKey: w.users.bob!.party.priv, keybotKey: w.keybotPub });
  }

  async function feed(engine: RoomCryptoEngine, lines: string[], now?: number): Promise<IncomingResult[]> {
    const out: IncomingResult[] = [];
    for (const text of lines) out.push(await engine.handleIncoming({ from: 'keybot', target: 'bob', command: 'NOTICE', text, ...(now !== undefined ? { now } : {}) }));
    return out;
  }
  const last = <T>(xs: T[]): T => xs[xs.length - 1]!;

  it('the genuine envelopes are accepted (control)', async function () {
    expect(env1.lines.length).to.be.greaterThan(1);
    expect(env2.lines.length).to.be.greaterThan(1);
    expect(last(await feed(fresh(), env2.lines))).to.include({ kind: 'key', epoch: e2 });
  });

  it('a genuine envelope of an earlier epoch, replayed, is taken for reading only and never sent under; the current one again is refused', async function () {
    const live = bob.crypto!;
    // An earlier epoch bob already held: not taken again.
    const replay = last(await feed(live, env1.lines));
    expect(replay).to.include({ kind: 'envelope-rejected', from: 'keybot', code: 'not-newer', room, epoch: e1 });
    expect((replay as { reason: string }).reason).to.match(/already received/);
    // The current epoch again (a replay of the latest envelope): refused too, nothing changes.
    expect(last(await feed(live, env2.lines))).to.include({ kind: 'envelope-rejected', code: 'not-newer', epoch: e2 });
    expect(live.roomInfo(room)).to.include({ epoch: e2, hasKey: true });
    // bob still reads the room, and sends, under epoch 2.
    const got = next(bob, 'message', (m) => m.text === 'still epoch 2');
    await alice.send(room, 'still epoch 2');
    expect(await got).to.include({ from: 'alice', epoch: e2 });
    expect((await bob.send(room, 'bob under epoch 2')).epoch).to.equal(e2);

    // A companion that restarted accepts the newest, then takes the older one for reading only
    // (history: rooms that outlive a connection); its sending key stays the newest.
    const f = fresh();
    expect(last(await feed(f, env2.lines))).to.include({ kind: 'key', epoch: e2 });
    expect(last(await feed(f, env1.lines))).to.include({ kind: 'key', epoch: e1, readOnly: true });
    expect(f.roomInfo(room)).to.include({ epoch: e2 });
  });

  it('a companion that holds nothing sends under an old envelope only within its 15-minute lifetime; past it, the key only reads', async function () {
    // The one replay the epoch rule cannot stop (docs/PROTOCOL.md rule 7): a restarted companion
    // knows no epoch yet. The issue time, under keybot's signature, bounds the window for SENDING;
    // an older envelope (an epoch missed while away, from the mailbox) is taken for reading only.
    const issued = env1.payload!.issuedAt;
    const lateAt = issued + 15 * 60_000 + 1_000;
    const stale = fresh();
    const late = last(await feed(stale, env1.lines, lateAt));
    expect(late).to.include({ kind: 'key', epoch: e1, readOnly: true });
    // Nothing can be sent under it.
    const tried = stale.encryptOutgoing({ room, text: 'under a replayed key?', now: lateAt });
    expect(tried.status, JSON.stringify(tried)).to.equal('no-key');
    expect(stale.roomInfo(room, lateAt)).to.not.include({ epoch: e1, hasKey: true });
    const early = last(await feed(fresh(), env1.lines, issued - 5 * 60_000 - 1_000));
    expect(early).to.include({ kind: 'envelope-rejected', code: 'not-yet-valid' });
    const inTime = fresh();
    const ok = last(await feed(inTime, env1.lines, issued + 15 * 60_000 - 1_000));
    expect(ok).to.include({ kind: 'key', epoch: e1 });
    expect(ok).to.not.have.property('readOnly');
    // A year and a day later it is refused even for reading.
    expect(last(await feed(fresh(), env1.lines, issued + 367 * 86_400_000))).to.include({ kind: 'envelope-rejected', code: 'expired' });
  });

  it('a genuine part with one base64 character changed is refused, wherever the change is', async function () {
    const chunks = env2.lines.map((l) => parsePart(l)!);
    const total = chunks.reduce((n, p) => n + p.chunk.length, 0);
    const codes = new Map<string, number>();
    let tried = 0;
    for (let pos = 0; pos < total; pos += 4) {
      // Find the part and the offset of this position.
      let k = 0;
      let off = pos;
      while (off >= chunks[k]!.chunk.length) off -= chunks[k++]!.chunk.length;
      const c = chunks[k]!.chunk[off]!;
      if (c === '=') continue;
      const flipped = B64[(B64.indexOf(c) + 1) % 64]!;
      const lines = chunks.map((p, j) => `SC1E ${p.id} ${p.index}/${p.count} ${j === k ? p.chunk.slice(0, off) + flipped + p.chunk.slice(off + 1) : p.chunk}`);
      const engine = fresh();
      const results = await feed(engine, lines);
      const r = last(results);
      expect(r.kind, `position ${pos}`).to.equal('envelope-rejected');
      const code = (r as { code: string }).code;
      codes.set(code, (codes.get(code) ?? 0) + 1);
      expect(engine.roomInfo(room), `position ${pos}`).to.equal(undefined);
      tried++;
    }
    const seen = Object.fromEntries([...codes].sort());
    console.log(`      [figure] ${tried} single-character changes over ${total} base64 characters of a ${env2.lines.length}-part envelope: ${JSON.stringify(seen)}`);
    expect(tried).to.be.greaterThan(50);
    // Integrity failures only: the change breaks the OpenPGP framing (malformed), the encrypted
    // session key or data (decrypt-failed), the key id it is addressed to (not-for-me), or the
    // canonical base64 (parts). Never a key, never a signature accepted over changed data.
    for (const code of codes.keys()) expect(['decrypt-failed', 'malformed', 'not-for-me', 'parts', 'bad-signature', 'unsigned']).to.include(code);
    expect(codes.get('decrypt-failed') ?? 0).to.be.greaterThan(tried / 2);
  });

  it('parts of two envelopes never mix: same id with different data, spliced parts, interleaved ids', async function () {
    const t0 = Date.now();
    const [a1, a2, ...aRest] = env2.lines as [string, string, ...string[]];
    const other = env2again.lines;

    // Same id, different data at an index already held: the whole message is dropped.
    const f = fresh();
    const clash = await feed(f, [a1, a2, relabel(other[1]!, env2.id)], t0);
    expect(clash.slice(0, 2)).to.deep.equal([{ kind: 'hidden' }, { kind: 'hidden' }]);
    expect(last(clash)).to.include({ kind: 'envelope-rejected', code: 'parts' });
    expect((last(clash) as { reason: string }).reason).to.include('inconsistent');
    // The rest of it starts a new, never-completed message; nothing is installed.
    for (const r of await feed(f, aRest, t0)) expect(r).to.deep.equal({ kind: 'hidden' });
    expect(f.roomInfo(room)).to.equal(undefined);
    // The same id with another part count: dropped too.
    const g = fresh();
    const recount = await feed(g, [a1, relabel(a2, env2.id, parsePart(a2)!.count + 1)], t0);
    expect(last(recount)).to.include({ kind: 'envelope-rejected', code: 'parts' });
    // The leftovers expire with the reassembler's timeout, and the genuine envelope then gets through.
    f.sweep(t0 + 30_000);
    expect(last(await feed(f, env2.lines, t0 + 30_000))).to.include({ kind: 'key', epoch: e2 });

    // Spliced: part 1 of one envelope, the other parts of another (same epoch, same size, re-labelled
    // to one id). Each envelope has its own session key, so the whole does not decrypt.
    const spliced = [a1, ...other.slice(1).map((l) => relabel(l, env2.id, env2.lines.length))];
    const s = fresh();
    const splicedResults = await feed(s, spliced.slice(0, env2.lines.length));
    const end = splicedResults.find((r) => r.kind !== 'hidden')!;
    expect(end.kind).to.equal('envelope-rejected');
    expect(['decrypt-failed', 'malformed', 'parts']).to.include((end as { code: string }).code);
    expect(s.roomInfo(room)).to.equal(undefined);

    // Interleaved ids: epoch 1 and epoch 2 line by line. Each reassembles on its own, so both are
    // genuine and both install; the key of epoch 2 is the real one (it reads alice's line).
    const mixed: string[] = [];
    for (let i = 0; i < Math.max(env1.lines.length, env2.lines.length); i++) {
      if (env1.lines[i]) mixed.push(env1.lines[i]!);
      if (env2.lines[i]) mixed.push(env2.lines[i]!);
    }
    const m = fresh();
    // Epoch 2 adds carol: its join envelope (version 3) names alice's signed invite, which explains her.
    const keys = (await feed(m, mixed)).filter((r) => r.kind !== 'hidden');
    expect(keys.map((r) => [r.kind, (r as { epoch?: number }).epoch])).to.deep.equal(
      env1.lines.length <= env2.lines.length ? [['key', e1], ['key', e2]] : [['key', e2], ['envelope-rejected', e1]],
    );
    expect(await m.handleIncoming({ from: 'alice', target: room, command: 'PRIVMSG', text: aliceLine })).to.include({
      kind: 'message',
      from: 'alice',
      text: 'spoken in epoch 2',
      epoch: e2,
    });
  });
});
