/**
 * IRC message parsing and serialisation.
 *
 * Grammar: modern.ircdocs.horse "Messages" and IRCv3 message-tags:
 *   [@tags SPACE] [:source SPACE] command *(SPACE param) [SPACE :trailing]
 * Limits: the part after the tags may be 512 bytes including CRLF; client tags may add up to
 * 4094 bytes and the whole tag section up to 8191 (IRCv3 message-tags "Size limit").
 * Overlong input is rejected by the caller with 417 ERR_INPUTTOOLONG, never truncated:
 * truncation would corrupt ciphertext silently.
 */
import { utf8Length } from '../util/utf8.js';

export interface IrcMessage {
  /** Read-only: lines without tags (nearly all) share one empty map. */
  tags: ReadonlyMap<string, string>;
  source: string | null;
  /** Upper-cased command or three-digit numeric. */
  command: string;
  params: string[];
}

/** Bytes allowed for the non-tag part of a line, CRLF included (RFC 1459 §2.3, RFC 2812 §2.3). */
export const MAX_LINE_BYTES = 512;
/** Bytes allowed for the tag section including '@' and the trailing space (IRCv3 message-tags). */
export const MAX_TAG_BYTES = 8191;
/** Client tag data (without '@' and the space) may be at most this long (IRCv3 message-tags). */
export const MAX_CLIENT_TAG_BYTES = 4094;
/** RFC 2812 allows at most 15 parameters; we reject more rather than merge them. */
export const MAX_PARAMS = 15;

export type ParseResult =
  | { ok: true; message: IrcMessage }
  | { ok: false; reason: 'empty' | 'too_long' | 'tags_too_long' | 'bad_command' | 'too_many_params' };

// Most lines carry no tags; sharing one empty map saves an allocation per line on the relay path.
const NO_TAGS: ReadonlyMap<string, string> = new Map();

const TAG_UNESCAPE: Record<string, string> = { ':': ';', s: ' ', '\\': '\\', r: '\r', n: '\n' };

function unescapeTagValue(v: string): string {
  if (!v.includes('\\')) return v;
  let out = '';
  for (let i = 0; i < v.length; i++) {
    const c = v[i];
    if (c === '\\') {
      const next = v[i + 1];
      i++;
      if (next === undefined) break; // a trailing lone backslash is dropped (IRCv3 spec)
      out += TAG_UNESCAPE[next] ?? next;
    } else {
      out += c;
    }
  }
  return out;
}

export function escapeTagValue(v: string): string {
  return v.replace(/[\\; \r\n]/g, (c) => (c === '\\' ? '\\\\' : c === ';' ? '\\:' : c === ' ' ? '\\s' : c === '\r' ? '\\r' : '\\n'));
}

const BAD = 0;
const UPPER = 1;
const LOWER = 2;

/** A command is ASCII letters or exactly three digits. UPPER: letters all upper case, or digits. */
function commandShape(command: string): number {
  const first = command.charCodeAt(0);
  if (first >= 0x30 && first <= 0x39) {
    if (command.length !== 3) return BAD;
    for (let i = 1; i < 3; i++) {
      const c = command.charCodeAt(i);
      if (c < 0x30 || c > 0x39) return BAD;
    }
    return UPPER;
  }
  let shape = UPPER;
  for (let i = 0; i < command.length; i++) {
    const c = command.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) continue;
    if (c >= 0x61 && c <= 0x7a) shape = LOWER;
    else return BAD;
  }
  return shape;
}

/**
 * Parse one line (without CR/LF). `byteLength` checks are done here because the caller
 * hands us a decoded string; we measure the UTF-8 size of each section.
 */
export function parseLine(line: string): ParseResult {
  let pos = 0;
  let tags = NO_TAGS;
  // Leading spaces are tolerated by most servers; skip them.
  while (line.charCodeAt(pos) === 0x20) pos++;
  if (line.charCodeAt(pos) === 0x40 /* @ */) {
    const end = line.indexOf(' ', pos);
    if (end === -1) return { ok: false, reason: 'empty' };
    const tagText = line.slice(pos + 1, end);
    // Servers add their own tags (time, account, msgid) when relaying, so a client's share is
    // capped at 4094 bytes and the relayed tag section stays within 8191.
    if (utf8Length(tagText) > MAX_CLIENT_TAG_BYTES) return { ok: false, reason: 'tags_too_long' };
    const parsed = new Map<string, string>();
    for (const item of tagText.split(';')) {
      if (!item) continue;
      const eq = item.indexOf('=');
      if (eq === -1) parsed.set(item, '');
      else parsed.set(item.slice(0, eq), unescapeTagValue(item.slice(eq + 1)));
    }
    tags = parsed;
    pos = end + 1;
    while (line.charCodeAt(pos) === 0x20) pos++;
  }
  const rest = line.slice(pos);
  if (utf8Length(rest) + 2 > MAX_LINE_BYTES) return { ok: false, reason: 'too_long' };
  let source: string | null = null;
  if (line[pos] === ':') {
    const end = line.indexOf(' ', pos);
    if (end === -1) return { ok: false, reason: 'empty' };
    source = line.slice(pos + 1, end);
    pos = end + 1;
    while (line.charCodeAt(pos) === 0x20) pos++;
  }
  const params: string[] = [];
  let command = '';
  {
    let end = line.indexOf(' ', pos);
    if (end === -1) end = line.length;
    command = line.slice(pos, end);
    pos = end;
  }
  if (!command) return { ok: false, reason: 'empty' };
  const shape = commandShape(command);
  if (shape === BAD) return { ok: false, reason: 'bad_command' };
  // Upper-case only after validating: toUpperCase maps some non-ASCII letters to ASCII
  // ('ı' → 'I', 'ſ' → 'S'), which would let "ıson" run as ISON.
  if (shape === LOWER) command = command.toUpperCase();
  while (pos < line.length) {
    while (line.charCodeAt(pos) === 0x20) pos++;
    if (pos >= line.length) break;
    if (line[pos] === ':') {
      params.push(line.slice(pos + 1));
      break;
    }
    let end = line.indexOf(' ', pos);
    if (end === -1) end = line.length;
    params.push(line.slice(pos, end));
    pos = end;
    if (params.length > MAX_PARAMS) return { ok: false, reason: 'too_many_params' };
  }
  if (params.length > MAX_PARAMS) return { ok: false, reason: 'too_many_params' };
  return { ok: true, message: { tags, source, command, params } };
}

/**
 * Serialise the non-tag part of a message. The last parameter gets a ':' when it is empty,
 * contains a space or starts with ':' (irc-framework drops it for empty params; we must not).
 */
export function serializeBody(source: string | null, command: string, params: readonly string[]): string {
  let out = source ? `:${source} ${command}` : command;
  const last = params.length - 1;
  for (let i = 0; i <= last; i++) {
    const p = params[i];
    if (i === last && (p === '' || p.includes(' ') || p[0] === ':')) out += ` :${p}`;
    else out += ` ${p}`;
  }
  return out;
}

export function serializeTags(tags: ReadonlyMap<string, string> | Record<string, string>): string {
  const entries = tags instanceof Map ? [...tags.entries()] : Object.entries(tags);
  if (entries.length === 0) return '';
  return '@' + entries.map(([k, v]) => (v === '' ? k : `${k}=${escapeTagValue(v)}`)).join(';') + ' ';
}

export function serializeMessage(msg: { tags?: ReadonlyMap<string, string> | Record<string, string>; source?: string | null; command: string; params: readonly string[] }): string {
  return (msg.tags ? serializeTags(msg.tags) : '') + serializeBody(msg.source ?? null, msg.command, msg.params);
}
