/**
 * Rooms that outlive a connection, end to end with the terminal client's library (SealClient):
 * the real daemon (mailbox, placement at login, draft/chathistory), the real keybot, real crypto,
 * sockets on port 0. bob's network goes out (a relay between bob and the daemon is cut and stays
 * down); alice writes 20 messages meanwhile, one longer than an IRC line and one not ASCII; bob
 * comes back on his own, is placed back in the room, catches up: all 20, in order, verified,
 * marked as history, once, with one summary line.
 */
import { expect } from 'chai';
import type { RoomMessageEvent, SealClient } from '../../src/client/client.js';
import { SealClient as Client } from '../../src/client/client.js';
import { loginAs } from '../helpers/keybot.js';
import { sealClient, startPluginWorld, until, type PluginWorld } from '../helpers/plugins.js';
import { startWireTap, type RelayTap } from '../helpers/wiretap.js';
import { typedAs } from '../helpers/history-plugin.js';


describe('src/client/client.ts: what was said while the connection was lost (real daemon and keybot)', function () {
  this.timeout(60_000);
  let w: PluginWorld;
  let tap: RelayTap;
  let alice: SealClient;
  let bob: SealClient;

  before(async () => {
    w = await startPluginWorld(['alice', 'bob', 'carol']);
    tap = await startWireTap(w.t.port);
  });
  after(async () => {
    await Promise.all([alice, bob].map((c) => c?.quit().catch(() => undefined)));
    await tap?.close();
    await w?.stop();
  });

  it('bob reconnects and reads all 20 messages alice wrote meanwhile, in order, verified, marked as history, once', async () => {
    alice = await sealClient(w, 'alice');
    bob = new Client();
    bob.on('error', () => undefined);
    await bob.connect({
      ...loginAs({ port: tap.port }, w.users.bob!),
      keybotPublicKey: w.bot.identity.publicArmored,
      keybotFingerprint: w.bot.fingerprint,
      knownKeybotsFile: false,
      reconnect: { initialMs: 200, maxMs: 200, jitter: 0 },
    });
    const got: RoomMessageEvent[] = [];
    const summaries: string[] = [];
    bob.on('message', (m) => got.push(m));
    bob.on('history', (h) => summaries.push(h.summary));

    await alice.invite(['bob']);
    await until(() => alice.localRooms().some((r) => r.hasKey && r.members.includes('bob')), "alice's key");
    const room = alice.localRooms()[0]!.room;
    await until(() => bob.localRooms().some((r) => r.room === room && r.hasKey), "bob's key");
    await alice.send(room, 'before the cut');
    await until(() => got.some((m) => m.text === 'before the cut'), 'bob to read "before the cut" live');

    // bob's network goes out and stays out while alice writes.
    tap.down = true;
    const quit = new Promise<void>((resolve) => alice.on('quit', (q) => q.nick === 'bob' && resolve()));
    tap.cut();
    await quit;
    const texts = Array.from({ length: 20 }, (_, i) => `while bob was away ${i + 1}`);
    texts[6] = `long: ${'a long line that no single IRC line could carry; '.repeat(12)}end`;
    texts[13] = 'non-ASCII: naïve café, Grüße, 日本語, emoji 🎉';
    expect(Buffer.byteLength(texts[6]!)).to.be.greaterThan(512);
    for (const t of texts) await alice.send(room, t);
    // The daemon answers alice's WHOIS after it relayed (and stored) all 20: bob is offline.
    expect(await alice.whois('bob')).to.include({ error: 'not_found' });
    // Offline is not leaving: alice sent all of it under the epoch bob holds, nothing was held.
    expect(alice.localRooms().find((r) => r.room === room)!.members).to.include('bob');

    const from = got.length;
    const back = new Promise<void>((resolve) => bob.once('reconnected', () => resolve()));
    tap.down = false;
    await back;
    await until(() => summaries.length > 0, 'the catch-up', 30_000);
    // The marker: a message alice sends after; once bob reads it, anything shown twice would have come.
    await alice.send(room, 'after bob is back');
    await until(() => got.some((m) => m.text === 'after bob is back'), 'the marker');

    const caughtUp = got.slice(from).filter((m) => m.text !== 'after bob is back');
    // The long text went out as several room messages (the sender splits long text): read together.
    expect(typedAs(caughtUp.map((m) => m.text), texts)).to.deep.equal(texts);
    for (const m of caughtUp) {
      expect(m, JSON.stringify(m)).to.include({ from: 'alice', room, history: true });
      expect(m.time).to.be.a('number');
    }
    expect(summaries).to.deep.equal([`${caughtUp.length} messages while you were away`]);
    expect(got.filter((m) => m.text === 'before the cut')).to.have.length(1);
    expect(got.at(-1)).to.include({ text: 'after bob is back' }).and.not.have.property('history');
  });

  it('reads what was said under the epochs made while he was away (carol joined, then left): the keys came from his mailbox', async () => {
    const room = alice.localRooms()[0]!.room;
    const carol = await sealClient(w, 'carol');
    const got: RoomMessageEvent[] = [];
    const summaries: string[] = [];
    bob.on('message', (m) => got.push(m));
    bob.on('history', (h) => summaries.push(h.summary));
    const e0 = alice.localRooms().find((r) => r.room === room)!.epoch!;
    tap.down = true;
    const quit = new Promise<void>((resolve) => alice.on('quit', (q) => q.nick === 'bob' && resolve()));
    tap.cut();
    await quit;
    await alice.send(room, 'under the first epoch');
    await alice.inviteTo(room, ['carol']);
    const e1 = (await until(() => alice.localRooms().find((r) => r.room === room && r.members.includes('carol') && r.epoch! > e0), 'the epoch with carol')).epoch!;
    await until(() => carol.localRooms().some((r) => r.room === room && r.epoch === e1), "carol's key");
    await alice.send(room, 'under the epoch with carol');
    await carol.leave(room);
    const e2 = (await until(() => alice.localRooms().find((r) => r.room === room && !r.members.includes('carol') && r.epoch! > e1), 'the epoch without carol')).epoch!;
    await alice.send(room, 'under the epoch without carol');
    expect(await alice.whois('bob')).to.include({ error: 'not_found' });

    tap.down = false;
    await until(() => summaries.length > 0, 'the catch-up', 30_000);
    expect(got.map((m) => [m.text, m.epoch, m.history])).to.deep.equal([
      ['under the first epoch', e0, true],
      ['under the epoch with carol', e1, true],
      ['under the epoch without carol', e2, true],
    ]);
    expect(summaries).to.deep.equal(['3 messages while you were away']);
    // bob sends under the newest epoch only.
    const sent = await bob.send(room, 'bob is back');
    expect(sent.epoch).to.equal(e2);
    await carol.quit();
  });

  it('a history page the daemon refuses (FAIL CHATHISTORY) ends the catch-up at once: what came is shown, and the summary says the rest could not be fetched', async () => {
    const room = alice.localRooms()[0]!.room;
    const got: RoomMessageEvent[] = [];
    const summaries: string[] = [];
    bob.on('message', (m) => got.push(m));
    bob.on('history', (h) => summaries.push(h.summary));
    // Pages of 3 (the daemon's ISUPPORT, as bob reads it), and the second page's request mangled
    // on the way (its reference made one the daemon cannot parse): the daemon refuses it with
    // FAIL CHATHISTORY INVALID_PARAMS, which names no target.
    tap.rewriteDown = (l) => l.replace(/ CHATHISTORY=\d+ /, ' CHATHISTORY=3 ');
    tap.rewriteUp = (l) => (/^CHATHISTORY AFTER \S+ msgid=/.test(l) ? l.replace(/msgid=\S+/, 'mangled=1') : l);
    try {
      // What bob read last is where his catch-up starts.
      await alice.send(room, 'before the paged cut');
      await until(() => got.some((m) => m.text === 'before the paged cut'), 'bob to read it live');
      got.length = 0;
      tap.down = true;
      const quit = new Promise<void>((resolve) => alice.on('quit', (q) => q.nick === 'bob' && resolve()));
      tap.cut();
      await quit;
      for (let i = 1; i <= 5; i++) await alice.send(room, `paged ${i}`);
      expect(await alice.whois('bob')).to.include({ error: 'not_found' });
      const asked = tap.sent.length;
      tap.down = false;
      // Within the test's wait (15 s), well before the catch-up's own page timeout (60 s).
      await until(() => summaries.length > 0, 'the summary after the refused page');
      expect(tap.sent.slice(asked).filter((l) => l.startsWith('CHATHISTORY AFTER ')), tap.sent.slice(asked).join('\n')).to.have.length(2);
      expect(got.map((m) => [m.text, m.history])).to.deep.equal([
        ['paged 1', true],
        ['paged 2', true],
        ['paged 3', true],
      ]);
      expect(summaries, tap.sent.slice(asked).filter((l) => l.startsWith('CHATHISTORY')).join(' / ')).to.deep.equal(['3 messages while you were away; later history could not be fetched']);
    } finally {
      delete tap.rewriteDown;
      delete tap.rewriteUp;
    }
  });
});
