/**
 * Edges of sanitizeText that the mutation run (issue 18) showed untested: where a `/me` may
 * stand, and misuse.
 */
import { expect } from 'chai';
import { sanitizeText } from '../../src/crypto/index.js';

describe('src/crypto/sanitize.ts: where a /me may stand', function () {
  it('keeps CTCP framing only around a whole-message ACTION: one after other text, or followed by more, loses its \\x01', function () {
    // A CTCP in the middle of a line must not reach the client as one.
    expect(sanitizeText('hi \x01ACTION waves\x01')).to.equal('hi ACTION waves');
    expect(sanitizeText('\x01ACTION waves\x01 and \x01VERSION\x01')).to.equal('ACTION waves and VERSION');
  });

  it('closes an ACTION whose final \\x01 is missing, as clients send it', function () {
    expect(sanitizeText('\x01ACTION waves')).to.equal('\x01ACTION waves\x01');
  });

  it('throws a TypeError on anything but a string', function () {
    expect(() => sanitizeText(5 as unknown as string)).to.throw(TypeError, /sanitizeText: expected a string/);
    expect(() => sanitizeText({ toString: () => 'x' } as unknown as string)).to.throw(TypeError, /sanitizeText: expected a string/);
  });
});
