import { expect } from 'chai';
import { fitLastParam, globMatch, truncateUtf8 } from '../../../src/ircd/protocol/text.js';

describe('src/ircd/protocol/text.ts', () => {
  it('truncates UTF-8 by bytes without splitting a code point', () => {
    expect(truncateUtf8('héllo', 2)).to.equal('h');
    expect(truncateUtf8('héllo', 3)).to.equal('hé');
    expect(truncateUtf8('😀😀', 5)).to.equal('😀');
    expect(truncateUtf8('abc', 10)).to.equal('abc');
    expect(truncateUtf8('abc', 0)).to.equal('');
  });

  it('matches IRC globs', () => {
    expect(globMatch('a*', 'alice')).to.equal(true);
    expect(globMatch('*c?', 'alice')).to.equal(true);
    expect(globMatch('b*', 'alice')).to.equal(false);
    expect(globMatch('*', '')).to.equal(true);
    expect(globMatch('a?', 'a')).to.equal(false);
  });

  it('matches a pathological glob in linear time (no backtracking blow-up)', () => {
    const pattern = '*'.repeat(200) + '!';
    // With a backtracking RegExp this takes hours; it must simply be false.
    expect(globMatch(pattern, 'a'.repeat(30))).to.equal(false);
    expect(globMatch('*a*a*a*a*a*a*a*a*b', 'a'.repeat(400))).to.equal(false);
  });

  it('fits a reason so the relayed line stays within 512 bytes', () => {
    const src = 'nick!user@' + 'h'.repeat(60);
    const params = fitLastParam(src, 'PART', ['#room', 'é'.repeat(300)], 300);
    const line = `:${src} PART ${params[0]} :${params[1]}\r\n`;
    expect(Buffer.byteLength(line)).to.be.at.most(512);
    expect(Buffer.byteLength(params[1]!)).to.be.at.most(300);
  });
});
