/**
 * Room messages of RoomCryptoEngine (engine.ts): encrypting outgoing text, and decrypting and
 * verifying incoming messages (holding those whose epoch's key has not arrived yet), with the keys
 * of the engine's RoomKeys (room-keys.ts).
 */
import {
  MessageStatus,
  PartStatus,
  PartsReassembler,
  ReplayGuard,
  ReplayStatus,
  decryptRoomMessage,
  encryptRoomMessage,
  maxPlaintextBytes,
  peekRoomMessage,
  splitPlaintext,
  type ReassemblerOptions,
} from '../../crypto/index.js';
import { KEYBOT_NICK, casefold } from '../../protocol/names.js';
import { isChannel, type EngineConfig, type HeldMessage, type RoomKeys, type RoomState } from './room-keys.js';
import { formatAction, parseAction } from '../../protocol/ctcp.js';
import type { IncomingResult, MessageResult, OutgoingResult, TextCommand, UndecryptableCode, UndecryptableResult } from './types.js';

const MAX_U32 = 0xffff_ffff;
const utf8 = new TextEncoder();

/** Encrypt and decrypt room messages with the keys of the store. */
export class RoomMessages {
  private readonly replay = new ReplayGuard();
  readonly messageParts: PartsReassembler;
  /** Parts of history lines (a chathistory batch), apart from live ones. */
  readonly historyParts: PartsReassembler;

  constructor(
    private readonly c: EngineConfig,
    private readonly keys: RoomKeys,
    reassembler?: ReassemblerOptions,
    private readonly onOwnSeq: (room: string, epoch: number, seq: number) => void = () => undefined,
  ) {
    this.messageParts = new PartsReassembler(reassembler);
    this.historyParts = new PartsReassembler(reassembler);
  }

  /** Drop the replay memory of a room whose keys were wiped. */
  forgetRoom(room: string): void {
    this.replay.forgetRoom({ room });
  }

  /** Drop stale message parts. */
  sweep(now: number): void {
    this.messageParts.sweep({ now });
    this.historyParts.sweep({ now });
  }

  /**
   * Encrypt text for a room: split on newlines and to the per-message limit, one sequence
   * number per piece. Never returns plaintext for a room that is, was or will be encrypted.
   */
  encryptOutgoing(options: { room: string; text: string; now?: number }): OutgoingResult {
    if (!options || typeof options !== 'object') throw new TypeError('encryptOutgoing: expected one options object');
    const { room, text } = options;
    if (typeof room !== 'string' || room.length === 0) throw new TypeError('encryptOutgoing: options.room must be a non-empty string');
    if (typeof text !== 'string') throw new TypeError('encryptOutgoing: options.text must be a string');
    const now = options.now ?? this.c.clock();
    const state = this.keys.get(casefold(room));
    if (!this.keys.isEncryptedRoom(room)) {
      return {
        status: 'not-encrypted',
        room,
        reason: isChannel(room) ? `${room} is not a sealchat room (no key was ever received for it)` : `${room} is not a room`,
      };
    }
    this.keys.expirePrevious(state, now);
    if (state && state.keyChanges.length > 0) {
      const c = state.keyChanges[0]!;
      return {
        status: 'no-key',
        room,
        reason:
          `${c.account}'s key changed (pinned ${c.pinned}, now ${c.offered}): nothing is sent to ${room} until you ` +
          `check the new fingerprint with ${c.account} and accept it`,
      };
    }
    const current = state?.current;
    if (!state || !current) {
      const reason =
        state?.highestEpoch !== undefined
          ? `you no longer hold a key for ${room} (you left it, or were removed); nothing was sent`
          : `no key for ${room} yet: keybot has not sent you one (ask with /msg ${KEYBOT_NICK} key ${room}); nothing was sent`;
      return { status: 'no-key', room, reason };
    }
    const pieces = this.split(text);
    if (state.seq + pieces.length > MAX_U32) {
      return { status: 'no-key', room, reason: `the key of ${room} is used up; ask keybot for a new one (/msg ${KEYBOT_NICK} key ${room})` };
    }
    const lines: string[] = [];
    for (const piece of pieces) {
      const r = encryptRoomMessage({
        roomKey: current.key,
        room: state.name,
        epoch: current.epoch,
        sender: this.c.account,
        seq: state.seq + 1,
        plaintext: piece,
        signer: this.c.privateKey,
      });
      // split() keeps every piece within maxPlaintextBytes, so anything else is a bug.
      if (r.status !== MessageStatus.OK) throw new Error(`encryptOutgoing: encryption failed (${r.status})`);
      state.seq++;
      lines.push(...r.lines);
    }
    this.onOwnSeq(state.name, current.epoch, state.seq);
    return { status: 'ok', room, epoch: current.epoch, lines };
  }

