/**
 * When the companion core asks keybot for its key again after keybot was away
 * (CompanionSession, core/keybot.ts): keybot joining one of our rooms means it is online, so a
 * key we could not get is asked for at once, not at the next retry 30 s later. (The daemon now
 * places us back in our rooms at login, often before keybot is back from the same restart.)
 */
import { expect } from 'chai';
import { CompanionSession, type CompanionAction } from '../../../src/client/index.js';
import { party, type Party } from '../fixtures.js';

const asksForKey = (actions: CompanionAction[]): boolean =>
  actions.some((a) => a.type === 'send' && a.target === 'keybot' && a.text === 'pubkey');

describe('src/client/core/session.ts: asking keybot for its key again', function () {
  this.timeout(20_000);
  let alice: Party;

  before(async () => {
    alice = await party('alice');
  });

  it("asks at once when keybot joins a room of ours after it was not online, and not on an ordinary line within 5 s", async () => {
    const t0 = 1_000_000;
    const s = new CompanionSession({ account: 'alice', server: 'test:1', privateKey: alice.priv, knownKeybotsFile: false, clock: () => t0 });
    expect(asksForKey(await s.start(t0))).to.equal(true);
    expect(s.keybotOffline(t0 + 10).taken).to.equal(true);
    // Someone else joining says nothing about keybot.
    expect(asksForKey(s.membership({ kind: 'join', room: '#sc-room', nick: 'bob' }).actions)).to.equal(false);
    // A line from keybot within 5 s of the failure is not enough (it might be a stale one)...
    expect(asksForKey(s.keybotHeard(false, t0 + 1000))).to.equal(false);
    // ...but keybot's own JOIN is: it is online now.
    expect(asksForKey(s.membership({ kind: 'join', room: '#sc-room', nick: 'keybot' }).actions)).to.equal(true);
  });
});
