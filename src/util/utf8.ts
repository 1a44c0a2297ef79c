/**
 * UTF-8 byte lengths without encoding, for code that runs in Node and in the browser companion's
 * bundle alike (src/protocol's line limits, src/crypto's message splitting): Node's native
 * Buffer.byteLength where there is one, the same count in plain JavaScript where there is none.
 */

/** Node's Buffer, looked up per call (absent in browsers; a test removes it to run the fallback). */
const nodeBuffer = (): { byteLength(text: string, encoding: 'utf8'): number } | undefined =>
  (globalThis as { Buffer?: { byteLength(text: string, encoding: 'utf8'): number } }).Buffer;

/** Bytes of `text` in UTF-8 (a lone surrogate counts as U+FFFD, 3 bytes, as encoders write it). */
export function utf8Length(text: string): number {
  const B = nodeBuffer();
  if (B) return B.byteLength(text, 'utf8');
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
