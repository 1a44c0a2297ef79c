/**
 * Persistent rooms, their history and the mailboxes (docs/PROTOCOL.md "Rooms that outlive a
 * connection"), on the same keyv backend as the accounts (sqlite by default).
 *
 * Layout (the same keyv table, three more namespaces):
 *   `rooms`   RoomRecord under the casefolded room name;
 *   `history` HistoryChunk under `<folded room> <n>`: the lines whose sequence number s has
 *             floor(s / HISTORY_CHUNK) = n (a space never occurs in a channel name);
 *             While a chunk is not full, the lines added to it after its first write are
 *             appended under keys of their own, `<folded room> <n>.<from>` (from = the index of
 *             their first line in the chunk), and dropped when the chunk is written whole;
 *   `mailbox` StoredLine[] under the casefolded account name.
 * keyv has no range queries, so history is written in chunks: a new line never rewrites the
 * whole room, and a busy room's newest chunk is not rewritten at every write-behind either (its
 * lines would otherwise be written up to HISTORY_CHUNK times over). Every key under `<folded
 * room> ` holds lines of that room; reading merges them by sequence number.
 *
 * What is stored is what the daemon relayed: for sealchat rooms that is ciphertext, which the
 * daemon cannot read (it never holds a room key).
 */
import type Keyv from 'keyv';
import { adapterFactory, makeKeyv, redact, SerializedArray } from './keyv-store.js';
import { StoreError } from './types.js';

/** Lines per stored history chunk. */
export const HISTORY_CHUNK = 64;

/** `pending`: added while offline, joins at next login; `member`; `left`: kept for its intervals. */
export type RoomMemberState = 'pending' | 'member' | 'left';

export interface RoomMemberRecord {
  /** Account name, display case. */
  account: string;
  state: RoomMemberState;
  /** Membership intervals [from, to) in ms since the epoch; `to` null while a member. */
  intervals: Array<[number, number | null]>;
}

export interface RoomRecord {
  /** Room (channel) name, display case. */
  name: string;
  /** By casefolded account name. */
  members: Record<string, RoomMemberRecord>;
}

/** A relayed PRIVMSG or NOTICE as it was relayed: the daemon can replay it byte for byte. */
export interface StoredLine {
  /** Sequence number within its room (history) or mailbox. */
  s: number;
  /** server-time, ms since the epoch. */
  t: number;
  /** msgid. */
  id: string;
  /** Source prefix (nick!user@host). */
  src: string;
  cmd: 'PRIVMSG' | 'NOTICE';
  params: string[];
  /** Sender's account, or null. */
  a: string | null;
  /** Client-only tags (`+name`), if any. */
  tags?: Array<[string, string]>;
}

export interface LoadedRooms {
  rooms: RoomRecord[];
  /** By casefolded room name, ascending by sequence number. */
  history: Map<string, StoredLine[]>;
  /** By casefolded account name, oldest first. */
  mailboxes: Map<string, StoredLine[]>;
}

/** Persistence of rooms, history and mailboxes, by role. Writes resolve once durable. */
export interface RoomStore {
  load(): Promise<LoadedRooms>;
  putRoom(folded: string, room: RoomRecord): Promise<void>;
  deleteRoom(folded: string): Promise<void>;
  /** Replace history chunk `n` of a room. */
  putChunk(folded: string, n: number, lines: StoredLine[]): Promise<void>;
  /** Replace several history chunks at once (one transaction where the backend allows). */
  putChunks(chunks: Array<{ folded: string; n: number; lines: StoredLine[] }>): Promise<void>;
  deleteChunk(folded: string, n: number): Promise<void>;
  putMailbox(account: string, lines: StoredLine[]): Promise<void>;
  deleteMailbox(account: string): Promise<void>;
  close(): Promise<void>;
}

/** A chunk that is not full yet, as the store holds it: its lines can be appended. */
interface OpenChunk {
  /** Its last line when written (the lines before it are the same objects); null after a restart. */
  last: StoredLine | null;
  count: number;
  /** Keys of its appended parts, dropped once the chunk is written whole. */
  parts: string[];
  /** Its lines' JSON as written, kept only while it is being written to (see putChunks). */
  items: string | null;
}

