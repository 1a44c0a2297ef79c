/** The room store: rooms, history chunks and mailboxes round-trip through each built-in backend. */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { openRoomStore, type RoomStore, type StoredLine } from '../../../src/ircd/store/index.js';

const line = (s: number, text: string): StoredLine => ({ s, t: 1_800_000_000_000 + s, id: `m-${s}`, src: 'alice!alice@h', cmd: 'PRIVMSG', params: ['#Room', text], a: 'alice' });

describe('src/ircd/store/rooms.ts', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'sc-roomstore-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  for (const backend of ['memory:', 'sqlite']) {
    it(`keeps rooms, history chunks in sequence order and mailboxes (${backend})`, async () => {
      const url = backend === 'sqlite' ? `sqlite://${path.join(dir, 'rooms.sqlite')}` : backend;
      const store = await openRoomStore(url);
      try {
        await store.putRoom('#room', { name: '#Room', members: { alice: { account: 'alice', state: 'member', intervals: [[1, null]] } } });
        await store.putChunk('#room', 1, [line(64, 'second chunk')]);
        await store.putChunk('#room', 0, [line(0, 'first'), line(1, 'second')]);
        await store.putChunk('#other', 0, [line(0, 'elsewhere')]);
        await store.deleteChunk('#other', 0);
        await store.putMailbox('bob', [{ ...line(0, 'for bob'), cmd: 'NOTICE' }]);
        const loaded = await store.load();
        expect(loaded.rooms).to.deep.equal([{ name: '#Room', members: { alice: { account: 'alice', state: 'member', intervals: [[1, null]] } } }]);
        expect(loaded.history.get('#room')!.map((l) => l.params[1])).to.deep.equal(['first', 'second', 'second chunk']);
        expect(loaded.history.has('#other')).to.equal(false);
        expect(loaded.mailboxes.get('bob')![0]!.params).to.deep.equal(['#Room', 'for bob']);
        await store.deleteMailbox('bob');
        await store.deleteRoom('#room');
        const after = await store.load();
        expect(after.mailboxes.size).to.equal(0);
        expect(after.rooms).to.deep.equal([]);
      } finally {
        await store.close();
      }
    });

    it(`rewrites a growing chunk, also after its first lines were dropped (${backend})`, async () => {
      const url = backend === 'sqlite' ? `sqlite://${path.join(dir, 'grow.sqlite')}` : backend;
      const store = await openRoomStore(url);
      try {
        const all = Array.from({ length: 64 }, (_, s) => line(s, s % 3 ? `text ${s}` : `:colon ${s}`));
        const texts = async (): Promise<unknown[]> => (await store.load()).history.get('#g')!.map((l) => l.params[1]);
        await store.putChunks([{ folded: '#g', n: 0, lines: all.slice(0, 10) }]);
        expect(await texts()).to.deep.equal(all.slice(0, 10).map((l) => l.params[1]));
        await store.putChunks([{ folded: '#g', n: 0, lines: all.slice(0, 30) }]);
        expect(await texts()).to.deep.equal(all.slice(0, 30).map((l) => l.params[1]));
        // Retention dropped the first lines: the chunk now starts later.
        await store.putChunks([{ folded: '#g', n: 0, lines: all.slice(5, 40) }]);
        expect(await texts()).to.deep.equal(all.slice(5, 40).map((l) => l.params[1]));
        await store.putChunks([{ folded: '#g', n: 0, lines: all.slice(5, 64) }]);
        const loaded = (await store.load()).history.get('#g')!;
        expect(loaded).to.deep.equal(all.slice(5, 64));
      } finally {
        await store.close();
      }
    });

    it(`appends to a chunk that is not full, and writes it whole once full, also across a restart (${backend})`, async () => {
      const url = backend === 'sqlite' ? `sqlite://${path.join(dir, 'parts.sqlite')}` : backend;
      const all = Array.from({ length: 64 }, (_, s) => line(s, `text ${s}`));
      const keys = async (st: RoomStore): Promise<string[]> => {
        const kv = (st as unknown as { history: { iterator: (ns: undefined) => AsyncIterable<[string, unknown]> } }).history;
        const out: string[] = [];
        for await (const [k] of kv.iterator(undefined)) out.push(String(k));
        return out.sort();
      };
      let store = await openRoomStore(url);
      try {
        await store.putChunks([{ folded: '#p', n: 0, lines: all.slice(0, 10) }]);
        await store.putChunks([{ folded: '#p', n: 0, lines: all.slice(0, 12) }]);
        await store.putChunks([{ folded: '#p', n: 0, lines: all.slice(0, 20) }]);
        expect(await keys(store)).to.deep.equal(['#p 0', '#p 0.10', '#p 0.12']);
        expect((await store.load()).history.get('#p')).to.deep.equal(all.slice(0, 20));
        if (backend === 'sqlite') {
          // A restart: the parts are found again and dropped by the chunk's next (whole) write.
          await store.close();
          store = await openRoomStore(url);
          expect((await store.load()).history.get('#p')).to.deep.equal(all.slice(0, 20));
          await store.putChunks([{ folded: '#p', n: 0, lines: all.slice(0, 30) }]);
          expect(await keys(store)).to.deep.equal(['#p 0']);
          await store.putChunks([{ folded: '#p', n: 0, lines: all.slice(0, 40) }]);
        }
        await store.putChunks([{ folded: '#p', n: 0, lines: all }]);
        expect(await keys(store)).to.deep.equal(['#p 0']);
        expect((await store.load()).history.get('#p')).to.deep.equal(all);
        await store.putChunks([{ folded: '#q', n: 0, lines: all.slice(0, 3) }]);
        await store.putChunks([{ folded: '#q', n: 0, lines: all.slice(0, 5) }]);
        await store.deleteChunk('#q', 0);
        expect(await keys(store)).to.deep.equal(['#p 0']);
      } finally {
        await store.close();
      }
    });

    it(`writes many history chunks in one call, replacing what was there (${backend})`, async () => {
      const url = backend === 'sqlite' ? `sqlite://${path.join(dir, 'many.sqlite')}` : backend;
      const store = await openRoomStore(url);
      try {
        await store.putChunk('#r0', 0, [line(0, 'old')]);
        // More chunks than one upsert statement takes (256 rows), over 300 rooms.
        await store.putChunks(Array.from({ length: 300 }, (_, r) => ({ folded: `#r${r}`, n: 0, lines: [line(0, `room ${r}`), line(1, ':colon')] })));
        const loaded = await store.load();
        expect(loaded.history.size).to.equal(300);
        expect(loaded.history.get('#r0')!.map((l) => l.params[1])).to.deep.equal(['room 0', ':colon']);
        expect(loaded.history.get('#r299')!.map((l) => l.params[1])).to.deep.equal(['room 299', ':colon']);
      } finally {
        await store.close();
      }
    });
  }
});
