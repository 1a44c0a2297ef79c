/**
 * A member's side of key envelopes: decrypt and check one addressed to us, and the epoch rule for
 * installing its key (payload schema in envelope.ts).
 */
import { casefold, utf8 } from './bytes.js';
import { EnvelopeStatus, fromWire, isU32, type EnvelopePayload } from './envelope.js';
import { privateState, publicState, type PrivateKeyHandle, type PublicKeyHandle } from './keys.js';
import { decrypt, readMessage, type KeyID } from './openpgp.js';

/** Default: envelopes issued longer ago than this are refused (keybot seals them just before sending). */
export const DEFAULT_ENVELOPE_MAX_AGE_MS = 15 * 60_000;
/** Default: tolerated clock difference between keybot and a member, for issue times in the future. */
export const DEFAULT_ENVELOPE_MAX_SKEW_MS = 5 * 60_000;

/** Options of {@link openEnvelope}. */
export interface OpenEnvelopeOptions {
  /** The reassembled `SC1E` parts (PartsReassembler COMPLETE with kind 'envelope'). */
  data: Uint8Array;
  /** The member's own unlocked key. */
  decryptionKey: PrivateKeyHandle;
  /** keybot's key as pinned by the member (never taken from the envelope or the server). */
  signerKey: PublicKeyHandle;
  /** The member's own account: the member list must give it with our key. */
  expectedAccount: string;
  /** Current time, ms since the Unix epoch. */
  now: number;
  /** Refuse envelopes issued earlier than now - maxAgeMs (default 15 min). */
  maxAgeMs?: number;
  /** Refuse envelopes issued later than now + maxSkewMs (default 5 min). */
  maxSkewMs?: number;
}

/** Result of {@link openEnvelope}. */
export interface OpenEnvelopeResult {
  status: EnvelopeStatus;
  payload?: EnvelopePayload;
  reason?: string;
}

function keyIdsOf(handle: PrivateKeyHandle): KeyID[] {
  return privateState(handle, 'openEnvelope').key.getKeyIDs();
}

/**
 * Decrypt and check an envelope: for our key, signed by the pinned keybot key, listing
 * `expectedAccount` with our key's fingerprint, issued recently. Whether its epoch
 * is newer than the one we hold is the caller's check: see {@link isNewerEpoch}.
 */
