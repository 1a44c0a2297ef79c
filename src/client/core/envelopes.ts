/**
 * Envelope intake of RoomCryptoEngine (engine.ts): keybot's key, key envelopes from it, and the
 * member fingerprints they list (pinned on first sight in the CompanionMemory of memory.ts, so a
 * pin outlives the connection). Installs keys into the engine's RoomKeys (room-keys.ts) and
 * releases the messages RoomMessages (room-messages.ts) held for them.
 */
import {
  DEFAULT_ENVELOPE_MAX_AGE_MS,
  EnvelopeStatus,
  PartStatus,
  PartsReassembler,
  RoomOpStatus,
  RosterStatus,
  advanceRoster,
  assembleRoster,
  bytesEqual,
  isEpochNotice,
  isNewerEpoch,
  openEnvelope,
  openJoinEnvelope,
  parsePart,
  peekKeyLine,
  signedJsonKind,
  unwrapEpochKey,
  verifyEpochNotice,
  verifyRosterPage,
  MAX_ROSTER_PAGES,
  type EnvelopeMember,
  type JoinPayload,
  type PublicKeyHandle,
  type ReassemblerOptions,
  type RosterChange,
  type RosterPage,
} from '../../crypto/index.js';
import { casefold } from '../../protocol/names.js';
import type { CompanionMemory } from './memory.js';
import type { RoomOperations } from './operations.js';
import { wipe, type EngineConfig, type RoomKeys, type RoomState } from './room-keys.js';
import type { RoomMessages } from './room-messages.js';
import type { EnvelopeRejectCode, EnvelopeRejectedResult, IncomingResult } from './types.js';

/**
 * How old an envelope may be and still be opened for reading only (history of epochs we missed
 * while away: the daemon keeps our mailbox up to its history.maxAgeDays, 30 by default).
 */
export const READ_ONLY_MAX_AGE_MS = 366 * 86_400_000;

/** How long roster pages wait for the join envelope that names them, and a paged join envelope for its pages. */
export const ROSTER_PAGE_WAIT_MS = 60_000;
/** Most roster pages held at once (two rosters at the most pages one may take). */
const MAX_HELD_PAGES = 2 * MAX_ROSTER_PAGES;

const ENVELOPE_CODES: Record<string, EnvelopeRejectCode> = {
  [EnvelopeStatus.MALFORMED]: 'malformed',
  [EnvelopeStatus.UNSUPPORTED_VERSION]: 'unsupported-version',
  [EnvelopeStatus.NOT_FOR_ME]: 'not-for-me',
  [EnvelopeStatus.DECRYPT_FAILED]: 'decrypt-failed',
  [EnvelopeStatus.UNSIGNED]: 'unsigned',
  [EnvelopeStatus.BAD_SIGNATURE]: 'bad-signature',
  [EnvelopeStatus.WRONG_RECIPIENT]: 'wrong-recipient',
  [EnvelopeStatus.EXPIRED]: 'expired',
  [EnvelopeStatus.NOT_YET_VALID]: 'not-yet-valid',
};

const ENVELOPE_REASONS: Record<EnvelopeRejectCode, string> = {
  'not-keybot': 'key envelopes are accepted only from keybot',
  'keybot-untrusted': 'keybot\'s key is not trusted',
  parts: 'its parts did not reassemble',
  malformed: 'it is not a well-formed key envelope',
  'unsupported-version': 'it uses an envelope version this client does not know',
  'not-for-me': 'it is encrypted to another key than yours',
  'decrypt-failed': 'it is addressed to your key but does not decrypt (corrupt or tampered)',
  unsigned: 'it carries no signature',
  'bad-signature': 'it is not signed by the pinned keybot key',
  'wrong-recipient': 'it is addressed to another account or lists you with another key',
  expired: 'it was issued too long ago (a replay?)',
  'not-yet-valid': 'it was issued in the future (check the clocks)',
  'not-newer': 'its epoch is not newer than the key you hold',
  'member-key-changed': 'it lists a member with another key than the one you saw for them before',
  'unexplained-member': 'it adds someone no member signed an invite for',
  downgrade: 'it is a version 1 or 2 envelope for a room you hold under version 3 (a downgrade)',
  'bad-roster': 'its roster does not follow from the one you hold and the operations it names',
};

