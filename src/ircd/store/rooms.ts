/**
 * Persistent rooms, their history and the mailboxes (docs/PROTOCOL.md "Rooms that outlive a
 * connection"), on the same keyv backend as the accounts (sqlite by default).
 *
 * Layout (the same keyv table, three more namespaces):
 *   `rooms`   RoomRecord under the casefolded room name;
 *   `history` HistoryChunk under `<folded room> <n>`: the lines whose sequence number s has
 *             floor(s / HISTORY_CHUNK) = n (a space never occurs in a channel name);
 *   `mailbox` StoredLine[] under the casefolded account name.
 * keyv has no range queries, so history is written in chunks: a new line rewrites one chunk of
 * at most HISTORY_CHUNK lines, never the whole room.
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

/** What putChunks wrote last for a chunk that was not full yet: its lines' JSON, to extend. */
interface OpenChunk {
  /** The chunk's last line when it was written (the lines before it are the same objects). */
  last: StoredLine;
  count: number;
  items: string;
}

export class KeyvRoomStore implements RoomStore {
  private closed = false;
  /**
   * In a busy room the newest chunk is rewritten at every write-behind until it is full; its
   * lines (immutable once recorded) are serialised once and their JSON kept here until the chunk
   * is full, so each rewrite serialises only the lines added since. Only chunks written in the
   * last call are kept (at most one open chunk per room that had traffic since the previous one).
   */
  private openChunks = new Map<string, OpenChunk>();
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
    }
    for (const list of history.values()) list.sort((x, y) => x.s - y.s);
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
    this.checkOpen();
    if (!(await this.history.set(`${folded} ${n}`, lines))) throw new StoreError(`store refused to write history of ${folded}`);
  }

  async putChunks(chunks: Array<{ folded: string; n: number; lines: StoredLine[] }>): Promise<void> {
    this.checkOpen();
    if (chunks.length === 0) return;
    const serialize = this.serializeLine;
    const open = new Map<string, OpenChunk>();
    const entries: Array<{ key: string; value: StoredLine[] }> = [];
    for (const { folded, n, lines } of chunks) {
      const key = `${folded} ${n}`;
      if (!serialize || lines.length === 0) {
        entries.push({ key, value: lines });
        continue;
      }
      const prev = this.openChunks.get(key);
      let items: string;
      let from: number;
      if (prev && prev.count <= lines.length && lines[prev.count - 1] === prev.last) {
        items = prev.items;
        from = prev.count;
      } else {
        items = '';
        from = 0;
      }
      for (let i = from; i < lines.length; i++) {
        const json = serialize(lines[i]!); // a string: keyv's serialisers are synchronous
        items += (i === 0 ? '' : ',') + (typeof json === 'string' ? json : await json);
      }
      if (lines.length < HISTORY_CHUNK) open.set(key, { last: lines[lines.length - 1]!, count: lines.length, items });
      entries.push({ key, value: new SerializedArray(items) as unknown as StoredLine[] });
    }
    this.openChunks = open;
    const done = await this.history.setMany(entries);
    if (done.some((ok) => !ok)) throw new StoreError(`store refused to write history of ${chunks[done.indexOf(false)]!.folded}`);
  }

  async deleteChunk(folded: string, n: number): Promise<void> {
    this.checkOpen();
    await this.history.delete(`${folded} ${n}`);
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
