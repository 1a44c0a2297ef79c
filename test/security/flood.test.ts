/**
 * Attack 5: exhausting a companion's memory with envelope parts, message parts, held messages
 * and unpinned envelopes. On sealchatd only keybot can use the nick `keybot` and only room members
 * can write to a room, and fakelag holds every client to a few lines a second, so these floods
 * are what a compromised daemon (or, for room lines, many colluding members) could send; they go
 * straight into a RoomCryptoEngine, 100 000 lines each, with `now` supplied so timeouts can be
 * crossed without waiting.
 *
 * The engine does not publish its reassemblers or queues, so the test reads four private fields
 * (the reassemblers' `size`, which is public, and `pendingChars`; the engine's `heldTotal` and
 * `pendingEnvelopes`) to report what is held. The heap growth is reported, not asserted (the JS
 * heap of a shared machine is no precise instrument); the bounds are asserted on the counts.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import v8 from 'node:v8';
import vm from 'node:vm';
import { RoomCryptoEngine, type IncomingResult } from '../../src/client/index.js';
import { FrameStatus, frameParts, generateRoomKey, type PartsReassembler } from '../../src/crypto/index.js';
import { envelopeLines, memberOf, party, type Party } from '../client/fixtures.js';

interface EngineInternals {
  envelopeParts: PartsReassembler;
  messageParts: PartsReassembler;
  heldTotal: number;
  pendingEnvelopes: unknown[];
}
const inside = (e: RoomCryptoEngine): EngineInternals => e as unknown as EngineInternals;
const chars = (r: PartsReassembler): number => (r as unknown as { pendingChars: number }).pendingChars;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
function heapMiB(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

const N = 100_000;
/** Defaults of PartsReassembler (docs/PROTOCOL.md "Envelope parts"). */
const MAX_MESSAGE_CHARS = 4 * Math.ceil((64 * 1024) / 3);
const MAX_PENDING_CHARS = 2 * 1024 * 1024;
const BIG = 'A'.repeat(4000); // parsePart takes lines up to 4096 characters
const IRC = 'B'.repeat(440); // what fits one IRC line

const ROOM = '#sc-flood';

