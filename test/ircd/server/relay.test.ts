import { expect } from 'chai';
import { Relay, TAG_ACCOUNT, TAG_SERVER_TIME, TAG_MESSAGE_TAGS } from '../../../src/ircd/server/relay.js';

describe('src/ircd/server/relay.ts', () => {
  it('serialises once per tag variant and reuses the same buffer', () => {
    const r = new Relay('a!a@h', 'PRIVMSG', ['#r', 'hi'], Date.UTC(2026, 0, 1), 'alice', new Map([['msgid', 'm1']]));
    const plain = r.lineFor(0);
    expect(plain.toString()).to.equal(':a!a@h PRIVMSG #r hi\r\n');
    expect(r.lineFor(0)).to.equal(plain);
    const all = r.lineFor(TAG_ACCOUNT | TAG_SERVER_TIME | TAG_MESSAGE_TAGS).toString();
    expect(all).to.equal('@account=alice;time=2026-01-01T00:00:00.000Z;msgid=m1 :a!a@h PRIVMSG #r hi\r\n');
  });
});