  roomLine(
    from: string,
    target: string,
    command: TextCommand,
    text: string,
    kind: 'message' | 'message-part',
    now: number,
  ): IncomingResult {
    if (!isChannel(target)) {
      return { kind: 'undecryptable', room: target, from, code: 'not-a-room', reason: 'a room message was sent privately, not to a room' };
    }
    const room = this.keys.displayName(target);
    const folded = casefold(target);
    const state = this.keys.get(folded);
    if (!this.keys.isEncryptedRoom(target) && !state) {
      return { kind: 'undecryptable', room, from, code: 'no-key', reason: `no key for ${room}: it is not a room keybot gave you a key for` };
    }
    let record: HeldMessage['record'];
    if (kind === 'message-part') {
      // Key parts by sender and room, so one member's parts in two rooms never mix.
      const r = this.messageParts.accept({ sender: `${from} ${folded}`, line: text, now });
      if (r.status === PartStatus.INCOMPLETE || r.status === PartStatus.DUPLICATE) return { kind: 'hidden' };
      if (r.status !== PartStatus.COMPLETE) {
        return { kind: 'undecryptable', room, from, code: 'malformed', reason: `the parts of a message did not reassemble (${r.status})` };
      }
      record = { data: r.data! };
    } else {
      record = { payload: text };
    }
    return this.openRecord(this.keys.state(target), from, command, record, now, true);
  }

  openRecord(
    state: RoomState,
    from: string,
    command: TextCommand,
    record: HeldMessage['record'],
    now: number,
    mayHold: boolean,
  ): IncomingResult {
    const room = state.name;
    const fail = failWith(room, from);
    const opened = this.verify(state, from, command, record, now);
    if ('wanting' in opened) {
      const epoch = opened.wanting;
      const newer = state.highestEpoch === undefined || epoch > state.highestEpoch;
      // Its envelope may still be on the way (keybot seals one member at a time): wait a little.
      if (newer && mayHold && (state.current || state.highestEpoch === undefined)) {
        if (state.held.length < this.c.maxHeldPerRoom && this.keys.heldTotal < this.c.maxHeldTotal) {
          state.held.push({ from, room, command, record, epoch, heldAt: now });
          this.keys.heldTotal++;
          return { kind: 'held', what: 'message', from, room, epoch, reason: `waiting for the key of epoch ${epoch}` };
        }
      }
      return this.noKey(state, from, epoch);
    }
    if (opened.kind === 'undecryptable') return opened;
    const { epoch, seq } = opened;
    const guard = this.replay.accept({ room, epoch, sender: from, seq });
    if (guard.status !== ReplayStatus.OK) {
      return fail('replay', guard.status === ReplayStatus.REPLAY ? `a replay of ${from}'s message ${seq}` : `an old message of ${from} (seq ${seq}) seen again`, epoch);
    }
    // Another session of our own account shares our sequence space (docs/PROTOCOL.md): go above it.
    this.ownSeqSeen(state, from, epoch, seq);
    // A skipped sequence number is a message the server did not deliver (docs/PROTOCOL.md "Who
    // accepts a room message"): say so. Our own account's other sessions share our numbers, and
    // what this session sent never comes back to it, so our own gaps mean nothing.
    const missing = guard.previous !== undefined && casefold(from) !== this.c.folded ? seq - guard.previous - 1 : 0;
    return { ...opened, ...(missing > 0 ? { missingBefore: missing } : {}) };
  }

