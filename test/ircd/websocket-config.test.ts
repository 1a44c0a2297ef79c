/** src/ircd/config/parse.ts: a listener's `websocket`, `origins` and `page` keys. */
import { expect } from 'chai';
import { parseConfig } from '../../src/ircd/config/parse.js';

function listenerOf(entry: unknown) {
  return parseConfig({ listen: [entry] }, '/etc/sealchat').listen[0]!;
}

function errorOf(entry: unknown): string {
  try {
    parseConfig({ listen: [entry] }, '/etc/sealchat');
  } catch (err) {
    return (err as Error).message;
  }
  return 'no error';
}

describe('src/ircd/config/parse.ts: WebSocket listeners', () => {
  it('takes "websocket": true with the defaults: only its own origin, the built-in page', () => {
    expect(listenerOf({ host: '0.0.0.0', port: 8097, websocket: true }).websocket).to.deep.equal({ origins: [], page: true });
  });

  it('keeps a TCP listener a TCP listener', () => {
    expect(listenerOf({ host: '0.0.0.0', port: 6667 }).websocket).to.equal(undefined);
    expect(listenerOf({ host: '0.0.0.0', port: 6667, websocket: false }).websocket).to.equal(undefined);
  });

  it('reads origins (lower-cased) and a page folder relative to the config file', () => {
    const l = listenerOf({ host: 'h', port: 1, websocket: true, origins: ['https://Chat.Example.org', 'http://127.0.0.1:8080'], page: 'web' });
    expect(l.websocket).to.deep.equal({ origins: ['https://chat.example.org', 'http://127.0.0.1:8080'], page: '/etc/sealchat/web' });
    expect(listenerOf({ host: 'h', port: 1, websocket: true, origins: ['*'], page: false }).websocket).to.deep.equal({ origins: ['*'], page: false });
  });

  it('refuses an origin with a path, a bare host, or a non-boolean websocket, naming the key', () => {
    expect(errorOf({ host: 'h', port: 1, websocket: true, origins: ['https://chat.example.org/'] })).to.match(/^config: listen\[0\]\.origins\[0\] must be an origin like/);
    expect(errorOf({ host: 'h', port: 1, websocket: true, origins: ['chat.example.org'] })).to.match(/^config: listen\[0\]\.origins\[0\] must be an origin/);
    expect(errorOf({ host: 'h', port: 1, websocket: 'yes' })).to.equal('config: listen[0].websocket must be true or false (got "yes")');
    expect(errorOf({ host: 'h', port: 1, websocket: true, origins: 'https://a.b' })).to.equal('config: listen[0].origins must be an array (got "https://a.b")');
  });

  it('refuses origins or page on a listener that is not a WebSocket one', () => {
    expect(errorOf({ host: 'h', port: 1, origins: ['*'] })).to.equal(
      'config: listen[0].origins applies only to a WebSocket listener (add "websocket": true) (got ["*"])',
    );
    expect(errorOf({ host: 'h', port: 1, page: true })).to.match(/listen\[0\]\.page applies only to a WebSocket listener/);
  });
});
