/**
 * Numbered parts: binary data (a key envelope, or a room message signed with a large RSA
 * signature) sent as base64 over several IRC lines, and put back together on arrival.
 *
 * Grammar (ABNF, RFC 5234), one part per PRIVMSG/NOTICE trailing parameter:
 *   part  = tag SP id SP index "/" count SP chunk
 *   tag   = "SC1E" / "SC1P" / "SC1O" / "SC1Q"
 *         ; E: key envelope, P: part of a room message, O: a signed room operation,
 *         ; Q: a room operation keybot proposes for the requester's companion to sign
 *   id    = 1*16(ALPHA / DIGIT / "-" / "_")
 *   index = nz *2DIGIT              ; 1..count, no leading zeros
 *   count = nz *2DIGIT              ; 1..999
 *   chunk = 1*(ALPHA / DIGIT / "+" / "/" / "=")
 * The chunks in index order concatenate to the canonical standard base64 (RFC 4648 §4) of the data.
 * A part never starts with ':' and has no space inside a field, so it survives IRC framing as is.
 */
import { randomBytes } from './primitives.js';
import { casefold, fromBase64, toBase64 } from './bytes.js';

/** Budget for one line's payload: what fits after the server adds `:nick!user@host PRIVMSG #room :`. */
export const MAX_LINE_PAYLOAD = 320;
/** Most parts one message may have (the grammar allows three digits). */
export const MAX_PARTS = 999;

/** What a part carries. */
export type PartKind = 'envelope' | 'message' | 'op' | 'proposal';

const TAG_OF: Record<PartKind, string> = { envelope: 'SC1E', message: 'SC1P', op: 'SC1O', proposal: 'SC1Q' };
const KIND_OF: Record<string, PartKind> = { E: 'envelope', P: 'message', O: 'op', Q: 'proposal' };
const PART_RE = /^SC1([EPOQ]) ([A-Za-z0-9_-]{1,16}) ([1-9][0-9]{0,2})\/([1-9][0-9]{0,2}) ([A-Za-z0-9+/=]+)$/;
const ID_RE = /^[A-Za-z0-9_-]{1,16}$/;

/** The kind of a sealchat line, told from its first five characters; undefined for anything else. */
export type LineKind = 'message' | 'message-part' | 'envelope-part' | 'op-part' | 'proposal-part';

/**
 * Cheap recognition of sealchat payloads (looks at five characters, parses nothing): `SC1M ` is a
 * room message, `SC1P ` a part of one, `SC1E ` a part of a key envelope, `SC1O ` a part of a signed
 * room operation, `SC1Q ` a part of an operation keybot proposes (docs/PROTOCOL.md "Room operations").
 */
export function classifyLine(text: string): LineKind | undefined {
  if (typeof text !== 'string' || text.length < 6 || !text.startsWith('SC1') || text[4] !== ' ') return undefined;
  switch (text[3]) {
    case 'M':
      return 'message';
    case 'P':
      return 'message-part';
    case 'E':
      return 'envelope-part';
    case 'O':
      return 'op-part';
    case 'Q':
      return 'proposal-part';
    default:
      return undefined;
  }
}

/** Outcome of {@link frameParts}. */
export enum FrameStatus {
  OK = 'ok',
  /** The data needs more than {@link MAX_PARTS} lines. */
  TOO_LARGE = 'too_large',
}

/** Result of {@link frameParts}. */
export interface FrameResult {
  status: FrameStatus;
  /** The message id used in every part. */
  id: string;
  /** The lines to send, in order (receivers accept any order). Empty unless OK. */
  parts: string[];
}