  /**
   * One line of a `chathistory` batch: its record once complete (the parts of a long message are
   * reassembled apart from live ones), or what it is instead (an incomplete part: hidden).
   */
  historyRecord(from: string, target: string, text: string, kind: 'message' | 'message-part', now: number): { record: HeldMessage['record'] } | { result: IncomingResult } {
    if (!isChannel(target)) return { result: failWith(target, from)('not-a-room', 'a room message was sent privately, not to a room') };
    if (kind === 'message') return { record: { payload: text } };
    const r = this.historyParts.accept({ sender: `${from} ${casefold(target)}`, line: text, now });
    if (r.status === PartStatus.INCOMPLETE || r.status === PartStatus.DUPLICATE) return { result: { kind: 'hidden' } };
    if (r.status !== PartStatus.COMPLETE) {
      return { result: failWith(this.keys.displayName(target), from)('malformed', `the parts of a message did not reassemble (${r.status})`) };
    }
    return { record: { data: r.data! } };
  }

  /**
   * Decrypt and verify a history record with whatever key we hold for its epoch (current, replaced
   * or read-only). No replay guard: history is told apart from live messages by msgid and by
   * (epoch, sender, seq) (history.ts); and nothing is held here. `wanting`: no key for its epoch (yet).
   */
  openHistory(state: RoomState, from: string, command: TextCommand, record: HeldMessage['record'], now: number): MessageResult | UndecryptableResult | { wanting: number } {
    const opened = this.verify(state, from, command, record, now);
    if ('wanting' in opened || opened.kind === 'undecryptable') return opened;
    this.ownSeqSeen(state, from, opened.epoch, opened.seq);
    // The live guard learns the number too: the next live message of this sender does not count
    // the ones history showed as missing. (Its verdict is history.ts's business: by identity.)
    this.replay.accept({ room: state.name, epoch: opened.epoch, sender: from, seq: opened.seq });
    return opened;
  }

  /** Why no key of ours opens a message of `epoch`. */
  noKey(state: RoomState, from: string, epoch: number): UndecryptableResult {
    const room = state.name;
    const fail = failWith(room, from);
    if (state.highestEpoch === undefined && state.older.length === 0) {
      return fail('no-key', `no key for ${room}: keybot has not sent you one (ask with /msg ${KEYBOT_NICK} key ${room})`, epoch);
    }
    if (!state.current && state.older.length === 0) return fail('no-key', `you no longer hold a key for ${room}`, epoch);
    if (state.highestEpoch !== undefined && epoch > state.highestEpoch) return fail('unknown-epoch', `no key for epoch ${epoch} of ${room} (yet)`, epoch);
    if (state.installed.includes(epoch)) {
      return fail('epoch-discarded', `the key of epoch ${epoch} of ${room} was replaced and has been discarded`, epoch);
    }
    const held = state.current ? ` (you hold epoch ${state.current.epoch})` : '';
    return fail('unknown-epoch', `no key for epoch ${epoch} of ${room}: it predates your key or was discarded${held}`, epoch);
  }

