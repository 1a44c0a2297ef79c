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

export interface CryptoRates {
  /** Messages per second, one thread (the page's). */
  encrypt: number;
  decrypt: number;
  messages: { encrypted: number; decrypted: number };
  userAgent: string;
}

/** Encrypt+sign for `ms`, then verify+decrypt what was made for `ms`; 120-byte messages (one IRC line). */
export async function measure(o: { privateArmored: string; publicArmored: string; passphrase: string; account: string; ms: number }): Promise<CryptoRates> {
  const unlocked = await unlockPrivateKey({ armored: o.privateArmored, passphrase: o.passphrase });
  if (!unlocked.key) throw new Error(`unlock: ${unlocked.status}`);
  const pub = await readPublicKey({ armored: o.publicArmored });
  if (!pub.key) throw new Error(`public key: ${pub.status}`);
  const senderKey = signingPublicKeyOf({ key: pub.key });
  const roomKey = generateRoomKey();
  const room = '#sc-bench';
  const text = 'x'.repeat(120);
  const payloads: string[] = [];
  let seq = 0;
  let t = performance.now();
  while (performance.now() - t < o.ms) {
    const r = encryptRoomMessage({ roomKey, room, epoch: 1, sender: o.account, seq: ++seq, plaintext: text, signer: unlocked.key });
    if (r.status !== MessageStatus.OK) throw new Error(`encrypt: ${r.status}`);
    payloads.push(r.payload);
  }
  const encrypt = seq / ((performance.now() - t) / 1000);
  let n = 0;
  t = performance.now();
  while (performance.now() - t < o.ms) {
    const r = decryptRoomMessage({ payload: payloads[n % payloads.length]!, roomKey, room, epoch: 1, sender: o.account, senderKey });
    if (r.status !== MessageStatus.OK || r.plaintext !== text) throw new Error(`decrypt: ${r.status}`);
    n++;
  }
  const decrypt = n / ((performance.now() - t) / 1000);
  return { encrypt, decrypt, messages: { encrypted: seq, decrypted: n }, userAgent: navigator.userAgent };
}
