/**
 * Delivery: what keybot sends for an epoch, framed into lines that fit IRC, handed to the
 * transport as NOTICEs (NOTICE, so no client ever auto-replies; docs/PROTOCOL.md "Envelope parts").
 *
 * Envelope version 3 (docs/PROTOCOL.md "Envelope version 3"), what keybot sends:
 *  - a **join envelope** (`sealJoinEnvelopes`: OpenPGP to the member's key, the whole roster and
 *    the member's member key) to each member who cannot follow the epoch from the one before;
 *  - one signed **epoch notice** (`epochNoticeLines`) to the room, O(changes);
 *  - one **key line** (`keyLine`) per member who holds the epoch before;
 *  - a large roster's signed **roster pages** (`rosterPageLines`), to the room when many join, else
 *    to each joiner.
 * Version 2 (`sealEnvelopes`: one signed payload listing everyone, sealed per member) is kept for
 * the tests that check companions still read it during the transition; keybot no longer sends it.
 */
import {
  EnvelopeStatus,
  FrameStatus,
  frameParts,
  sealEnvelope,
  sealJoinEnvelope,
  signEnvelope,
  wrapEpochKey,
  type EnvelopeMember,
  type PrivateKeyHandle,
  type PublicKeyHandle,
} from '../crypto/index.js';

/** What keybot says on IRC. The IRC client implements it; tests may record it. */
export interface Transport {
  /** keybot's own nick. */
  readonly nick: string;
  notice(target: string, text: string): void;
  /** Many NOTICEs, in order, written at once (an epoch's envelopes are ~25 lines per member). */
  notices(lines: ReadonlyArray<{ target: string; text: string }>): void;
  /** MODE <room> <modes> (keybot is op in its rooms). */
  setModes(room: string, modes: string): void;
  /** Ask for the room's NAMES again (keybot is already in it). */
  requestNames(room: string): void;
  part(room: string, reason: string): void;
}

export interface EnvelopeRecipient {
  nick: string;
  key: PublicKeyHandle;
  account: string;
}

export interface SealedEnvelope {
  nick: string;
  account: string;
  /** The lines to send, in order. */
  parts: string[];
}

export interface SealFailure {
  nick: string;
  account: string;
  reason: string;
}

/**
 * Seal the epoch's envelope for every recipient: the payload (the same for all, docs/PROTOCOL.md
 * envelope version 2) is signed once and that signed message encrypted to each member. All or
 * nothing is the caller's choice: the result lists what sealed and what failed (a key that
 * expired since it was read, say). If signing itself fails, every recipient is in `failed`.
 */
export async function sealEnvelopes(options: {
  signer: PrivateKeyHandle;
  room: string;
  epoch: number;
  key: Uint8Array;
  members: EnvelopeMember[];
  recipients: EnvelopeRecipient[];
  issuedAt: number;
}): Promise<{ sealed: SealedEnvelope[]; failed: SealFailure[] }> {
  const { signer, room, epoch, key, members, issuedAt } = options;
  const signing = await signEnvelope({ signer, payload: { room, epoch, key, members, issuedAt } });
  const signed = signing.signed;
  if (signing.status !== EnvelopeStatus.OK || !signed) {
    const reason = `cannot sign the envelope: ${signing.reason ?? signing.status}`;
    return { sealed: [], failed: options.recipients.map((r) => ({ nick: r.nick, account: r.account, reason })) };
  }
  const results = await Promise.all(
    options.recipients.map(async (r) => {
      const res = await sealEnvelope({ recipient: r.key, recipientAccount: r.account, signed });
      if (res.status !== EnvelopeStatus.OK || !res.data) {
        return { ok: false as const, nick: r.nick, account: r.account, reason: res.reason ?? res.status };
      }
      const framed = frameParts({ data: res.data, kind: 'envelope' });
      if (framed.status !== FrameStatus.OK) {
        return { ok: false as const, nick: r.nick, account: r.account, reason: 'envelope too large for IRC' };
      }
      return { ok: true as const, nick: r.nick, account: r.account, parts: framed.parts };
    }),
  );
  const sealed: SealedEnvelope[] = [];
  const failed: SealFailure[] = [];
  for (const r of results) {
    if (r.ok) sealed.push({ nick: r.nick, account: r.account, parts: r.parts });
    else failed.push({ nick: r.nick, account: r.account, reason: r.reason });
  }
  return { sealed, failed };
}

