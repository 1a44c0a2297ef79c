/**
 * RoomCryptoEngine: the transport-free crypto session of one user on one server.
 *
 * It sees IRC-level facts (who sent what to whom) and answers what they mean: an envelope part to
 * swallow, a new room key, a verified room message, something that must not be trusted, or a line
 * that is none of sealchat's business. The terminal client, the local proxy and the plugin agent
 * all sit on it; none of them touches crypto. No I/O, no timers: every call may pass `now` (ms).
 *
 * Rules it enforces (docs/PROTOCOL.md, "Who accepts an envelope" and "Who accepts a room message"):
 *  - envelopes only from the nick `keybot`, signed by the pinned keybot key, addressed to our own
 *    account and key, issued recently, and for an epoch newer than any we installed for the room;
 *  - room messages only under a key we hold, from a sender the envelope of that epoch lists, with
 *    that sender's signature, and never twice (ReplayGuard);
 *  - every member account's fingerprint is pinned on first sight (in memory, for the engine's
 *    lifetime); an envelope that lists a known account with another fingerprint is rejected
 *    (`member-key-changed`) and the room refuses outgoing text until the user accepts the new
 *    fingerprint ({@link RoomCryptoEngine.acceptMemberKey}) or starts a new engine;
 *  - the previous epoch's key is kept only briefly (messages in flight), then wiped;
 *  - outgoing text in a room we have or had a key for, or in any `#sc-` room, is encrypted or
 *    refused: the engine never hands back plaintext for such a room (fail closed).
 */
import { classifyLine, sanitizeText } from '../crypto/index.js';
import { casefold } from '../protocol/names.js';
import type { HeldMessage } from './engine/key-store.js';
import { EnvelopeIntake } from './engine/envelopes.js';
import type { IncomingLine, IncomingResult, UndecryptableResult } from './engine/types.js';

export type {
  BotNoticeResult,
  EnvelopeRejectCode,
  EnvelopeRejectedResult,
  HeldResult,
  HiddenResult,
  IncomingLine,
  IncomingResult,
  KeyResult,
  MemberKeyChange,
  MessageResult,
  OutgoingResult,
  PassthroughResult,
  PlaintextInRoomResult,
  RoomCryptoEngineOptions,
  RoomInfo,
  TextCommand,
  UndecryptableCode,
  UndecryptableResult,
} from './engine/types.js';

/** A transport-free crypto session; see the file comment. */
export class RoomCryptoEngine extends EnvelopeIntake {
  /**
   * Decide what one received PRIVMSG/NOTICE means. Calls are processed one at a time in call
   * order (an envelope is applied before the message after it is looked at), so callers may fire
   * them without awaiting each.
   */
  handleIncoming(line: IncomingLine): Promise<IncomingResult> {
    if (!line || typeof line !== 'object') throw new TypeError('handleIncoming: expected one line object');
    if (typeof line.from !== 'string' || typeof line.target !== 'string' || typeof line.text !== 'string') {
      throw new TypeError('handleIncoming: from, target and text must be strings');
    }
    if (line.command !== 'PRIVMSG' && line.command !== 'NOTICE') throw new TypeError("handleIncoming: command must be 'PRIVMSG' or 'NOTICE'");
    return this.serial(() => this.process(line, line.now ?? this.clock()));
  }

  /**
   * Housekeeping, to call every second or so: wipes replaced keys past their grace period, drops
   * stale parts and envelopes, and gives up on held messages whose key did not come (returned as
   * `undecryptable`, in arrival order).
   */
  sweep(now?: number): UndecryptableResult[] {
    const t = now ?? this.clock();
    this.envelopeParts.sweep({ now: t });
    this.messageParts.sweep({ now: t });
    const maxAge = this.envelopeMaxAgeMs ?? 15 * 60_000;
    this.pendingEnvelopes = this.pendingEnvelopes.filter((p) => t - p.at < maxAge);
    const out: UndecryptableResult[] = [];
    for (const state of this.roomStates.values()) {
      this.expirePrevious(state, t);
      if (state.held.length === 0) continue;
      const keep: HeldMessage[] = [];
      for (const h of state.held) {
        if (t - h.heldAt < this.holdMs) keep.push(h);
        else {
          out.push({
            kind: 'undecryptable',
            room: h.room,
            from: h.from,
            code: 'unknown-epoch',
            epoch: h.epoch,
            reason: `no key for epoch ${h.epoch} of ${h.room} arrived within ${Math.round(this.holdMs / 1000)} s`,
          });
        }
      }
      this.heldTotal -= state.held.length - keep.length;
      state.held = keep;
    }
    return out;
  }

  // ---- internals -------------------------------------------------------------------------

  private async process(line: IncomingLine, now: number): Promise<IncomingResult> {
    const { from, target, command, text } = line;
    const kind = classifyLine(text);
    const fromKeybot = casefold(from) === this.keybotNick;
    if (kind === 'envelope-part') return this.envelopePart(from, text, fromKeybot, now);
    if (kind === 'message' || kind === 'message-part') return this.roomLine(from, target, command, text, kind, now);
    if (fromKeybot) return { kind: 'bot-notice', target, text: sanitizeText(text), command };
    if (this.isEncryptedRoom(target)) {
      return { kind: 'plaintext-in-room', room: this.displayName(target), from, text: sanitizeText(text), command };
    }
    return { kind: 'passthrough' };
  }
}