export async function openEnvelope(options: OpenEnvelopeOptions): Promise<OpenEnvelopeResult> {
  const caller = 'openEnvelope';
  if (!options || typeof options !== 'object') throw new TypeError(`${caller}: expected one options object`);
  if (!(options.data instanceof Uint8Array)) throw new TypeError(`${caller}: options.data must be a Uint8Array`);
  const mine = privateState(options.decryptionKey, caller);
  const pinned = publicState(options.signerKey, caller);
  if (typeof options.expectedAccount !== 'string' || options.expectedAccount.length === 0) {
    throw new TypeError(`${caller}: options.expectedAccount must be a non-empty string`);
  }
  const { now } = options;
  if (typeof now !== 'number' || !Number.isFinite(now)) throw new TypeError(`${caller}: options.now must be a number (ms)`);
  const maxAgeMs = options.maxAgeMs ?? DEFAULT_ENVELOPE_MAX_AGE_MS;
  const maxSkewMs = options.maxSkewMs ?? DEFAULT_ENVELOPE_MAX_SKEW_MS;

  let message;
  try {
    message = await readMessage({ binaryMessage: options.data });
  } catch (err) {
    return { status: EnvelopeStatus.MALFORMED, reason: (err as Error).message };
  }
  const ours = keyIdsOf(options.decryptionKey);
  const addressed = message.getEncryptionKeyIDs();
  if (addressed.length === 0) return { status: EnvelopeStatus.MALFORMED, reason: 'not a public-key encrypted message' };
  if (!addressed.some((id) => ours.some((o) => o.equals(id, true)))) {
    return { status: EnvelopeStatus.NOT_FOR_ME };
  }

  let result;
  try {
    // openpgp.js refuses signatures made "in the future" relative to `date`: allow the skew.
    result = await decrypt({
      message,
      decryptionKeys: mine.key,
      verificationKeys: pinned.key,
      date: new Date(now + maxSkewMs),
      format: 'binary',
    });
  } catch (err) {
    return { status: EnvelopeStatus.DECRYPT_FAILED, reason: (err as Error).message };
  }
  // Settle every verification promise, so none is left to reject unhandled.
  const checks = await Promise.allSettled(result.signatures.map((s) => s.verified));
  for (const s of result.signatures) s.signature.catch(() => undefined);
  if (result.signatures.length === 0) return { status: EnvelopeStatus.UNSIGNED };
  const pinnedIds = pinned.key.getKeyIDs();
  const good = result.signatures.some(
    (s, i) => checks[i]!.status === 'fulfilled' && pinnedIds.some((id) => id.equals(s.keyID)),
  );
  if (!good) {
    // A keybot clock far ahead of ours makes openpgp.js reject the signature as made in the
    // future: tell that apart from a forgery by the (signed, but here unverified) creation time.
    for (const s of result.signatures) {
      const created = await s.signature.then((sig) => sig.packets[0]?.created ?? null, () => null);
      if (created && created.getTime() > now + maxSkewMs && pinnedIds.some((id) => id.equals(s.keyID))) {
        return { status: EnvelopeStatus.NOT_YET_VALID };
      }
    }
    const failure = checks.find((c) => c.status === 'rejected') as PromiseRejectedResult | undefined;
    return { status: EnvelopeStatus.BAD_SIGNATURE, reason: failure ? String((failure.reason as Error)?.message) : undefined };
  }

  let wire: unknown;
  try {
    wire = JSON.parse(utf8.decode(result.data as Uint8Array));
  } catch {
    return { status: EnvelopeStatus.MALFORMED, reason: 'the payload is not JSON' };
  }
  const parsed = fromWire(wire);
  if (!parsed.payload) return { status: parsed.status };
  const payload = parsed.payload;

  // Ours if keybot lists our account with our key (docs/PROTOCOL.md "Who accepts an envelope").
  const me = casefold(options.expectedAccount);
  if (parsed.to !== undefined && casefold(parsed.to) !== me) {
    return { status: EnvelopeStatus.WRONG_RECIPIENT, reason: `addressed to ${parsed.to}` };
  }
  const listed = payload.members.find((m) => casefold(m.account) === me);
  if (!listed) return { status: EnvelopeStatus.WRONG_RECIPIENT, reason: 'the member list does not name us' };
  if (listed.fingerprint !== options.decryptionKey.fingerprint) {
    return { status: EnvelopeStatus.WRONG_RECIPIENT, reason: 'the member list gives us another key' };
  }
  if (payload.issuedAt > now + maxSkewMs) return { status: EnvelopeStatus.NOT_YET_VALID };
  if (payload.issuedAt < now - maxAgeMs) return { status: EnvelopeStatus.EXPIRED };
  return { status: EnvelopeStatus.OK, payload };
}

/**
 * The epoch rule: a member installs an envelope's key only if its epoch is newer than the one it
 * holds for the room (`current` undefined = none held yet). Equal epochs are refused too: a
 * re-sent envelope for the current epoch (keybot `key <#room>`) carries nothing new.
 */
export function isNewerEpoch(options: { current?: number; offered: number }): boolean {
  if (!options || typeof options !== 'object') throw new TypeError('isNewerEpoch: expected one options object');
  if (!isU32(options.offered) || (options.current !== undefined && !isU32(options.current))) {
    throw new TypeError('isNewerEpoch: epochs must be integers from 0 to 2^32-1');
  }
  return options.current === undefined || options.offered > options.current;
}
