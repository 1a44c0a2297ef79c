/**
 * Runs in Chromium (bench/web.ts bundles it with src/web/build.ts's buildBrowserModule, the page's
 * own twins and options): room-message throughput through the functions the web companion's core
 * calls (src/client/core/room-messages.ts: encryptRoomMessage, decryptRoomMessage), with a real
 * member key (an OpenPGP Ed25519 key unlocked with its passphrase, as the page unlocks it) and a
 * room key made by generateRoomKey, as keybot makes one. Nothing of this file is in the page.
 */
/// <reference lib="dom" />
import {
  MessageStatus, decryptRoomMessage, encryptRoomMessage, generateRoomKey, readPublicKey, signingPublicKeyOf, unlockPrivateKey,
} from '../src/crypto/index.js';

export interface Rate {
  /** Messages per second, one thread (the page's). */
  perSecond: number;
  messages: number;
  userAgent: string;
}

let held: { key: Awaited<ReturnType<typeof unlockPrivateKey>>['key']; senderKey: ReturnType<typeof signingPublicKeyOf>; roomKey: Uint8Array; payloads: string[] } | undefined;
const ROOM = '#sc-bench';
const TEXT = 'x'.repeat(120);

/** Unlock the member's key (as the page does) and make a room key (as keybot does). */
export async function prepare(o: { privateArmored: string; publicArmored: string; passphrase: string }): Promise<void> {
  const unlocked = await unlockPrivateKey({ armored: o.privateArmored, passphrase: o.passphrase });
  if (!unlocked.key) throw new Error(`unlock: ${unlocked.status}`);
  const pub = await readPublicKey({ armored: o.publicArmored });
  if (!pub.key) throw new Error(`public key: ${pub.status}`);
  held = { key: unlocked.key, senderKey: signingPublicKeyOf({ key: pub.key }), roomKey: generateRoomKey(), payloads: [] };
}

/** Encrypt+sign 120-byte messages (one IRC line each) for `ms`. */
export function encryptFor(o: { account: string; ms: number }): Rate {
  const h = held!;
  let seq = 0;
  const t = performance.now();
  while (performance.now() - t < o.ms) {
    const r = encryptRoomMessage({ roomKey: h.roomKey, room: ROOM, epoch: 1, sender: o.account, seq: ++seq, plaintext: TEXT, signer: h.key! });
    if (r.status !== MessageStatus.OK) throw new Error(`encrypt: ${r.status}`);
    h.payloads.push(r.payload);
  }
  return { perSecond: seq / ((performance.now() - t) / 1000), messages: seq, userAgent: navigator.userAgent };
}

/** Verify+decrypt what encryptFor made, round and round, for `ms`. */
export function decryptFor(o: { account: string; ms: number }): Rate {
  const h = held!;
  let n = 0;
  const t = performance.now();
  while (performance.now() - t < o.ms) {
    const r = decryptRoomMessage({ payload: h.payloads[n % h.payloads.length]!, roomKey: h.roomKey, room: ROOM, epoch: 1, sender: o.account, senderKey: h.senderKey });
    if (r.status !== MessageStatus.OK || r.plaintext !== TEXT) throw new Error(`decrypt: ${r.status}`);
    n++;
  }
  return { perSecond: n / ((performance.now() - t) / 1000), messages: n, userAgent: navigator.userAgent };
}
