import { expect } from 'chai';
import { casefold, isValidAccountName, isValidChannelName, isValidNick } from '../../src/protocol/names.js';

describe('src/protocol/names.ts', () => {
  it('folds ASCII only (CASEMAPPING=ascii)', () => {
    expect(casefold('AlIcE[]')).to.equal('alice[]');
    expect(casefold('ÉCOLE')).to.equal('École');
  });

  it('accepts account names that are valid nicks and refuses others', () => {
    expect(isValidAccountName('alice_2')).to.equal(true);
    expect(isValidAccountName('2alice')).to.equal(false);
    expect(isValidAccountName('al ice')).to.equal(false);
    expect(isValidAccountName('a'.repeat(31))).to.equal(false);
    expect(isValidNick('[guest]')).to.equal(true);
    expect(isValidNick('-x')).to.equal(false);
  });

  it('validates channel names', () => {
    expect(isValidChannelName('#sealchat-1')).to.equal(true);
    expect(isValidChannelName('#a,b')).to.equal(false);
    expect(isValidChannelName('room')).to.equal(false);
    expect(isValidChannelName('#')).to.equal(false);
  });
});