/** An opened envelope with its whole roster. */
type JoinData = { room: string; epoch: number; key: Uint8Array; members: EnvelopeMember[]; issuedAt: number; v3?: { memberKey: Uint8Array; ops: Uint8Array[] } };

/** Install room keys from keybot's envelopes. */
export class EnvelopeIntake {
  private keybotKey: PublicKeyHandle | undefined;
  private distrust: string | undefined;
  /** Complete envelopes waiting for keybot's key (bounded by maxPendingEnvelopes). */
  pendingEnvelopes: Array<{ from: string; data: Uint8Array; at: number }> = [];
  readonly envelopeParts: PartsReassembler;
  /**
   * Verified roster pages (keybot-signed, secret to nobody) by casefolded room and epoch, kept
   * briefly for the paged join envelope that names them: they may come before it (keybot sends
   * them first) or after it. Bounded by MAX_HELD_PAGES and ROSTER_PAGE_WAIT_MS.
   */
  private readonly rosterPages = new Map<string, { at: number; pages: RosterPage[]; data: Uint8Array[] }>();
  /** Opened paged join envelopes waiting for their roster pages, by casefolded room (one each: a newer replaces it). */
  private readonly pagedJoins = new Map<string, { from: string; payload: JoinPayload; at: number }>();

  constructor(
    private readonly c: EngineConfig,
    private readonly keys: RoomKeys,
    private readonly messages: RoomMessages,
    private readonly memory: CompanionMemory,
    private readonly operations: RoomOperations,
    opts: { keybotKey?: PublicKeyHandle; reassembler?: ReassemblerOptions },
  ) {
    this.keybotKey = opts.keybotKey;
    this.envelopeParts = new PartsReassembler(opts.reassembler);
  }

  /** Fingerprint of the pinned keybot key, if one is set. */
  get keybotFingerprint(): string | undefined {
    return this.keybotKey?.fingerprint;
  }

  /** Drop stale parts and envelopes that waited too long for keybot's key. */
  sweep(now: number): void {
    this.envelopeParts.sweep({ now });
    const maxAge = this.c.envelopeMaxAgeMs ?? 15 * 60_000;
    this.pendingEnvelopes = this.pendingEnvelopes.filter((p) => now - p.at < maxAge);
    for (const [k, e] of this.rosterPages) if (now - e.at >= ROSTER_PAGE_WAIT_MS) this.rosterPages.delete(k);
    // A join envelope whose pages did not all come is never installed: its keys are wiped.
    for (const [k, j] of this.pagedJoins) if (now - j.at >= ROSTER_PAGE_WAIT_MS) this.dropPagedJoin(k);
  }

  private dropPagedJoin(folded: string): void {
    const j = this.pagedJoins.get(folded);
    if (!j) return;
    j.payload.key.fill(0);
    j.payload.memberKey.fill(0);
    this.pagedJoins.delete(folded);
  }

  /**
   * Pin keybot's key (once; the trust decision is KeybotKey's, keybot.ts). Envelopes that
   * arrived before it are checked now; their results come back in arrival order.
   */
  setKeybotKey(key: PublicKeyHandle): void {
    if (!key || key.kind !== 'public') throw new TypeError('setKeybotKey: expected a PublicKeyHandle');
    if (this.keybotKey && this.keybotKey.fingerprint !== key.fingerprint) {
      throw new Error(`setKeybotKey: keybot is already pinned to ${this.keybotKey.fingerprint}`);
    }
    this.keybotKey = key;
    this.distrust = undefined;
  }

  /** Check the envelopes that arrived before keybot's key was pinned, in arrival order. */
  async openPending(now: number): Promise<IncomingResult[]> {
    const pending = this.pendingEnvelopes;
    this.pendingEnvelopes = [];
    const results: IncomingResult[] = [];
    for (const p of pending) results.push(await this.openEnvelopeData(p.from, p.data, now));
    return results;
  }

