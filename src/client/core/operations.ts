/**
 * RoomOperations: the companion's half of member-signed room operations (docs/PROTOCOL.md "Room
 * operations"; issue 11). Part of RoomCryptoEngine (engine.ts), transport-free.
 *
 *  - **Signing invites.** When the user sends `invite [#room] <user>...` to keybot (typed in any
 *    client: the terminal client, irssi through the proxy, WeeChat or irssi with the plugin), the
 *    companion notes what was asked. keybot answers with the operation it would carry out (`SC1Q`
 *    parts); the companion signs it unchanged with the user's key only if it is what the user
 *    asked for: the user's own account and key, the room named (or a new `#sc-` room), targets
 *    the user named, the roster hash of the room's epoch the companion holds, a recent time. A
 *    proposal nobody here asked for is refused and reported: someone else is using the account's
 *    password (a second session), and keybot will not act without the signature.
 *  - **Signing departures.** `leave <#room>` and `remove <#room> <user>...` go the same way: keybot
 *    proposes a `leave` (the user alone) or a `remove` (the people named), and the companion signs
 *    it only if its user typed that very command in the last minute: the same room, targets the
 *    user named, the user's own account and key, a recent time. A `remove` must also apply to the
 *    roster of the epoch the companion holds (every target a member under the fingerprint named):
 *    the signature says whom the user removed. A `leave` only ever takes the user out, so a
 *    companion that holds no roster for the room (just restarted) signs it all the same; if it
 *    holds one, the roster hash must be that one's.
 *  - **Checking who added whom.** keybot relays each operation it carried out to the room (`SC1O`
 *    NOTICE parts) before the epoch it causes. When that epoch arrives, every member the new
 *    roster adds must be named, with the same fingerprint, by an operation signed by a member of
 *    the previous roster (for a new room: by the opener, who must be in it) that applies to the
 *    roster the companion held. The key result then says "carol added by alice, verified". An
 *    epoch that adds anyone no such operation explains is refused: nothing is sent under it.
 */
import {
  EMPTY_ROSTER_HASH,
  FrameStatus,
  applyRoomOp,
  bytesEqual,
  PartStatus,
  PartsReassembler,
  RoomOpStatus,
  frameParts,
  readProposedOp,
  rosterHash,
  signRoomOp,
  verifyRoomOp,
  type EnvelopeMember,
  type PrivateKeyHandle,
  type RoomOp,
} from '../../crypto/index.js';
import { parseKeybotCommand } from '../../protocol/keybot-command.js';
import { casefold, isSealchatRoomName } from '../../protocol/names.js';

/** How long a typed invite, leave or remove waits for keybot's proposal. */
const INTENT_TTL_MS = 60_000;
/** How long a relayed operation waits for the epoch it causes. */
const RELAYED_TTL_MS = 10 * 60_000;
/** An operation's time may differ from ours by this much (docs/PROTOCOL.md: 5 minutes old, 1 ahead). */
const OP_MAX_AGE_MS = 5 * 60_000;
const OP_MAX_SKEW_MS = 60_000;
/**
 * How old a relayed operation may be when it explains a pending member (an invitee who was
 * offline, keyed when they log in): keybot lets a pending invite lapse after 30 days.
 */
const PENDING_MAX_AGE_MS = 30 * 86_400_000 + 60 * 60_000;
/** Additions remembered per room, so one operation explains one account once. */
const MAX_EXPLAINED_PER_ROOM = 512;
const MAX_INTENTS = 16;
const MAX_RELAYED_PER_ROOM = 32;

/** A keybot command the user typed that changes a room, as keybot will propose it. */
type IntentKind = 'invite' | 'leave' | 'remove';

interface Intent {
  kind: IntentKind;
  /** Folded room, or undefined for a new room (an invite only). */
  room?: string;
  /** Folded accounts named (none for leave). */
  targets: Set<string>;
  at: number;
}

/** The command a proposal of `action` answers. */
const KIND_OF: Record<RoomOp['action'], IntentKind> = { create: 'invite', add: 'invite', leave: 'leave', remove: 'remove' };

interface Relayed {
  data: Uint8Array;
  at: number;
}

/** What the engine does with a proposal from keybot. */
export interface ProposalAnswer {
  /** The signed operation as `SC1O` lines, each to be sent as a PRIVMSG to keybot. */
  lines?: string[];
  /** Refused: tell the user why (nothing is sent). */
  refused?: string;
}

/** How a new epoch's roster follows from the previous one. */
export interface RosterExplanation {
  /** "carol added by alice, verified", "room opened by alice, verified", "bob removed by alice, verified" — for the user. */
  changes: string[];
  /** Accounts the new roster adds that no verified operation names: the epoch must be refused. */
  unexplained: string[];
}

