/**
 * CHATHISTORY (IRCv3 draft/chathistory, https://ircv3.net/specs/extensions/chathistory): a
 * room's history as relayed, for its members only. A requester is served the lines whose time
 * lies inside one of its own membership intervals of that room (docs/PROTOCOL.md "Rooms that
 * outlive a connection"); never a member, a pending member or a guest: INVALID_TARGET, the same
 * answer as for a channel that does not exist, so room names cannot be probed.
 *
 * Message references are `timestamp=<ISO 8601>` and `msgid=<id>` (MSGREFTYPES), and `*` for
 * LATEST. All bounds are exclusive. The lines go out oldest first, in a `chathistory` batch for
 * clients that enabled `batch`, each with `time` and `msgid` tags.
 */
import { casefold } from '../../protocol/names.js';
import type { StoredLine } from '../store/index.js';
import type { RegisteredContext } from './types.js';

type Sub = 'LATEST' | 'BEFORE' | 'AFTER' | 'AROUND' | 'BETWEEN' | 'TARGETS';

/** Parameters after the subcommand. */
const ARITY: Record<Sub, number> = { LATEST: 3, BEFORE: 3, AFTER: 3, AROUND: 3, BETWEEN: 4, TARGETS: 3 };

// An ISO 8601 UTC timestamp as server-time writes it (milliseconds optional).
const TIMESTAMP_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/;

/** A parsed message reference. */
type Ref = { kind: 'timestamp'; t: number } | { kind: 'msgid'; id: string } | { kind: 'latest' };

/** Where a reference falls in a list of lines: `after` is the first index after it, `before` the end of those before it. */
interface Position {
  after: number;
  before: number;
}

function parseTimestamp(text: string): number | null {
  if (!TIMESTAMP_RE.test(text)) return null;
  const t = Date.parse(text);
  return Number.isFinite(t) ? t : null;
}

function parseRef(text: string, allowStar: boolean): Ref | null {
  if (text === '*') return allowStar ? { kind: 'latest' } : null;
  const eq = text.indexOf('=');
  if (eq < 0) return null;
  const type = text.slice(0, eq);
  const value = text.slice(eq + 1);
  if (type === 'timestamp') {
    const t = parseTimestamp(value);
    return t === null ? null : { kind: 'timestamp', t };
  }
  if (type === 'msgid' && value !== '' && value.length <= 100) return { kind: 'msgid', id: value };
  return null;
}

/** The position of a reference in `lines`; null for a msgid that is not among them. */
function locate(lines: readonly StoredLine[], ref: Ref): Position | null {
  if (ref.kind === 'latest') return { after: 0, before: lines.length };
  if (ref.kind === 'msgid') {
    const i = lines.findIndex((l) => l.id === ref.id);
    return i < 0 ? null : { after: i + 1, before: i };
  }
  let before = 0;
  while (before < lines.length && lines[before]!.t < ref.t) before++;
  let after = before;
  while (after < lines.length && lines[after]!.t <= ref.t) after++;
  return { after, before };
}

/** The lines a subcommand selects, oldest first. */
function select(sub: Exclude<Sub, 'TARGETS'>, lines: readonly StoredLine[], refs: Position[], limit: number): readonly StoredLine[] {
  const first = (from: number, to: number): readonly StoredLine[] => lines.slice(from, Math.min(to, from + limit));
  const last = (from: number, to: number): readonly StoredLine[] => lines.slice(Math.max(from, to - limit), to);
  const [a, b] = refs as [Position, Position];
  switch (sub) {
    case 'LATEST':
      // LATEST * is the newest lines (`*` is placed before every line); LATEST <ref> the newest
      // of those after the reference.
      return last(a.after, lines.length);
    case 'BEFORE':
      return last(0, a.before);
    case 'AFTER':
      return first(a.after, lines.length);
    case 'AROUND': {
      // Half the limit before the reference, the rest from it on (a msgid's own line included).
      const nBefore = Math.min(a.before, Math.floor(limit / 2));
      return [...lines.slice(a.before - nBefore, a.before), ...lines.slice(a.before, a.before + limit - nBefore)];
    }
    case 'BETWEEN':
      // From the first reference towards the second: the lines nearest the first one.
      return a.before <= b.before ? first(a.after, b.before) : last(b.after, a.before);
  }
}

