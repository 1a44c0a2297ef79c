/**
 * Test helper: read keybot's lines as one member's companion would under envelope version 3
 * (docs/PROTOCOL.md "Envelope version 3"): join envelopes (and version-2 envelopes) addressed to
 * the member, epoch notices to a room followed from the epoch the member holds, key lines opened
 * with the member key of the room's last join envelope. Every epoch the member could install, in order.
 */
import {
  EnvelopeStatus,
  PartStatus,
  PartsReassembler,
  RoomOpStatus,
  advanceRoster,
  classifyLine,
  isEpochNotice,
  openEnvelope,
  openJoinEnvelope,
  peekKeyLine,
  unwrapEpochKey,
  verifyEpochNotice,
  type EnvelopePayload,
  type PrivateKeyHandle,
  type PublicKeyHandle,
} from '../../src/crypto/index.js';

export interface Followed extends EnvelopePayload {
  via: 'join' | 'key-line' | 'v2';
}

export async function follow(
  lines: ReadonlyArray<{ target: string; text: string }>,
  name: string,
  key: PrivateKeyHandle,
  keybotKey: PublicKeyHandle,
  opts: { refused?: string[] } = {},
): Promise<Followed[]> {
  const out: Followed[] = [];
  const mine = new PartsReassembler();
  const rooms = new PartsReassembler();
  const memberKeys = new Map<string, Uint8Array>();
  const notices = new Map<string, { epoch: number; digest: Uint8Array; roster: EnvelopePayload['members']; issuedAt: number }>();
  const latest = (room: string): Followed | undefined => out.filter((e) => e.room.toLowerCase() === room.toLowerCase()).at(-1);
  const now = Date.now();
  for (const l of lines) {
    const toMe = l.target.toLowerCase() === name.toLowerCase();
    if (toMe && l.text.startsWith('SC1K ')) {
      const peek = peekKeyLine(l.text)!;
      const n = notices.get(peek.room.toLowerCase());
      const mk = memberKeys.get(peek.room.toLowerCase());
      if (!n || !mk || n.epoch !== peek.epoch) throw new Error(`${name}: a key line for ${peek.room}@${peek.epoch} without its notice`);
      const k = unwrapEpochKey({ line: l.text, memberKey: mk, account: name, digest: n.digest });
      if (!k) throw new Error(`${name}: the key line for ${peek.room}@${peek.epoch} does not open`);
      out.push({ room: k.room, epoch: k.epoch, key: k.key, members: n.roster, issuedAt: n.issuedAt, via: 'key-line' });
      continue;
    }
    if (classifyLine(l.text) !== 'envelope-part') continue;
    if (l.target.startsWith('#')) {
      const r = rooms.accept({ sender: l.target, line: l.text, now });
      if (r.status !== PartStatus.COMPLETE || !isEpochNotice(r.data!)) continue;
      const v = verifyEpochNotice({ data: r.data!, keybotKey, now });
      if (v.status !== EnvelopeStatus.OK) throw new Error(`${name}: an epoch notice does not verify (${v.status})`);
      const n = v.notice!;
      const held = latest(n.room);
      if (!held || held.epoch !== n.prev) continue;
      const adv = advanceRoster({ roster: held.members, notice: n });
      if (adv.status !== RoomOpStatus.OK) {
        opts.refused?.push(`${n.room}@${n.epoch}: ${adv.status} ${adv.reason ?? ''}`);
        continue;
      }
      notices.set(n.room.toLowerCase(), { epoch: n.epoch, digest: v.digest!, roster: adv.roster!, issuedAt: n.issuedAt });
      continue;
    }
    if (!toMe) continue;
    const r = mine.accept({ sender: 'keybot', line: l.text, now });
    if (r.status !== PartStatus.COMPLETE) continue;
    const j = await openJoinEnvelope({ data: r.data!, decryptionKey: key, keybotKey, expectedAccount: name, now });
    if (j.status === EnvelopeStatus.OK) {
      const p = j.payload!;
      memberKeys.set(p.room.toLowerCase(), p.memberKey);
      out.push({ room: p.room, epoch: p.epoch, key: p.key, members: p.roster, issuedAt: p.issuedAt, via: 'join' });
      continue;
    }
    if (!j.legacy) throw new Error(`${name}: a join envelope does not open (${j.status})`);
    const v2 = await openEnvelope({ data: r.data!, decryptionKey: key, signerKey: keybotKey, expectedAccount: name, now });
    if (v2.status !== EnvelopeStatus.OK) throw new Error(`${name}: an envelope does not open (${v2.status})`);
    out.push({ ...v2.payload!, via: 'v2' });
  }
  return out;
}
