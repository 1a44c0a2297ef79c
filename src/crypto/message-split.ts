/**
 * Splitting text into chunks that each encrypt to one room message (maxPlaintextBytes, message.ts).
 */
import { utf8Length } from '../util/utf8.js';
import { maxPlaintextBytes } from './message.js';
import type { SigAlg } from './signing.js';

/** Split text into message-sized pieces (see {@link splitPlaintext}). */
export interface SplitOptions {
  text: string;
  /** Algorithm of the sender's signing key (from signingPublicKeyOf). */
  sigAlg: SigAlg;
}

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/**
 * Split UTF-8 text into chunks that each encrypt to one message (for Ed25519 senders: one line
 * of at most MAX_LINE_PAYLOAD bytes). Never splits inside a code point, and not inside a grapheme
 * cluster unless a single cluster is itself too long; prefers to break after a space in the last
 * third of a chunk. Empty text gives no chunks. Callers split on newlines first.
 */
export function splitPlaintext(options: SplitOptions): string[] {
  if (!options || typeof options !== 'object') throw new TypeError('splitPlaintext: expected one options object');
  if (typeof options.text !== 'string') throw new TypeError('splitPlaintext: options.text must be a string');
  const max = maxPlaintextBytes(options.sigAlg);
  const chunks: string[] = [];
  let current: string[] = [];
  let sizes: number[] = [];
  let currentBytes = 0;
  let lastSpace = -1; // index into `current` after which we may break
  let bytesAtSpace = 0;

  const push = (segment: string, size: number): void => {
    current.push(segment);
    sizes.push(size);
    currentBytes += size;
  };
  const flush = (upTo: number): void => {
    chunks.push(current.slice(0, upTo).join(''));
    current = current.slice(upTo);
    sizes = sizes.slice(upTo);
    currentBytes = sizes.reduce((n, b) => n + b, 0);
    lastSpace = -1;
  };

  // Pure ASCII needs no segmenter (every character is its own cluster, bar CR LF): ~10x faster.
  const segments = /^[\x00-\x7f]*$/.test(options.text)
    ? options.text
    : Array.from(graphemes.segment(options.text), (g) => g.segment);
  for (const segment of segments) {
    const size = utf8Length(segment);
    if (size > max) {
      // One enormous cluster (e.g. stacked combining marks): fall back to code points.
      if (current.length) flush(current.length);
      for (const cp of segment) {
        const cpSize = utf8Length(cp);
        if (currentBytes + cpSize > max) flush(current.length);
        push(cp, cpSize);
      }
      continue;
    }
    if (currentBytes + size > max && lastSpace >= 0 && bytesAtSpace >= (max * 2) / 3) flush(lastSpace + 1);
    if (currentBytes + size > max && current.length) flush(current.length);
    push(segment, size);
    if (size === 1 ? segment === ' ' || segment === '\t' : /^\s+$/.test(segment)) {
      lastSpace = current.length - 1;
      bytesAtSpace = currentBytes;
    }
  }
  if (current.length) chunks.push(current.join(''));
  return chunks;
}
