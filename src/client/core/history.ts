/**
 * History catch-up (docs/PROTOCOL.md "Rooms that outlive a connection", "Companions"): after our
 * own JOIN of a room, a companion whose server offers IRCv3 `draft/chathistory` (with `batch`,
 * `server-time` and `message-tags`; https://ircv3.net/specs/extensions/chathistory) asks for what
 * it missed, decrypts and verifies each line of the `chathistory` batch with the keys it holds,
 * and hands the adapter the messages in order, marked as history, with one summary line.
 *
 *  - The request: `CHATHISTORY AFTER <room> timestamp=<newest seen> <n>` when a message of the room
 *    was seen before (its server time is kept in the CompanionMemory, memory.ts, and so in the
 *    memory file: a restarted `sealchat chat` catches up too), else `CHATHISTORY LATEST <room> * <n>`.
 *    `n` is the server's ISUPPORT `CHATHISTORY` limit (at most 1000), else 100. Once per room per
 *    connection.
 *  - The batch: `BATCH +ref chathistory <room>` … lines tagged `batch=ref` … `BATCH -ref`. Its lines
 *    never count as live ones. At its end each room message is decrypted with whatever key we hold
 *    for its epoch (a read-only key of an older epoch too). A line whose key we lack waits, with the
 *    whole batch (order), for that key like a live line (`holdMs`); what still lacks a key then is
 *    counted once in the summary as not readable, never shown.
 *  - Never one message twice: a message is known by its `msgid` and by (room, epoch, sender, seq);
 *    what was shown live is not shown again from history, and a live line shown from history before
 *    is hidden.
 *
 * No I/O and no timers: CompanionSession (session.ts) owns it and feeds it the facts.
 */
import { casefold } from '../../protocol/names.js';
import type { HistoryRecord, RoomCryptoEngine } from './engine.js';
import type { CompanionMemory } from './memory.js';
import type { IncomingLine, IncomingResult, MessageResult } from './types.js';

/** The capabilities a companion requests for the catch-up; all four must be acknowledged. */
export const HISTORY_CAPS = ['draft/chathistory', 'batch', 'server-time', 'message-tags'] as const;

/** The IRCv3 batch type of a history reply. */
export const CHATHISTORY_BATCH = 'chathistory';

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;
/** Identities of messages shown, remembered per connection to tell live and history apart. */
const MAX_SHOWN = 8192;
/** Batches open at once; a server cannot make us keep more. */
const MAX_BATCHES = 16;
/** Lines kept per batch. */
const MAX_BATCH_LINES = 4096;

/** The message tags the catch-up reads (IRCv3 message-tags, server-time, batch, msgid). */
export interface LineTags {
  msgid?: string;
  /** `server-time`: ISO 8601, e.g. `2026-12-07T10:30:15.123Z`. */
  time?: string;
  batch?: string;
}

/** A room message from history, as shown: its original server time and msgid. */
export type HistoryMessage = MessageResult & { history: true };

/** A history batch, decided: what to show, in order, and the one summary line. */
export interface HistoryShown {
  room: string;
  /** Messages (and plaintext someone put in the room), in the server's order, each once. */
  results: Array<HistoryMessage | Extract<IncomingResult, { kind: 'plaintext-in-room' }>>;
  /** Room messages shown. */
  count: number;
  /** Room messages that could not be read (no key for their epoch, a bad signature...). */
  unreadable: number;
  /** `12 messages while you were away` (and what could not be read); '' when there is nothing. */
  summary: string;
}

interface Entry {
  record?: HistoryRecord;
  result?: IncomingResult;
  /** The epoch whose key it waits for. */
  wanting?: number;
  time?: number;
  msgid?: string;
}

interface Batch {
  ref: string;
  room: string;
  entries: Entry[];
  /** Set at `BATCH -ref`: from then on it waits only for keys. */
  endedAt?: number;
}

