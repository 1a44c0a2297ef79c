/**
 * OpenPGP fingerprints as people read and type them. keybot prints its own in the form below,
 * every companion shows member and keybot fingerprints the same way, and what a user pastes back
 * (with spaces, colons or `0x`) is normalised before any comparison.
 */

/** Upper case in groups of four, as keybot's `fingerprint` command and every companion print it. */
export function formatFingerprint(fp: string): string {
  return fp.toUpperCase().replace(/(.{4})(?=.)/g, '$1 ');
}

/** Lowercase hex without spaces, colons or a 0x prefix; undefined if that is not a fingerprint (v4: 40, v6: 64 hex digits). */
export function normalizeFingerprint(text: string): string | undefined {
  const hex = text.trim().replace(/^0x/i, '').replace(/[\s:]/g, '').toLowerCase();
  return /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/.test(hex) ? hex : undefined;
}