  /**
   * No keybot key can be trusted on this connection (it differs from the pinned one, say): drop
   * envelopes held for it and reject every further one with `keybot-untrusted` and this reason.
   */
  distrustKeybot(reason: string): void {
    if (this.keybotKey) throw new Error('distrustKeybot: a keybot key is already pinned');
    this.distrust = reason;
    this.pendingEnvelopes = [];
  }

  /**
   * The user checked `account`'s new fingerprint out of band and accepts it: pin it, and let the
   * rooms blocked only by that change send again. Returns those rooms. Their key is not the new
   * epoch's (its envelope was refused): ask keybot to send it again (`/msg keybot key <room>`).
   */
  acceptMemberKey(account: string, fingerprint: string): string[] {
    if (typeof account !== 'string' || account.length === 0) throw new TypeError('acceptMemberKey: account must be a non-empty string');
    if (typeof fingerprint !== 'string' || !/^(?:[0-9a-f]{40}|[0-9a-f]{64})$/i.test(fingerprint)) {
      throw new TypeError('acceptMemberKey: fingerprint must be 40 or 64 hex digits');
    }
    const folded = casefold(account);
    const fp = fingerprint.toLowerCase();
    this.memory.pinMember(account, fp, true);
    const unblocked: string[] = [];
    for (const state of this.keys.roomStates().values()) {
      if (state.keyChanges.length === 0) continue;
      state.keyChanges = state.keyChanges.filter((c) => !(casefold(c.account) === folded && c.offered === fp));
      if (state.keyChanges.length === 0) unblocked.push(state.name);
    }
    return unblocked;
  }

  async envelopePart(from: string, text: string, fromKeybot: boolean, now: number): Promise<IncomingResult> {
    if (!fromKeybot) {
      // Report a forged envelope once (on its first part); swallow the rest, they are not text.
      const part = parsePart(text);
      if (part && part.index !== 1) return { kind: 'hidden' };
      return this.rejected(from, 'not-keybot', `${ENVELOPE_REASONS['not-keybot']}, and this came from ${from}`);
    }
    const r = this.envelopeParts.accept({ sender: from, line: text, now });
    switch (r.status) {
      case PartStatus.INCOMPLETE:
      case PartStatus.DUPLICATE:
        return { kind: 'hidden' };
      case PartStatus.COMPLETE:
        break;
      default:
        return this.rejected(from, 'parts', `${ENVELOPE_REASONS.parts} (${r.status})`);
    }
    if (!this.keybotKey && this.distrust !== undefined) {
      return this.rejected(from, 'keybot-untrusted', `${ENVELOPE_REASONS['keybot-untrusted']}: ${this.distrust}`);
    }
    if (!this.keybotKey) {
      this.pendingEnvelopes.push({ from, data: r.data!, at: now });
      if (this.pendingEnvelopes.length > this.c.maxPendingEnvelopes) this.pendingEnvelopes.shift();
      return { kind: 'held', what: 'envelope', from, reason: 'keybot\'s key is not pinned yet; the envelope will be checked once it is' };
    }
    return this.openEnvelopeData(from, r.data!, now);
  }