/** Parse a `time` tag (server-time) as ms since the Unix epoch, or undefined. */
export function serverTime(tag: string | undefined): number | undefined {
  if (tag === undefined || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(tag)) return undefined;
  const t = Date.parse(tag);
  return Number.isFinite(t) ? t : undefined;
}

/** The one summary line of a batch. */
export function historySummary(count: number, unreadable: number, why?: string): string {
  const parts: string[] = [];
  if (count > 0) parts.push(`${count} message${count === 1 ? '' : 's'} while you were away`);
  if (unreadable > 0) parts.push(`${unreadable} message${unreadable === 1 ? '' : 's'} while you were away could not be read${why ? ` (${why})` : ''}`);
  return parts.join('; ');
}

/** See the file comment. */
export class HistoryCatchUp {
  private enabled = false;
  private limit = DEFAULT_LIMIT;
  /** Folded rooms asked for on this connection. */
  private readonly asked = new Set<string>();
  private readonly batches = new Map<string, Batch>();
  /** Identities shown on this connection (msgid, or room/epoch/sender/seq), oldest first. */
  private readonly shown = new Set<string>();

  constructor(
    private readonly engine: RoomCryptoEngine,
    private readonly memory: CompanionMemory | undefined,
    private readonly holdMs = 15_000,
  ) {}

  /** Is the catch-up on for this connection? */
  get available(): boolean {
    return this.enabled;
  }

  /**
   * What the server acknowledged (CAP ACK, every cap enabled so far) and its ISUPPORT
   * `CHATHISTORY` value, if any.
   */
  capabilities(enabled: readonly string[], isupportLimit?: string | number): void {
    const on = new Set(enabled.map((c) => c.toLowerCase()));
    this.enabled = HISTORY_CAPS.every((c) => on.has(c));
    const n = typeof isupportLimit === 'number' ? isupportLimit : isupportLimit !== undefined ? Number.parseInt(isupportLimit, 10) : NaN;
    this.limit = Number.isSafeInteger(n) && n > 0 ? Math.min(n, MAX_LIMIT) : n === 0 ? MAX_LIMIT : DEFAULT_LIMIT;
  }

  /** We joined `room`: the CHATHISTORY line to send, once per connection, if the server offers it. */
  joined(room: string): string | undefined {
    const f = casefold(room);
    if (!this.enabled || this.asked.has(f)) return undefined;
    this.asked.add(f);
    const seen = this.memory?.lastSeen(room);
    return seen === undefined
      ? `CHATHISTORY LATEST ${room} * ${this.limit}`
      : `CHATHISTORY AFTER ${room} timestamp=${new Date(seen).toISOString()} ${this.limit}`;
  }

  /** A new connection: ask again after the next JOIN; what was shown is forgotten with the old one. */
  reset(): void {
    this.asked.clear();
    this.batches.clear();
    this.shown.clear();
  }

  /** `BATCH +ref type params…`. True if it is a history batch of a room we asked for. */
  batchStart(ref: string, type: string, target: string | undefined): boolean {
    if (type.toLowerCase() !== CHATHISTORY_BATCH || target === undefined || !this.asked.has(casefold(target))) return false;
    if (this.batches.size >= MAX_BATCHES || this.batches.has(ref)) return false;
    this.batches.set(ref, { ref, room: target, entries: [] });
    return true;
  }

  /** Is this line part of an open history batch (so it is not a live line)? */
  inBatch(tags: LineTags | undefined): boolean {
    const b = tags?.batch !== undefined ? this.batches.get(tags.batch) : undefined;
    return b !== undefined && b.endedAt === undefined;
  }

  /** One line of an open history batch: kept, in order, to be decided at the batch's end. */
  line(line: IncomingLine & { tags?: LineTags }): void {
    const b = this.batches.get(line.tags!.batch!)!;
    if (b.entries.length >= MAX_BATCH_LINES) return;
    const r = this.engine.historyLine(line);
    const time = serverTime(line.tags?.time);
    const meta = { ...(time !== undefined ? { time } : {}), ...(line.tags?.msgid ? { msgid: line.tags.msgid } : {}) };
    if ('record' in r) b.entries.push({ record: r.record, ...meta });
    else if (r.result.kind !== 'hidden') b.entries.push({ result: r.result, ...meta });
  }

