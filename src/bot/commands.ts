/**
 * keybot's commands, sent as `PRIVMSG keybot :<command> <args>`. One table drives dispatch and
 * `help`; commands are read by parseKeybotCommand (src/protocol/keybot-command.ts, shared with the companions). Every reply is a NOTICE to the requester (NOTICE, so
 * clients and bots never answer it automatically: RFC 2812 §3.3.2), one line each where possible.
 *
 * Handlers turn the key service's results into text; they never touch IRC or crypto.
 */
import { casefold, isValidChannelName } from '../protocol/names.js';
import { formatFingerprint } from '../protocol/fingerprint.js';
import { parseKeybotCommand } from '../protocol/keybot-command.js';
import { createLogger } from '../util/log.js';
import { DirectoryError } from './directory.js';
import { classifyLine } from '../crypto/index.js';
import { MAX_OP_TARGETS } from '../crypto/index.js';
import { MAX_INVITEES, type KeyService, type ProposeDepartureResult, type Refusal, type RemoveRefusal, type SignedResult } from './service.js';

const log = createLogger('keybot');

/** The part of the key service commands use (tests stub it). */
export type KeyRequests = Pick<
  KeyService,
  | 'proposeInvite'
  | 'proposeLeave'
  | 'proposeRemove'
  | 'signedOperationPart'
  | 'cancelInvite'
  | 'online'
  | 'status'
  | 'roomsOf'
  | 'resendKey'
  | 'fingerprint'
  | 'publicKeyArmored'
  | 'selfNick'
>;

/** What a handler gets to work with. */
export interface CommandContext {
  /** The sender's nick (replies go there). */
  nick: string;
  /** The sender's account; null for a guest (requireAccount=false networks). */
  account: string | null;
  service: KeyRequests;
  reply(text: string): void;
}

export interface Command {
  name: string;
  /** Arguments, as `help` shows them. */
  usage: string;
  summary: string;
  minArgs: number;
  maxArgs: number;
  /** The reply when more than maxArgs arguments are given (default: the usage). */
  tooMany?: string;
  /** Guests may use it too. */
  guests?: boolean;
  handler(ctx: CommandContext & { account: string }, args: string[]): Promise<void> | void;
}

function refusalText(r: Refusal, room?: string): string {
  switch (r.reason) {
    case 'offline':
      return `cannot invite ${r.name}: offline`;
    case 'unknown':
      return `cannot invite ${r.name}: no such account`;
    case 'invalid_name':
      return `cannot invite ${r.name}: not a valid account name`;
    case 'no_key':
      return `cannot invite ${r.name}: no usable key (${r.detail ?? 'none registered'})`;
    case 'service':
      return `cannot invite ${r.name}: that is me, the key service`;
    case 'already_member':
      return `cannot invite ${r.name}: already in ${room ?? 'the room'}`;
    case 'already_invited':
      return `cannot invite ${r.name}: already invited to ${room ?? 'the room'}; they join when they next log in`;
    case 'failed':
      return `cannot invite ${r.name}: could not join (${r.detail ?? 'refused'})`;
    case 'too_many':
      return `cannot invite ${r.name} in this invite: ${r.detail ?? 'too many people'}; invite them into ${room ?? 'the room'} once it is open`;
    case 'key_changed':
      return `cannot invite ${r.name}: their key changed since you signed the invite (${r.detail ?? 'another key'}); invite them again`;
  }
}

/** What one reply line may hold, well inside one IRC line with the server's prefix. */
const REPLY_BUDGET = 300;

/** Lines of "label: a, b, c" that stay well inside one IRC line each. */
function listLines(label: string, items: string[], budget = REPLY_BUDGET): string[] {
  const lines: string[] = [];
  let line = `${label}:`;
  let first = true;
  for (const item of items) {
    const add = (first ? ' ' : ', ') + item;
    if (!first && line.length + add.length > budget) {
      lines.push(line + ',');
      line = `  ${item}`;
    } else {
      line += add;
    }
    first = false;
  }
  lines.push(line);
  return lines;
}

