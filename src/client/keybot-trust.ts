/**
 * Settling which keybot key a companion trusts (SealClient and the proxy share this; the rules
 * are pinning.ts's): a key or fingerprint the user configured wins, else the key remembered for this
 * server, else the key keybot offers now (trust on first use, remembered). A key that differs from
 * the configured or remembered one is refused, never adopted.
 */
import { readPublicKey, type PublicKeyHandle } from '../crypto/index.js';
import { KnownKeybots, decideKeybotTrust, normalizeFingerprint, type TrustSource } from './pinning.js';

export interface KeybotTrustOptions {
  /** `host:port` of the server, the key of the known-keybots file. */
  server: string;
  /** Pin keybot to this fingerprint. */
  keybotFingerprint?: string;
  /** keybot's armored public key, given by the user. */
  keybotPublicKey?: string;
  /** The known-keybots file (default ~/.sealchat/known_keybots.json); false: remember nothing. */
  knownKeybotsFile?: string | false;
  /** Ask keybot for its key (`pubkey`); resolves with the armored key. */
  fetch: () => Promise<string>;
}

export type KeybotTrustOutcome =
  | { status: 'pinned'; key: PublicKeyHandle; source: TrustSource | 'option-key' }
  | { status: 'unavailable'; reason: string }
  | { status: 'mismatch'; expected: string; got: string; source: 'configured' | 'known'; reason: string };

/** Find keybot's key and decide whether to pin it. Never throws for a peer's doing. */
export async function settleKeybotKey(o: KeybotTrustOptions): Promise<KeybotTrustOutcome> {
  if (o.keybotFingerprint !== undefined && !normalizeFingerprint(o.keybotFingerprint)) {
    return { status: 'unavailable', reason: `"${o.keybotFingerprint}" is not a key fingerprint` };
  }
  const known = o.knownKeybotsFile === false ? undefined : new KnownKeybots(o.knownKeybotsFile);
  let remembered;
  try {
    remembered = await known?.get(o.server);
  } catch (err) {
    return { status: 'unavailable', reason: `cannot read the known keybots file: ${(err as Error).message}` };
  }
  let armored = o.keybotPublicKey;
  let fromKeybot = false;
  // The remembered key saves asking keybot (and works while it is offline), unless it is not the
  // one the user configured now.
  if (armored === undefined && remembered?.publicKey) {
    const configured = o.keybotFingerprint === undefined ? undefined : normalizeFingerprint(o.keybotFingerprint);
    if (configured === undefined || configured === remembered.fingerprint) armored = remembered.publicKey;
  }
  if (armored === undefined) {
    try {
      armored = await o.fetch();
      fromKeybot = true;
    } catch (err) {
      return { status: 'unavailable', reason: `cannot get keybot's key: ${(err as Error).message}` };
    }
  }
  const read = await readPublicKey({ armored });
  if (!read.key) return { status: 'unavailable', reason: `keybot's key is unusable: ${read.reason ?? read.status}` };
  const key = read.key;
  if (o.keybotPublicKey !== undefined && o.keybotFingerprint === undefined) return { status: 'pinned', key, source: 'option-key' };
  const decision = decideKeybotTrust({
    offered: key.fingerprint,
    ...(o.keybotFingerprint !== undefined ? { configured: o.keybotFingerprint } : {}),
    ...(remembered ? { known: remembered } : {}),
  });
  if (decision.status === 'mismatch') {
    const reason =
      `keybot's key changed! ${o.server} offered ${decision.got}, but ${decision.source === 'configured' ? 'you configured' : 'you pinned'} ` +
      `${decision.expected}. It is refused: no room key will be accepted until you verify the new key with the operator.`;
    return { status: 'mismatch', expected: decision.expected, got: decision.got, source: decision.source, reason };
  }
  if (known && (!remembered || (fromKeybot && !remembered.publicKey))) {
    try {
      await known.set(o.server, { fingerprint: key.fingerprint, publicKey: key.armored, firstSeen: new Date().toISOString() });
    } catch {
      // Remembering is a convenience: the key is pinned for this session either way.
    }
  }
  return { status: 'pinned', key, source: decision.source };
}