export class RoomOperations {
  private readonly folded: string;
  private intents: Intent[] = [];
  private readonly relayed = new Map<string, Relayed[]>();
  /** Folded room → `<nonce>/<folded account>` of additions an operation already explained. */
  private readonly explainedBefore = new Map<string, Set<string>>();
  private readonly proposals = new PartsReassembler({ maxBytes: 16 * 1024, maxPendingPerSender: 2, timeoutMs: 30_000 });
  private readonly ops = new PartsReassembler({ maxBytes: 16 * 1024, maxPendingPerSender: 4, maxPendingMessages: 64, timeoutMs: 30_000 });

  constructor(
    private readonly account: string,
    private readonly privateKey: PrivateKeyHandle,
  ) {
    this.folded = casefold(account);
  }

  /** The user sent `text` to keybot: if it is an invite, leave or remove, remember what was asked. */
  typed(text: string, now: number): void {
    const c = parseKeybotCommand(text);
    if (c.kind !== 'command' || c.args.length === 0) return;
    const first = c.args[0]!;
    const room = first.startsWith('#') ? casefold(first) : undefined;
    const named = new Set(c.args.slice(room === undefined ? 0 : 1).map((w) => casefold(w)));
    let intent: Intent;
    if (c.name === 'invite' && named.size > 0) intent = { kind: 'invite', ...(room !== undefined ? { room } : {}), targets: named, at: now };
    // keybot's `leave <#room>` and `remove <#room> <user>...`: the room is always named.
    else if (c.name === 'leave' && room !== undefined && c.args.length === 1) intent = { kind: 'leave', room, targets: named, at: now };
    else if (c.name === 'remove' && room !== undefined && named.size > 0) intent = { kind: 'remove', room, targets: named, at: now };
    else return;
    this.intents = this.intents.filter((i) => now - i.at < INTENT_TTL_MS).slice(-(MAX_INTENTS - 1));
    this.intents.push(intent);
  }

  /**
   * One `SC1Q` part from keybot. Once complete: sign it if the user asked for exactly this
   * (see the file comment), else refuse. `roster(room)`: the members of the room's current
   * epoch we hold, if any.
   */
  proposalPart(line: string, roster: (room: string) => EnvelopeMember[] | undefined, now: number): ProposalAnswer | undefined {
    const r = this.proposals.accept({ sender: 'keybot', line, now });
    if (r.status === PartStatus.INCOMPLETE || r.status === PartStatus.DUPLICATE) return undefined;
    if (r.status !== PartStatus.COMPLETE || !r.data) return { refused: `keybot's proposal did not arrive whole (${r.status}); nothing was signed` };
    const read = readProposedOp({ data: r.data });
    if (read.status !== RoomOpStatus.OK || !read.op) return { refused: `keybot sent a proposal that is not a room operation (${read.status}); nothing was signed` };
    const op = read.op;
    const problem = this.proposalProblem(op, roster, now);
    if (problem !== undefined) return { refused: problem };
    const signed = signRoomOp({ op, signer: this.privateKey });
    const framed = frameParts({ data: signed, kind: 'op' });
    if (framed.status !== FrameStatus.OK) return { refused: 'the signed operation is too large to send; nothing was signed' };
    return { lines: framed.parts };
  }

  private proposalProblem(op: RoomOp, roster: (room: string) => EnvelopeMember[] | undefined, now: number): string | undefined {
    const names = op.targets.map((t) => t.account).join(', ');
    const what =
      op.action === 'leave' ? `leave ${op.room}` : op.action === 'remove' ? `remove ${names} from ${op.room}` : `${op.action === 'create' ? 'a new room' : op.room} with ${names}`;
    const refuse = (why: string): string => `refused to sign keybot's proposal (${what}): ${why}`;
    const kind = KIND_OF[op.action];
    if (casefold(op.actor.account) !== this.folded || op.actor.fingerprint !== this.privateKey.fingerprint) return refuse('it is not in your name and key');
    if (now - op.issuedAt > OP_MAX_AGE_MS || op.issuedAt - now > OP_MAX_SKEW_MS) return refuse('its time is off');
    const room = op.action === 'create' ? undefined : casefold(op.room);
    this.intents = this.intents.filter((i) => now - i.at < INTENT_TTL_MS);
    // What was typed: the same command, for the same room, naming (at least) everyone proposed.
    const intent = this.intents.find((i) => i.kind === kind && i.room === room && op.targets.every((t) => i.targets.has(casefold(t.account))));
    if (!intent) {
      const typed = kind === 'invite' ? 'that invite' : kind === 'leave' ? `"leave ${op.room}"` : `that remove`;
      return refuse(
        `you did not ask for it. If you did not send ${typed}, someone else is logged in with your password; keybot does nothing without your signature`,
      );
    }
    const members = op.action === 'create' ? undefined : roster(op.room);
    if (op.action === 'create') {
      if (!isSealchatRoomName(op.room) || roster(op.room) !== undefined) return refuse('it is not a new room');
      if (!bytesEqual(op.roster, EMPTY_ROSTER_HASH)) return refuse('a new room starts with nobody in it');
    } else if (!members) {
      // Leaving takes nobody in and nobody else out: signed without a roster to check (see the file comment).
      if (op.action !== 'leave') return refuse(`you hold no key for ${op.room}`);
    } else {
      const ours = rosterHash(members);
      if (!bytesEqual(op.roster, ours)) return refuse(`it is for another membership of ${op.room} than the one you hold (the room changed; ${kind} again)`);
      if (op.action === 'remove') {
        // Every target a member of the roster we hold, under the fingerprint named (applyRoomOp: BAD_TARGET).
        const applied = applyRoomOp({ op, room: op.room, roster: members });
        if (applied.status !== RoomOpStatus.OK) return refuse(applied.reason ?? applied.status);
      }
    }
    this.intents = this.intents.filter((i) => i !== intent);
    return undefined;
  }

