/**
 * Byte-aware text helpers: IRC limits are in bytes (512 per line, RFC 1459 §2.3), JavaScript
 * strings in UTF-16 code units, so every cap on text that is relayed goes through here.
 */

/** Cut `text` to at most `maxBytes` of UTF-8 without splitting a code point. */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (maxBytes <= 0) return '';
  if (text.length <= maxBytes / 3) return text; // fast path: cannot exceed even at 3 bytes/unit
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= maxBytes) return text;
  let end = maxBytes;
  // Step back over continuation bytes (10xxxxxx) so the cut lands on a code point boundary.
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return buf.toString('utf8', 0, end);
}

/**
 * Match an IRC glob (`*` any run, `?` one character) against `text` in linear time.
 * A backtracking RegExp would let one WHO with many stars stall the event loop.
 */
export function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === text[t])) {
      p++;
      t++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = t;
    } else if (star !== -1) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/**
 * Cut the last parameter (a reason or topic) so that `:source COMMAND params…` fits the
 * 512-byte line with CRLF, and at most `cap` bytes. For free text that may be shortened
 * (PART/KICK/QUIT reasons, topics) — never for PRIVMSG, which is refused instead.
 */
export function fitLastParam(source: string, command: string, params: readonly string[], cap: number): string[] {
  const head = params.slice(0, -1);
  const last = params[params.length - 1] ?? '';
  const fixed = Buffer.byteLength(`:${source} ${command} ${head.join(' ')}${head.length ? ' ' : ''}:\r\n`);
  return [...head, truncateUtf8(last, Math.min(cap, 512 - fixed))];
}
