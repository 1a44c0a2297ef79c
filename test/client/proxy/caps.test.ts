/**
 * The proxy's share of capability negotiation (src/client/proxy/caps.ts): it asks for what the
 * history catch-up needs when the client ends its own negotiation, swallows the answer to that
 * request only, and lets the client see only the tags its own capabilities allow.
 */
import { expect } from 'chai';
import { ProxyCaps } from '../../../src/client/proxy/caps.js';
import { parseLine, type IrcMessage } from '../../../src/protocol/message.js';

const line = (raw: string): IrcMessage => {
  const r = parseLine(raw);
  if (!r.ok) throw new Error(raw);
  return r.message;
};

describe('src/client/proxy/caps.ts: the capabilities the proxy adds for the history catch-up', () => {
  it('asks, at the client\'s CAP END, for what the client did not enable, and swallows only the answer to that', () => {
    const caps = new ProxyCaps();
    expect(caps.fromServer(line(':srv CAP * LS * :multi-prefix server-time batch'))).to.equal(true);
    expect(caps.fromServer(line(':srv CAP * LS :message-tags draft/chathistory sasl'))).to.equal(true);
    expect(caps.fromServer(line(':srv CAP * ACK :multi-prefix server-time'))).to.equal(true);
    expect(caps.beforeEnd()).to.deep.equal(['CAP REQ :draft/chathistory batch message-tags']);
    expect(caps.beforeEnd(), 'once').to.deep.equal([]);
    expect(caps.fromServer(line(':srv CAP bob ACK :draft/chathistory batch message-tags'))).to.equal(false);
    expect(caps.enabled().sort()).to.deep.equal(['batch', 'draft/chathistory', 'message-tags', 'multi-prefix', 'server-time']);
    expect(caps.clientHas('server-time')).to.equal(true);
    expect(caps.clientHas('batch')).to.equal(false);
  });

  it('asks nothing when the server lacks one of the four, or the client enabled them all', () => {
    const lacking = new ProxyCaps();
    lacking.fromServer(line(':srv CAP * LS :server-time batch message-tags'));
    expect(lacking.beforeEnd()).to.deep.equal([]);
    const all = new ProxyCaps();
    all.fromServer(line(':srv CAP * LS :server-time batch message-tags draft/chathistory'));
    all.fromServer(line(':srv CAP * ACK :server-time batch message-tags draft/chathistory'));
    expect(all.beforeEnd()).to.deep.equal([]);
    expect(all.filtering).to.equal(false);
  });

  it('takes off the tags the client did not ask for: the time stays for a server-time client, msgid and batch go', () => {
    const caps = new ProxyCaps();
    caps.fromServer(line(':srv CAP * LS :server-time batch message-tags draft/chathistory'));
    caps.fromServer(line(':srv CAP * ACK :server-time'));
    caps.fromServer(line(`:srv CAP bob ACK :${caps.beforeEnd()[0]!.slice('CAP REQ :'.length)}`));
    const tags = caps.tagsFor(line('@time=2026-12-07T10:00:00.000Z;msgid=abc;batch=b1 :alice!a@h PRIVMSG #sc-x :hi'));
    expect([...tags!]).to.deep.equal([['time', '2026-12-07T10:00:00.000Z']]);
    expect(caps.batchVisible()).to.equal(false);
    expect(caps.tagsFor(line(':alice!a@h PRIVMSG #sc-x :no tags'))).to.equal(undefined);
  });

  it('reads the ISUPPORT CHATHISTORY limit', () => {
    const caps = new ProxyCaps();
    caps.isupport(line(':srv 005 bob WHOX CHATHISTORY=1000 MSGREFTYPES=msgid,timestamp :are supported by this server'));
    expect(caps.historyLimit).to.equal('1000');
  });
});