  /**
   * A version-3 epoch notice (keybot's NOTICE to the room; docs/PROTOCOL.md "Envelope version 3").
   * Only a member holding the epoch it follows, under version 3, can derive its roster: then the
   * roster must follow from ours and the operations it carries (advanceRoster: each verifies under
   * its actor's entry and applies; nobody is added that no operation names), and every account it
   * adds must have the fingerprint pinned for it. The key comes in our key line. A member that does
   * not hold the epoch before gets a join envelope from keybot instead: the notice is not for it.
   */
  private acceptNotice(from: string, data: Uint8Array, now: number): IncomingResult {
    const v = verifyEpochNotice({
      data,
      keybotKey: this.keybotKey!,
      now,
      maxAgeMs: this.c.envelopeMaxAgeMs ?? DEFAULT_ENVELOPE_MAX_AGE_MS,
      ...(this.c.envelopeMaxSkewMs !== undefined ? { maxSkewMs: this.c.envelopeMaxSkewMs } : {}),
    });
    if (v.status !== EnvelopeStatus.OK || !v.notice || !v.digest) {
      const code = ENVELOPE_CODES[v.status] ?? 'malformed';
      return this.rejected(from, code, `epoch notice: ${ENVELOPE_REASONS[code]}`);
    }
    const n = v.notice;
    const state = this.keys.get(n.room);
    const cur = state?.current;
    // Not the epoch we hold (we hold none, an older one, or a version-2 one): keybot sends us a join envelope.
    if (!state || state.left || !cur || cur.epoch !== n.prev || !state.v3 || !state.memberKey) return { kind: 'hidden' };
    const derived = advanceRoster({ roster: [...cur.members.values()], notice: n });
    if (derived.status !== RoomOpStatus.OK || !derived.roster) {
      const added = n.added.map((m) => m.account);
      const code: EnvelopeRejectCode = derived.status === RoomOpStatus.BAD_TARGET ? 'unexplained-member' : 'bad-roster';
      const reason =
        `${ENVELOPE_REASONS[code]}: epoch ${n.epoch} of ${state.name} (${derived.reason ?? derived.status}). ` +
        `Nothing is sent to ${state.name} under it`;
      return { ...this.rejected(from, code, reason), room: state.name, epoch: n.epoch, ...(code === 'unexplained-member' ? { accounts: added } : {}) };
    }
    const changed = this.keyChange(from, state, n.room, n.epoch, n.added);
    if (changed) return changed;
    state.notice = { epoch: n.epoch, digest: v.digest, roster: derived.roster, changes: (derived.changes ?? []).filter((c) => c.action !== 'gone').map((c) => this.describe(c)), issuedAt: n.issuedAt, at: now };
    // Its key line may have come first.
    const waiting = state.keyLines.find((k) => peekKeyLine(k.line)?.epoch === n.epoch);
    state.keyLines = [];
    return waiting ? this.keyLineFor(from, state, waiting.line, now) : { kind: 'hidden' };
  }

  /** A key line (`SC1K`, keybot's NOTICE to us): the key of the epoch whose notice we accepted. */
  keyLine(from: string, text: string, fromKeybot: boolean, now: number): IncomingResult {
    if (!fromKeybot) return this.rejected(from, 'not-keybot', `${ENVELOPE_REASONS['not-keybot']}, and this key line came from ${from}`);
    const peek = peekKeyLine(text);
    if (!peek) return this.rejected(from, 'malformed', ENVELOPE_REASONS.malformed);
    const state = this.keys.get(peek.room);
    if (!state || state.left || !state.memberKey) return { kind: 'hidden' };
    if (state.notice?.epoch !== peek.epoch) {
      // Before its notice (both come from keybot in this order, but be lenient): wait briefly.
      state.keyLines = [...state.keyLines.filter((k) => now - k.at < 30_000), { line: text, at: now }].slice(-4);
      return { kind: 'hidden' };
    }
    return this.keyLineFor(from, state, text, now);
  }

  private keyLineFor(from: string, state: RoomState, line: string, now: number): IncomingResult {
    const n = state.notice!;
    const opened = unwrapEpochKey({ line, memberKey: state.memberKey!, account: this.c.account, digest: n.digest });
    if (!opened || opened.epoch !== n.epoch || casefold(opened.room) !== casefold(state.name)) {
      return { ...this.rejected(from, 'decrypt-failed', 'a key line from keybot does not open with your member key for this room and epoch'), room: state.name, epoch: n.epoch };
    }
    state.notice = undefined;
    if (!state.current || n.epoch <= (state.highestEpoch ?? -1)) {
      opened.key.fill(0);
      return { kind: 'hidden' };
    }
    return this.installCurrent(state, { room: state.name, epoch: n.epoch, key: opened.key, members: n.roster, issuedAt: n.issuedAt }, false, [...state.current.members.values()], n.changes, now);
  }

