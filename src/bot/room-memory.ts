/**
 * keybot's room memory on disk: `<dataDir>/keybot.rooms.json` (docs/OPERATIONS.md "What it
 * keeps", docs/PROTOCOL.md "Faults").
 *
 * What a lost session remembers (RememberedRoom: room names, member accounts, the fingerprint
 * each member is pinned to, and the signed operations of pending invites) also has to survive a
 * restart of keybot's process. The daemon keeps the rooms and their members itself (docs/PROTOCOL.md
 * "Rooms that outlive a connection"); this file is what keybot checks the daemon's word against
 * (recovery.ts). It also holds the instance id of the daemon it was connected to (control method
 * `server.info`), for people reading it.
 *
 * Never key material: the file is built field by field from names, public fingerprints and
 * signed operations (public statements a member signed; base64).
 * Written atomically (a temporary file, then rename) with mode 0600, debounced after changes
 * and at a clean shutdown. A file that cannot be read, does not parse, or comes from a newer
 * keybot is reported with a warning and ignored: keybot starts all the same, taking no pins or
 * pending invites from it (the log line keeps its older wording, which docs/OPERATIONS.md quotes).
 */
import { open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { isValidAccountName } from '../protocol/names.js';
import { ROOM_MEMORY_FILE } from '../protocol/files.js';
import { createLogger } from '../util/log.js';
import { isServiceRoom } from './context.js';
import type { PendingInvite, RememberedRoom } from './rooms.js';

const log = createLogger('keybot');

/** The layout this keybot writes; it refuses files with a higher version. */
export const ROOM_MEMORY_VERSION = 1;

/** Most bytes of one signed operation kept (an operation names at most 100 targets: a few KiB). */
const MAX_OP_BYTES = 16 * 1024;
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** What the file holds. */
export interface StoredRoomMemory {
  /** `server.info` instance of the daemon the rooms were on; undefined if it could not tell. */
  daemonInstance: string | undefined;
  rooms: RememberedRoom[];
}

/** OpenPGP v4 (40 hex digits) or v6 (64) fingerprint, lowercase, as the directory reports them. */
const FINGERPRINT_RE = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;

export function roomMemoryPath(dataDir: string): string {
  return path.join(dataDir, ROOM_MEMORY_FILE);
}

/**
 * The file's text for `memory`: only room names, account names and fingerprints, picked one by
 * one (whatever else a RememberedRoom-shaped object carries is not written).
 */
export function serializeRoomMemory(memory: StoredRoomMemory, now = new Date()): string {
  // What parseRoomMemory would refuse is left out (a guest's nick is no account), not written.
  const rooms = memory.rooms
    .filter((r) => isServiceRoom(r.name))
    .map((r) => ({
      name: String(r.name),
      members: r.members.filter((m) => isValidAccountName(m)).map(String),
      fingerprints: Object.fromEntries(
        Object.entries(r.fingerprints ?? {})
          .filter(([a, fp]) => isValidAccountName(a) && FINGERPRINT_RE.test(fp))
          .map(([a, fp]) => [String(a), String(fp)]),
      ),
      pending: (r.pending ?? [])
        .filter((p) => isValidAccountName(p.account) && isValidAccountName(p.by) && FINGERPRINT_RE.test(p.fingerprint))
        .map((p) => ({
          account: String(p.account),
          fingerprint: String(p.fingerprint),
          by: String(p.by),
          ...(p.op ? { op: Buffer.from(p.op).toString('base64') } : {}),
          at: Number(p.at),
        })),
    }));
  const doc = { version: ROOM_MEMORY_VERSION, daemonInstance: memory.daemonInstance ?? null, savedAt: now.toISOString(), rooms };
  return JSON.stringify(doc, null, 2) + '\n';
}

/** Check a parsed file: the memory, or why it is refused. */
export function parseRoomMemory(raw: unknown): StoredRoomMemory | string {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return 'not a JSON object';
  const doc = raw as Record<string, unknown>;
  if (typeof doc.version !== 'number' || !Number.isInteger(doc.version) || doc.version < 1) return 'no valid "version"';
  if (doc.version > ROOM_MEMORY_VERSION) {
    return `written by a newer keybot (layout version ${doc.version}; this one reads up to ${ROOM_MEMORY_VERSION})`;
  }
  const instance = doc.daemonInstance;
  if (instance !== null && instance !== undefined && (typeof instance !== 'string' || instance.length === 0)) return '"daemonInstance" is not a string';
  if (!Array.isArray(doc.rooms)) return '"rooms" is not a list';
  const rooms: RememberedRoom[] = [];
  for (const [i, r] of doc.rooms.entries()) {
    if (typeof r !== 'object' || r === null) return `rooms[${i}] is not an object`;
    // restorePending (layout 1) is read and ignored: the daemon keeps its rooms now.
    const { name, members, fingerprints, restorePending, pending } = r as Record<string, unknown>;
    if (typeof name !== 'string' || !isServiceRoom(name)) return `rooms[${i}].name is not a keybot room`;
    if (!Array.isArray(members) || !members.every((m) => typeof m === 'string' && isValidAccountName(m))) {
      return `rooms[${i}].members is not a list of account names`;
    }
    const pins: Record<string, string> = {};
    if (fingerprints !== undefined) {
      if (typeof fingerprints !== 'object' || fingerprints === null || Array.isArray(fingerprints)) return `rooms[${i}].fingerprints is not an object`;
      for (const [account, fp] of Object.entries(fingerprints)) {
        if (!isValidAccountName(account) || typeof fp !== 'string' || !FINGERPRINT_RE.test(fp)) {
          return `rooms[${i}].fingerprints has an entry that is not account → fingerprint`;
        }
        pins[account] = fp;
      }
    }
    if (restorePending !== undefined && typeof restorePending !== 'boolean') return `rooms[${i}].restorePending is not true or false`;
    const invites: PendingInvite[] = [];
    if (pending !== undefined) {
      if (!Array.isArray(pending)) return `rooms[${i}].pending is not a list`;
      for (const [j, p] of pending.entries()) {
        const bad = `rooms[${i}].pending[${j}] is not a pending invite`;
        if (typeof p !== 'object' || p === null) return bad;
        const { account, fingerprint, by, op, at } = p as Record<string, unknown>;
        if (typeof account !== 'string' || !isValidAccountName(account) || typeof by !== 'string' || !isValidAccountName(by)) return bad;
        if (typeof fingerprint !== 'string' || !FINGERPRINT_RE.test(fingerprint) || typeof at !== 'number' || !Number.isFinite(at)) return bad;
        if (op !== undefined && (typeof op !== 'string' || !BASE64_RE.test(op) || op.length > (MAX_OP_BYTES * 4) / 3 + 4)) return bad;
        invites.push({ account, fingerprint, by, at, ...(typeof op === 'string' ? { op: new Uint8Array(Buffer.from(op, 'base64')) } : {}) });
      }
    }
    rooms.push({ name, members: [...(members as string[])], fingerprints: pins, pending: invites });
  }
  return { daemonInstance: typeof instance === 'string' ? instance : undefined, rooms };
}

/**
 * Read `<dataDir>/keybot.rooms.json`. Undefined when there is none, and also (after a warning)
 * when it cannot be read, is not valid, or comes from a newer keybot.
 */
export async function loadRoomMemory(dataDir: string): Promise<StoredRoomMemory | undefined> {
  const file = roomMemoryPath(dataDir);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    log.warn(`cannot read ${file} (${(err as Error).message}): ignoring it; no rooms are restored from it`);
    return undefined;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    log.warn(`${file} is corrupt (${(err as Error).message}): ignoring it; no rooms are restored from it`);
    return undefined;
  }
  const parsed = parseRoomMemory(raw);
  if (typeof parsed === 'string') {
    log.warn(`${file} is refused (${parsed}): ignoring it; no rooms are restored from it`);
    return undefined;
  }
  log.info(`read ${parsed.rooms.length} remembered room${parsed.rooms.length === 1 ? '' : 's'} from ${file}`);
  return parsed;
}

