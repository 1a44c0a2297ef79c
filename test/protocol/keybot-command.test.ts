import { expect } from 'chai';
import { parseKeybotCommand } from '../../src/protocol/keybot-command.js';

describe('src/protocol/keybot-command.ts', function () {
  describe('parseKeybotCommand', function () {
    it('splits a command into a lowercased name and its arguments', function () {
      expect(parseKeybotCommand('INVITE bob  carol')).to.deep.equal({ kind: 'command', name: 'invite', args: ['bob', 'carol'] });
    });

    it('keeps the case of arguments', function () {
      expect(parseKeybotCommand('status Bob')).to.deep.equal({ kind: 'command', name: 'status', args: ['Bob'] });
    });

    it('treats blank and whitespace-only text as empty', function () {
      expect(parseKeybotCommand('')).to.deep.equal({ kind: 'empty' });
      expect(parseKeybotCommand('  \t ')).to.deep.equal({ kind: 'empty' });
    });

    it('drops IRC formatting and colour codes before splitting', function () {
      expect(parseKeybotCommand('\x02invite\x02 \x0304,01bob\x03')).to.deep.equal({ kind: 'command', name: 'invite', args: ['bob'] });
    });

    it('splits on tabs too', function () {
      expect(parseKeybotCommand('key\t#sc-x')).to.deep.equal({ kind: 'command', name: 'key', args: ['#sc-x'] });
    });
  });
});
