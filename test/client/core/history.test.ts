/**
 * History catch-up in the core (src/client/core/history.ts through CompanionSession): the request
 * after our own JOIN, a `chathistory` batch decrypted and verified with the keys held, in order,
 * each message once (live and history overlap), one summary line; lines whose key is on its way
 * wait for it, and what never gets a key is reported once. Fed IRC facts as an adapter would:
 * real keys, real envelopes, real ciphertext.
 */
import { expect } from 'chai';
import { CompanionMemory, CompanionSession, RoomCryptoEngine, type CompanionAction, type HistoryShown } from '../../../src/client/index.js';
import { MAX_PAGES, PAGE_WAIT_MS } from '../../../src/client/core/history.js';
import { generateRoomKey } from '../../../src/crypto/index.js';
import { envelopeLines, memberOf, party, type Party } from '../fixtures.js';

const ROOM = '#sc-history';
const CAPS = ['draft/chathistory', 'batch', 'server-time', 'message-tags'];

describe('src/client/core/history.ts: what was said while we were away', function () {
  this.timeout(30_000);
  let alice: Party, bob: Party, keybot: Party;
  let t0: number;

  before(async () => {
    [alice, bob, keybot] = await Promise.all(['alice', 'bob', 'keybot'].map((n) => party(n)));
  });
  beforeEach(() => {
    t0 = Date.now();
  });

  const iso = (t: number): string => new Date(t).toISOString();

  /** alice's engine holding `key` of `epoch` (she writes what bob will read). */
  async function writer(epoch: number, key: Uint8Array): Promise<RoomCryptoEngine> {
    const a = new RoomCryptoEngine({ account: 'alice', privateKey: alice.priv, keybotKey: keybot.pub });
    for (const text of await envelopeLines({ to: alice, signer: keybot, room: ROOM, epoch, key, members: [memberOf(alice), memberOf(bob)], issuedAt: t0 })) {
      await a.handleIncoming({ from: 'keybot', target: 'alice', command: 'NOTICE', text, now: t0 });
    }
    return a;
  }

  /** bob's session, history capable (the server's limit `limit`), in ROOM. */
  async function reader(memory = new CompanionMemory('bob', 'test:1'), limit = '50'): Promise<CompanionSession> {
    const s = new CompanionSession({ account: 'bob', server: 'test:1', privateKey: bob.priv, keybotPublicKey: keybot.publicArmored, knownKeybotsFile: false, memory });
    await s.start(t0);
    s.capabilities(CAPS, limit);
    return s;
  }

  async function keyBob(s: CompanionSession, epoch: number, key: Uint8Array, now = t0): Promise<CompanionAction[]> {
    const actions: CompanionAction[] = [];
    for (const text of await envelopeLines({ to: bob, signer: keybot, room: ROOM, epoch, key, members: [memberOf(alice), memberOf(bob)], issuedAt: t0 })) {
      actions.push(...(await s.received({ from: 'keybot', target: 'bob', command: 'NOTICE', text, now })).actions);
    }
    return actions;
  }

  /** Lines of a chathistory batch `ref` carrying alice's lines, each text with a msgid and a time. */
  async function batch(s: CompanionSession, ref: string, lines: Array<{ text: string; msgid?: string; time: number }>, now = t0): Promise<CompanionAction[]> {
    expect(s.batch({ ref, start: true, type: 'chathistory', target: ROOM }).taken).to.equal(true);
    for (const l of lines) {
      const r = await s.received({ from: 'alice', target: ROOM, command: 'PRIVMSG', text: l.text, now, tags: { batch: ref, ...(l.msgid !== undefined ? { msgid: l.msgid } : {}), time: iso(l.time) } });
      expect(r.result.kind).to.equal('hidden');
    }
    return s.batch({ ref, start: false, now }).actions;
  }

  const shownOf = (actions: CompanionAction[]): HistoryShown[] => actions.flatMap((a) => (a.type === 'history' ? [a.shown] : []));
  const rawOf = (actions: CompanionAction[]): string[] => actions.flatMap((a) => (a.type === 'raw' ? [a.line] : []));
  const textsOf = (shown: HistoryShown[]): Array<string | false> => shown.flatMap((x) => x.results.map((r) => r.kind === 'message' && r.text));
  const summariesOf = (shown: HistoryShown[]): string[] => shown.map((x) => x.summary).filter((x) => x !== '');

  /** `n` of alice's messages `<prefix> 1` … `<prefix> n`, msgid `<prefix><i>`, one ms apart from `from`. */
  function said(a: RoomCryptoEngine, prefix: string, n: number, from = t0 + 1000): Array<{ text: string; msgid: string; time: number; plain: string }> {
    return Array.from({ length: n }, (_, i) => {
      const plain = `${prefix} ${i + 1}`;
      const r = a.encryptOutgoing({ room: ROOM, text: plain, now: t0 });
      if (r.status !== 'ok' || r.lines.length !== 1) throw new Error(r.status);
      return { text: r.lines[0]!, msgid: `${prefix}${i + 1}`, time: from + i, plain };
    });
  }

  it('asks LATEST for a room never seen, AFTER the newest message seen otherwise (remembered across connections), once per JOIN of a connection', async () => {
    const memory = new CompanionMemory('bob', 'test:1');
    const s = await reader(memory);
    expect(rawOf(s.membership({ kind: 'join', room: ROOM, nick: 'bob' }).actions)).to.deep.equal([`CHATHISTORY LATEST ${ROOM} * 50`]);
    const key = generateRoomKey();
    await keyBob(s, 100, key);
    const a = await writer(100, key);
    const live = a.encryptOutgoing({ room: ROOM, text: 'live one', now: t0 });
    if (live.status !== 'ok') throw new Error(live.status);
    const r = await s.received({ from: 'alice', target: ROOM, command: 'PRIVMSG', text: live.lines[0]!, now: t0, tags: { msgid: 'm-live', time: iso(t0 + 5) } });
    expect(r.result).to.include({ kind: 'message', text: 'live one', msgid: 'm-live' });
    expect(memory.lastSeen(ROOM)).to.equal(t0 + 5);
    expect(rawOf(s.membership({ kind: 'join', room: ROOM, nick: 'bob' }).actions)).to.deep.equal([]);
    s.connectionLost(t0 + 10);
    s.reconnected(t0 + 20);
    expect(rawOf(s.membership({ kind: 'join', room: ROOM, nick: 'bob' }).actions)).to.deep.equal([`CHATHISTORY AFTER ${ROOM} timestamp=${iso(t0 + 5)} 50`]);
    // A later session (a restarted `sealchat chat`) on the same memory asks AFTER too.
    const again = await reader(memory);
    expect(rawOf(again.membership({ kind: 'join', room: ROOM, nick: 'bob' }).actions)).to.deep.equal([`CHATHISTORY AFTER ${ROOM} timestamp=${iso(t0 + 5)} 50`]);
  });

  it('asks nothing when the server does not offer all four capabilities', async () => {
    const s = await reader();
    s.capabilities(['batch', 'server-time', 'message-tags']);
    expect(rawOf(s.membership({ kind: 'join', room: ROOM, nick: 'bob' }).actions)).to.deep.equal([]);
  });

  it('decrypts and verifies a batch, shows it in order, marked as history with its times, each message once, with one summary line', async () => {
    const key = generateRoomKey();
    const a = await writer(100, key);
    const s = await reader();
    s.membership({ kind: 'join', room: ROOM, nick: 'bob' });
    await keyBob(s, 100, key);
    const texts = Array.from({ length: 20 }, (_, i) => (i === 7 ? 'naïve café ☕ ünïcödé' : `message ${i + 1}`));
    const lines: Array<{ text: string; msgid: string; time: number }> = [];
    texts.forEach((text, i) => {
      const r = a.encryptOutgoing({ room: ROOM, text, now: t0 });
      if (r.status !== 'ok') throw new Error(r.status);
      for (const l of r.lines) lines.push({ text: l, msgid: `m${i}`, time: t0 + 1000 + i });
    });
    // One of them was shown live already (it arrived after our JOIN, before the batch).
    const live = await s.received({ from: 'alice', target: ROOM, command: 'PRIVMSG', text: lines[19]!.text, now: t0, tags: { msgid: 'm19', time: iso(lines[19]!.time) } });
    expect(live.result).to.include({ kind: 'message', text: 'message 20' });
    // The server repeats a line in the batch (same msgid): shown once.
    const actions = await batch(s, 'b1', [...lines.slice(0, 5), lines[4]!, ...lines.slice(5)]);
    const [shown] = shownOf(actions);
    expect(shown!.results.map((r) => r.kind === 'message' && r.text)).to.deep.equal(texts.slice(0, 19));
    expect(shown!.results.every((r) => r.kind === 'message' && r.history === true && r.verified === true && r.from === 'alice')).to.equal(true);
    expect(shown!.results.map((r) => (r as { time?: number }).time)).to.deep.equal(lines.slice(0, 19).map((l) => l.time));
    expect(shown).to.include({ count: 19, unreadable: 0, summary: '19 messages while you were away' });
    // A live line the history showed is not shown again.
    const dup = await s.received({ from: 'alice', target: ROOM, command: 'PRIVMSG', text: lines[3]!.text, now: t0, tags: { msgid: 'm3' } });
    expect(dup.result.kind).to.equal('hidden');
  });

  it('a long message in parts is reassembled from the batch', async () => {
    const key = generateRoomKey();
    const a = await writer(100, key);
    const s = await reader();
    s.membership({ kind: 'join', room: ROOM, nick: 'bob' });
    await keyBob(s, 100, key);
    const long = 'x'.repeat(300) + ' ' + 'é'.repeat(400);
    const r = a.encryptOutgoing({ room: ROOM, text: long, now: t0 });
    if (r.status !== 'ok') throw new Error(r.status);
    expect(r.lines.length).to.be.greaterThan(1);
    const [shown] = shownOf(await batch(s, 'b2', r.lines.map((text, i) => ({ text, msgid: `p${i}`, time: t0 + i }))));
    expect(shown!.results.map((x) => (x.kind === 'message' ? x.text : '')).join('')).to.equal(long);
  });

  it('waits with the whole batch for a key on its way, then shows it in order', async () => {
    const k100 = generateRoomKey();
    const a = await writer(100, k100);
    const s = await reader();
    s.membership({ kind: 'join', room: ROOM, nick: 'bob' });
    const lines = ['one', 'two', 'three'].map((text, i) => {
      const r = a.encryptOutgoing({ room: ROOM, text, now: t0 });
      if (r.status !== 'ok') throw new Error(r.status);
      return { text: r.lines[0]!, msgid: `w${i}`, time: t0 + i };
    });
    expect(shownOf(await batch(s, 'b3', lines))).to.deep.equal([]);
    // keybot's envelope (re-sent at our login) arrives after the batch.
    const [shown] = shownOf(await keyBob(s, 100, k100, t0 + 500));
    expect(shown!.results.map((r) => r.kind === 'message' && r.text)).to.deep.equal(['one', 'two', 'three']);
  });

  it('reports once, in the summary, the lines whose key never came, and shows the rest', async () => {
    const k100 = generateRoomKey();
    const k99 = generateRoomKey();
    const a = await writer(100, k100);
    const old = await writer(99, k99);
    const s = await reader();
    s.membership({ kind: 'join', room: ROOM, nick: 'bob' });
    await keyBob(s, 100, k100);
    const o = old.encryptOutgoing({ room: ROOM, text: 'under a key bob never got', now: t0 });
    const n = a.encryptOutgoing({ room: ROOM, text: 'readable', now: t0 });
    if (o.status !== 'ok' || n.status !== 'ok') throw new Error('encrypt');
    expect(shownOf(await batch(s, 'b4', [{ text: o.lines[0]!, msgid: 'o1', time: t0 }, { text: n.lines[0]!, msgid: 'n1', time: t0 + 1 }]))).to.deep.equal([]);
    expect(shownOf(s.sweep(t0 + 1000))).to.deep.equal([]);
    const [shown] = shownOf(s.sweep(t0 + 16_000));
    expect(shown!.results.map((r) => r.kind === 'message' && r.text)).to.deep.equal(['readable']);
    expect(shown!.summary).to.match(/^1 message while you were away; 1 message while you were away could not be read \(no key for epoch 99/);
    expect(shownOf(s.sweep(t0 + 30_000))).to.deep.equal([]);
  });

  it('a batch we did not ask for is no history: its lines are live lines', async () => {
    const s = await reader();
    expect(s.batch({ ref: 'x', start: true, type: 'chathistory', target: '#sc-other' }).taken).to.equal(false);
    expect(s.batch({ ref: 'y', start: true, type: 'netsplit' }).taken).to.equal(false);
  });
  describe("paging: more than the server's limit was said", () => {
    it('AFTER: a full page asks for the next after its last msgid (its time if it had none), a short page ends it; shown in order, each once, one summary', async () => {
      const key = generateRoomKey();
      const a = await writer(100, key);
      const memory = new CompanionMemory('bob', 'test:1');
      memory.recordSeen(ROOM, t0 + 999);
      const s = await reader(memory, '3');
      expect(rawOf(s.membership({ kind: 'join', room: ROOM, nick: 'bob' }).actions)).to.deep.equal([`CHATHISTORY AFTER ${ROOM} timestamp=${iso(t0 + 999)} 3`]);
      await keyBob(s, 100, key);
      const m = said(a, 'm', 7);
      const p1 = await batch(s, 'p1', m.slice(0, 3));
      // The next page is asked for before this one is shown.
      expect(p1[0]).to.deep.equal({ type: 'raw', line: `CHATHISTORY AFTER ${ROOM} msgid=m3 3` });
      expect(shownOf(p1).map((x) => [textsOf([x]), x.final, x.summary])).to.deep.equal([[['m 1', 'm 2', 'm 3'], false, '']]);
      // Page 2: its last line has no msgid; the server repeats m 3 in it (shown once all the same).
      const p2 = await batch(s, 'p2', [m[2]!, m[3]!, { ...m[4]!, msgid: undefined }]);
      expect(rawOf(p2)).to.deep.equal([`CHATHISTORY AFTER ${ROOM} timestamp=${iso(m[4]!.time)} 3`]);
      expect(summariesOf(shownOf(p2))).to.deep.equal([]);
      const p3 = await batch(s, 'p3', m.slice(5));
      expect(rawOf(p3)).to.deep.equal([]);
      const all = [...shownOf(p1), ...shownOf(p2), ...shownOf(p3)];
      expect(textsOf(all)).to.deep.equal(m.map((x) => x.plain));
      expect(summariesOf(all)).to.deep.equal(['7 messages while you were away']);
      expect(all.map((x) => x.final)).to.deep.equal([false, false, true]);
      expect(memory.lastSeen(ROOM)).to.equal(m[6]!.time);
      // Done: no more batches taken, nothing more asked.
      expect(s.batch({ ref: 'p4', start: true, type: 'chathistory', target: ROOM }).taken).to.equal(false);
    });

    it('LATEST: pages go backwards (BEFORE the first msgid) and the whole is shown once, at the end, in chronological order', async () => {
      const key = generateRoomKey();
      const a = await writer(100, key);
      const s = await reader(undefined, '3');
      expect(rawOf(s.membership({ kind: 'join', room: ROOM, nick: 'bob' }).actions)).to.deep.equal([`CHATHISTORY LATEST ${ROOM} * 3`]);
      await keyBob(s, 100, key);
      const m = said(a, 'l', 8);
      const p1 = await batch(s, 'q1', m.slice(5, 8));
      expect(rawOf(p1)).to.deep.equal([`CHATHISTORY BEFORE ${ROOM} msgid=l6 3`]);
      expect(shownOf(p1)).to.deep.equal([]);
      const p2 = await batch(s, 'q2', m.slice(2, 5));
      expect(rawOf(p2)).to.deep.equal([`CHATHISTORY BEFORE ${ROOM} msgid=l3 3`]);
      expect(shownOf(p2)).to.deep.equal([]);
      const p3 = await batch(s, 'q3', m.slice(0, 2));
      expect(rawOf(p3)).to.deep.equal([]);
      const [shown, more] = shownOf(p3);
      expect(more).to.equal(undefined);
      expect(textsOf([shown!])).to.deep.equal(m.map((x) => x.plain));
      expect(shown!.results.map((r) => (r as { time?: number }).time)).to.deep.equal(m.map((x) => x.time));
      expect(shown).to.include({ final: true, count: 8, summary: '8 messages while you were away' });
    });

    it('stops after MAX_PAGES pages and says in the summary that the rest was not fetched', async () => {
      const key = generateRoomKey();
      const a = await writer(100, key);
      const memory = new CompanionMemory('bob', 'test:1');
      memory.recordSeen(ROOM, t0);
      const s = await reader(memory, '2');
      s.membership({ kind: 'join', room: ROOM, nick: 'bob' });
      await keyBob(s, 100, key);
      const m = said(a, 'b', 2 * MAX_PAGES);
      const shown: HistoryShown[] = [];
      for (let p = 0; p < MAX_PAGES; p++) {
        const actions = await batch(s, `r${p}`, m.slice(2 * p, 2 * p + 2));
        expect(rawOf(actions)).to.deep.equal(p < MAX_PAGES - 1 ? [`CHATHISTORY AFTER ${ROOM} msgid=b${2 * p + 2} 2`] : []);
        shown.push(...shownOf(actions));
      }
      expect(textsOf(shown)).to.deep.equal(m.map((x) => x.plain));
      expect(summariesOf(shown)).to.deep.equal([`${2 * MAX_PAGES} messages while you were away; later history was not fetched (${MAX_PAGES} pages of 2 lines)`]);
      expect(s.batch({ ref: 'over', start: true, type: 'chathistory', target: ROOM }).taken).to.equal(false);
    });

    it('a FAIL for a page ends the catch-up with what it has (held LATEST pages shown); a page never answered ends it after PAGE_WAIT_MS', async () => {
      const key = generateRoomKey();
      const a = await writer(100, key);
      const s = await reader(undefined, '3');
      s.membership({ kind: 'join', room: ROOM, nick: 'bob' });
      await keyBob(s, 100, key);
      const m = said(a, 'f', 3);
      expect(rawOf(await batch(s, 'f1', m))).to.deep.equal([`CHATHISTORY BEFORE ${ROOM} msgid=f1 3`]);
      const [shown, more] = shownOf(s.historyFailed(ROOM, t0 + 10));
      expect(more).to.equal(undefined);
      expect(textsOf([shown!])).to.deep.equal(['f 1', 'f 2', 'f 3']);
      expect(shown!.summary).to.equal('3 messages while you were away; older history could not be fetched');
      expect(s.historyFailed(ROOM, t0 + 20)).to.deep.equal([]);
      expect(s.batch({ ref: 'f2', start: true, type: 'chathistory', target: ROOM }).taken).to.equal(false);

      // No FAIL and no batch: the sweep ends it once PAGE_WAIT_MS passed, not before.
      const s2 = await reader(undefined, '3');
      s2.membership({ kind: 'join', room: ROOM, nick: 'bob' });
      await keyBob(s2, 100, key);
      expect(rawOf(await batch(s2, 'g1', m, t0))).to.have.length(1);
      expect(shownOf(s2.sweep(t0 + PAGE_WAIT_MS - 1))).to.deep.equal([]);
      const [late] = shownOf(s2.sweep(t0 + PAGE_WAIT_MS));
      expect(textsOf([late!])).to.deep.equal(['f 1', 'f 2', 'f 3']);
      expect(late!.summary).to.equal('3 messages while you were away; older history could not be fetched');
    });

    it('a page waiting for a key holds the pages after it; the next page is asked for all the same; then all in order, one summary', async () => {
      const key = generateRoomKey();
      const a = await writer(100, key);
      const memory = new CompanionMemory('bob', 'test:1');
      memory.recordSeen(ROOM, t0);
      const s = await reader(memory, '3');
      s.membership({ kind: 'join', room: ROOM, nick: 'bob' });
      const m = said(a, 'k', 5);
      const p1 = await batch(s, 'k1', m.slice(0, 3));
      expect(rawOf(p1)).to.deep.equal([`CHATHISTORY AFTER ${ROOM} msgid=k3 3`]);
      expect(shownOf(p1)).to.deep.equal([]);
      expect(shownOf(await batch(s, 'k2', m.slice(3)))).to.deep.equal([]);
      const shown = shownOf(await keyBob(s, 100, key, t0 + 500));
      expect(textsOf(shown)).to.deep.equal(m.map((x) => x.plain));
      expect(summariesOf(shown)).to.deep.equal(['5 messages while you were away']);
      expect(shown.at(-1)!.final).to.equal(true);
    });
  });
});