/** How the requester learns that an invitee is offline and joins later (docs/PROTOCOL.md "Rooms that outlive a connection"). */
function pendingText(name: string, room: string): string {
  return `${name} is offline: they join ${room} when they next log in`;
}

function removeRefusalText(r: RemoveRefusal, room: string): string {
  switch (r.reason) {
    case 'self':
      return `cannot remove ${r.name}: that is you; to leave ${room} send: leave ${room}`;
    case 'service':
      return `cannot remove ${r.name}: that is me, the key service`;
    case 'invalid_name':
      return `cannot remove ${r.name}: not a valid account name`;
    case 'unknown':
      return `cannot remove ${r.name}: no such account`;
    case 'not_member':
      return `cannot remove ${r.name}: not in ${room}`;
    case 'pending':
      return `cannot remove ${r.name}: invited, not in ${room} yet; drop the invite with: cancel ${room} ${r.name}`;
    case 'not_keyed':
      return `cannot remove ${r.name} yet: the key of ${room} that lists them is on its way; try again in a moment`;
    case 'too_many':
      return `cannot remove ${r.name} in this command: one remove names at most ${MAX_OP_TARGETS} people`;
  }
}

/** What the requester reads once keybot carried out (or refused) an operation they signed. */
export function signedReplies(r: SignedResult): string[] {
  if (r.status === 'incomplete') return [];
  if (r.status === 'refused') return [`${r.command} refused: ${r.reason}`];
  if (r.status === 'left') return [`you left ${r.room}`];
  if (r.status === 'removed') return [`removed ${r.removed.join(', ')} from ${r.room}; the others get a new key`];
  const out: string[] = [];
  if (r.status === 'added') {
    const a = r.result;
    if (a.status === 'not_member') return ['invite refused: you are no longer in that room'];
    for (const refusal of a.refused) out.push(refusalText(refusal, a.room));
    for (const name of a.pending) out.push(pendingText(name, a.room));
    if (a.joined.length === 0) return a.pending.length > 0 ? out : [...out, `nobody added to ${a.room}`];
    const line = `added ${a.joined.join(', ')} to ${a.room}`;
    if (line.length <= REPLY_BUDGET) return [...out, line];
    return [...out, `added ${a.joined.length} users to ${a.room}`, ...listLines('added', a.joined)];
  }
  const o = r.result;
  if (o.status === 'requester_unusable') return ['invite refused: your account has no usable key'];
  for (const refusal of o.refused) out.push(refusalText(refusal));
  if (o.status === 'nobody') return [...out, 'no room opened: none of the users you invited can join now'];
  for (const name of o.pending) out.push(pendingText(name, o.room));
  if (o.joined.length === 0) return [...out, `opened ${o.room}; keys follow`];
  const line = `opened ${o.room} with ${o.joined.join(', ')}; keys follow`;
  if (line.length <= REPLY_BUDGET) return [...out, line];
  // Too many names for one line: the count first (one line that says it all), then the names.
  return [...out, `opened ${o.room} with ${o.joined.length} users; keys follow`, ...listLines('with', o.joined)];
}

function notMember(ctx: CommandContext, room: string): void {
  // The same answer whether the room exists or not: non-members learn nothing about it.
  ctx.reply(`you are not in ${room}`);
}

function checkRoomArg(ctx: CommandContext, room: string): boolean {
  if (room.startsWith('#') && isValidChannelName(room)) return true;
  ctx.reply(`"${room}" is not a room name (they look like #sc-...)`);
  return false;
}

const TOO_MANY_INVITEES = `too many names: invite takes at most ${MAX_INVITEES} users at a time`;
const TOO_MANY_REMOVED = `too many names: remove takes at most ${MAX_OP_TARGETS} users at a time`;

/** keybot's answer to `leave` or `remove` once proposed (the outcome follows the signature: signedReplies). */
function departureReplies(ctx: CommandContext, room: string, command: 'leave' | 'remove', r: ProposeDepartureResult): void {
  switch (r.status) {
    case 'proposed':
      for (const refusal of r.refused) ctx.reply(removeRefusalText(refusal, r.room));
      return;
    case 'not_member':
      return notMember(ctx, room);
    case 'key_pending':
      return ctx.reply(`${r.room} has no key that lists you yet; ${command} again in a moment`);
    case 'nobody_to_remove':
      for (const refusal of r.refused) ctx.reply(removeRefusalText(refusal, r.room));
      return ctx.reply(`nobody removed from ${r.room}`);
    case 'busy':
      return ctx.reply('too many room changes waiting for your signature; wait for them to finish');
  }
}

