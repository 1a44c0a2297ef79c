/**
 * What a companion must not forget when a connection ends (docs/COMPANIONS.md "What outlives a
 * connection"): keybot's pinned fingerprint, every member's pinned fingerprint, and the highest
 * epoch installed per room, for one (account, server).
 *
 * Before this existed the proxy and the agent made a new engine per IRC connection, so a member
 * key swapped by whoever runs the directory was refused before a disconnect and installed silently
 * after it, and an old envelope replayed after a reconnect was accepted again. Now every
 * connection of an account to a server reads and updates the same CompanionMemory: kept by the
 * adapter's MemoryBook for the life of its process (one LocalProxy, one Agent, one SealClient) and,
 * unless the user asked to remember nothing, in a file next to the known-keybots file
 * (0600, atomic write), so a restart keeps it too. Never a key: only names, fingerprints, numbers.
 */
import { normalizeFingerprint } from '../../protocol/fingerprint.js';
import { casefold } from '../../protocol/names.js';
import { sealchatHome } from './known-keybots.js';
// Files for Node, IndexedDB in the browser bundle (storage.ts, storage.browser.ts).
import { path, readDocument, writeDocument } from './storage.js';

const FILE_VERSION = 1;
/** Rooms and member pins kept per entry; a flood of made-up rooms cannot grow the file forever. */
const MAX_ROOMS = 4096;
const MAX_MEMBERS = 4096;

/** One entry of the memory file. */
interface Entry {
  account: string;
  server: string;
  keybot?: string;
  /** Folded account → fingerprint (lowercase hex). */
  members: Record<string, string>;
  /** Folded room → the room as keybot spells it, and its highest epoch. */
  rooms: Record<string, { room: string; epoch: number }>;
  /** Folded room → server time (ms) of the newest room message seen (history catch-up). */
  seen?: Record<string, number>;
  /** Folded room → our own last sequence number, and its epoch. */
  seqs?: Record<string, { epoch: number; seq: number }>;
}

/** The memory file that goes with a known-keybots file: same folder, `<name>.memory.json`. */
export function memoryFileFor(knownKeybotsFile: string | false | undefined): string | false {
  if (knownKeybotsFile === false) return false;
  const known = knownKeybotsFile ?? path.join(sealchatHome(), 'known_keybots.json');
  return path.join(path.dirname(known), `${path.basename(known).replace(/\.json$/i, '')}.memory.json`);
}

/** What must outlive a connection, for one account on one server. */
export class CompanionMemory {
  /** keybot's pinned fingerprint (the known-keybots file keeps its key too). */
  private keybot: string | undefined;
  private readonly members = new Map<string, string>();
  private readonly rooms = new Map<string, { room: string; epoch: number }>();
  /**
   * Folded room → the roster of the last epoch installed (`last`, "account fingerprint" folded),
   * and the one held when an earlier connection ended (`earlier`). In memory only: what a room
   * keybot restores after a daemon restart may bring back without a member's signature
   * (operations.ts).
   */
  private readonly rosters = new Map<string, { last: Set<string>; earlier?: Set<string> }>();
  /**
   * Folded room → our own last sequence number and the epoch it was used under: when keybot
   * re-sends the same epoch at a new login (or after a restart: it is in the file), we go on
   * from it, since members refuse numbers they saw (ReplayGuard).
   */
  private readonly seqs = new Map<string, { epoch: number; seq: number }>();
  /** Folded room → the server time (ms) of the newest room message seen (history catch-up asks for what came after). */
  private readonly seen = new Map<string, number>();

  constructor(
    readonly account: string,
    readonly server: string,
    private readonly changed: () => void = () => undefined,
  ) {}

  get keybotFingerprint(): string | undefined {
    return this.keybot;
  }

  pinKeybot(fingerprint: string): void {
    if (this.keybot === fingerprint) return;
    this.keybot = fingerprint;
    this.changed();
  }

  /** The fingerprint pinned for a member account, if any. */
  memberPin(account: string): string | undefined {
    return this.members.get(casefold(account));
  }

  /** Pin a member's fingerprint on first sight; `replace` when the user accepted a new one. */
  pinMember(account: string, fingerprint: string, replace = false): void {
    const folded = casefold(account);
    const fp = fingerprint.toLowerCase();
    const old = this.members.get(folded);
    if (old === fp || (old !== undefined && !replace)) return;
    if (old === undefined && this.members.size >= MAX_MEMBERS) return;
    this.members.set(folded, fp);
    this.changed();
  }

