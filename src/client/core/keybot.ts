/**
 * keybot's key, for every companion: reading it out of keybot's NOTICE replies to `pubkey`
 * (ArmorCollector), and settling which key is trusted (the rules are known-keybots.ts's): a key
 * or fingerprint the user configured wins, else the key remembered for this server (the
 * known-keybots file, or this process's CompanionMemory when nothing is written to disk), else
 * the key keybot offers now (trust on first use, remembered). A key that differs from the
 * configured or remembered one is refused, never adopted.
 *
 * IRC lines cannot hold newlines, so keybot sends the armored key one armor line per NOTICE.
 * Clients drop empty lines (irc-framework's say() does), so the blank line that ends the armor
 * headers may be missing: the armor is rebuilt from the BEGIN line, any `Key: value` headers, the
 * base64 body, the optional `=XXXX` checksum and the END line. Whatever keybot sends is only a
 * candidate: it is pinned by fingerprint, never because keybot said so.
 */
import { readPublicKey, type PublicKeyHandle } from '../../crypto/index.js';
import { normalizeFingerprint } from '../../protocol/fingerprint.js';
import { KnownKeybots, decideKeybotTrust, type KnownKeybot, type TrustSource } from './known-keybots.js';
import type { CompanionMemory } from './memory.js';

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
  /** What this process remembers for (account, server): keybot's pin when the file keeps none. */
  memory?: CompanionMemory;
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
    remembered = (await known?.get(o.server)) ?? rememberedInMemory(o.memory);
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
  o.memory?.pinKeybot(key.fingerprint);
  return { status: 'pinned', key, source: judged.source };
}

/**
 * keybot's pin as this process remembers it (memory.ts), standing in for a known-keybots entry
 * when none is written (`knownKeybotsFile: false`): a later connection must meet the same key.
 */
export function rememberedInMemory(memory: CompanionMemory | undefined): KnownKeybot | undefined {
  const fingerprint = memory?.keybotFingerprint;
  return fingerprint === undefined ? undefined : { fingerprint, firstSeen: '' };
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

const BEGIN = '-----BEGIN PGP PUBLIC KEY BLOCK-----';
const END = '-----END PGP PUBLIC KEY BLOCK-----';
const HEADER_RE = /^[A-Za-z][A-Za-z0-9-]*: /;
const BODY_RE = /^[A-Za-z0-9+/=]+$/;
/** Public keys are a few KiB (RSA-4096 with a few signatures ~ 4 K characters); refuse floods. */
const MAX_LINES = 400;

export type ArmorStep =
  | { status: 'more' }
  | { status: 'done'; armored: string }
  /** The line is not part of an armored key (keybot said something else). */
  | { status: 'not-armor'; reason: string };

/** Collects the lines of one armored public key. */
export class ArmorCollector {
  private lines: string[] = [];
  private started = false;

  push(rawLine: string): ArmorStep {
    const line = rawLine.trim();
    if (!this.started) {
      if (line === '') return { status: 'more' };
      if (line !== BEGIN) return { status: 'not-armor', reason: `expected "${BEGIN}", got "${line.slice(0, 80)}"` };
      this.started = true;
      return { status: 'more' };
    }
    if (line === END) return { status: 'done', armored: this.rebuild() };
    if (line === '') return { status: 'more' };
    if (this.lines.length >= MAX_LINES) return { status: 'not-armor', reason: 'the key is longer than any public key should be' };
    if (!HEADER_RE.test(line) && !BODY_RE.test(line)) return { status: 'not-armor', reason: 'a line of the key is not armor' };
    this.lines.push(line);
    return { status: 'more' };
  }

  private rebuild(): string {
    const headers = this.lines.filter((l) => HEADER_RE.test(l));
    const body = this.lines.filter((l) => !HEADER_RE.test(l));
    return [BEGIN, ...headers, '', ...body, END, ''].join('\n');
  }
}