export const COMMANDS: readonly Command[] = [
  {
    name: 'invite',
    usage: '[#room] <user>...',
    summary: 'open a new encrypted room with these users (or add them to #room, if you are in it)',
    minArgs: 1,
    maxArgs: MAX_INVITEES + 1,
    tooMany: TOO_MANY_INVITEES,
    async handler(ctx, args) {
      const users = args[0]!.startsWith('#') ? args.length - 1 : args.length;
      if (users > MAX_INVITEES) return ctx.reply(TOO_MANY_INVITEES);
      let room: string | undefined;
      let names = args;
      if (args[0]!.startsWith('#')) {
        [room, ...names] = args;
        if (!checkRoomArg(ctx, room!)) return;
        if (names.length === 0) return ctx.reply(`usage: invite ${room} <user>...`);
      }
      // keybot proposes; the requester's companion signs; the invite happens then (operations.ts).
      const r = await ctx.service.proposeInvite(ctx.account, room, names);
      switch (r.status) {
        case 'proposed':
          for (const refusal of r.refused) ctx.reply(refusalText(refusal, r.room));
          return;
        case 'not_member':
          return notMember(ctx, room!);
        case 'key_pending':
          return ctx.reply(`${r.room} has no key yet; invite again in a moment`);
        case 'nobody_to_add':
          for (const refusal of r.refused) ctx.reply(refusalText(refusal, r.room));
          return ctx.reply(`nobody added to ${r.room}`);
        case 'busy':
          return ctx.reply('too many invites waiting for your signature; wait for them to finish');
        case 'requester_unusable':
          return ctx.reply(
            r.problem === 'no_key'
              ? `you cannot open rooms: your account has no usable key (${r.detail ?? 'none registered'})`
              : 'you need an account with a registered key to open rooms',
          );
        case 'nobody':
          for (const refusal of r.refused) ctx.reply(refusalText(refusal));
          return ctx.reply('no room opened: none of the users you invited can join now');
      }
    },
  },
  {
    name: 'online',
    usage: '',
    summary: 'list who is online',
    minArgs: 0,
    maxArgs: 0,
    async handler(ctx) {
      const names = await ctx.service.online();
      if (names.length === 0) return ctx.reply('nobody is online');
      for (const line of listLines(`online (${names.length})`, names)) ctx.reply(line);
    },
  },
  {
    name: 'status',
    usage: '<user>',
    summary: "whether a user is online, and their key's fingerprint",
    minArgs: 1,
    maxArgs: 1,
    async handler(ctx, [name]) {
      const r = await ctx.service.status(name!);
      if (r.status === 'unknown') return ctx.reply(`${name}: no such account`);
      const where = `${r.name} is ${r.online ? 'online' : 'offline'}`;
      if (!r.fingerprint) return ctx.reply(`${where}; no key registered`);
      const fp = formatFingerprint(r.fingerprint);
      if (casefold(r.name) === casefold(ctx.service.selfNick)) return ctx.reply(`${where}; key ${fp} (the key service)`);
      ctx.reply(r.usable ? `${where}; key ${fp}` : `${where}; key ${fp} is not usable (${r.detail ?? 'refused'})`);
    },
  },
  {
    name: 'rooms',
    usage: '',
    summary: 'your rooms, their members and key epochs',
    minArgs: 0,
    maxArgs: 0,
    handler(ctx) {
      const rooms = ctx.service.roomsOf(ctx.account);
      if (rooms.length === 0) return ctx.reply('you are in no rooms; open one with: invite <user>...');
      for (const r of rooms) {
        const label = `${r.room} (${r.epoch === undefined ? 'key pending' : `epoch ${r.epoch}`})`;
        for (const line of listLines(label, r.members)) ctx.reply(line);
      }
    },
  },
  {
    name: 'leave',
    usage: '<#room>',
    summary: 'leave a room, signed by your client (the others get a new key)',
    minArgs: 1,
    maxArgs: 1,
    async handler(ctx, [room]) {
      if (!checkRoomArg(ctx, room!)) return;
      // keybot proposes; the requester's companion signs; the leave happens then (operations.ts).
      departureReplies(ctx, room!, 'leave', ctx.service.proposeLeave(ctx.account, room!));
    },
  },
  {
    name: 'remove',
    usage: '<#room> <user>...',
    summary: 'remove members from a room you are in, signed by your client (any member may; the others get a new key)',
    minArgs: 2,
    maxArgs: MAX_OP_TARGETS + 1,
    tooMany: TOO_MANY_REMOVED,
    async handler(ctx, [room, ...names]) {
      if (!checkRoomArg(ctx, room!)) return;
      departureReplies(ctx, room!, 'remove', await ctx.service.proposeRemove(ctx.account, room!, names));
    },
  },
  {
    name: 'cancel',
    usage: '<#room> <user>',
    summary: 'drop the invite of someone who has not logged in yet (any member may)',
    minArgs: 2,
    maxArgs: 2,
    async handler(ctx, [room, user]) {
      if (!checkRoomArg(ctx, room!)) return;
      const r = await ctx.service.cancelInvite(ctx.account, room!, user!);
      if (r.status === 'not_member') return notMember(ctx, room!);
      if (r.status === 'not_pending') return ctx.reply(`${r.name} has no pending invite to ${r.room}`);
      ctx.reply(`cancelled the invite of ${r.name} to ${r.room}`);
    },
  },
  {
    name: 'key',
    usage: '<#room>',
    summary: "send me the room's current key again",
    minArgs: 1,
    maxArgs: 1,
    async handler(ctx, [room]) {
      if (!checkRoomArg(ctx, room!)) return;
      const r = await ctx.service.resendKey(ctx.account, room!);
      if (r.status === 'not_member') return notMember(ctx, room!);
      if (r.status === 'pending') return ctx.reply(`a new key for ${r.room} is on its way`);
      ctx.reply(`sent you the key of ${r.room} again (epoch ${r.epoch})`);
    },
  },
  {
    name: 'fingerprint',
    usage: '',
    summary: "my key's fingerprint, to check against the one your client pinned",
    minArgs: 0,
    maxArgs: 0,
    guests: true,
    handler(ctx) {
      ctx.reply(`my key fingerprint is ${formatFingerprint(ctx.service.fingerprint)}; your client should have pinned exactly this one`);
    },
  },
  {
    name: 'pubkey',
    usage: '',
    summary: 'my armored OpenPGP public key, one line per NOTICE (pin it by its fingerprint)',
    minArgs: 0,
    maxArgs: 0,
    guests: true,
    handler(ctx) {
      // Nothing before the BEGIN line: companions read the reply as armor (src/client/keybot-key.ts).
      // Empty lines are left out; IRC clients drop them anyway.
      for (const line of ctx.service.publicKeyArmored.split(/\r?\n/)) if (line.trim() !== '') ctx.reply(line);
    },
  },
  {
    name: 'help',
    usage: '[command]',
    summary: 'this list, or the usage of one command',
    minArgs: 0,
    maxArgs: 1,
    guests: true,
    handler(ctx, [name]) {
      for (const line of helpLines(name)) ctx.reply(line);
    },
  },
];