/** `<folded room> <n>.<from>`: an appended part of chunk `<folded room> <n>`. */
const PART_KEY = /^(.* \d+)\.\d+$/;

export class KeyvRoomStore implements RoomStore {
  private closed = false;
  /**
   * Chunks that are not full, by key: lines added to them are appended as parts instead of the
   * chunk being rewritten (layout above). Lines are immutable once recorded, so the JSON of a
   * chunk's lines is kept for its final whole write, but only for chunks written in the latest
   * call (at most one per room that had traffic in the latest write-behind).
   */
  private readonly openChunks = new Map<string, OpenChunk>();
  private readonly serializeLine: ((line: StoredLine) => string | Promise<string>) | undefined;

  private constructor(
    private readonly rooms: Keyv<RoomRecord>,
    private readonly history: Keyv<StoredLine[]>,
    private readonly mailbox: Keyv<StoredLine[]>,
    readonly url: string,
  ) {
    this.serializeLine = history.serialize as ((line: StoredLine) => string | Promise<string>) | undefined;
  }

  /** Open the room store at a keyv URL (the account store's URL: same file, other namespaces). */
  static async open(url: string): Promise<KeyvRoomStore> {
    const opened: Keyv[] = [];
    try {
      const factory = await adapterFactory(url);
      const rooms = makeKeyv<RoomRecord>(await factory(), 'rooms');
      opened.push(rooms as Keyv);
      const history = makeKeyv<StoredLine[]>(await factory(), 'history');
      opened.push(history as Keyv);
      const mailbox = makeKeyv<StoredLine[]>(await factory(), 'mailbox');
      opened.push(mailbox as Keyv);
      return new KeyvRoomStore(rooms, history, mailbox, url);
    } catch (err) {
      await Promise.allSettled(opened.map((kv) => kv.disconnect()));
      if (err instanceof StoreError) throw err;
      throw new StoreError(`cannot open room store ${redact(url)}: ${(err as Error).message}`);
    }
  }

  async load(): Promise<LoadedRooms> {
    this.checkOpen();
    const rooms: RoomRecord[] = [];
    for (const [, v] of await this.entries(this.rooms)) rooms.push(v);
    const history = new Map<string, StoredLine[]>();
    for (const [key, lines] of await this.entries(this.history)) {
      const folded = key.slice(0, key.lastIndexOf(' '));
      const list = history.get(folded) ?? [];
      list.push(...lines);
      history.set(folded, list);
      const part = PART_KEY.exec(key);
      if (part) {
        // Parts left from before: the chunk's next write is whole and drops them.
        const chunk = part[1]!;
        const open = this.openChunks.get(chunk) ?? { last: null, count: 0, parts: [], items: null };
        open.parts.push(key);
        this.openChunks.set(chunk, open);
      }
    }
    for (const [folded, list] of history) {
      list.sort((x, y) => x.s - y.s);
      // A stop between a chunk's whole write and dropping its parts leaves lines twice.
      history.set(folded, list.filter((l, i) => i === 0 || l.s !== list[i - 1]!.s));
    }
    const mailboxes = new Map<string, StoredLine[]>();
    for (const [key, lines] of await this.entries(this.mailbox)) mailboxes.set(key, lines);
    return { rooms, history, mailboxes };
  }

  async putRoom(folded: string, room: RoomRecord): Promise<void> {
    this.checkOpen();
    if (!(await this.rooms.set(folded, room))) throw new StoreError(`store refused to write room ${room.name}`);
  }

  async deleteRoom(folded: string): Promise<void> {
    this.checkOpen();
    await this.rooms.delete(folded);
  }

  async putChunk(folded: string, n: number, lines: StoredLine[]): Promise<void> {
    await this.putChunks([{ folded, n, lines }]);
  }