  /** One `SC1O` part keybot relayed to `room`: kept until the epoch it causes arrives. */
  relayedPart(room: string, line: string, now: number): void {
    const r = this.ops.accept({ sender: `keybot ${casefold(room)}`, line, now });
    if (r.status !== PartStatus.COMPLETE || r.kind !== 'op' || !r.data) return;
    this.relayedData(room, r.data, now);
  }

  /**
   * A signed operation that came for `room` some other way: named inside keybot's version-3 join
   * envelope (docs/PROTOCOL.md "Envelope version 3"). Checked like a relayed one by explain().
   */
  relayedData(room: string, data: Uint8Array, now: number): void {
    const f = casefold(room);
    const list = (this.relayed.get(f) ?? []).filter((x) => now - x.at < RELAYED_TTL_MS && !bytesEqual(x.data, data));
    list.push({ data, at: now });
    this.relayed.set(f, list.slice(-MAX_RELAYED_PER_ROOM));
  }

  /**
   * A new epoch of `room` lists `next`; `previous` is the roster of the epoch we held before (on
   * this connection), if any. Which additions verified operations explain, and which none does.
   * Without a previous roster, additions cannot be checked (our first key for the room): only
   * operations that verify are shown, and nothing is called unexplained.
   */
  explain(
    room: string,
    previous: readonly EnvelopeMember[] | undefined,
    next: readonly EnvelopeMember[],
    now: number,
    wasMemberEarlier: (account: string, fingerprint: string) => boolean = () => false,
  ): RosterExplanation {
    const f = casefold(room);
    const relayed = (this.relayed.get(f) ?? []).filter((x) => now - x.at < RELAYED_TTL_MS);
    const before = new Set((previous ?? []).map((m) => casefold(m.account)));
    const byAccount = new Map(next.map((m) => [casefold(m.account), m]));
    // Without a previous roster everyone but us is new to us.
    const added = next.filter((m) => !before.has(casefold(m.account)) && (previous !== undefined || casefold(m.account) !== this.folded));
    const explained = new Set<string>();
    const changes: string[] = [];
    const rest: Relayed[] = [];
    let opened = false;
    for (const x of relayed) {
      const op = this.verified(x.data, f, previous, byAccount, now);
      if (!op) {
        rest.push(x);
        continue;
      }
      if (op.action === 'leave' || op.action === 'remove') {
        // A signed departure shown with the epoch that carries it out (a join envelope's ops: the
        // epoch notice's are shown by advanceRoster). It explains no addition.
        const gone = (op.action === 'leave' ? [op.actor.account] : op.targets.map((t) => t.account)).filter((a) => !byAccount.has(casefold(a)));
        if (gone.length === 0) rest.push(x);
        else if (op.action === 'leave') changes.push(`${op.actor.account} left, verified`);
        else changes.push(`${gone.map((a) => (casefold(a) === this.folded ? 'you' : a)).join(', ')} removed by ${op.actor.account}, verified`);
        continue;
      }
      const names: string[] = [];
      if (op.action === 'create') {
        opened = true;
        explained.add(casefold(op.actor.account));
      }
      const used = this.explainedBefore.get(f) ?? new Set<string>();
      for (const t of op.targets) {
        const m = byAccount.get(casefold(t.account));
        if (!m || m.fingerprint !== t.fingerprint || explained.has(casefold(t.account))) continue;
        // A pending addition: only someone this epoch adds, and only once per operation.
        const once = `${Array.from(op.nonce, (b) => b.toString(16).padStart(2, '0')).join('')}/${casefold(t.account)}`;
        if (op.pending && (before.has(casefold(t.account)) || used.has(once))) continue;
        explained.add(casefold(t.account));
        if (!before.has(casefold(t.account))) used.add(once);
        names.push(casefold(t.account) === this.folded ? 'you' : m.account);
      }
      if (used.size > 0) this.explainedBefore.set(f, new Set([...used].slice(-MAX_EXPLAINED_PER_ROOM)));
      if (op.pending) {
        // Said with the invite's age: an old invite carried out now is visible as such.
        if (names.length > 0) changes.push(`${names.join(', ')} added by ${op.actor.account} (invited ${ago(now - op.issuedAt)} ago, while offline), verified`);
        else rest.push(x);
        continue;
      }
      if (op.action === 'create') changes.push(`room opened by ${op.actor.account}${names.length ? ` with ${names.join(', ')}` : ''}, verified`);
      else if (names.length > 0) changes.push(`${names.join(', ')} added by ${op.actor.account}, verified`);
      // An addition this epoch does not carry yet (its placement is still going on) waits for the next one.
      else rest.push(x);
    }
    // Additions can be checked against a roster we held, or against the opening of a new room.
    // Someone who was a member when our earlier connection ended, under the same key, may come
    // back without a signature: keybot restoring the room after a daemon restart puts back its
    // remembered members as they log in again (docs/PROTOCOL.md "The daemon restarts").
    const unchecked = added.filter((m) => !explained.has(casefold(m.account)));
    const back = previous !== undefined ? unchecked.filter((m) => wasMemberEarlier(m.account, m.fingerprint)) : [];
    if (back.length > 0) changes.push(`${back.map((m) => m.account).join(', ')} back in the room after a reconnect (restored by keybot, not signed)`);
    const unexplained = previous !== undefined || opened ? unchecked.filter((m) => !back.includes(m)).map((m) => m.account) : [];
    if (rest.length > 0) this.relayed.set(f, rest);
    else this.relayed.delete(f);
    return { changes, unexplained };
  }

