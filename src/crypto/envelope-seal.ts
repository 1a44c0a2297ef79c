/**
 * keybot's side of key envelopes: sign an epoch's payload once, then encrypt that signed message
 * to each member (payload schema in envelope.ts).
 */
import { casefold, utf8 } from './bytes.js';
import { EnvelopeStatus, payloadProblem, toWire, type EnvelopePayload } from './envelope.js';
import { privateState, publicState, type PrivateKeyHandle, type PublicKeyHandle } from './keys.js';
import { createMessage, encrypt, readSignature, sign } from './openpgp.js';

/** An epoch's payload signed by keybot, to be encrypted to each member ({@link sealEnvelope}). */
export interface SignedEnvelope {
  readonly payload: EnvelopePayload;
}

/** The literal data and keybot's signature over it (binary, detached) of each SignedEnvelope. */
const signedMessages = new WeakMap<SignedEnvelope, { literal: Uint8Array; signature: Uint8Array }>();

/** Result of {@link signEnvelope}. */
export interface SignEnvelopeResult {
  status: EnvelopeStatus;
  signed?: SignedEnvelope;
  reason?: string;
}

/**
 * Sign an epoch's payload with keybot's key, once for all its members (the payload is the same
 * for each). Sign just before sealing and sending: `issuedAt` is the signature's time too.
 */
export async function signEnvelope(options: { signer: PrivateKeyHandle; payload: EnvelopePayload }): Promise<SignEnvelopeResult> {
  const caller = 'signEnvelope';
  if (!options || typeof options !== 'object') throw new TypeError(`${caller}: expected one options object`);
  const signer = privateState(options.signer, caller);
  const payload = options.payload;
  if (!payload || typeof payload !== 'object') throw new TypeError(`${caller}: options.payload must be an object`);
  const problem = payloadProblem(payload);
  if (problem) throw new TypeError(`${caller}: options.payload: ${problem}`);
  try {
    const literal = utf8.encode(JSON.stringify(toWire(payload)));
    const message = await createMessage({ binary: literal });
    const signature = (await sign({ message, signingKeys: signer.key, date: new Date(payload.issuedAt), detached: true, format: 'binary' })) as Uint8Array;
    const signed: SignedEnvelope = Object.freeze({ payload });
    signedMessages.set(signed, { literal, signature });
    return { status: EnvelopeStatus.OK, signed };
  } catch (err) {
    return { status: EnvelopeStatus.SEAL_FAILED, reason: (err as Error).message };
  }
}

/** Options of {@link sealEnvelope}: a payload signed already, or one to sign now. */
export type SealEnvelopeOptions = {
  /** The member's registered key (the member list must give its fingerprint). */
  recipient: PublicKeyHandle;
  /** If given: the member list must give the recipient's fingerprint under this account. */
  recipientAccount?: string;
} & (
  | { /** From {@link signEnvelope}: one signature for every member of the epoch. */ signed: SignedEnvelope }
  | { /** keybot's unlocked key. */ signer: PrivateKeyHandle; payload: EnvelopePayload }
);

/** Result of {@link sealEnvelope}. */
export interface SealEnvelopeResult {
  status: EnvelopeStatus;
  /** The binary OpenPGP message (OK only): send it with frameParts({ data, kind: 'envelope' }). */
  data?: Uint8Array;
  reason?: string;
}

/**
 * Encrypt a signed epoch payload to one member (signing it first if given a signer and a
 * payload). Seal just before sending.
 */
export async function sealEnvelope(options: SealEnvelopeOptions): Promise<SealEnvelopeResult> {
  const caller = 'sealEnvelope';
  if (!options || typeof options !== 'object') throw new TypeError(`${caller}: expected one options object`);
  const recipient = publicState(options.recipient, caller);
  let signed: SignedEnvelope;
  if ('signed' in options) {
    signed = options.signed;
    if (!signedMessages.has(signed)) throw new TypeError(`${caller}: options.signed must come from signEnvelope`);
  } else {
    const s = await signEnvelope({ signer: options.signer, payload: options.payload });
    if (s.status !== EnvelopeStatus.OK || !s.signed) return { status: s.status, reason: s.reason };
    signed = s.signed;
  }
  const { payload } = signed;
  const fp = options.recipient.fingerprint;
  if (options.recipientAccount !== undefined) {
    const me = payload.members.find((m) => casefold(m.account) === casefold(options.recipientAccount!));
    if (!me) throw new TypeError(`${caller}: ${options.recipientAccount} is not among the members`);
    if (me.fingerprint !== fp) {
      throw new TypeError(`${caller}: the recipient key is not the key the member list gives for ${options.recipientAccount}`);
    }
  } else if (!payload.members.some((m) => m.fingerprint === fp)) {
    throw new TypeError(`${caller}: the member list does not give the recipient key`);
  }
  try {
    // The existing signature goes in as it would have been made here: one-pass signature
    // packet, literal data, signature packet, all inside the encryption.
    const { literal, signature } = signedMessages.get(signed)!;
    const data = await encrypt({
      message: await createMessage({ binary: literal, date: new Date(payload.issuedAt) }),
      signature: await readSignature({ binarySignature: signature }),
      encryptionKeys: recipient.key,
      date: new Date(payload.issuedAt),
      format: 'binary',
    });
    return { status: EnvelopeStatus.OK, data: data as Uint8Array };
  } catch (err) {
    return { status: EnvelopeStatus.SEAL_FAILED, reason: (err as Error).message };
  }
}
