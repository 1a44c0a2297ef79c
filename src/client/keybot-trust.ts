/**
 * Settling which keybot key a companion trusts (SealClient and the proxy share this; the rules
 * are pinning.ts's): a key or fingerprint the user configured wins, else the key remembered for this
 * server, else the key keybot offers now (trust on first use, remembered). A key that differs from
 * the configured or remembered one is refused, never adopted.
 */
import { readPublicKey, type PublicKeyHandle } from '../crypto/index.js';
import { normalizeFingerprint } from '../protocol/fingerprint.js';
import { KnownKeybots, decideKeybotTrust, type KnownKeybot, type TrustSource } from './pinning.js';

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

/** Why a pinned key is trusted: pinning.ts's sources, or `option-key` (the key the user gave). */
export type KeybotPinSource = TrustSource | 'option-key';

export type KeybotTrustOutcome =
  | { status: 'pinned'; key: PublicKeyHandle; source: KeybotPinSource }
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
  // The remembered key saves asking keybot (and works while it is offline), unless it is not the
  // one the user configured now.
  let armored = o.keybotPublicKey ?? rememberedKeyToUse(remembered, o.keybotFingerprint);
  let fromKeybot = false;
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
  const judged = judgeKeybotKey(o, key, remembered, fromKeybot);
  if (judged.status === 'mismatch') return judged;
  if (known && judged.remember) {
    try {
      await rememberKeybot(known, o.server, key);
    } catch {
      // Remembering is a convenience: the key is pinned for this session either way.
    }
  }
  return { status: 'pinned', key, source: judged.source };
}

/** The remembered key, if it may stand in for asking keybot: it is the one configured, or none is. */
export function rememberedKeyToUse(remembered: KnownKeybot | undefined, keybotFingerprint: string | undefined): string | undefined {
  if (!remembered?.publicKey) return undefined;
  return keybotFingerprint === undefined || normalizeFingerprint(keybotFingerprint) === remembered.fingerprint ? remembered.publicKey : undefined;
}

/** The outcome of {@link judgeKeybotKey}. */
export type KeybotJudgement =
  | { status: 'pinned'; source: KeybotPinSource; remember: boolean }
  | { status: 'mismatch'; expected: string; got: string; source: 'configured' | 'known'; reason: string };

/**
 * May `key` be pinned for `o.server`? A key the user gave (with no fingerprint to check it
 * against) is taken as it is; otherwise pinning.ts decides. `remember`: write it to the
 * known-keybots file (nothing was remembered for the server, or only the fingerprint, and keybot
 * has now sent the key itself). The agent, which asks keybot through its plugin, shares this.
 */
export function judgeKeybotKey(
  o: Pick<KeybotTrustOptions, 'server' | 'keybotFingerprint' | 'keybotPublicKey'>,
  key: PublicKeyHandle,
  remembered: KnownKeybot | undefined,
  fromKeybot: boolean,
): KeybotJudgement {
  if (o.keybotPublicKey !== undefined && o.keybotFingerprint === undefined) return { status: 'pinned', source: 'option-key', remember: false };
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
  return { status: 'pinned', source: decision.source, remember: !remembered || (fromKeybot && !remembered.publicKey) };
}

/** Remember `key` as keybot's for `server` (first seen now). Throws what the file does. */
export function rememberKeybot(known: KnownKeybots, server: string, key: PublicKeyHandle): Promise<void> {
  return known.set(server, { fingerprint: key.fingerprint, publicKey: key.armored, firstSeen: new Date().toISOString() });
}
