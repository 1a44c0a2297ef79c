/**
 * Delivery: sign an epoch's payload once, seal one key envelope per member (src/crypto), frame each into `SC1E` parts that
 * fit one IRC line, and hand the lines to the transport as NOTICEs to the member's nick
 * (NOTICE, so no client ever auto-replies; docs/PROTOCOL.md "Envelope parts").
 */
import {
  EnvelopeStatus,
  FrameStatus,
  frameParts,
  sealEnvelope,
  signEnvelope,
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