/** Send sealed envelopes; synchronous, so no IRC event can slip in between two members. */
export function sendEnvelopes(transport: Transport, sealed: SealedEnvelope[]): void {
  const lines: Array<{ target: string; text: string }> = [];
  for (const s of sealed) for (const text of s.parts) lines.push({ target: s.nick, text });
  transport.notices(lines);
}

/** A member who gets a join envelope: their key, the member key keybot keeps for them, the operations that added them. */
export interface JoinRecipient extends EnvelopeRecipient {
  fingerprint: string;
  memberKey: Uint8Array;
  ops: Uint8Array[];
}

/**
 * Seal a version-3 join envelope for each recipient (OpenPGP to their key, keybot's raw signature
 * over their fingerprint and the payload inside). As sealEnvelopes: what sealed and what failed.
 */
export async function sealJoinEnvelopes(options: {
  signer: PrivateKeyHandle;
  room: string;
  epoch: number;
  key: Uint8Array;
  roster: EnvelopeMember[];
  /** The roster goes in these pages (its hash and their count in the envelope) instead of inline. */
  pages?: { hash: Uint8Array; count: number };
  recipients: JoinRecipient[];
  issuedAt: number;
}): Promise<{ sealed: SealedEnvelope[]; failed: SealFailure[] }> {
  const { signer, room, epoch, key, issuedAt, pages } = options;
  const roster = pages ? [] : options.roster;
  const sealed: SealedEnvelope[] = [];
  const failed: SealFailure[] = [];
  const results = await Promise.all(
    options.recipients.map(async (r) => {
      try {
        const res = await sealJoinEnvelope({
          signer,
          recipientKey: r.key,
          payload: {
            room, epoch, key, issuedAt, memberKey: r.memberKey, recipient: { account: r.account, fingerprint: r.fingerprint }, roster,
            ...(pages ? { rosterPages: pages } : {}), ops: r.ops,
          },
        });
        if (res.status !== EnvelopeStatus.OK || !res.data) return { r, reason: res.reason ?? res.status };
        const framed = frameParts({ data: res.data, kind: 'envelope' });
        if (framed.status !== FrameStatus.OK) return { r, reason: 'envelope too large for IRC' };
        return { r, parts: framed.parts };
      } catch (err) {
        return { r, reason: (err as Error).message };
      }
    }),
  );
  for (const x of results) {
    if (x.parts) sealed.push({ nick: x.r.nick, account: x.r.account, parts: x.parts });
    else failed.push({ nick: x.r.nick, account: x.r.account, reason: x.reason ?? 'failed' });
  }
  return { sealed, failed };
}

/**
 * The roster's pages as `SC1E` lines to `target` (the room, or one member): framed afresh each
 * time (new part ids), the same signed data for everyone.
 */
export function rosterPageLines(target: string, data: readonly Uint8Array[]): Array<{ target: string; text: string }> {
  const lines: Array<{ target: string; text: string }> = [];
  for (const d of data) {
    const framed = frameParts({ data: d, kind: 'envelope' });
    // signRosterPages keeps each page far under the caps: a page that does not frame is a bug.
    if (framed.status !== FrameStatus.OK) throw new Error(`a roster page does not frame (${framed.status})`);
    for (const text of framed.parts) lines.push({ target, text });
  }
  return lines;
}

/** The signed epoch notice as `SC1E` lines to the room, or undefined if it does not fit a companion's reassembly cap. */
export function epochNoticeLines(room: string, data: Uint8Array): Array<{ target: string; text: string }> | undefined {
  const framed = frameParts({ data, kind: 'envelope' });
  if (framed.status !== FrameStatus.OK) return undefined;
  return framed.parts.map((text) => ({ target: room, text }));
}

/** One member's key line (`SC1K`): the epoch's key under their member key, bound to the notice. */
export function keyLine(options: { nick: string; account: string; memberKey: Uint8Array; key: Uint8Array; room: string; epoch: number; digest: Uint8Array }): { target: string; text: string } {
  const { nick, account, memberKey, key, room, epoch, digest } = options;
  return { target: nick, text: wrapEpochKey({ memberKey, key, room, epoch, account, digest }) };
}