  /** The highest epoch installed for a room on any connection so far. */
  highestEpoch(room: string): number | undefined {
    return this.rooms.get(casefold(room))?.epoch;
  }

  /** Every room with a remembered epoch: folded name → epoch (a snapshot). */
  epochs(): Map<string, number> {
    return new Map([...this.rooms].map(([f, r]) => [f, r.epoch]));
  }

  /**
   * An epoch of `room` listing `members` was installed. `first`: the first on this connection
   * (we held no earlier one), so the roster we held before becomes the earlier connection's.
   */
  recordRoster(room: string, members: ReadonlyArray<{ account: string; fingerprint: string }>, first: boolean): void {
    const folded = casefold(room);
    const old = this.rosters.get(folded);
    if (old === undefined && this.rosters.size >= MAX_ROOMS) return;
    const last = new Set(members.map((m) => `${casefold(m.account)} ${m.fingerprint.toLowerCase()}`));
    const earlier = first ? old?.last : old?.earlier;
    this.rosters.set(folded, { last, ...(earlier ? { earlier } : {}) });
  }

  /** Was `account` with `fingerprint` a member of `room` when an earlier connection ended? */
  wasMemberEarlier(room: string, account: string, fingerprint: string): boolean {
    return this.rosters.get(casefold(room))?.earlier?.has(`${casefold(account)} ${fingerprint.toLowerCase()}`) ?? false;
  }

  /** Our own last sequence number under `epoch` of `room` (0 if none). */
  ownSeq(room: string, epoch: number): number {
    const r = this.seqs.get(casefold(room));
    return r?.epoch === epoch ? r.seq : 0;
  }

  recordOwnSeq(room: string, epoch: number, seq: number): void {
    const folded = casefold(room);
    const r = this.seqs.get(folded);
    if (r && (r.epoch > epoch || (r.epoch === epoch && r.seq >= seq))) return;
    if (!r && this.seqs.size >= MAX_ROOMS) return;
    this.seqs.set(folded, { epoch, seq });
    this.changed();
  }

  /** The server time (ms) of the newest message seen in `room`, on any connection (and, with a file, in an earlier run). */
  lastSeen(room: string): number | undefined {
    return this.seen.get(casefold(room));
  }

  /** A room message with server time `time` (ms) was seen: remember the newest. */
  recordSeen(room: string, time: number): void {
    const folded = casefold(room);
    const old = this.seen.get(folded);
    if (!Number.isSafeInteger(time) || time <= 0 || (old !== undefined && old >= time)) return;
    if (old === undefined && this.seen.size >= MAX_ROOMS) return;
    this.seen.set(folded, time);
    this.changed();
  }

  recordEpoch(room: string, epoch: number): void {
    const folded = casefold(room);
    const old = this.rooms.get(folded);
    if (old !== undefined && old.epoch >= epoch) return;
    if (old === undefined && this.rooms.size >= MAX_ROOMS) return;
    this.rooms.set(folded, { room, epoch });
    this.changed();
  }

  toEntry(): Entry {
    return {
      account: this.account,
      server: this.server,
      ...(this.keybot !== undefined ? { keybot: this.keybot } : {}),
      members: Object.fromEntries(this.members),
      rooms: Object.fromEntries(this.rooms),
      ...(this.seen.size > 0 ? { seen: Object.fromEntries(this.seen) } : {}),
      ...(this.seqs.size > 0 ? { seqs: Object.fromEntries(this.seqs) } : {}),
    };
  }