  /**
   * The operation in `data` if it verifies for this epoch: for `add`, signed by a member of the
   * previous roster under that member's entry and made for exactly that roster (without one, by
   * the actor's entry in the new roster, for display only); for `create`, signed by the opener's
   * entry in the new roster and made for the empty roster.
   *
   * A **pending addition** (docs/PROTOCOL.md "Rooms that outlive a connection", keybot): an
   * invitee who was offline is keyed at their login, up to 30 days later, under the operation
   * that invited them, relayed again unchanged; the roster has often moved since. Such an
   * operation (an `add` for another roster, or a `create` once we hold a roster) is taken if it
   * verifies under the actor's entry in the roster we hold now; it then explains only accounts
   * this epoch adds, each once (`pending`).
   */
  private verified(
    data: Uint8Array,
    room: string,
    previous: readonly EnvelopeMember[] | undefined,
    next: ReadonlyMap<string, EnvelopeMember>,
    now: number,
  ): (RoomOp & { pending?: true }) | undefined {
    const claimed = readProposedOp({ data: data.subarray(0, Math.max(0, data.indexOf(0))) }).op;
    if (!claimed || casefold(claimed.room) !== room) return undefined;
    const actorFolded = casefold(claimed.actor.account);
    const entry = previous ? previous.find((m) => casefold(m.account) === actorFolded) : next.get(actorFolded);
    if (!entry) return undefined;
    const v = verifyRoomOp({ data, signingKey: entry.signingKey, fingerprint: entry.fingerprint, now, maxAgeMs: PENDING_MAX_AGE_MS, maxSkewMs: OP_MAX_SKEW_MS });
    if (v.status !== RoomOpStatus.OK || !v.op) return undefined;
    const op = v.op;
    const recent = now - op.issuedAt <= RELAYED_TTL_MS;
    if (op.action === 'create') {
      if (!bytesEqual(op.roster, EMPTY_ROSTER_HASH)) return undefined;
      if (!previous) return recent ? op : undefined;
      return { ...op, pending: true };
    }
    // A departure is shown only when made for exactly the roster we held (fewer readers needs no
    // signature, so nothing depends on it but what the user reads).
    if (op.action === 'leave' || op.action === 'remove') return previous && bytesEqual(op.roster, rosterHash(previous)) && recent ? op : undefined;
    if (op.action !== 'add') return undefined;
    if (!previous) return recent ? op : undefined;
    if (bytesEqual(op.roster, rosterHash(previous)) && recent) return op;
    return { ...op, pending: true };
  }

  /** Forget what was kept for a room (we left it). */
  forgetRoom(room: string): void {
    this.relayed.delete(casefold(room));
    this.explainedBefore.delete(casefold(room));
  }
}

/** "40 s", "12 min", "5 h", "3 days": how long ago, for people. */
function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400)} days`;
}