  /** `BATCH -ref`: the batch decided now, or undefined if it is not ours or still waits for a key. */
  batchEnd(ref: string, now: number): HistoryShown | undefined {
    const b = this.batches.get(ref);
    if (!b || b.endedAt !== undefined) return undefined;
    b.endedAt = now;
    return this.settle(b, now, false);
  }

  /** A key arrived (or time passed): the batches waiting for keys that can be decided now, in order. */
  retry(now: number): HistoryShown[] {
    const out: HistoryShown[] = [];
    for (const b of [...this.batches.values()]) {
      if (b.endedAt === undefined) continue;
      const shown = this.settle(b, now, now - b.endedAt >= this.holdMs);
      if (shown) out.push(shown);
    }
    return out;
  }

  /**
   * A live room message was decided: remember it (its msgid, its identity, its server time).
   * Returns true if history already showed it (hide it).
   */
  live(r: MessageResult, tags: LineTags | undefined): boolean {
    const ids = this.identities(r, tags?.msgid);
    // By what it is, not by its msgid alone: a server cannot hide a new message behind an old msgid.
    if (this.shown.has(ids[0]!)) return true;
    for (const id of ids) this.remember(id);
    const time = serverTime(tags?.time);
    if (time !== undefined) this.memory?.recordSeen(r.room, time);
    return false;
  }

  private settle(b: Batch, now: number, giveUp: boolean): HistoryShown | undefined {
    for (const e of b.entries) {
      if (!e.record || e.result) continue;
      const r = this.engine.openHistory(e.record, now);
      if ('wanting' in r) e.wanting = r.wanting;
      else {
        e.result = r;
        e.wanting = undefined;
      }
    }
    const waiting = b.entries.some((e) => e.wanting !== undefined && !e.result);
    if (waiting && !giveUp) return undefined;
    this.batches.delete(b.ref);
    const results: HistoryShown['results'] = [];
    let unreadable = 0;
    let why: string | undefined;
    let newest: number | undefined;
    for (const e of b.entries) {
      const r = e.result ?? this.engine.historyNoKey(e.record!, e.wanting!);
      if (e.time !== undefined && (newest === undefined || e.time > newest)) newest = e.time;
      if (r.kind === 'message') {
        const ids = this.identities(r, e.msgid);
        if (ids.some((id) => this.shown.has(id))) continue;
        for (const id of ids) this.remember(id);
        results.push({ ...r, history: true, ...(e.time !== undefined ? { time: e.time } : {}), ...(e.msgid ? { msgid: e.msgid } : {}) });
      } else if (r.kind === 'plaintext-in-room') {
        results.push(r);
      } else if (r.kind === 'undecryptable') {
        unreadable++;
        why ??= r.reason;
      }
    }
    if (newest !== undefined) this.memory?.recordSeen(b.room, newest);
    const count = results.filter((r) => r.kind === 'message').length;
    return { room: b.room, results, count, unreadable, summary: historySummary(count, unreadable, why) };
  }

  /** A msgid history or a live line showed on this connection. */
  shownId(msgid: string | undefined): boolean {
    return msgid !== undefined && this.shown.has(`id ${msgid}`);
  }

  private identities(r: MessageResult, msgid: string | undefined): string[] {
    const ids = [`m ${casefold(r.room)} ${r.epoch} ${casefold(r.from)} ${r.seq}`];
    if (msgid) ids.push(`id ${msgid}`);
    return ids;
  }

  private remember(id: string): void {
    this.shown.add(id);
    if (this.shown.size > MAX_SHOWN) this.shown.delete(this.shown.values().next().value!);
  }
}