  /** Decrypt and verify with the key of the record's epoch, if we hold it. */
  private verify(state: RoomState, from: string, command: TextCommand, record: HeldMessage['record'], now: number): MessageResult | UndecryptableResult | { wanting: number } {
    const room = state.name;
    const fail = failWith(room, from);
    const peek = peekRoomMessage(record);
    if (peek.status !== MessageStatus.OK || peek.epoch === undefined) {
      return peek.status === MessageStatus.UNSUPPORTED_VERSION
        ? fail('unsupported-version', `a room message of version ${peek.version ?? '?'}, which this client does not know`)
        : fail('malformed', 'not a well-formed room message');
    }
    const epoch = peek.epoch;
    this.keys.expirePrevious(state, now);
    const key = this.keys.keyFor(state, epoch);
    if (!key) return { wanting: epoch };
    const member = key.members.get(casefold(from));
    if (!member) return fail('not-a-member', `${from} is not a member of epoch ${epoch} of ${room}`, epoch);
    const res = decryptRoomMessage({ ...record, roomKey: key.key, room, epoch, sender: from, senderKey: member.signingKey });
    switch (res.status) {
      case MessageStatus.OK:
        break;
      case MessageStatus.DECRYPT_FAILED:
        return fail('decrypt-failed', `it does not decrypt as a message from ${from} in ${room} (tampered, or sent in someone else's name)`, epoch);
      case MessageStatus.BAD_SIGNATURE:
      case MessageStatus.BAD_SENDER_KEY:
        return fail('bad-signature', `its signature is not ${from}'s (forged?)`, epoch);
      case MessageStatus.UNSUPPORTED_VERSION:
        return fail('unsupported-version', 'a room message version this client does not know', epoch);
      default:
        return fail('malformed', `not a well-formed room message (${res.status})`, epoch);
    }
    return { kind: 'message', room, from, text: res.plaintext!, epoch, seq: res.seq!, command, verified: true };
  }

  /** Our own account's number seen (another session, or our own history): send above it. */
  private ownSeqSeen(state: RoomState, from: string, epoch: number, seq: number): void {
    if (casefold(from) !== this.c.folded) return;
    if (state.current?.epoch === epoch && seq > state.seq) state.seq = seq;
    this.onOwnSeq(state.name, epoch, seq);
  }

  /** Decide the held messages of a room whose key may now be here. */
  release(state: RoomState, now: number): IncomingResult[] {
    if (state.held.length === 0) return [];
    const out: IncomingResult[] = [];
    const keep: HeldMessage[] = [];
    for (const h of state.held) {
      if (h.epoch > (state.highestEpoch ?? -1)) keep.push(h);
      else out.push(this.openRecord(state, h.from, h.command, h.record, now, false));
    }
    this.keys.heldTotal -= state.held.length - keep.length;
    state.held = keep;
    return out;
  }

  /** Newline split, then per-message split; a `/me` stays a `/me` in every piece. */
  private split(text: string): string[] {
    const out: string[] = [];
    for (const line of text.split(/\r\n|\r|\n/)) {
      if (line.length === 0) continue;
      const action = parseAction(line);
      if (action === undefined) {
        out.push(...splitPlaintext({ text: line, sigAlg: this.c.sigAlg }));
        continue;
      }
      const max = maxPlaintextBytes(this.c.sigAlg) - utf8.encode(formatAction('')).length;
      for (let chunk of splitPlaintext({ text: action, sigAlg: this.c.sigAlg })) {
        while (utf8.encode(chunk).length > max) {
          const [head, tail] = cutAtBytes(chunk, max);
          out.push(formatAction(head));
          chunk = tail;
        }
        out.push(formatAction(chunk));
      }
    }
    return out;
  }
}

function failWith(room: string, from: string) {
  return (code: UndecryptableCode, reason: string, epoch?: number): UndecryptableResult => ({
    kind: 'undecryptable',
    room,
    from,
    code,
    reason,
    ...(epoch !== undefined ? { epoch } : {}),
  });
}

/** Split text at a code point boundary so the head has at most `max` UTF-8 bytes. */
function cutAtBytes(text: string, max: number): [string, string] {
  let bytes = 0;
  let i = 0;
  for (const cp of text) {
    const size = utf8.encode(cp).length;
    if (bytes + size > max) break;
    bytes += size;
    i += cp.length;
  }
  return [text.slice(0, i), text.slice(i)];
}

/** What every companion says about messages a sender sent that never arrived (MessageResult.missingBefore). */
export function missingMessagesText(n: number, from: string, room: string): string {
  return `${n} message${n === 1 ? '' : 's'} from ${from} in ${room} ${n === 1 ? 'is' : 'are'} missing: the server did not deliver ${n === 1 ? 'it' : 'them'}`;
}