  /**
   * One verified change, as members read it (departures are not listed: fewer readers needs nobody's
   * signature, and keybot's key event already names them, as with version 2).
   */
  private describe(c: RosterChange): string {
    const names = c.targets.map((t) => (casefold(t) === this.c.folded ? 'you' : t)).join(', ');
    switch (c.action) {
      case 'add':
        return `${names} added by ${c.actor}, verified`;
      case 'remove':
        return `${names} removed by ${c.actor}, verified`;
      case 'leave':
        return `${c.actor} left, verified`;
      case 'gone':
        return `${names} left`;
      default:
        return `room opened by ${c.actor}${names ? ` with ${names}` : ''}, verified`;
    }
  }

  /** Rule 8: an account listed with another fingerprint than the one pinned for it refuses the epoch. */
  private keyChange(from: string, state: RoomState, room: string, epoch: number, members: readonly EnvelopeMember[]): EnvelopeRejectedResult | undefined {
    for (const m of members) {
      const folded = casefold(m.account);
      if (folded === this.c.folded) continue; // our own entry was checked against our key
      const pinned = this.memory.memberPin(m.account);
      const offered = m.fingerprint.toLowerCase();
      if (pinned === undefined || pinned === offered) continue;
      if (!state.keyChanges.some((c) => casefold(c.account) === folded && c.offered === offered)) {
        state.keyChanges.push({ account: m.account, pinned, offered });
      }
      state.name = room;
      const reason =
        `${ENVELOPE_REASONS['member-key-changed']}: epoch ${epoch} of ${room} lists ${m.account} with key ${offered}, ` +
        `but ${m.account}'s key was ${pinned}. Someone may have replaced ${m.account}'s registered key to read the room ` +
        `and write in their name. Nothing is sent to ${room} until you check the new fingerprint with ${m.account} ` +
        'and accept it (acceptMemberKey)';
      return { ...this.rejected(from, 'member-key-changed', reason), room, epoch, account: m.account, pinned, offered };
    }
    return undefined;
  }

  /**
   * A roster page (keybot's NOTICE to the room or to us; docs/PROTOCOL.md "Envelope version 3"):
   * checked under the pinned keybot key, held for the join envelope that names it, and, if that
   * envelope is waiting, joined to the others now.
   */
  private acceptPage(from: string, data: Uint8Array, now: number): IncomingResult {
    const v = verifyRosterPage({ data, keybotKey: this.keybotKey! });
    if (v.status !== EnvelopeStatus.OK || !v.page) {
      const code = ENVELOPE_CODES[v.status] ?? 'malformed';
      return this.rejected(from, code, `roster page: ${ENVELOPE_REASONS[code]}`);
    }
    const page = v.page;
    const k = `${casefold(page.room)}\0${page.epoch}`;
    const held = this.rosterPages.get(k) ?? { at: now, pages: [], data: [] };
    // The same page twice (to the room and again to us after `key`) is one page.
    if (held.data.some((d) => bytesEqual(d, data))) return { kind: 'hidden' };
    held.pages.push(page);
    held.data.push(data);
    this.rosterPages.set(k, held);
    let total = 0;
    for (const e of this.rosterPages.values()) total += e.pages.length;
    for (const [key, e] of this.rosterPages) {
      if (total <= MAX_HELD_PAGES) break;
      if (key === k) continue;
      total -= e.pages.length;
      this.rosterPages.delete(key);
    }
    const j = this.pagedJoins.get(casefold(page.room));
    return j && j.payload.epoch === page.epoch ? this.completePagedJoin(casefold(page.room), now) : { kind: 'hidden' };
  }

