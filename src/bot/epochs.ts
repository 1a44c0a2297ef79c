/**
 * Epochs: when a room gets a new key, and sending it (docs/DESIGN.md "Rules the code keeps": Epochs; docs/PROTOCOL.md
 * "Key envelopes"). The key service asks for a rekey (requestRekey); this part schedules it,
 * makes the key, has crypto seal it per member and delivery send it.
 * - Every membership change keybot observes in a room (a placement's JOIN, PART, KICK, a removal;
 *   a QUIT only where rooms end with a connection) starts a new epoch with a fresh key, sealed
 *   for every member of the roster, online or offline (an offline member's envelopes wait in
 *   their mailbox at the daemon); so does reaching rotateAfterMessages room lines or rotateAfterMs.
 * - Bursts coalesce: a change waits `settleMs` for more (at most `maxSettleMs` after the first),
 *   and an invite holds the rekey until everyone it places has joined. Envelopes are sealed
 *   asynchronously, then sent in one synchronous block only if the membership did not move in
 *   the meantime, so nobody keybot has seen leave ever receives a newer key.
 * - Epoch numbers follow the PROTOCOL rule `max(last + 1, floor(now / 1000))`. Epochs of one
 *   room are at least `minEpochIntervalMs` (1 s) apart, so they never run ahead of the clock;
 *   after a restart the first epoch waits until the second after the start (`notBefore`), so it
 *   is newer than anything the previous instance issued, with no state on disk.
 */
import {
  MAX_NOTICE_OPS,
  RoomOpStatus,
  advanceRoster,
  generateMemberKey,
  generateRoomKey,
  readRoomOp,
  rosterHash,
  signEpochNotice,
  signRosterPages,
  type EnvelopeMember,
  type EpochNotice,
} from '../crypto/index.js';
import { casefold } from '../protocol/names.js';
import { createLogger } from '../util/log.js';
import type { ServiceContext } from './context.js';
import { epochNoticeLines, keyLine, rosterPageLines, sealJoinEnvelopes, sendEnvelopes, type EnvelopeRecipient, type JoinRecipient } from './delivery.js';
import type { MemberKey } from './keybook.js';
import type { Removals } from './removals.js';
import type { Epoch, Room, RosterPages } from './rooms.js';

const log = createLogger('keybot');

const MAX_U32 = 0xffff_ffff;

export type ResendResult =
  | { status: 'sent'; room: string; epoch: number }
  | { status: 'not_member' }
  /** The requester is in the room but not in the current epoch yet: a new key is on its way. */
  | { status: 'pending'; room: string };

