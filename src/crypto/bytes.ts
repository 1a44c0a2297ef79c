/**
 * Small byte and text helpers shared inside src/crypto. Not part of the public API.
 *
 * They run in Node and in the browser companion's bundle: Node's Buffer where there is one (it
 * is several times faster), the same results in plain JavaScript where there is none
 * (test/crypto/browser-bundle.test.ts runs the bundle with Buffer removed).
 */

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Node's Buffer, looked up per call (absent in browsers; a test removes it to run the fallbacks). */
const nodeBuffer = (): typeof Buffer | undefined => (globalThis as { Buffer?: typeof Buffer }).Buffer;

function base64Plain(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += B64[v >> 18]! + B64[(v >> 12) & 63]! + B64[(v >> 6) & 63]! + B64[v & 63]!;
  }
  if (i < bytes.length) {
    const v = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8);
    out += B64[v >> 18]! + B64[(v >> 12) & 63]! + (i + 1 < bytes.length ? B64[(v >> 6) & 63]! : '=') + '=';
  }
  return out;
}

/** Standard base64 with padding (RFC 4648 §4). */
export function toBase64(bytes: Uint8Array): string {
  const B = nodeBuffer();
  return B ? B.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64') : base64Plain(bytes);
}

/**
 * Strict base64 decoding: only the canonical encoding of some byte string is accepted (Node's own
 * decoder silently skips junk, which would let two different wire strings mean the same bytes).
 */
export function fromBase64(text: string): Uint8Array | undefined {
  if (!BASE64_RE.test(text)) return undefined;
  const B = nodeBuffer();
  let bytes: Uint8Array;
  if (B) {
    const b = B.from(text, 'base64');
    bytes = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } else {
    const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
    bytes = new Uint8Array((text.length / 4) * 3 - pad);
    for (let i = 0, o = 0; i < text.length; i += 4) {
      const v = (B64.indexOf(text[i]!) << 18) | (B64.indexOf(text[i + 1]!) << 12) | ((B64.indexOf(text[i + 2]!) & 63) << 6) | (B64.indexOf(text[i + 3]!) & 63);
      for (const b of [v >> 16, (v >> 8) & 255, v & 255]) if (o < bytes.length) bytes[o++] = b;
    }
  }
  // Canonical: unused bits of the last character are zero, so re-encoding gives the same text.
  if (toBase64(bytes) !== text) return undefined;
  return bytes;
}

/** base64url without padding (RFC 4648 §5), as JWK wants it. */
export function toBase64Url(bytes: Uint8Array): string {
  return toBase64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += (b < 16 ? '0' : '') + b.toString(16);
  return out;
}

/** Bytes from lowercase or uppercase hex of even length (no checks: callers make it). */
export function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}


export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Left-pad a big-endian integer (an OpenPGP MPI may have its leading zero bytes stripped). */
export function leftPad(bytes: Uint8Array, length: number): Uint8Array {
  if (bytes.length >= length) return bytes;
  const out = new Uint8Array(length);
  out.set(bytes, length - bytes.length);
  return out;
}

/** Strip leading zero bytes (JWK integers are minimal big-endian, RFC 7518 §6.3). */
export function stripLeadingZeros(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  return bytes.subarray(i);
}

export function bytesToBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt('0x' + toHex(bytes));
}

export function bigIntToBytes(value: bigint): Uint8Array {
  let hex = value.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  return hexToBytes(hex);
}

/**
 * ASCII casefolding (A-Z → a-z only): the rule behind the ircd's CASEMAPPING=ascii, repeated here
 * so src/crypto depends on nothing outside itself. Room and account names are folded with it
 * before they are bound into AAD and signatures, so "#Room" and "#room" are the same room.
 */
export function casefold(name: string): string {
  return name.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

export const utf8 = {
  encode: (text: string): Uint8Array => new TextEncoder().encode(text),
  decode: (bytes: Uint8Array): string => new TextDecoder('utf-8', { fatal: false }).decode(bytes),
};