// CHATHISTORY LATEST <target> <timestamp=|msgid=|*> <limit>
// CHATHISTORY BEFORE|AFTER|AROUND <target> <timestamp=|msgid=> <limit>
// CHATHISTORY BETWEEN <target> <timestamp=|msgid=> <timestamp=|msgid=> <limit>
// CHATHISTORY TARGETS <timestamp=> <timestamp=> <limit>
export function handleChathistory(ctx: RegisteredContext): void {
  const { server, session, client, params } = ctx;
  const fail = (code: string, ...rest: string[]): void => session.sendFrom(server.name, 'FAIL', ['CHATHISTORY', code, ...rest]);
  const subText = params[0];
  if (subText === undefined) return fail('NEED_MORE_PARAMS', '*', 'Missing parameters');
  const sub = subText.toUpperCase() as Sub;
  if (!Object.hasOwn(ARITY, sub)) return fail('UNKNOWN_COMMAND', subText, 'Unknown subcommand');
  const args = params.slice(1);
  if (args.length < ARITY[sub]) return fail('NEED_MORE_PARAMS', sub, 'Missing parameters');
  const limitText = args[ARITY[sub] - 1]!;
  if (!/^\d{1,9}$/.test(limitText)) return fail('INVALID_PARAMS', sub, limitText, 'The limit must be a non-negative integer');
  // 0 or more than CHATHISTORY=<max>: the most the server gives (ISUPPORT CHATHISTORY).
  const asked = Number(limitText);
  const limit = asked === 0 || asked > server.chathistoryMax ? server.chathistoryMax : asked;
  const account = client.account === null ? null : casefold(client.account);

  if (sub === 'TARGETS') {
    const bounds = args.slice(0, 2).map((a) => (a.startsWith('timestamp=') ? parseTimestamp(a.slice('timestamp='.length)) : null));
    if (bounds[0] == null || bounds[1] == null) return fail('INVALID_PARAMS', sub, 'TARGETS takes two timestamp= references');
    const [lo, hi] = bounds[0] <= bounds[1] ? [bounds[0], bounds[1]] : [bounds[1], bounds[0]];
    const found: Array<{ name: string; t: number }> = [];
    for (const { room, lines } of account === null ? [] : server.rooms.readableRooms(account)) {
      let latest = -1;
      for (const l of lines) if (l.t > lo && l.t < hi && l.t > latest) latest = l.t;
      if (latest >= 0) found.push({ name: room.name, t: latest });
    }
    found.sort((x, y) => x.t - y.t);
    const batch = session.caps.has('batch') ? session.newBatchId() : null;
    if (batch) session.sendFrom(server.name, 'BATCH', [`+${batch}`, 'draft/chathistory-targets']);
    for (const f of found.slice(0, limit)) {
      session.sendFrom(null, 'CHATHISTORY', ['TARGETS', f.name, new Date(f.t).toISOString()], batch ? { batch } : undefined);
    }
    if (batch) session.sendFrom(server.name, 'BATCH', [`-${batch}`]);
    return;
  }

  const target = args[0]!;
  const refTexts = args.slice(1, ARITY[sub] - 1);
  const refs: Ref[] = [];
  for (const [i, text] of refTexts.entries()) {
    const ref = parseRef(text, sub === 'LATEST' && i === 0);
    if (!ref) return fail('INVALID_PARAMS', sub, text, 'Invalid message reference (use timestamp=<ISO 8601> or msgid=<id>)');
    refs.push(ref);
  }
  const lines = account === null ? null : server.rooms.readable(casefold(target), account);
  if (lines === null) return fail('INVALID_TARGET', sub, target, 'No history for you in that target');
  const positions = refs.map((r) => locate(lines, r));
  // A msgid outside what the requester may read: nothing to show (an empty batch).
  const selected = positions.every((p) => p !== null) ? select(sub, lines, positions as Position[], limit) : [];

  const batch = session.caps.has('batch') ? session.newBatchId() : null;
  const room = server.rooms.get(casefold(target))!;
  if (batch) session.sendFrom(server.name, 'BATCH', [`+${batch}`, 'chathistory', room.name]);
  for (const l of selected) {
    const tags: Record<string, string> = {};
    if (batch) tags.batch = batch;
    tags.time = new Date(l.t).toISOString();
    tags.msgid = l.id;
    if (session.caps.has('account-tag') && l.a) tags.account = l.a;
    if (session.caps.has('message-tags') && l.tags) for (const [k, v] of l.tags) tags[k] = v;
    session.sendFrom(l.src, l.cmd, l.params, tags);
  }
  if (batch) session.sendFrom(server.name, 'BATCH', [`-${batch}`]);
}