export class Epochs {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly removals: Removals,
  ) {}

  /**
   * Ask for a new epoch: now-ish for membership changes, always when `forced`. `settled`: the
   * changes are complete (an invite placed its users and saw their JOINs), so the rekey need not
   * wait `settleMs` for more; it still takes whatever else is pending along, and still keeps
   * `minEpochIntervalMs` and `notBefore`.
   */
  requestRekey(room: Room, reason?: string, forced = false, settled = false): void {
    if (reason && !room.pendingReasons.includes(reason)) room.pendingReasons.push(reason);
    if (forced) room.forced = true;
    if (settled) room.settled = true;
    if (this.ctx.stopped || !room.ready || room.holds > 0 || room.rekeying) return;
    if (!this.rekeyDue(room)) return;
    this.schedule(room, 0);
  }

  private rekeyDue(room: Room): boolean {
    return room.forced || !room.current || room.keyedVersion !== room.version;
  }

  private schedule(room: Room, extraDelay: number): void {
    const now = Date.now();
    room.firstPendingAt ??= now;
    const settled = room.settled ? now : Math.min(now + this.ctx.o.settleMs, room.firstPendingAt + this.ctx.o.maxSettleMs);
    const spaced = room.current ? room.current.startedAt + this.ctx.o.minEpochIntervalMs : 0;
    const at = Math.max(settled, spaced, this.ctx.o.notBefore, now + extraDelay);
    clearTimeout(room.settleTimer);
    this.runAt(room, at);
  }

  /**
   * Run the rekey at wall-clock time `at`, not before: Node's timers run on a monotonic clock and
   * may fire a millisecond before Date.now() reaches the target, which would put an epoch 1 ms
   * inside `minEpochIntervalMs` or before `notBefore`.
   */
  private runAt(room: Room, at: number): void {
    room.settleTimer = setTimeout(() => {
      const early = at - Date.now();
      if (early > 0) this.runAt(room, at);
      else void this.run(room);
    }, Math.max(0, at - Date.now()));
  }

  private async run(room: Room): Promise<void> {
    room.settleTimer = undefined;
    if (this.ctx.stopped || this.ctx.rooms.get(room.name) !== room || room.rekeying || room.holds > 0) return;
    if (!this.rekeyDue(room)) return;
    room.rekeying = true;
    room.settled = false;
    let failed = false;
    try {
      await this.rekey(room);
    } catch (err) {
      failed = true;
      log.warn(`${room.name}: rekey failed: ${(err as Error).message}`);
    } finally {
      room.rekeying = false;
    }
    if (!this.ctx.stopped && this.ctx.rooms.get(room.name) === room && room.ready && room.holds === 0 && this.rekeyDue(room)) {
      this.schedule(room, failed ? this.ctx.o.retryMs : 0);
    }
  }

  /** Make one new epoch and send it, unless the membership moves while the envelopes are sealed. */
  private async rekey(room: Room): Promise<void> {
    const version = room.version;
    const nicks = [...room.members.values()];
    if (nicks.length === 0) {
      this.ctx.leaveRoom(room, 'empty');
      return;
    }
    const found = await Promise.all(nicks.map(async (nick) => ({ nick, k: await this.ctx.keys.lookup(nick) })));
    if (this.ctx.rooms.get(room.name) !== room || room.version !== version) return;

    const usable: Array<EnvelopeRecipient & { member: (MemberKey & { ok: true })['member'] }> = [];
    for (const { nick, k } of found) {
      if (!k.ok) {
        this.removals.evict(room, nick, `no usable key (${k.detail ?? k.problem})`);
        continue;
      }
      const pinned = room.pins.get(casefold(k.account));
      if (pinned !== undefined && pinned !== k.key.fingerprint) {
        this.removals.removeForKeyChange(room, nick, pinned, k.key.fingerprint);
        continue;
      }
      usable.push({ nick, account: k.account, key: k.key, member: k.member });
    }
    if (usable.length === 0) return; // the evictions will bring the next change

    const startedAt = Date.now();
    const epoch = Math.min(MAX_U32, Math.max((room.current?.epoch ?? 0) + 1, Math.floor(startedAt / 1000)));
    const key = generateRoomKey();
    const members = usable.map((u) => u.member);
    const prev = room.current;
    // Envelope version 3: one signed notice to the room when the members who hold the epoch
    // before can derive this roster from theirs (advanceRoster, the very check their companions
    // make); otherwise (a first epoch, a restart, an addition no operation of this change explains,
    // such as a pending invite carried out days later) everyone gets a join envelope.
    const notice = prev ? this.notice(room, prev, epoch, members, startedAt) : undefined;
    // Asked twice per member: a Set, not a scan of the previous roster (which made an epoch O(N²)).
    const before = new Set(prev?.members.map((m) => casefold(m.account)));
    const follows = (f: string): boolean =>
      notice !== undefined && room.holders.has(f) && room.present.has(f) && room.memberKeys.has(f) && before.has(f);
    const joining = usable.filter((u) => !follows(casefold(u.account)));
    const ops = room.opsSince.slice(-MAX_NOTICE_OPS);
    // A large roster goes in signed pages, once per epoch, that the join envelopes name by hash.
    const pages = joining.length > 0 ? this.rosterPages(room.name, epoch, members) : undefined;
    const { sealed, failed } = await sealJoinEnvelopes({
      signer: this.ctx.opts.signer,
      room: room.name,
      epoch,
      key,
      roster: members,
      ...(pages ? { pages: { hash: pages.hash, count: pages.data.length } } : {}),
      recipients: joining.map((u) => this.joinRecipient(room, u, ops)),
      issuedAt: startedAt,
    });
    if (failed.length > 0 || this.ctx.rooms.get(room.name) !== room || room.version !== version) {
      for (const f of failed) this.removals.evict(room, f.nick, `no usable key (${f.reason})`);
      key.fill(0);
      return;
    }
    // From here to the end: synchronous, so no IRC event can change the room in between.
    const reasons = room.pendingReasons.join(', ') || 'new epoch';
    const lines: Array<{ target: string; text: string }> = [];
    if (notice) {
      lines.push(...notice.lines);
      for (const u of usable) {
        const f = casefold(u.account);
        if (follows(f)) lines.push(keyLine({ nick: u.nick, account: u.account, memberKey: room.memberKeys.get(f)!, key, room: room.name, epoch, digest: notice.digest }));
      }
    }
    if (pages) {
      // To the room once when many join (a room opening, a restart: everyone needs them), then to
      // each joiner not in the channel (their mailbox); when few join, to each joiner alone, so
      // that the members who follow by the notice read O(changes), not the roster.
      const toRoom = !notice || joining.length * 4 >= members.length;
      if (toRoom) lines.push(...rosterPageLines(room.name, pages.data));
      for (const u of joining) if (!toRoom || !room.present.has(casefold(u.account))) lines.push(...rosterPageLines(u.nick, pages.data));
    }
    for (const e of sealed) for (const text of e.parts) lines.push({ target: e.nick, text });
    room.install({ epoch, key, members, startedAt, ...(pages ? { pages } : {}) }, version);
    room.epochOps = room.opsSince;
    room.opsSince = [];
    room.holders.clear();
    for (const u of usable) if (room.present.has(casefold(u.account))) room.holders.add(casefold(u.account));
    // First keyed here without a placement by keybot (a restart, a join keybot did not make): pin now.
    for (const m of members) if (!room.pins.has(casefold(m.account))) room.pins.set(casefold(m.account), m.fingerprint);
    this.ctx.changed();
    this.ctx.opts.transport.notices(lines);
    this.ctx.opts.transport.notice(room.name, keyEventText(epoch, members.map((m) => m.account), reasons));
    this.armRotation(room);
    log.info(
      `${room.name}: epoch ${epoch} for ${members.length} member${members.length === 1 ? '' : 's'} (${reasons}; ` +
        `${notice ? `notice, ${members.length - sealed.length} key lines, ` : ''}${sealed.length} join envelopes` +
        `${pages ? `, roster in ${pages.data.length} pages` : ''})`,
    );
  }

  /** The roster as signed pages, or undefined when it fits a join envelope inline (up to inlineRosterBytes of JSON). */
  private rosterPages(room: string, epoch: number, members: EnvelopeMember[]): RosterPages | undefined {
    let inline = 0;
    for (const m of members) inline += m.account.length + m.fingerprint.length + m.signingKey.alg.length + m.signingKey.key.length + 12;
    if (inline <= this.ctx.o.inlineRosterBytes) return undefined;
    const signed = signRosterPages({ signer: this.ctx.opts.signer, room, epoch, roster: members });
    return { hash: signed.hash, data: signed.pages };
  }

  /** A join envelope's recipient: the member key keybot keeps for them (made now if none), and the operations that explain this epoch. */
  private joinRecipient(room: Room, u: EnvelopeRecipient & { member: EnvelopeMember }, ops: Uint8Array[]): JoinRecipient {
    const f = casefold(u.account);
    let mk = room.memberKeys.get(f);
    if (!mk) {
      mk = generateMemberKey();
      room.memberKeys.set(f, mk);
    }
    const own = room.joinOps.get(f) ?? [];
    const all = [...own, ...ops.filter((o) => !own.includes(o))].slice(-MAX_NOTICE_OPS);
    return { nick: u.nick, account: u.account, key: u.key, fingerprint: u.member.fingerprint, memberKey: mk, ops: all };
  }

  /**
   * The signed epoch notice from `prev` to `members`, if the roster of `prev` and the operations
   * carried out since derive it (checked with advanceRoster, as every member will) and it fits.
   */
  private notice(room: Room, prev: Epoch, epoch: number, members: EnvelopeMember[], issuedAt: number): { lines: Array<{ target: string; text: string }>; digest: Uint8Array } | undefined {
    if (room.opsSince.length > MAX_NOTICE_OPS) return undefined;
    const before = new Map(prev.members.map((m) => [casefold(m.account), m]));
    const after = new Set(members.map((m) => casefold(m.account)));
    for (const m of members) {
      const b = before.get(casefold(m.account));
      // Same account, other key or signing key: not a change a notice can state.
      if (b && (b.fingerprint !== m.fingerprint || b.signingKey.alg !== m.signingKey.alg || b.signingKey.key !== m.signingKey.key)) return undefined;
    }
    // An addition some of whose targets are not keyed now (evicted, or still pending) cannot
    // apply; it explains nobody in this epoch, so it is left out (its targets, if any are added,
    // are then unexplained, and everyone gets a join envelope instead). A signed leave or remove
    // (operations.ts) names people who are gone by design: it stays, so members verify it.
    const keyed = new Set(members.map((m) => casefold(m.account)));
    const ops = room.opsSince.filter((op) => {
      const o = readRoomOp({ data: op }).op;
      return o !== undefined && (o.action === 'leave' || o.action === 'remove' || o.targets.every((t) => keyed.has(casefold(t.account))));
    });
    const n: EpochNotice = {
      room: room.name,
      epoch,
      prev: prev.epoch,
      issuedAt,
      roster: rosterHash(members),
      ops,
      added: members.filter((m) => !before.has(casefold(m.account))),
      gone: prev.members.filter((m) => !after.has(casefold(m.account))).map((m) => m.account),
    };
    if (advanceRoster({ roster: prev.members, notice: n }).status !== RoomOpStatus.OK) return undefined;
    const signed = signEpochNotice({ signer: this.ctx.opts.signer, notice: n });
    const lines = epochNoticeLines(room.name, signed.data);
    return lines ? { lines, digest: signed.digest } : undefined;
  }

  /** The current key is older than rotateAfterMs (its rotation was skipped while nobody was online). */
  rotationDue(room: Room): boolean {
    return this.ctx.o.rotateAfterMs > 0 && room.current !== undefined && Date.now() - room.current.startedAt >= this.ctx.o.rotateAfterMs;
  }

  private armRotation(room: Room): void {
    clearTimeout(room.rotateTimer);
    room.rotateTimer = undefined;
    if (this.ctx.o.rotateAfterMs <= 0) return;
    room.rotateTimer = setTimeout(() => {
      // Nobody online in the room: nothing is said under its key, and each epoch would only add
      // envelopes to the members' mailboxes. The first member back gets a fresh one (rotationDue).
      if (![...room.present].some((f) => room.members.has(f))) return;
      this.requestRekey(room, 'scheduled rotation', true);
    }, this.ctx.o.rotateAfterMs);
    room.rotateTimer.unref();
  }

  /** `key <#room>`: re-send the current epoch's envelope to a member who missed it. */
  async resendKey(requester: string, roomName: string): Promise<ResendResult> {
    const room = this.ctx.rooms.get(roomName);
    if (!room || !room.hasMember(requester)) return { status: 'not_member' };
    const cur = room.current;
    const listed = cur?.members.find((m) => casefold(m.account) === casefold(requester));
    if (!cur || !listed) {
      this.requestRekey(room);
      return { status: 'pending', room: room.name };
    }
    const k = await this.ctx.keys.lookup(requester);
    const pinned = room.pins.get(casefold(listed.account)) ?? listed.fingerprint;
    if (k.ok && k.key.fingerprint !== pinned) {
      // The directory now names another key than the one this member was placed with.
      if (this.ctx.rooms.get(room.name) === room && room.hasMember(requester)) this.removals.removeForKeyChange(room, requester, pinned, k.key.fingerprint);
      return { status: 'pending', room: room.name };
    }
    if (!k.ok || k.key.fingerprint !== listed.fingerprint) {
      // The member's key changed since this epoch: only a new epoch can list the new one.
      this.requestRekey(room, `${requester} changed keys`, true);
      return { status: 'pending', room: room.name };
    }
    const key = cur.key.slice();
    try {
      const { sealed } = await sealJoinEnvelopes({
        signer: this.ctx.opts.signer,
        room: room.name,
        epoch: cur.epoch,
        key,
        roster: cur.members,
        ...(cur.pages ? { pages: { hash: cur.pages.hash, count: cur.pages.data.length } } : {}),
        recipients: [this.joinRecipient(room, { nick: requester, account: k.account, key: k.key, member: listed }, room.epochOps)],
        issuedAt: Date.now(),
      });
      // Only if that epoch is still current and the requester still in the room.
      if (room.current !== cur || !room.hasMember(requester) || sealed.length === 0) return { status: 'pending', room: room.name };
      if (cur.pages) this.ctx.opts.transport.notices(rosterPageLines(requester, cur.pages.data));
      sendEnvelopes(this.ctx.opts.transport, sealed);
      // A companion that opened it holds this epoch: it can follow the next notice.
      if (room.present.has(casefold(k.account))) room.holders.add(casefold(k.account));
    } finally {
      key.fill(0);
    }
    log.info(`${room.name}: re-sent epoch ${cur.epoch} to 1 member`);
    return { status: 'sent', room: room.name, epoch: cur.epoch };
  }
}

/** The channel NOTICE that announces an epoch (members see why their key changed). */
export function keyEventText(epoch: number, accounts: string[], reasons: string): string {
  const who = accounts.length <= 10 ? accounts.join(', ') : `${accounts.length} members`;
  return `new key: epoch ${epoch} for ${who} (${reasons})`;
}
