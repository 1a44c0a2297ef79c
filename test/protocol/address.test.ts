import { expect } from 'chai';
import { isLoopback, parseHostPort } from '../../src/protocol/address.js';

describe('src/protocol/address.ts', () => {
  it('parses HOST:PORT with bracketed IPv6', () => {
    expect(parseHostPort('127.0.0.1:6667')).to.deep.equal({ host: '127.0.0.1', port: 6667 });
    expect(parseHostPort('[::]:6697')).to.deep.equal({ host: '::', port: 6697 });
    expect(parseHostPort('irc.example.org:0', { allowZero: true })).to.deep.equal({ host: 'irc.example.org', port: 0 });
    for (const bad of ['::1:6667', '[::1]', 'host:', 'host:99999', '[nothex]:1', ' h:1', 'irc.example.org:0']) {
      expect(() => parseHostPort(bad), bad).to.throw();
    }
  });

  it('reads a bare port only when a default host is given', () => {
    expect(parseHostPort('6680', { defaultHost: '127.0.0.1' })).to.deep.equal({ host: '127.0.0.1', port: 6680 });
    expect(() => parseHostPort('6680')).to.throw(/"6680" is not HOST:PORT/);
  });

  it('tells loopback addresses from others', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) expect(isLoopback(h), h).to.equal(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', 'irc.example.org']) expect(isLoopback(h), h).to.equal(false);
  });
});
