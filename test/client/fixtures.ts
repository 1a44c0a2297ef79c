/**
 * Keys and keybot-style envelopes for the client tests, made with the real crypto module the way
 * keybot makes them (seal per member, frame as SC1E parts).
 */
import {
  EnvelopeStatus,
  FrameStatus,
  frameParts,
  generateRoomKey,
  generateUserKey,
  readPublicKey,
  sealEnvelope,
  signingPublicKeyOf,
  signRoomOp,
  rosterHash,
  EMPTY_ROSTER_HASH,
  unlockPrivateKey,
  type EnvelopeMember,
  type PrivateKeyHandle,
  type PublicKeyHandle,
} from '../../src/crypto/index.js';
import type { IncomingResult, RoomCryptoEngine } from '../../src/client/index.js';

export interface Party {
  name: string;
  publicArmored: string;
  privateArmored: string;
  fingerprint: string;
  priv: PrivateKeyHandle;
  pub: PublicKeyHandle;
}

const parties = new Map<string, Promise<Party>>();

/** A key pair for `name`, made once per test process. */
export function party(name: string, type: 'ecc' | 'rsa' = 'ecc'): Promise<Party> {
  const id = `${name}/${type}`;
  let p = parties.get(id);
  if (!p) {
    p = (async () => {
      const k = await generateUserKey({ name, type, ...(type === 'rsa' ? { rsaBits: 2048 as const } : {}) });
      return fromArmored(name, k.publicArmored, k.privateArmored);
    })();
    parties.set(id, p);
  }
  return p;
}

export async function fromArmored(name: string, publicArmored: string, privateArmored: string): Promise<Party> {
  const pub = await readPublicKey({ armored: publicArmored });
  const priv = await unlockPrivateKey({ armored: privateArmored });
  if (!pub.key || !priv.key) throw new Error(`fixture ${name}: ${pub.status} ${priv.status}`);
  return { name, publicArmored, privateArmored, fingerprint: pub.key.fingerprint, pub: pub.key, priv: priv.key };
}

export function memberOf(p: Party, account = p.name): EnvelopeMember {
  return { account, fingerprint: p.fingerprint, signingKey: signingPublicKeyOf({ key: p.pub }) };
}

export interface EnvelopeSpec {
  /** Whose key it is encrypted to. */
  to: Party;
  /** Who signs it (keybot, or an impostor). */
  signer: Pick<Party, 'priv'>;
  room: string;
  epoch: number;
  key?: Uint8Array;
  members: EnvelopeMember[];
  /** If given, sealing checks that the member list gives `to`'s key under this account. */
  recipientAccount?: string;
  issuedAt?: number;
}

/** The SC1E lines keybot would send for one member and epoch. */
export async function envelopeLines(spec: EnvelopeSpec): Promise<string[]> {
  const sealed = await sealEnvelope({
    recipient: spec.to.pub,
    ...(spec.recipientAccount !== undefined ? { recipientAccount: spec.recipientAccount } : {}),
    signer: spec.signer.priv,
    payload: {
      room: spec.room,
      epoch: spec.epoch,
      key: spec.key ?? generateRoomKey(),
      members: spec.members,
      issuedAt: spec.issuedAt ?? Date.now(),
    },
  });
  if (sealed.status !== EnvelopeStatus.OK) throw new Error(`sealEnvelope: ${sealed.status} ${sealed.reason ?? ''}`);
  const framed = frameParts({ data: sealed.data!, kind: 'envelope' });
  if (framed.status !== FrameStatus.OK) throw new Error(`frameParts: ${framed.status}`);
  return framed.parts;
}

/**
 * The `SC1O` lines keybot relays to `room` for an operation `actor` signed: `add` (to the roster
 * `roster`) or `create` (a new room), naming `targets` with their fingerprints. What a member's
 * companion must see before an epoch that adds anyone (docs/PROTOCOL.md "Room operations").
 */
export function relayedOpLines(spec: {
  actor: Party;
  action?: 'add' | 'create';
  room: string;
  roster: Party[];
  targets: Party[];
  issuedAt?: number;
}): string[] {
  const action = spec.action ?? 'add';
  const data = signRoomOp({
    signer: spec.actor.priv,
    op: {
      action,
      room: spec.room,
      roster: action === 'create' ? EMPTY_ROSTER_HASH : rosterHash(spec.roster.map((m) => memberOf(m))),
      actor: { account: spec.actor.name, fingerprint: spec.actor.fingerprint },
      targets: spec.targets.map((t) => ({ account: t.name, fingerprint: t.fingerprint })),
      issuedAt: spec.issuedAt ?? Date.now(),
      nonce: crypto.getRandomValues(new Uint8Array(16)),
    },
  });
  const framed = frameParts({ data, kind: 'op' });
  if (framed.status !== FrameStatus.OK) throw new Error(`frameParts: ${framed.status}`);
  return framed.parts;
}

/** keybot's data (a join envelope, an epoch notice, a roster page) framed as the SC1E lines it sends. */
export function envelopeParts(data: Uint8Array): string[] {
  const f = frameParts({ data, kind: 'envelope' });
  if (f.status !== FrameStatus.OK) throw new Error(f.status);
  return f.parts;
}

/** Feed `lines` to `engine` as NOTICEs from `from` (keybot) to `target`; the results that are not hidden. */
export async function fromKeybot(engine: RoomCryptoEngine, target: string, lines: string[], now = Date.now(), from = 'keybot'): Promise<IncomingResult[]> {
  const out: IncomingResult[] = [];
  for (const text of lines) out.push(await engine.handleIncoming({ from, target, command: 'NOTICE', text, now }));
  return out.filter((r) => r.kind !== 'hidden');
}