/**
 * Writes the room memory: `changed()` schedules a write of what `source()` says then (undefined:
 * nothing to write, the file stays as it is), at most one per `debounceMs`; `write()` writes now.
 * Writes run one at a time, in order.
 */
export class RoomMemoryWriter {
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  readonly file: string;

  constructor(
    dataDir: string,
    private readonly source: () => StoredRoomMemory | undefined,
    private readonly debounceMs = 1000,
  ) {
    this.file = roomMemoryPath(dataDir);
  }

  changed(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const memory = this.source();
      if (memory) void this.write(memory);
    }, this.debounceMs);
    this.timer.unref();
  }

  /** Write `memory` now (a pending debounced write is dropped). Never rejects: failures are logged. */
  write(memory: StoredRoomMemory): Promise<void> {
    this.cancel();
    const text = serializeRoomMemory(memory);
    this.chain = this.chain.then(() =>
      writeAtomically(this.file, text).catch((err: unknown) => log.warn(`cannot save the room memory to ${this.file}: ${(err as Error).message}`)),
    );
    return this.chain;
  }

  /** Drop a pending debounced write. */
  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Resolves once the writes under way are done. */
  settled(): Promise<void> {
    return this.chain;
  }
}

/** Temporary file (mode 0600, synced), then rename over `file`: readers see the old or the new file, never half of one. */
async function writeAtomically(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  // A leftover from a crash may have another mode: start afresh, so 0600 applies.
  await unlink(tmp).catch(() => undefined);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}
