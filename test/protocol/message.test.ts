import { expect } from 'chai';
import { parseLine, serializeBody, serializeMessage, MAX_LINE_BYTES } from '../../src/protocol/message.js';

function parsed(line: string) {
  const r = parseLine(line);
  if (!r.ok) throw new Error(`parse failed: ${r.reason}`);
  return r.message;
}

describe('src/protocol/message.ts', () => {
  it('parses source, command and a trailing parameter with spaces', () => {
    const m = parsed(':alice!a@h PRIVMSG #room :hello there');
    expect(m.source).to.equal('alice!a@h');
    expect(m.command).to.equal('PRIVMSG');
    expect(m.params).to.deep.equal(['#room', 'hello there']);
  });

  it('upper-cases the command and keeps an empty trailing parameter', () => {
    const m = parsed('topic #room :');
    expect(m.command).to.equal('TOPIC');
    expect(m.params).to.deep.equal(['#room', '']);
  });

  it('parses tags and unescapes their values', () => {
    const m = parsed('@+draft/x=a\\sb\\:c\\\\d;flag PRIVMSG bob :hi');
    expect(m.tags.get('+draft/x')).to.equal('a b;c\\d');
    expect(m.tags.get('flag')).to.equal('');
    expect(m.params).to.deep.equal(['bob', 'hi']);
  });

  it('tolerates repeated spaces between parameters', () => {
    expect(parsed('JOIN   #a   key').params).to.deep.equal(['#a', 'key']);
  });

  it('rejects a body over 512 bytes including CRLF', () => {
    const ok = 'PRIVMSG #r :' + 'x'.repeat(MAX_LINE_BYTES - 2 - 'PRIVMSG #r :'.length);
    expect(parseLine(ok).ok).to.equal(true);
    const r = parseLine(ok + 'x');
    expect(r).to.deep.equal({ ok: false, reason: 'too_long' });
  });

  it('counts bytes, not characters, for the 512-byte limit', () => {
    const r = parseLine('PRIVMSG #r :' + 'é'.repeat(250));
    expect(r.ok).to.equal(false);
  });

  it('allows long tags but rejects a tag section over 8191 bytes', () => {
    expect(parseLine(`@+a=${'x'.repeat(4000)} PING x`).ok).to.equal(true);
    expect(parseLine(`@+a=${'x'.repeat(8200)} PING x`)).to.deep.equal({ ok: false, reason: 'tags_too_long' });
  });

  it('rejects more than 15 parameters and garbage commands', () => {
    expect(parseLine('USER ' + Array(16).fill('a').join(' '))).to.deep.equal({ ok: false, reason: 'too_many_params' });
    expect(parseLine('PRIV!MSG x')).to.deep.equal({ ok: false, reason: 'bad_command' });
    expect(parseLine('   ')).to.deep.equal({ ok: false, reason: 'empty' });
  });

  it('serialises the last parameter with a colon when empty, spaced or colon-led', () => {
    expect(serializeBody('s', 'TOPIC', ['#r', ''])).to.equal(':s TOPIC #r :');
    expect(serializeBody(null, 'PRIVMSG', ['#r', 'a b'])).to.equal('PRIVMSG #r :a b');
    expect(serializeBody(null, 'PRIVMSG', ['#r', ':x'])).to.equal('PRIVMSG #r ::x');
    expect(serializeBody(null, 'PRIVMSG', ['#r', 'word'])).to.equal('PRIVMSG #r word');
  });

  it('round-trips tags with escaping', () => {
    const line = serializeMessage({ tags: { '+x': 'a b;c' }, source: 'n!u@h', command: 'PRIVMSG', params: ['#r', 'hi there'] });
    const m = parsed(line);
    expect(m.tags.get('+x')).to.equal('a b;c');
    expect(m.params).to.deep.equal(['#r', 'hi there']);
  });
});
