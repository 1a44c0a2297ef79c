/**
 * The fuzzers' oracle: what the daemon must answer to a line, written from the specs rather than
 * from src/ircd/protocol/message.ts, so that the parser is checked against an independent reading.
 *
 *   - grammar: modern.ircdocs.horse "Messages": [@tags SPACE] [:source SPACE] command params,
 *     one or more spaces between parts, ':' starts the trailing parameter, at most 15 parameters;
 *     a command is letters or a three-digit numeric; an empty message is ignored (RFC 2812 §2.3.1).
 *   - limits: 512 bytes for the part after the tags, CRLF included (RFC 1459 §2.3); at most 4094
 *     bytes of tag data from a client, so that the server's own tags fit the 8191-byte tag section
 *     (IRCv3 message-tags "Size limit"). Overlong → 417 ERR_INPUTTOOLONG (docs/DESIGN.md "Rules the code keeps").
 *   - dispatch (docs/DESIGN.md "The daemon", after ergo): unknown command → 421 once registered, 451
 *     before; a registered-only command before registration → 451; too few parameters → 461.
 *   - NUL anywhere → 421 (a malformed line).
 *
 * Where the daemon measures a length on the decoded text (invalid UTF-8 becomes U+FFFD, 3 bytes),
 * the oracle does the same: it decodes the bytes the way the daemon does before measuring.
 */
import { Commands } from '../../src/ircd/commands/table.js';

export const MAX_BODY = 512;
export const MAX_TAGS = 8191;
/** Tag data a client may send, without the '@' and the space (IRCv3 message-tags). */
export const MAX_CLIENT_TAG_DATA = 4094;
/**
 * Longest raw line the daemon takes (client tag data, '@' and space, and the body): a longer one
 * is answered with 417 and dropped, whether it arrives whole or in pieces.
 */
export const MAX_RAW_LINE = MAX_BODY + MAX_CLIENT_TAG_DATA + 2;

export type SpecParse =
  | { ok: true; tags: Map<string, string>; source: string | null; command: string; params: string[] }
  | { ok: false; reason: 'empty' | 'too_long' | 'tags_too_long' | 'too_many_params' }
  | { ok: false; reason: 'bad_command'; token: string; params: string[] };

const utf8 = (s: string): number => Buffer.byteLength(s, 'utf8');

/** IRCv3 message-tags "Escaping values". */
function unescapeValue(v: string): string {
  return v.replace(/\\(.?)/gs, (_m, c: string) => {
    if (c === '') return ''; // a lone trailing backslash is dropped
    return ({ ':': ';', s: ' ', '\\': '\\', r: '\r', n: '\n' } as Record<string, string>)[c] ?? c;
  });
}

/**
 * Parse a line (CRLF already removed) the way the specs above describe. Only the space (0x20)
 * separates parts of a message; tabs and Unicode spaces are ordinary characters (RFC 2812 §2.3.1
 * SPACE = %x20), hence [^ ] rather than \S throughout. The command token is checked as sent:
 * 'ıson' is not ISON, even though 'ı'.toUpperCase() is 'I'.
 */
export function specParse(line: string): SpecParse {
  let s = line.replace(/^ +/, '');
  const tags = new Map<string, string>();
  if (s.startsWith('@')) {
    const m = /^@([^ ]*) +([^]*)$/.exec(s);
    if (!m) return { ok: false, reason: 'empty' }; // only tags: nothing to run
    if (utf8(m[1]!) > MAX_CLIENT_TAG_DATA) return { ok: false, reason: 'tags_too_long' };
    for (const item of m[1]!.split(';').filter(Boolean)) {
      const eq = item.indexOf('=');
      tags.set(eq < 0 ? item : item.slice(0, eq), eq < 0 ? '' : unescapeValue(item.slice(eq + 1)));
    }
    s = m[2]!;
  }
  if (utf8(s) + 2 > MAX_BODY) return { ok: false, reason: 'too_long' };
  let source: string | null = null;
  if (s.startsWith(':')) {
    const m = /^:([^ ]*) +([^]*)$/.exec(s);
    if (!m) return { ok: false, reason: 'empty' };
    source = m[1]!;
    s = m[2]!;
  }
  const cm = /^([^ ]*)([^]*)$/.exec(s)!;
  const token = cm[1]!;
  if (token === '') return { ok: false, reason: 'empty' };
  const params: string[] = [];
  let rest = cm[2]!;
  for (;;) {
    rest = rest.replace(/^ +/, '');
    if (rest === '') break;
    if (rest.startsWith(':')) {
      params.push(rest.slice(1));
      break;
    }
    const t = /^([^ ]+)([^]*)$/.exec(rest)!;
    params.push(t[1]!);
    rest = t[2]!;
  }
  if (!/^(?:[A-Za-z]+|[0-9]{3})$/.test(token)) return { ok: false, reason: 'bad_command', token, params };
  if (params.length > 15) return { ok: false, reason: 'too_many_params' };
  return { ok: true, tags, source, command: token.toUpperCase(), params };
}