  /** Take in a stored entry (validated; throws on anything that is not one). */
  load(e: unknown, where: string): void {
    if (!e || typeof e !== 'object') throw new Error(`${where}: not an object`);
    const entry = e as Partial<Entry>;
    if (entry.keybot !== undefined) {
      const fp = typeof entry.keybot === 'string' ? normalizeFingerprint(entry.keybot) : undefined;
      if (!fp) throw new Error(`${where}: keybot is not a fingerprint`);
      this.keybot = fp;
    }
    for (const [account, fp] of Object.entries(entry.members ?? {})) {
      const n = typeof fp === 'string' ? normalizeFingerprint(fp) : undefined;
      if (!n) throw new Error(`${where}: the pin of ${account} is not a fingerprint`);
      this.members.set(casefold(account), n);
    }
    for (const [folded, r] of Object.entries(entry.rooms ?? {})) {
      if (!r || typeof r.room !== 'string' || !Number.isSafeInteger(r.epoch) || r.epoch < 0) throw new Error(`${where}: room ${folded} has no valid epoch`);
      this.rooms.set(casefold(r.room), { room: r.room, epoch: r.epoch });
    }
    for (const [folded, t] of Object.entries(entry.seen ?? {})) {
      if (!Number.isSafeInteger(t) || t <= 0) throw new Error(`${where}: the last seen time of ${folded} is not a time`);
      this.seen.set(casefold(folded), t);
    }
    for (const [folded, r] of Object.entries(entry.seqs ?? {})) {
      if (!r || !Number.isSafeInteger(r.epoch) || r.epoch < 0 || !Number.isSafeInteger(r.seq) || r.seq < 0) throw new Error(`${where}: the sequence number of ${folded} is not valid`);
      this.seqs.set(casefold(folded), { epoch: r.epoch, seq: r.seq });
    }
  }
}

/**
 * The memories of one process (a LocalProxy, an Agent, a SealClient), one per (account, server),
 * and the file they are kept in (false: memory only, as `knownKeybotsFile: false` asks).
 */
export class MemoryBook {
  private readonly open = new Map<string, Promise<CompanionMemory>>();
  private readonly dirty = new Set<CompanionMemory>();
  private writing: Promise<void> = Promise.resolve();
  private scheduled = false;

  constructor(readonly file: string | false) {}

  /** The memory of `account` on `server`, read from the file on first use. A corrupt file throws: never guess. */
  memory(account: string, server: string): Promise<CompanionMemory> {
    const id = entryId(account, server);
    let m = this.open.get(id);
    if (!m) {
      m = this.read(account, server, id);
      this.open.set(id, m);
      // A failed read is not cached: the user may fix the file and connect again.
      m.catch(() => this.open.delete(id));
    }
    return m;
  }

  /** Wait until every change so far is on disk. */
  async flush(): Promise<void> {
    await this.writing;
    if (this.dirty.size > 0) await this.write();
  }

  private async read(account: string, server: string, id: string): Promise<CompanionMemory> {
    const mem = new CompanionMemory(account, server, () => this.touch(mem));
    if (this.file === false) return mem;
    const all = await this.readAll();
    if (all[id] !== undefined) mem.load(all[id], `${this.file}: entry ${id}`);
    return mem;
  }

  private touch(mem: CompanionMemory): void {
    if (this.file === false) return;
    this.dirty.add(mem);
    if (this.scheduled) return;
    this.scheduled = true;
    // Coalesce a burst of changes (one envelope pins several members) into one write.
    queueMicrotask(() => {
      this.scheduled = false;
      void this.write();
    });
  }

  private write(): Promise<void> {
    const file = this.file;
    if (file === false) return Promise.resolve();
    this.writing = this.writing.then(async () => {
      if (this.dirty.size === 0) return;
      const mems = [...this.dirty];
      this.dirty.clear();
      try {
        // Merge into what is there: another process (the agent and the proxy) may keep other entries.
        const all = await this.readAll();
        for (const m of mems) all[entryId(m.account, m.server)] = m.toEntry();
        await writeDocument(file, JSON.stringify({ version: FILE_VERSION, entries: all }, null, 2) + '\n');
      } catch {
        // The memory stays in force for this process; the next change tries the file again.
        for (const m of mems) this.dirty.add(m);
      }
    });
    return this.writing;
  }

  private async readAll(): Promise<Record<string, unknown>> {
    const file = this.file as string;
    const text = await readDocument(file);
    if (text === undefined) return {};
    const parsed = JSON.parse(text) as { version?: unknown; entries?: unknown };
    if (!parsed || typeof parsed !== 'object' || parsed.version !== FILE_VERSION || !parsed.entries || typeof parsed.entries !== 'object') {
      throw new Error(`${file}: not a sealchat memory file (version ${FILE_VERSION})`);
    }
    return parsed.entries as Record<string, unknown>;
  }
}

function entryId(account: string, server: string): string {
  return `${casefold(account)} ${server}`;
}