  async putChunks(chunks: Array<{ folded: string; n: number; lines: StoredLine[] }>): Promise<void> {
    this.checkOpen();
    if (chunks.length === 0) return;
    const entries: Array<{ key: string; value: StoredLine[] }> = [];
    /** Parts that the chunks written whole now make redundant. */
    const drop: string[] = [];
    /** The open chunks' state once the writes are done (null: full, no longer open). */
    const next = new Map<string, OpenChunk | null>();
    for (const { folded, n, lines } of chunks) {
      const key = `${folded} ${n}`;
      const prev = this.openChunks.get(key);
      if (!this.serializeLine || lines.length === 0) {
        entries.push({ key, value: lines });
        continue;
      }
      const extended = prev !== undefined && prev.last !== null && prev.count <= lines.length && lines[prev.count - 1] === prev.last;
      if (extended && lines.length === prev.count) continue; // nothing new
      const last = lines[lines.length - 1]!;
      if (extended && lines.length < HISTORY_CHUNK) {
        // Append: only the new lines, under a key of their own.
        const partKey = `${key}.${prev.count}`;
        const added = await this.serializeItems(lines, prev.count);
        entries.push({ key: partKey, value: new SerializedArray(added) as unknown as StoredLine[] });
        next.set(key, { last, count: lines.length, parts: [...prev.parts, partKey], items: prev.items === null ? null : `${prev.items},${added}` });
        continue;
      }
      // Whole: its first write, now full, or changed (retention dropped its first lines).
      const items = extended && prev.items !== null ? `${prev.items},${await this.serializeItems(lines, prev.count)}` : await this.serializeItems(lines, 0);
      entries.push({ key, value: new SerializedArray(items) as unknown as StoredLine[] });
      if (prev) drop.push(...prev.parts);
      next.set(key, lines.length < HISTORY_CHUNK ? { last, count: lines.length, parts: [], items } : null);
    }
    if (entries.length > 0) {
      const done = await this.history.setMany(entries);
      if (done.some((ok) => !ok)) throw new StoreError(`store refused to write history of ${entries[done.indexOf(false)]!.key.split(' ')[0]}`);
    }
    // Only after the whole chunks are written; if this fails, the state stays as it was and
    // the next write of those chunks drops the parts again.
    if (drop.length > 0) await this.history.delete(drop);
    for (const [key, state] of next) {
      if (state) this.openChunks.set(key, state);
      else this.openChunks.delete(key);
    }
    for (const [key, state] of this.openChunks) if (!next.has(key)) state.items = null;
  }

  /** The JSON of lines[from..], comma-separated, each in keyv's format. */
  private async serializeItems(lines: StoredLine[], from: number): Promise<string> {
    const serialize = this.serializeLine!;
    let items = '';
    for (let i = from; i < lines.length; i++) {
      const json = serialize(lines[i]!); // a string: keyv's serialisers are synchronous
      items += (i === from ? '' : ',') + (typeof json === 'string' ? json : await json);
    }
    return items;
  }

  async deleteChunk(folded: string, n: number): Promise<void> {
    this.checkOpen();
    const key = `${folded} ${n}`;
    const parts = this.openChunks.get(key)?.parts ?? [];
    await this.history.delete(parts.length ? [key, ...parts] : key);
    this.openChunks.delete(key);
  }

  async putMailbox(account: string, lines: StoredLine[]): Promise<void> {
    this.checkOpen();
    if (!(await this.mailbox.set(account, lines))) throw new StoreError(`store refused to write the mailbox of ${account}`);
  }

  async deleteMailbox(account: string): Promise<void> {
    this.checkOpen();
    await this.mailbox.delete(account);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([this.rooms.disconnect(), this.history.disconnect(), this.mailbox.disconnect()]);
  }

  private async entries<T>(kv: Keyv<T>): Promise<Array<[string, T]>> {
    const iterate = kv.iterator;
    if (!iterate) throw new StoreError(`the keyv backend of ${redact(this.url)} cannot list keys`);
    const out: Array<[string, T]> = [];
    for await (const [key, value] of iterate(undefined)) if (value) out.push([String(key), value as T]);
    return out;
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreError('room store is closed');
  }
}

export async function openRoomStore(url: string): Promise<RoomStore> {
  return KeyvRoomStore.open(url);
}
