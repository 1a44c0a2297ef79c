/**
 * src/crypto/bytes.ts gives the same answers with Node's Buffer and without it (as in the
 * browser companion's bundle): base64 both ways with its strictness, hex, and UTF-8 lengths.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import {
  bigIntToBytes,
  bytesEqual,
  bytesToBigInt,
  fromBase64,
  hexToBytes,
  leftPad,
  stripLeadingZeros,
  toBase64,
  toBase64Url,
  toHex,
} from '../../src/crypto/bytes.js';
import { utf8Length } from '../../src/util/utf8.js';

function withoutBuffer<T>(f: () => T): T {
  const saved = globalThis.Buffer;
  (globalThis as { Buffer?: unknown }).Buffer = undefined;
  try {
    return f();
  } finally {
    globalThis.Buffer = saved;
  }
}

describe('src/crypto/bytes.ts with and without Buffer', () => {
  it('encodes base64, base64url and hex the same way as Buffer does, for any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        const b = Buffer.from(bytes);
        expect(withoutBuffer(() => toBase64(bytes))).to.equal(b.toString('base64'));
        expect(withoutBuffer(() => toBase64Url(bytes))).to.equal(b.toString('base64url'));
        expect(withoutBuffer(() => toHex(bytes))).to.equal(b.toString('hex'));
        expect(toBase64(bytes)).to.equal(b.toString('base64'));
        const back = withoutBuffer(() => fromBase64(b.toString('base64')));
        expect(back && Buffer.from(back).equals(b)).to.equal(true);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses the same non-canonical base64 with and without Buffer', () => {
    for (const bad of ['QQ', 'QR==', 'QUI', 'QUJ=', 'Q===', 'QUJD\n', 'QU JD', '=QUJ', 'QUJDRA=']) {
      expect(fromBase64(bad), bad).to.equal(undefined);
      expect(withoutBuffer(() => fromBase64(bad)), bad).to.equal(undefined);
    }
    expect(Buffer.from(withoutBuffer(() => fromBase64('QUI='))!).toString()).to.equal('AB');
  });

  it('counts UTF-8 bytes without Buffer as Buffer.byteLength does, lone surrogates included (src/util/utf8.ts)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 }), (a, g) => {
        expect(withoutBuffer(() => utf8Length(a))).to.equal(Buffer.byteLength(a, 'utf8'));
        expect(withoutBuffer(() => utf8Length(g))).to.equal(Buffer.byteLength(g, 'utf8'));
      }),
      { numRuns: 300 },
    );
    expect(withoutBuffer(() => utf8Length('\ud800x'))).to.equal(Buffer.byteLength('\ud800x', 'utf8'));
  });

  it('turns big integers into minimal big-endian bytes and back, without Buffer', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 2n ** 4096n }), (v) => {
        const b = withoutBuffer(() => bigIntToBytes(v));
        expect(b[0]).to.not.equal(0);
        expect(withoutBuffer(() => bytesToBigInt(b))).to.equal(v);
      }),
      { numRuns: 200 },
    );
  });

  it('compares bytes by length and content: a prefix is not equal, whatever the bytes after it', () => {
    const b = (...x: number[]) => Uint8Array.from(x);
    expect(bytesEqual(b(1, 2), b(1, 2))).to.equal(true);
    expect(bytesEqual(b(), b())).to.equal(true);
    expect(bytesEqual(b(1), b(1, 0))).to.equal(false);
    expect(bytesEqual(b(1, 0), b(1))).to.equal(false);
    expect(bytesEqual(b(1, 2), b(1, 3))).to.equal(false);
    expect(bytesEqual(b(0x80, 2), b(0, 2))).to.equal(false);
  });

  it('pads big-endian integers on the left to a length, strips their leading zeros, and reads hex of either case', () => {
    const b = (...x: number[]) => Uint8Array.from(x);
    expect([...leftPad(b(1, 2), 4)]).to.deep.equal([0, 0, 1, 2]);
    const same = b(1, 2, 3);
    expect(leftPad(same, 3)).to.equal(same);
    expect(leftPad(same, 2)).to.equal(same);
    expect([...stripLeadingZeros(b(0, 0, 1, 0))]).to.deep.equal([1, 0]);
    expect([...stripLeadingZeros(b(0, 0))]).to.deep.equal([0]);
    expect([...stripLeadingZeros(b(7))]).to.deep.equal([7]);
    expect([...stripLeadingZeros(b())]).to.deep.equal([]);
    expect([...hexToBytes('00ffA0')]).to.deep.equal([0, 255, 160]);
    expect([...hexToBytes('')]).to.deep.equal([]);
  });
});