  /** A paged join envelope: install it if its pages are all here and make its roster exactly; refuse it if they cannot. */
  private completePagedJoin(folded: string, now: number): IncomingResult {
    const j = this.pagedJoins.get(folded)!;
    const p = j.payload;
    const ref = p.rosterPages!;
    const k = `${folded}\0${p.epoch}`;
    const r = assembleRoster({ pages: this.rosterPages.get(k)?.pages ?? [], room: p.room, epoch: p.epoch, hash: ref.hash, count: ref.count, recipient: p.recipient });
    if (r.status === RosterStatus.INCOMPLETE) {
      return { kind: 'held', what: 'envelope', from: j.from, room: p.room, epoch: p.epoch, reason: `waiting for the roster pages of epoch ${p.epoch} (${r.reason ?? ''})` };
    }
    this.pagedJoins.delete(folded);
    this.rosterPages.delete(k);
    if (r.status !== RosterStatus.OK || !r.roster) {
      p.key.fill(0);
      p.memberKey.fill(0);
      const code: EnvelopeRejectCode = r.status === RosterStatus.NOT_LISTED ? 'wrong-recipient' : 'bad-roster';
      const reason = `${ENVELOPE_REASONS[code]}: the roster pages of epoch ${p.epoch} of ${p.room} (${r.reason ?? r.status}). Nothing is installed from it`;
      return { ...this.rejected(j.from, code, reason), room: p.room, epoch: p.epoch };
    }
    return this.acceptJoin(j.from, { room: p.room, epoch: p.epoch, key: p.key, members: r.roster, issuedAt: p.issuedAt, v3: { memberKey: p.memberKey, ops: p.ops } }, now);
  }

  private async openEnvelopeData(from: string, data: Uint8Array, now: number): Promise<IncomingResult> {
    if (isEpochNotice(data)) return signedJsonKind(data) === 'roster' ? this.acceptPage(from, data, now) : this.acceptNotice(from, data, now);
    // Rule 6 (15 minutes) guards what we SEND under. An older envelope (an epoch we missed, kept
    // in our mailbox while we were away) is still opened, up to READ_ONLY_MAX_AGE_MS, but it can
    // only ever be installed for reading (below).
    const maxAge = this.c.envelopeMaxAgeMs ?? DEFAULT_ENVELOPE_MAX_AGE_MS;
    const window = {
      now,
      maxAgeMs: Math.max(maxAge, READ_ONLY_MAX_AGE_MS),
      ...(this.c.envelopeMaxSkewMs !== undefined ? { maxSkewMs: this.c.envelopeMaxSkewMs } : {}),
    };
    // Version 3 (a join envelope) first; a version 1 or 2 payload is read the older way (the
    // transition), unless it is for a room we hold under version 3.
    const join = await openJoinEnvelope({ data, decryptionKey: this.c.privateKey, keybotKey: this.keybotKey!, expectedAccount: this.c.account, ...window });
    let p: JoinData;
    if (join.status === EnvelopeStatus.OK && join.payload) {
      const j = join.payload;
      if (j.rosterPages) {
        // A large room: the roster comes in pages this envelope names by hash; wait for them.
        const folded = casefold(j.room);
        this.dropPagedJoin(folded);
        this.pagedJoins.set(folded, { from, payload: j, at: now });
        return this.completePagedJoin(folded, now);
      }
      p = { room: j.room, epoch: j.epoch, key: j.key, members: j.roster, issuedAt: j.issuedAt, v3: { memberKey: j.memberKey, ops: j.ops } };
    } else if (join.legacy !== undefined) {
      const res = await openEnvelope({ data, decryptionKey: this.c.privateKey, signerKey: this.keybotKey!, expectedAccount: this.c.account, ...window });
      if (res.status !== EnvelopeStatus.OK || !res.payload) {
        const code = ENVELOPE_CODES[res.status] ?? 'malformed';
        return this.rejected(from, code, ENVELOPE_REASONS[code] + (res.reason ? ` (${res.reason})` : ''));
      }
      p = res.payload;
      const held = this.keys.get(p.room);
      if (held?.v3) {
        p.key.fill(0);
        const reason = `${ENVELOPE_REASONS.downgrade}: epoch ${p.epoch} of ${held.name} came as version ${join.legacy}. Nothing is installed from it`;
        return { ...this.rejected(from, 'downgrade', reason), room: held.name, epoch: p.epoch };
      }
    } else {
      const code = ENVELOPE_CODES[join.status] ?? 'malformed';
      return this.rejected(from, code, ENVELOPE_REASONS[code] + (join.reason ? ` (${join.reason})` : ''));
    }
    return this.acceptJoin(from, p, now);
  }