function usageOf(c: Command): string {
  return c.usage ? `${c.name} ${c.usage}` : c.name;
}

/** The help text, built from the table. */
export function helpLines(command?: string, table: readonly Command[] = COMMANDS): string[] {
  if (command !== undefined) {
    const c = table.find((x) => x.name === command.toLowerCase());
    if (!c) return [`no command "${command}"; send "help" for the list`];
    return [`usage: ${usageOf(c)}`, c.summary];
  }
  const width = Math.max(...table.map((c) => usageOf(c).length));
  return [
    'keybot opens end-to-end encrypted rooms and hands out their keys. Commands (/msg keybot <command>):',
    ...table.map((c) => `  ${usageOf(c).padEnd(width)}  ${c.summary}`),
  ];
}

/** Per-sender command budget: a burst, then one command per `refillMs`. */
class CommandBudget {
  private readonly buckets = new Map<string, { tokens: number; at: number; warned: boolean }>();

  constructor(
    private readonly burst: number,
    private readonly refillMs: number,
  ) {}

  /** 'ok', 'warn' (first refusal: tell them) or 'drop'. */
  take(who: string, now: number): 'ok' | 'warn' | 'drop' {
    const key = casefold(who);
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= 10_000) this.sweep(now);
      b = { tokens: this.burst, at: now, warned: false };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + (now - b.at) / this.refillMs);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      b.warned = false;
      return 'ok';
    }
    if (b.warned) return 'drop';
    b.warned = true;
    return 'warn';
  }

  private sweep(now: number): void {
    for (const [k, b] of this.buckets) if (b.tokens + (now - b.at) / this.refillMs >= this.burst) this.buckets.delete(k);
  }
}

