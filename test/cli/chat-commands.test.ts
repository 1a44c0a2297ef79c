import { expect } from 'chai';
import { CHAT_COMMANDS, chatHelp, parseChatInput } from '../../src/cli/chat-commands.js';
import { parseHostPort } from '../../src/cli/format.js';

describe('src/cli/chat-commands.ts', () => {
  it('reads plain text as text for the current room, and //text as text starting with /', () => {
    expect(parseChatInput('hello there')).to.deep.equal({ kind: 'text', text: 'hello there' });
    expect(parseChatInput('//shrug')).to.deep.equal({ kind: 'text', text: '/shrug' });
    expect(parseChatInput('   ')).to.deep.equal({ kind: 'empty' });
  });

  it('reads commands with their arguments and the raw rest of the line', () => {
    const r = parseChatInput('/msg #sc-abc  two  spaces kept');
    expect(r.kind).to.equal('command');
    if (r.kind !== 'command') return;
    expect(r.command.name).to.equal('msg');
    expect(r.args).to.deep.equal(['#sc-abc', 'two', 'spaces', 'kept']);
    expect(r.rest).to.equal('#sc-abc  two  spaces kept');
    const inv = parseChatInput('/INVITE bob carol');
    expect(inv.kind === 'command' && inv.command.name).to.equal('invite');
    const part = parseChatInput('/part');
    expect(part.kind === 'command' && part.command.name).to.equal('leave');
  });

  it('answers unknown commands and wrong argument counts with a message, not an exception', () => {
    expect(parseChatInput('/frobnicate')).to.deep.equal({ kind: 'error', message: 'unknown command /frobnicate; /help lists them' });
    expect(parseChatInput('/whois')).to.deep.equal({ kind: 'error', message: 'usage: /whois NICK' });
    expect(parseChatInput('/whois a b')).to.deep.equal({ kind: 'error', message: 'usage: /whois NICK' });
    expect(parseChatInput('/').kind).to.equal('error');
  });

  it('lists every command in /help, from the table', () => {
    const help = chatHelp().join('\n');
    for (const c of CHAT_COMMANDS) expect(help).to.include(`/${c.name}`);
    for (const name of ['invite', 'online', 'whois', 'status', 'rooms', 'join', 'leave', 'key', 'msg', 'help', 'quit']) {
      expect(CHAT_COMMANDS.some((c) => c.name === name), name).to.equal(true);
    }
    expect(chatHelp('part')).to.deep.equal(['usage: /leave [#room]', '  leave a room (the current one by default) (also /part)']);
  });
});

describe('src/cli/format.ts parseHostPort (src/protocol/address.ts with the option named)', () => {
  it('reads HOST:PORT, [v6]:PORT and a bare port with a default host', () => {
    expect(parseHostPort('irc.example.org:6697', '--server')).to.deep.equal({ host: 'irc.example.org', port: 6697 });
    expect(parseHostPort('[::1]:6667', '--server')).to.deep.equal({ host: '::1', port: 6667 });
    expect(parseHostPort('6680', '--listen', { defaultHost: '127.0.0.1' })).to.deep.equal({ host: '127.0.0.1', port: 6680 });
    expect(() => parseHostPort('6680', '--server')).to.throw(/--server: "6680" is not HOST:PORT/);
    expect(() => parseHostPort('host:99999', '--server')).to.throw(/--server: port 99999 .* out of range/);
    expect(() => parseHostPort('host:0', '--server')).to.throw(/--server: port 0 .* out of range \(1-65535\)/);
    expect(parseHostPort('127.0.0.1:0', '--listen', { allowZero: true }).port).to.equal(0);
  });
});