  /** A join envelope (or a version 1 or 2 one) with its roster: the epoch rules, the pins, the operations that explain it; then install. */
  private acceptJoin(from: string, p: JoinData, now: number): IncomingResult {
    const maxAge = this.c.envelopeMaxAgeMs ?? DEFAULT_ENVELOPE_MAX_AGE_MS;
    const stale = p.issuedAt < now - maxAge;
    const state = this.keys.state(p.room);
    // The floor is what an earlier connection installed (memory.ts): a replay after a reconnect or
    // a restart is as old as one on this connection.
    const highest = Math.max(state.highestEpoch ?? -1, state.floor ?? -1);
    const earlier = state.highestEpoch === undefined || (state.floor ?? -1) > state.highestEpoch ? ' on an earlier connection' : '';
    // Rule 7 as "Rooms that outlive a connection" has it: a newer epoch is installed to send under;
    // the newest again, when we hold no key to send under (keybot re-sends it at our login), too;
    // an older one we do not hold is installed for READING only (epochs we missed, from the
    // mailbox); anything we hold already, or anything of a room we left, changes nothing.
    const newer = isNewerEpoch({ current: highest < 0 ? undefined : highest, offered: p.epoch });
    const resent = !newer && p.epoch === highest && !state.current && !state.left;
    const notHeld = !state.left && this.keys.keyFor(state, p.epoch) === undefined;
    // An epoch we do not hold is only read from when it is older than the newest we have seen, or
    // past rule 6's 15 minutes whatever its epoch: a daemon that kept a genuine old envelope cannot
    // make us send under its key. (The newest again while we hold it is held: a send key is always
    // the newest epoch, so "stale and the newest" can only be the re-sent case.)
    const readOnly = notHeld && (stale || p.epoch < highest);
    if (stale && !readOnly) {
      p.key.fill(0);
      return { ...this.rejected(from, 'expired', ENVELOPE_REASONS.expired), room: p.room, epoch: p.epoch };
    }
    if (!newer && !resent && !readOnly) {
      p.key.fill(0);
      // keybot's join envelope for the epoch we hold (re-sent at our login or after a `key`):
      // our member key is the one keybot keeps now, so we follow its next notice.
      if (p.v3 && state.current?.epoch === p.epoch && !state.left) this.takeMemberKey(state, p.v3.memberKey);
      const reason =
        p.epoch === highest || this.keys.keyFor(state, p.epoch) !== undefined
          ? `epoch ${p.epoch} of ${p.room} was already received${p.epoch === highest ? earlier : ''}`
          : `epoch ${p.epoch} of ${p.room} is older than epoch ${highest}, already received${earlier}, and you left the room (a replay?)`;
      return { ...this.rejected(from, 'not-newer', reason), room: p.room, epoch: p.epoch };
    }
    // Every other member must be listed with the fingerprint pinned for their account.
    const changed = this.keyChange(from, state, p.room, p.epoch, p.members);
    if (changed) {
      p.key.fill(0);
      return changed;
    }
    if (readOnly) return this.installReadOnly(from, p, now);
    // Everyone the epoch adds to the roster we held must be named by an operation a member signed
    // (version 3: the join envelope names them itself; version 2: keybot relayed them to the room).
    const previous = state.current ? [...state.current.members.values()] : undefined;
    if (p.v3) for (const op of p.v3.ops) this.operations.relayedData(p.room, op, now);
    const explained = this.operations.explain(p.room, previous, p.members, now, (account, fingerprint) => this.memory.wasMemberEarlier(p.room, account, fingerprint));
    if (explained.unexplained.length > 0) {
      state.name = p.room;
      p.key.fill(0);
      const who = explained.unexplained.join(', ');
      const reason =
        `${ENVELOPE_REASONS['unexplained-member']}: epoch ${p.epoch} of ${p.room} adds ${who}, but no member of the room signed an invite ` +
        `for ${explained.unexplained.length === 1 ? 'them' : 'them all'}. Nothing is sent to ${p.room} under it`;
      return { ...this.rejected(from, 'unexplained-member', reason), room: p.room, epoch: p.epoch, accounts: explained.unexplained };
    }
    state.v3 = p.v3 !== undefined;
    if (p.v3) this.takeMemberKey(state, p.v3.memberKey);
    else {
      state.memberKey?.fill(0);
      state.memberKey = undefined;
    }
    return this.installCurrent(state, p, resent, previous, explained.changes, now);
  }