/** A fresh random message id: 8 base64url characters (48 bits). */
export function newPartId(): string {
  return toBase64(randomBytes(6)).replace(/\+/g, '-').replace(/\//g, '_');
}

/**
 * Split `data` into numbered parts, each at most `maxChars` characters (all ASCII, so bytes too).
 * `id` defaults to a random one; pass one only for reproducible output (tests, vectors).
 */
export function frameParts(options: { data: Uint8Array; kind: PartKind; id?: string; maxChars?: number }): FrameResult {
  if (!options || typeof options !== 'object') throw new TypeError('frameParts: expected one options object');
  const { data, kind } = options;
  if (!(data instanceof Uint8Array) || data.length === 0) throw new TypeError('frameParts: options.data must be a non-empty Uint8Array');
  if (!Object.hasOwn(TAG_OF, kind)) throw new TypeError("frameParts: options.kind must be 'envelope', 'message', 'op' or 'proposal'");
  const id = options.id ?? newPartId();
  if (!ID_RE.test(id)) throw new TypeError('frameParts: options.id must be 1-16 characters of [A-Za-z0-9_-]');
  const maxChars = options.maxChars ?? MAX_LINE_PAYLOAD;
  if (!Number.isInteger(maxChars) || maxChars < 40) throw new TypeError('frameParts: options.maxChars must be an integer >= 40');

  const b64 = toBase64(data);
  const tag = TAG_OF[kind];
  // Header "TAG id i/n " is widest when i has as many digits as n: find the digit count that holds.
  for (let digits = 1; digits <= 3; digits++) {
    const capacity = maxChars - (tag.length + 1 + id.length + 1 + digits * 2 + 1 + 1);
    const count = Math.ceil(b64.length / capacity);
    if (String(count).length > digits) continue;
    const parts: string[] = [];
    for (let i = 0; i < count; i++) {
      parts.push(`${tag} ${id} ${i + 1}/${count} ${b64.slice(i * capacity, (i + 1) * capacity)}`);
    }
    return { status: FrameStatus.OK, id, parts };
  }
  return { status: FrameStatus.TOO_LARGE, id, parts: [] };
}

/** A part parsed by {@link parsePart}. */
export interface ParsedPart {
  kind: PartKind;
  id: string;
  index: number;
  count: number;
  chunk: string;
}

/** Parse one part line; undefined if it does not follow the grammar exactly. */
export function parsePart(line: string): ParsedPart | undefined {
  if (typeof line !== 'string' || line.length > 4096) return undefined;
  const m = PART_RE.exec(line);
  if (!m) return undefined;
  const index = Number(m[3]);
  const count = Number(m[4]);
  if (index > count) return undefined;
  return { kind: KIND_OF[m[1]!]!, id: m[2]!, index, count, chunk: m[5]! };
}

/** Outcome of {@link PartsReassembler.accept}. */
export enum PartStatus {
  /** The last missing part arrived: `data` holds the whole message. */
  COMPLETE = 'complete',
  /** Stored; more parts are needed. */
  INCOMPLETE = 'incomplete',
  /** Not a part line at all (e.g. `SC1M` or plain text). */
  NOT_A_PART = 'not_a_part',
  /** Looks like a part but breaks the grammar, or the whole does not decode. */
  MALFORMED = 'malformed',
  /** The same part again (identical); ignored, the message is kept. */
  DUPLICATE = 'duplicate',
  /** Disagrees with earlier parts of the same id (count, or different content at an index); the message is dropped. */
  INCONSISTENT = 'inconsistent',
  /** The message would exceed the size cap; it is dropped. */
  TOO_LARGE = 'too_large',
  /** The sender (or everyone together) has too many incomplete messages; the part is refused. */
  TOO_MANY_PENDING = 'too_many_pending',
}

/** Result of {@link PartsReassembler.accept}. */
export interface PartResult {
  status: PartStatus;
  kind?: PartKind;
  id?: string;
  /** The reassembled bytes (COMPLETE only). */
  data?: Uint8Array;
}

/** Limits of a {@link PartsReassembler}. */
export interface ReassemblerOptions {
  /** Largest reassembled message in bytes (default 64 KiB). */
  maxBytes?: number;
  /** Incomplete messages kept per sender (default 4). */
  maxPendingPerSender?: number;
  /** Base64 characters kept in incomplete messages over all senders (default 2 MiB). */
  maxPendingChars?: number;
  /** Incomplete messages kept over all senders (default 1024). */
  maxPendingMessages?: number;
  /** An incomplete message is dropped this long after its first part arrived (default 30 s). */
  timeoutMs?: number;
}

interface Pending {
  sender: string;
  kind: PartKind;
  id: string;
  count: number;
  chunks: (string | undefined)[];
  received: number;
  chars: number;
  firstAt: number;
}

/**
 * Puts numbered parts back together, per (sender, kind, id); never mixes two ids or two senders.
 * Pure: no timers; every call passes `now` (ms) and expired messages are dropped lazily.
 * Feed it only lines from senders you would accept the result from (envelopes: only the nick
 * `keybot`; message parts: only room members), so strangers cannot use up the shared budget.
 */
export class PartsReassembler {
  private readonly maxChars: number;
  private readonly maxPendingPerSender: number;
  private readonly maxPendingChars: number;
  private readonly maxPendingMessages: number;
  private readonly timeoutMs: number;
  private readonly pending = new Map<string, Pending>();
  private readonly perSender = new Map<string, number>();
  private pendingChars = 0;

  constructor(options: ReassemblerOptions = {}) {
    const maxBytes = options.maxBytes ?? 64 * 1024;
    this.maxPendingPerSender = options.maxPendingPerSender ?? 4;
    this.maxPendingChars = options.maxPendingChars ?? 2 * 1024 * 1024;
    this.maxPendingMessages = options.maxPendingMessages ?? 1024;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    for (const [name, v] of Object.entries({
      maxBytes,
      maxPendingPerSender: this.maxPendingPerSender,
      maxPendingChars: this.maxPendingChars,
      maxPendingMessages: this.maxPendingMessages,
      timeoutMs: this.timeoutMs,
    })) {
      if (!Number.isInteger(v) || v <= 0) throw new TypeError(`PartsReassembler: ${name} must be a positive integer`);
    }
    this.maxChars = 4 * Math.ceil(maxBytes / 3);
  }

  /** Incomplete messages currently held. */
  get size(): number {
    return this.pending.size;
  }

  /** Take one line from `sender` (a nick; casefolded here) received at `now` (ms since the epoch). */
  accept(options: { sender: string; line: string; now: number }): PartResult {
    if (!options || typeof options !== 'object') throw new TypeError('PartsReassembler.accept: expected one options object');
    const { line, now } = options;
    if (typeof options.sender !== 'string' || options.sender.length === 0) {
      throw new TypeError('PartsReassembler.accept: options.sender must be a non-empty string');
    }
    if (typeof now !== 'number' || !Number.isFinite(now)) throw new TypeError('PartsReassembler.accept: options.now must be a number (ms)');
    this.sweep({ now });

    const lineKind = classifyLine(line);
    if (lineKind === undefined || lineKind === 'message') return { status: PartStatus.NOT_A_PART };
    const part = parsePart(line);
    if (!part) return { status: PartStatus.MALFORMED };
    const sender = casefold(options.sender);
    const ref = { kind: part.kind, id: part.id };
    const key = `${sender}\n${part.kind}\n${part.id}`;

    let entry = this.pending.get(key);
    if (!entry) {
      if (part.count === 1) return this.finish(ref, [part.chunk]);
      if (
        (this.perSender.get(sender) ?? 0) >= this.maxPendingPerSender ||
        this.pending.size >= this.maxPendingMessages
      ) {
        return { status: PartStatus.TOO_MANY_PENDING, ...ref };
      }
      entry = {
        sender,
        ...ref,
        count: part.count,
        chunks: new Array<string | undefined>(part.count),
        received: 0,
        chars: 0,
        firstAt: now,
      };
      this.pending.set(key, entry);
      this.perSender.set(sender, (this.perSender.get(sender) ?? 0) + 1);
    } else if (entry.count !== part.count) {
      this.drop(key);
      return { status: PartStatus.INCONSISTENT, ...ref };
    }

    const existing = entry.chunks[part.index - 1];
    if (existing !== undefined) {
      if (existing === part.chunk) return { status: PartStatus.DUPLICATE, ...ref };
      this.drop(key);
      return { status: PartStatus.INCONSISTENT, ...ref };
    }
    if (entry.chars + part.chunk.length > this.maxChars) {
      this.drop(key);
      return { status: PartStatus.TOO_LARGE, ...ref };
    }
    if (this.pendingChars + part.chunk.length > this.maxPendingChars) {
      // Refuse rather than evict: a flood from one sender must not destroy others' messages.
      if (entry.received === 0) this.drop(key);
      return { status: PartStatus.TOO_MANY_PENDING, ...ref };
    }
    entry.chunks[part.index - 1] = part.chunk;
    entry.received++;
    entry.chars += part.chunk.length;
    this.pendingChars += part.chunk.length;
    if (entry.received < entry.count) return { status: PartStatus.INCOMPLETE, ...ref };
    this.drop(key);
    return this.finish(ref, entry.chunks as string[]);
  }

  /** Drop incomplete messages older than the timeout; returns how many were dropped. */
  sweep(options: { now: number }): number {
    let dropped = 0;
    // Entries sit in arrival order, so with a non-decreasing clock the first live one ends the scan.
    for (const [key, entry] of this.pending) {
      if (options.now - entry.firstAt < this.timeoutMs) break;
      this.drop(key);
      dropped++;
    }
    return dropped;
  }

  private finish(ref: { kind: PartKind; id: string }, chunks: string[]): PartResult {
    const b64 = chunks.join('');
    if (b64.length > this.maxChars) return { status: PartStatus.TOO_LARGE, ...ref };
    const data = fromBase64(b64);
    if (!data || data.length === 0) return { status: PartStatus.MALFORMED, ...ref };
    return { status: PartStatus.COMPLETE, ...ref, data };
  }

  private drop(key: string): void {
    const entry = this.pending.get(key);
    if (!entry) return;
    this.pending.delete(key);
    this.pendingChars -= entry.chars;
    const n = (this.perSender.get(entry.sender) ?? 1) - 1;
    if (n > 0) this.perSender.set(entry.sender, n);
    else this.perSender.delete(entry.sender);
  }
}