/**
 * What may follow a line: any one of `outcomes` satisfies the oracle.
 *   - `{numeric, command?}`: a numeric reply with that code (and that command as first param);
 *   - 'ignored': no reply at all;
 *   - 'handled': the line reached its command's handler (whose replies are the handler's business).
 */
export type Outcome = { numeric: string; command?: string } | 'ignored' | 'handled';

export interface Expectation {
  outcomes: Outcome[];
  /** The upper-cased command when the line parses (for close checks: QUIT). */
  command: string | null;
  /** Why this expectation, for failure messages. */
  why: string;
}

export function expectReply(raw: Buffer, registered: boolean): Expectation {
  const line = raw.toString('utf8');
  const base = expectParsed(line, registered);
  if (raw.length > MAX_RAW_LINE) {
    // Longer than the daemon buffers: it may answer 417 as soon as the partial line overflows,
    // before it has seen the rest, or parse the whole line if it came in one read.
    return { ...base, outcomes: [{ numeric: '417' }, ...base.outcomes], why: `${base.why} / or 417 (raw ${raw.length} bytes)` };
  }
  return base;
}

function expectParsed(line: string, registered: boolean): Expectation {
  // NUL, and a bare CR (a recipient splitting on CR would read a forged second line), are
  // malformed wherever they are (RFC 1459 §2.3.1, §8).
  if (line.includes('\0')) return { outcomes: [{ numeric: '421', command: '*' }], command: null, why: 'NUL byte' };
  if (line.includes('\r')) return { outcomes: [{ numeric: '421', command: '*' }], command: null, why: 'bare CR' };
  return expectParsedAs(specParse(line), registered);
}

function expectParsedAs(p: SpecParse, registered: boolean): Expectation {
  if (!p.ok) {
    switch (p.reason) {
      case 'empty':
        return { outcomes: ['ignored'], command: null, why: 'empty message' };
      case 'too_long':
      case 'tags_too_long':
        return { outcomes: [{ numeric: '417' }], command: null, why: p.reason };
      case 'too_many_params':
        return { outcomes: [{ numeric: '421', command: '*' }], command: null, why: 'more than 15 parameters' };
      case 'bad_command':
        return { outcomes: [{ numeric: '421', command: '*' }], command: null, why: 'malformed command' };
    }
  }
  return expectCommand(p.command, p.params, registered);
}

function expectCommand(command: string, params: readonly string[], registered: boolean): Expectation {
  const cmd = Commands.get(command);
  if (!cmd) {
    return registered
      ? { outcomes: [{ numeric: '421', command }], command, why: 'unknown command' }
      : { outcomes: [{ numeric: '451' }], command, why: 'unknown command before registration' };
  }
  if (!registered && !cmd.preRegistration) return { outcomes: [{ numeric: '451' }], command, why: 'needs registration' };
  if (params.length < cmd.minParams) {
    return { outcomes: [{ numeric: '461', command }], command, why: `${params.length} < ${cmd.minParams} parameters` };
  }
  return { outcomes: ['handled'], command, why: 'valid for dispatch' };
}

/** `:server NNN target params...`: the code and the parameters after the target. */
export function numericOf(line: string): { code: string; args: string[] } | null {
  const m = /^(?:@[^ ]+ )?:[^ ]+ (\d{3}) [^ ]+([^]*)$/.exec(line);
  if (!m) return null;
  const args: string[] = [];
  let rest = m[2]!;
  for (;;) {
    rest = rest.replace(/^ +/, '');
    if (rest === '') break;
    if (rest.startsWith(':')) {
      args.push(rest.slice(1));
      break;
    }
    const t = /^([^ ]+)([^]*)$/.exec(rest)!;
    args.push(t[1]!);
    rest = t[2]!;
  }
  return { code: m[1]!, args };
}

/** Does `segment` (the replies to one line) satisfy one of the expected outcomes? */
export function satisfies(exp: Expectation, segment: readonly string[]): boolean {
  return exp.outcomes.some((o) => {
    if (o === 'handled') return true;
    if (o === 'ignored') return segment.length === 0;
    return segment.some((l) => {
      const n = numericOf(l);
      return n !== null && n.code === o.numeric && (o.command === undefined || n.args[0] === o.command);
    });
  });
}