export interface DispatcherOptions {
  table?: readonly Command[];
  /** Commands accepted at once per sender (default 10). */
  burst?: number;
  /** Then one per this long (default 500 ms). */
  refillMs?: number;
}

/** Runs commands: the checks every command shares happen here once, never in handlers. */
export class CommandDispatcher {
  private readonly table: readonly Command[];
  private readonly budget: CommandBudget;

  constructor(opts: DispatcherOptions = {}) {
    this.table = opts.table ?? COMMANDS;
    this.budget = new CommandBudget(opts.burst ?? 10, opts.refillMs ?? 500);
  }

  private async operationPart(ctx: CommandContext, text: string): Promise<void> {
    if (ctx.account === null) return ctx.reply('you need an account to change rooms');
    try {
      for (const line of signedReplies(await ctx.service.signedOperationPart(ctx.nick, ctx.account, text))) ctx.reply(line);
    } catch (err) {
      if (err instanceof DirectoryError && err.code === 'unavailable') return ctx.reply('sorry, the user directory is unavailable right now; try again in a moment');
      log.error(`signed operation from ${ctx.nick} failed`, err);
      ctx.reply('sorry, that room change failed; try again in a moment');
    }
  }

  async dispatch(ctx: CommandContext, text: string): Promise<void> {
    // A part of a signed room operation (the companion's answer to an invite keybot proposed):
    // not a command, and outside the command budget (a large invite takes several lines).
    if (classifyLine(text) === 'op-part') return this.operationPart(ctx, text);
    const parsed = parseKeybotCommand(text);
    if (parsed.kind === 'empty') return;
    const verdict = this.budget.take(ctx.account ?? ctx.nick, Date.now());
    if (verdict === 'drop') return;
    if (verdict === 'warn') return ctx.reply('slow down: too many commands; try again in a few seconds');
    const cmd = this.table.find((c) => c.name === parsed.name);
    if (!cmd) return ctx.reply(`unknown command "${parsed.name.slice(0, 30)}"; send "help" for the list`);
    if (ctx.account === null && !cmd.guests) {
      const open = this.table.filter((c) => c.guests).map((c) => c.name);
      return ctx.reply(`you need an account to use ${cmd.name}; guests can use ${open.join(', ')}`);
    }
    if (parsed.args.length > cmd.maxArgs && cmd.tooMany) return ctx.reply(cmd.tooMany);
    if (parsed.args.length < cmd.minArgs || parsed.args.length > cmd.maxArgs) {
      return ctx.reply(`usage: ${usageOf(cmd)}`);
    }
    try {
      await cmd.handler(ctx as CommandContext & { account: string }, parsed.args);
    } catch (err) {
      if (err instanceof DirectoryError && err.code === 'unavailable') {
        log.warn(`${cmd.name} from ${ctx.nick}: ${err.message}`);
        ctx.reply('sorry, the user directory is unavailable right now; try again in a moment');
      } else {
        log.error(`${cmd.name} from ${ctx.nick} failed`, err);
        ctx.reply(`sorry, ${cmd.name} failed; try again in a moment`);
      }
    }
  }
}
