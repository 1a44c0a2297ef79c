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
 *  - Paging: a batch of the catch-up that holds `n` lines (PRIVMSG and NOTICE, whatever we make of
 *    them) is a full page; the next page is asked for at once, at the batch's end, whatever keys it
 *    still waits for: `CHATHISTORY AFTER <room> msgid=<last line's msgid> <n>` after an AFTER
 *    (`timestamp=<last line's time>` if it had no msgid), `CHATHISTORY BEFORE <room> msgid=<first
 *    line's msgid> <n>` after a LATEST or BEFORE (pages go backwards). One request at a time per room,
 *    and only a batch of a room with a request out is taken. The catch-up ends with a page shorter
 *    than `n` (or one with no reference to go on from), a FAIL for it (`failed`), no answer within
 *    PAGE_WAIT_MS, or MAX_PAGES pages (then the summary says what was not fetched).
 *  - What is shown: pages are decided in the order they came. Going forwards (AFTER), each page is
 *    shown as it is decided (bounded memory: one page, plus pages waiting behind one that waits for
 *    a key); going backwards (LATEST), the decided pages are kept (decrypted results only, at most
 *    MAX_PAGES of them) and shown at the end in chronological order. Either way the ONE summary
 *    line, for the whole catch-up, comes with the last part (`final`).
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
/** Pages of one room's catch-up per connection (MAX_PAGES x the limit lines at most). */
export const MAX_PAGES = 20;
/** A page asked for and not answered (no batch, no FAIL) after this long ends the catch-up. */
export const PAGE_WAIT_MS = 60_000;
/**
 * Identities of messages shown, remembered per connection to tell live and history apart: two per
 * message (identity, msgid), enough for a whole catch-up of MAX_PAGES pages and live lines around it.
 */
const MAX_SHOWN = 2 * MAX_PAGES * MAX_LIMIT + 8192;
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

/**
 * A part of a room's catch-up, decided: what to show, in order, and with the last part the one
 * summary line. Going forwards a part is a page; going backwards the one part is the whole catch-up.
 */
export interface HistoryShown {
  room: string;
  /** Messages (and plaintext someone put in the room), in chronological order, each once. */
  results: Array<HistoryMessage | Extract<IncomingResult, { kind: 'plaintext-in-room' }>>;
  /** Room messages shown by the catch-up so far, this part included. */
  count: number;
  /** Room messages of the catch-up so far that could not be read (no key for their epoch, a bad signature...). */
  unreadable: number;
  /** The last part of the catch-up: it carries the summary. */
  final: boolean;
  /**
   * With the last part: `1000 messages while you were away` (and what could not be read, and what
   * was not fetched); '' on the parts before it, and when there is nothing.
   */
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
  /** Lines received (kept or not): a page is full when it reaches the limit. */
  lines: number;
  /** The first and last lines' msgid and time tags: where the next page starts. */
  first?: LineTags;
  last?: LineTags;
  /** Set at `BATCH -ref`: from then on it waits only for keys. */
  endedAt?: number;
}

type Shown = HistoryShown['results'];

/** One room's catch-up on this connection: its pages, asked for one at a time. */
interface CatchUp {
  room: string;
  /** Pages go backwards (the first request was LATEST). */
  backwards: boolean;
  /** Pages asked for, the first included. */
  pages: number;
  /** A request is out and its batch has not started. */
  asking: boolean;
  /** When the page request went out (the first request has none: nothing waits on it). */
  askedAt?: number;
  /** Ended pages not decided yet, in the order they came. */
  pending: Batch[];
  /** No more pages will come. */
  done: boolean;
  /** Why it ended early, for the summary. */
  cut?: string;
  count: number;
  unreadable: number;
  why?: string;
  /** Backwards: decided pages, chronological, shown at the end. */
  held: Shown;
  newest?: number;
}

/** Parse a `time` tag (server-time) as ms since the Unix epoch, or undefined. */
export function serverTime(tag: string | undefined): number | undefined {
  if (tag === undefined || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(tag)) return undefined;
  const t = Date.parse(tag);
  return Number.isFinite(t) ? t : undefined;
}