describe('security: floods cannot exhaust a companion\'s memory', function () {
  this.timeout(60_000);
  let keybot: Party, alice: Party, bob: Party, mallory: Party;
  let t0: number;

  before(async function () {
    [keybot, alice, bob, mallory] = await Promise.all(['keybot', 'alice', 'bob', 'mallory'].map((n) => party(n)));
    // After the keys exist: an envelope may not be issued before its signing key was made.
    t0 = Date.now() + 1000;
  });

  const engine = (over: { keybot?: boolean } = {}): RoomCryptoEngine =>
    new RoomCryptoEngine({ account: 'bob', privateKey: bob.priv, ...(over.keybot === false ? {} : { keybotKey: keybot.pub }), clock: () => t0 });

  async function keyUp(e: RoomCryptoEngine, epoch: number, key: Uint8Array, now = t0): Promise<IncomingResult> {
    const lines = await envelopeLines({ to: bob, signer: keybot, room: ROOM, epoch, key, members: [memberOf(alice), memberOf(bob), memberOf(mallory)], issuedAt: now });
    let r: IncomingResult = { kind: 'hidden' };
    for (const text of lines) r = await e.handleIncoming({ from: 'keybot', target: 'bob', command: 'NOTICE', text, now });
    return r;
  }

  function tally(into: Map<string, number>, r: IncomingResult): void {
    const k = r.kind === 'envelope-rejected' || r.kind === 'undecryptable' ? `${r.kind}:${r.code}` : r.kind;
    into.set(k, (into.get(k) ?? 0) + 1);
  }

  it('envelope parts under keybot\'s nick: huge counts, endless ids, oversize chunks, one endless message', async function () {
    const e = engine();
    const parts = inside(e).envelopeParts;
    const heap0 = heapMiB();
    const results = new Map<string, number>();
    let maxSize = 0;
    let maxChars = 0;
    const started = Date.now();
    let endlessIndex = 0;
    for (let i = 0; i < N; i++) {
      let text: string;
      switch (i % 4) {
        case 0: // a new id every time, 999 parts announced, 4000 characters each
          text = `SC1E n${i} 1/999 ${BIG}`;
          break;
        case 1: // one message that never ends (restarted whenever it is dropped)
          endlessIndex = (endlessIndex % 999) + 1;
          text = `SC1E endless ${endlessIndex}/999 ${BIG}`;
          break;
        case 2: // random ids, counts, indexes and IRC-sized chunks
          text = `SC1E r${i % 5000} ${1 + (i % 7)}/${8 + (i % 900)} ${IRC}`;
          break;
        default: // a part that disagrees with what is held under the same id
          text = `SC1E n${i - 3} 2/998 ${IRC}`;
      }
      tally(results, await e.handleIncoming({ from: 'keybot', target: 'bob', command: 'NOTICE', text, now: t0 + (i >> 10) }));
      if (parts.size > maxSize) maxSize = parts.size;
      if (chars(parts) > maxChars) maxChars = chars(parts);
    }
    const ms = Date.now() - started;
    const heap1 = heapMiB();
    console.log(
      `      [figure] ${N} envelope parts in ${ms} ms: held at most ${maxSize} messages, ${(maxChars / 1024).toFixed(0)} KiB of base64; ` +
        `heap ${heap0.toFixed(1)} → ${heap1.toFixed(1)} MiB; results ${JSON.stringify(Object.fromEntries([...results].sort()))}`,
    );
    // Bounds: 4 incomplete messages per sender (and keybot is the only sender), 64 KiB each.
    expect(maxSize).to.be.at.most(4);
    expect(maxChars).to.be.at.most(4 * MAX_MESSAGE_CHARS);
    expect(results.get('key') ?? 0).to.equal(0);
    expect(results.get('envelope-rejected:parts') ?? 0).to.be.greaterThan(N / 2);

    // Timed-out parts are dropped: 30 s after its first part a message is gone.
    e.sweep(t0 + 100 + 29_000);
    expect(parts.size).to.be.greaterThan(0);
    e.sweep(t0 + 100 + 30_000);
    expect(parts.size).to.equal(0);
    expect(chars(parts)).to.equal(0);
    // And the genuine envelope that comes next is accepted.
    expect(await keyUp(e, 10, generateRoomKey(), t0 + 130_000)).to.include({ kind: 'key', epoch: 10 });
  });

  it('room message parts: one member cannot crowd out another; many together are capped and time out', async function () {
    const key = generateRoomKey();
    const e = engine();
    expect(await keyUp(e, 20, key)).to.include({ kind: 'key' });
    const parts = inside(e).messageParts;
    // 1. One member (mallory) floods: she holds at most 4 messages; alice's parts still get through.
    const heap0 = heapMiB();
    let maxSize = 0;
    for (let i = 0; i < N; i++) {
      const text = i % 2 ? `SC1P m${i} 1/999 ${BIG}` : `SC1P m${i} ${1 + (i % 998)}/999 ${IRC}`;
      await e.handleIncoming({ from: 'mallory', target: ROOM, command: 'PRIVMSG', text, now: t0 });
      if (parts.size > maxSize) maxSize = parts.size;
    }
    expect(maxSize).to.be.at.most(4);
    const aliceSays = await aliceParts(key, 1, 'parts get through');
    const shown = await feedAll(e, 'alice', aliceSays, t0);
    expect(shown[shown.length - 1]).to.include({ kind: 'message', from: 'alice', text: 'parts get through' });

    // 2. Two thousand senders in fifty rooms (a daemon that lies, or a crowd of members): the
    //    global caps hold, the flood is refused rather than evicting, and it times out.
    let maxAll = 0;
    let maxAllChars = 0;
    const results = new Map<string, number>();
    for (let i = 0; i < N; i++) {
      const text = `SC1P c${i} 1/999 ${i % 3 ? IRC : BIG}`;
      const r = await e.handleIncoming({ from: `m${i % 2000}`, target: `#sc-r${i % 50}`, command: 'PRIVMSG', text, now: t0 + 1000 });
      tally(results, r);
      if (parts.size > maxAll) maxAll = parts.size;
      if (chars(parts) > maxAllChars) maxAllChars = chars(parts);
    }
    const heap1 = heapMiB();
    console.log(
      `      [figure] ${2 * N} message parts: one sender held at most ${maxSize} messages; 2000 senders at most ${maxAll} messages, ` +
        `${(maxAllChars / 1024).toFixed(0)} KiB of base64; heap ${heap0.toFixed(1)} → ${heap1.toFixed(1)} MiB; results ${JSON.stringify(Object.fromEntries([...results].sort()))}`,
    );
    expect(maxAll).to.be.at.most(1024);
    expect(maxAllChars).to.be.at.most(MAX_PENDING_CHARS);
    // While the crowd's parts are held, a genuine multi-part message is refused (not evicting is
    // the price of not letting a flood destroy what is held): a 30-second denial, no growth.
    const during = await feedAll(e, 'alice', await aliceParts(key, 2, 'during the flood'), t0 + 1000);
    expect(during.some((r) => r.kind === 'message')).to.equal(false);
    e.sweep(t0 + 1000 + 30_000);
    expect(parts.size).to.equal(0);
    expect(chars(parts)).to.equal(0);
    console.log(`      [figure] heap after the timeout: ${heapMiB().toFixed(1)} MiB`);
    const later = await feedAll(e, 'alice', await aliceParts(key, 3, 'after the flood'), t0 + 31_000);
    expect(later[later.length - 1]).to.include({ kind: 'message', text: 'after the flood' });
  });

  it('room messages for epochs not yet received: at most 64 held per room and 1024 in all, then given up', async function () {
    const e = engine();
    expect(await keyUp(e, 30, generateRoomKey())).to.include({ kind: 'key' });
    const heap0 = heapMiB();
    let maxHeld = 0;
    const results = new Map<string, number>();
    const perRoom = new Map<string, number>();
    for (let i = 0; i < N; i++) {
      const rec = randomBytes(10 + 12 + 40 + 16 + 64);
      rec[0] = 1; // version
      rec[1] = 1; // ed25519
      rec.writeUInt32BE(31 + (i % 1000), 2); // an epoch newer than the one held
      const room = i % 2 ? ROOM : `#sc-h${i % 200}`;
      const r = await e.handleIncoming({ from: 'mallory', target: room, command: 'PRIVMSG', text: `SC1M ${rec.toString('base64')}`, now: t0 });
      tally(results, r);
      if (r.kind === 'held') perRoom.set(room, (perRoom.get(room) ?? 0) + 1);
      if (inside(e).heldTotal > maxHeld) maxHeld = inside(e).heldTotal;
    }
    const heap1 = heapMiB();
    console.log(`      [figure] ${N} room messages for unknown epochs: at most ${maxHeld} held; heap ${heap0.toFixed(1)} → ${heap1.toFixed(1)} MiB; results ${JSON.stringify(Object.fromEntries([...results].sort()))}`);
    expect(maxHeld).to.be.at.most(1024);
    expect(results.get('held')).to.be.at.most(1024);
    expect(Math.max(...perRoom.values())).to.equal(64);
    expect(e.sweep(t0 + 14_000)).to.deep.equal([]);
    const given = e.sweep(t0 + 15_000);
    expect(given.length).to.equal(results.get('held'));
    expect(inside(e).heldTotal).to.equal(0);
    expect(given.every((g) => g.code === 'unknown-epoch')).to.equal(true);
  });

  it('complete envelopes that arrive before keybot is pinned: at most 32 kept', async function () {
    const e = engine({ keybot: false });
    for (let i = 0; i < 10_000; i++) {
      // Random bytes after a zero byte, so each is malformed: a first byte of '{' (1 in 256) reads
      // as an epoch notice (isEpochNotice), refused as bad-signature instead; among the 32 kept that
      // happened about one run in eight (seen once in CI).
      const junk = Buffer.concat([Buffer.of(0), randomBytes(239)]).toString('base64');
      const r = await e.handleIncoming({ from: 'keybot', target: 'bob', command: 'NOTICE', text: `SC1E p${i} 1/1 ${junk}`, now: t0 });
      expect(r.kind).to.equal('held');
      expect(inside(e).pendingEnvelopes.length).to.be.at.most(32);
    }
    const opened = await e.setKeybotKey(keybot.pub, t0);
    expect(opened).to.have.length(32);
    for (const r of opened) expect(r).to.include({ kind: 'envelope-rejected', code: 'malformed' });
  });

  /** alice's message `text` with sequence number `seq`, framed as SC1P parts of 100 characters. */
  async function aliceParts(key: Uint8Array, seq: number, text: string): Promise<string[]> {
    const a = new RoomCryptoEngine({ account: 'alice', privateKey: alice.priv, keybotKey: keybot.pub });
    const lines = await envelopeLines({ to: alice, signer: keybot, room: ROOM, epoch: 20, key, members: [memberOf(alice), memberOf(bob), memberOf(mallory)], issuedAt: t0 });
    for (const l of lines) await a.handleIncoming({ from: 'keybot', target: 'alice', command: 'NOTICE', text: l, now: t0 });
    for (let i = 1; i < seq; i++) a.encryptOutgoing({ room: ROOM, text: '.', now: t0 });
    const out = a.encryptOutgoing({ room: ROOM, text, now: t0 });
    if (out.status !== 'ok') throw new Error(out.status);
    const record = Buffer.from(out.lines[0]!.slice(5), 'base64');
    const framed = frameParts({ data: record, kind: 'message', maxChars: 100 });
    if (framed.status !== FrameStatus.OK) throw new Error('frame');
    return framed.parts;
  }

  async function feedAll(e: RoomCryptoEngine, from: string, lines: string[], now: number): Promise<IncomingResult[]> {
    const out: IncomingResult[] = [];
    for (const text of lines) out.push(await e.handleIncoming({ from, target: ROOM, command: 'PRIVMSG', text, now }));
    return out;
  }
});
