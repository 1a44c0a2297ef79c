/**
 * Password hashing for every account sealchat keeps: the daemon's (src/ircd/accounts.ts) and
 * keybot's own on a network without services (src/bot/network/accounts.ts). argon2id at the OWASP
 * Password Storage Cheat Sheet minimum (m=19 MiB, t=2, p=1); argon2.verify compares in constant time.
 */
import argon2 from 'argon2';

export const ARGON2_OPTIONS = Object.freeze({
  type: argon2.argon2id,
  memoryCost: 19_456, // KiB
  timeCost: 2,
  parallelism: 1,
});

/** An argon2id hash of `password` (a PHC string: algorithm, parameters, salt and hash). */
export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, ARGON2_OPTIONS);
}

/** Whether `password` matches an argon2 hash; false on a malformed hash, never a crash. */
export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await argon2.verify(hash, password);
  } catch {
    return false;
  }
}

/** Whether a hash was made with weaker parameters than today's (rehash it at the next login). */
export function needsRehash(hash: string): boolean {
  try {
    return argon2.needsRehash(hash, ARGON2_OPTIONS);
  } catch {
    return true;
  }
}
