import { expect } from 'chai';
import { sanitizeText } from '../../src/crypto/index.js';

describe('src/crypto/sanitize.ts', function () {
  it('removes CR, LF and NUL', function () {
    expect(sanitizeText('a\rb\nc\0d\r\n')).to.equal('abcd');
  });

  it('keeps the IRC formatting codes', function () {
    const formatted = '\x02bold\x02 \x0304red\x03 \x1ditalic\x1d \x1funder\x1f \x16rev\x16 \x1estrike\x1e\x0f';
    expect(sanitizeText(formatted)).to.equal(formatted);
  });

  it('removes other C0 controls, DEL and C1 controls; a tab becomes a space', function () {
    expect(sanitizeText('a\x07b\x1bc\x7fd\u0085e\tf')).to.equal('abcde f');
  });

  it('removes CTCP framing but keeps a /me action', function () {
    expect(sanitizeText('\x01DCC SEND x 1 2 3\x01')).to.equal('DCC SEND x 1 2 3');
    expect(sanitizeText('\x01ACTION waves\x01')).to.equal('\x01ACTION waves\x01');
    expect(sanitizeText('\x01ACTION waves\r\n\x01')).to.equal('\x01ACTION waves\x01');
  });

  it('leaves ordinary text alone', function () {
    const text = 'héllo 漢字 👩‍👩‍👧 <b>&amp;';
    expect(sanitizeText(text)).to.equal(text);
  });
});