/** The one summary line of a catch-up (`cut`: what was not fetched, if it ended early). */
export function historySummary(count: number, unreadable: number, why?: string, cut?: string): string {
  const parts: string[] = [];
  if (count > 0) parts.push(`${count} message${count === 1 ? '' : 's'} while you were away`);
  if (unreadable > 0) parts.push(`${unreadable} message${unreadable === 1 ? '' : 's'} while you were away could not be read${why ? ` (${why})` : ''}`);
  if (cut !== undefined) parts.push(cut);
  return parts.join('; ');
}

/** See the file comment. */
export class HistoryCatchUp {
  private enabled = false;
  private limit = DEFAULT_LIMIT;
  /** Folded rooms asked for on this connection. */
  private readonly asked = new Set<string>();
  /** Catch-ups under way, by folded room. */
  private readonly catchUps = new Map<string, CatchUp>();
  /** Open batches (started, not ended), by ref. */
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
    this.catchUps.set(f, { room, backwards: seen === undefined, pages: 1, asking: true, pending: [], done: false, count: 0, unreadable: 0, held: [] });
    return seen === undefined
      ? `CHATHISTORY LATEST ${room} * ${this.limit}`
      : `CHATHISTORY AFTER ${room} timestamp=${new Date(seen).toISOString()} ${this.limit}`;
  }

  /** A new connection: ask again after the next JOIN; what was shown is forgotten with the old one. */
  reset(): void {
    this.asked.clear();
    this.catchUps.clear();
    this.batches.clear();
    this.shown.clear();
  }

  /** `BATCH +ref type params…`. True if it is a history batch of a room we have a request out for. */
  batchStart(ref: string, type: string, target: string | undefined): boolean {
    if (type.toLowerCase() !== CHATHISTORY_BATCH || target === undefined) return false;
    const c = this.catchUps.get(casefold(target));
    if (!c?.asking || this.batches.size >= MAX_BATCHES || this.batches.has(ref)) return false;
    c.asking = false;
    this.batches.set(ref, { ref, room: c.room, entries: [], lines: 0 });
    return true;
  }

  /** Is this line part of an open history batch (so it is not a live line)? */
  inBatch(tags: LineTags | undefined): boolean {
    return tags?.batch !== undefined && this.batches.has(tags.batch);
  }

  /** One line of an open history batch: kept, in order, to be decided at the batch's end. */
  line(line: IncomingLine & { tags?: LineTags }): void {
    const b = this.batches.get(line.tags!.batch!)!;
    b.lines++;
    b.first ??= line.tags;
    b.last = line.tags;
    if (b.entries.length >= MAX_BATCH_LINES) return;
    const r = this.engine.historyLine(line);
    const time = serverTime(line.tags?.time);
    const meta = { ...(time !== undefined ? { time } : {}), ...(line.tags?.msgid ? { msgid: line.tags.msgid } : {}) };
    if ('record' in r) b.entries.push({ record: r.record, ...meta });
    else if (r.result.kind !== 'hidden') b.entries.push({ result: r.result, ...meta });
  }

  /**
   * `BATCH -ref`: the next page to ask for (a full page), and what can be shown now (nothing if it
   * is not ours, or waits for a key, or goes backwards and is not the last).
   */
  batchEnd(ref: string, now: number): { request?: string; shown: HistoryShown[] } {
    const b = this.batches.get(ref);
    if (!b) return { shown: [] };
    this.batches.delete(ref);
    const c = this.catchUps.get(casefold(b.room));
    if (!c) return { shown: [] };
    b.endedAt = now;
    c.pending.push(b);
    const request = c.done ? undefined : this.nextPage(c, b, now);
    return { ...(request !== undefined ? { request } : {}), shown: this.drain(c, now) };
  }

  /**
   * `FAIL CHATHISTORY …`: our request for `target` (or, unnamed, the oldest request out) was
   * refused; that room's catch-up ends with what it has.
   */
  failed(target: string | undefined, now: number): HistoryShown[] {
    const named = target !== undefined ? this.catchUps.get(casefold(target)) : undefined;
    const c = named?.asking ? named : [...this.catchUps.values()].find((x) => x.asking);
    if (!c) return [];
    c.asking = false;
    c.done = true;
    if (c.pages > 1) c.cut = c.backwards ? 'older history could not be fetched' : 'later history could not be fetched';
    return this.drain(c, now);
  }

  /** A key arrived (or time passed): the parts of catch-ups that can be shown now, in order. */
  retry(now: number): HistoryShown[] {
    const out: HistoryShown[] = [];
    for (const c of [...this.catchUps.values()]) {
      if (c.asking && c.askedAt !== undefined && now - c.askedAt >= PAGE_WAIT_MS) {
        // A page asked for and never answered: end with what we have.
        c.asking = false;
        c.done = true;
        c.cut = c.backwards ? 'older history could not be fetched' : 'later history could not be fetched';
      }
      out.push(...this.drain(c, now));
    }
    return out;
  }

  /** The request for the page after `b`, if `b` was full and the bound allows; else the catch-up is done. */
  private nextPage(c: CatchUp, b: Batch, now: number): string | undefined {
    if (b.lines < this.limit) {
      c.done = true;
      return undefined;
    }
    const at = c.backwards ? b.first : b.last;
    const ref = at?.msgid ? `msgid=${at.msgid}` : serverTime(at?.time) !== undefined ? `timestamp=${at!.time}` : undefined;
    if (c.pages >= MAX_PAGES || ref === undefined) {
      c.done = true;
      c.cut = `${c.backwards ? 'older' : 'later'} history was not fetched (${c.pages === 1 ? 'one page' : `${c.pages} pages`} of ${this.limit} line${this.limit === 1 ? '' : 's'})`;
      return undefined;
    }
    c.pages++;
    c.asking = true;
    c.askedAt = now;
    return `CHATHISTORY ${c.backwards ? 'BEFORE' : 'AFTER'} ${c.room} ${ref} ${this.limit}`;
  }

  /** Decide the pages of `c` that can be, in order; what to show of them now. */
  private drain(c: CatchUp, now: number): HistoryShown[] {
    const out: HistoryShown[] = [];
    while (c.pending.length > 0) {
      const b = c.pending[0]!;
      const page = this.settle(b, now, now - b.endedAt! >= this.holdMs);
      if (!page) break;
      c.pending.shift();
      c.count += page.results.filter((r) => r.kind === 'message').length;
      c.unreadable += page.unreadable;
      c.why ??= page.why;
      if (page.newest !== undefined && (c.newest === undefined || page.newest > c.newest)) c.newest = page.newest;
      if (c.backwards) c.held = [...page.results, ...c.held];
      else {
        // Forwards: shown page by page; what was shown is seen (a later connection goes on from there).
        if (page.newest !== undefined) this.memory?.recordSeen(c.room, page.newest);
        if (page.results.length > 0) out.push(this.part(c, page.results, false));
      }
    }
    if (!c.done || c.asking || c.pending.length > 0) return out;
    this.catchUps.delete(casefold(c.room));
    if (c.newest !== undefined) this.memory?.recordSeen(c.room, c.newest);
    // The summary comes with the last part: the last page's messages if it just came, else alone.
    const last = out.pop();
    out.push(this.part(c, c.backwards ? c.held : (last?.results ?? []), true));
    return out;
  }

  private part(c: CatchUp, results: Shown, final: boolean): HistoryShown {
    return { room: c.room, results, count: c.count, unreadable: c.unreadable, final, summary: final ? historySummary(c.count, c.unreadable, c.why, c.cut) : '' };
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

  /** One page decided (each message once), or undefined while it waits for a key. */
  private settle(b: Batch, now: number, giveUp: boolean): { results: Shown; unreadable: number; why?: string; newest?: number } | undefined {
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
    const results: Shown = [];
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
    return { results, unreadable, ...(why !== undefined ? { why } : {}), ...(newest !== undefined ? { newest } : {}) };
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