  private takeMemberKey(state: RoomState, mk: Uint8Array): void {
    if (state.memberKey && state.memberKey !== mk) state.memberKey.fill(0);
    state.memberKey = mk;
    state.notice = undefined;
  }

  /** Install a verified epoch to send under: the current key becomes the previous one (kept briefly); an older one is wiped. */
  private installCurrent(
    state: RoomState,
    p: { room: string; epoch: number; key: Uint8Array; members: EnvelopeMember[]; issuedAt: number },
    resent: boolean,
    previous: EnvelopeMember[] | undefined,
    changes: string[],
    now: number,
  ): IncomingResult {
    for (const m of p.members) {
      const folded = casefold(m.account);
      if (folded !== this.c.folded) this.memory.pinMember(m.account, m.fingerprint);
    }
    wipe(state.previous);
    state.previous = state.current ? { ...state.current, retiredAt: now } : undefined;
    const members = new Map<string, EnvelopeMember>();
    for (const m of p.members) members.set(casefold(m.account), m);
    // The newest epoch again: go on from our own sequence numbers under it (a receiver refuses
    // numbers it saw, as replays), which the key we held kept, or this process's memory.
    const before = resent ? this.keys.takeReadOnly(state, p.epoch) : undefined;
    wipe(before);
    state.current = { epoch: p.epoch, key: p.key, members, issuedAt: p.issuedAt };
    state.highestEpoch = p.epoch;
    state.left = undefined;
    this.memory.recordEpoch(p.room, p.epoch);
    this.memory.recordRoster(p.room, p.members, previous === undefined);
    if (!resent) state.installed.push(p.epoch);
    if (state.installed.length > 16) state.installed.shift();
    state.name = p.room;
    state.seq = resent ? Math.max(before?.seq ?? 0, this.memory.ownSeq(p.room, p.epoch)) : 0;
    const released = this.messages.release(state, now);
    return {
      kind: 'key',
      room: p.room,
      epoch: p.epoch,
      ...(state.previous ? { previousEpoch: state.previous.epoch } : {}),
      members: p.members.map((m) => m.account),
      issuedAt: p.issuedAt,
      verified: true,
      ...(changes.length > 0 ? { changes } : {}),
      released,
    };
  }

  /**
   * An epoch older than the newest we know, that passed every other rule: its key decrypts that
   * epoch's messages (history of a gap) and is NEVER sent under (it is not `current`). It pins
   * nobody and explains no addition: it changes nothing of what we send.
   */
  private installReadOnly(from: string, p: { room: string; epoch: number; key: Uint8Array; members: EnvelopeMember[]; issuedAt: number }, now: number): IncomingResult {
    const state = this.keys.state(p.room);
    const members = new Map<string, EnvelopeMember>();
    for (const m of p.members) members.set(casefold(m.account), m);
    this.keys.keepReadOnly(state, { epoch: p.epoch, key: p.key, members, issuedAt: p.issuedAt }, now);
    if (!state.installed.includes(p.epoch)) state.installed.push(p.epoch);
    if (state.installed.length > 16) state.installed.shift();
    if (state.highestEpoch === undefined) state.name = p.room;
    const released = this.messages.release(state, now);
    return {
      kind: 'key',
      room: p.room,
      epoch: p.epoch,
      members: p.members.map((m) => m.account),
      issuedAt: p.issuedAt,
      verified: true,
      readOnly: true,
      released,
    };
  }

  private rejected(from: string, code: EnvelopeRejectCode, reason: string): EnvelopeRejectedResult {
    return { kind: 'envelope-rejected', from, code, reason };
  }
}
