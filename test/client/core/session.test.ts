/**
 * The target rule every companion applies before any key decision (CompanionSession.targetRefusal,
 * issue 12): lines whose target is malformed, a list naming a room, or @#room/+#room of a room are
 * refused, never passed on as plaintext. One table, the agent's answer included.
 */
import { expect } from 'chai';
import { CompanionSession } from '../../../src/client/index.js';
import { party, type Party } from '../fixtures.js';

describe('src/client/core/session.ts: which targets are refused before any key is looked at', function () {
  this.timeout(20_000);
  let alice: Party;
  let keybot: Party;

  before(async () => {
    [alice, keybot] = await Promise.all(['alice', 'keybot'].map((n) => party(n)));
  });

  const table: Array<[string, RegExp | undefined]> = [
    ['#sc-room', undefined],
    ['#plain', undefined],
    ['bob', undefined],
    ['#plain,bob', undefined],
    ['', /is not a target \(a malformed line\)/],
    [' #sc-room', /is not a target/],
    ['#plain,#sc-room', /#sc-room: send to one encrypted room at a time/],
    ['#sc-room,bob', /send to one encrypted room at a time/],
    ['@#sc-room', /@#sc-room: a message to part of an encrypted room could not be encrypted for its members/],
    ['+#SC-ROOM', /a message to part of an encrypted room/],
    ['#plain,', /is not a list of targets/],
  ];

  it('refuses malformed targets, lists naming a room and STATUSMSG targets of a room; lets the rest through to the key rules', () => {
    const s = new CompanionSession({ account: 'alice', server: 'test:1', privateKey: alice.priv, keybotPublicKey: keybot.publicArmored, knownKeybotsFile: false });
    for (const [target, refused] of table) {
      const why = s.targetRefusal(target);
      if (refused) expect(why, JSON.stringify(target)).to.match(refused);
      else expect(why, JSON.stringify(target)).to.equal(undefined);
      const sent = s.send({ target, text: 'secret', hold: false });
      if (refused) expect(sent, JSON.stringify(target)).to.deep.include({ status: 'refused', code: 'no-key' });
      expect(JSON.stringify(sent), 'never plaintext').not.to.match(/"lines":\["secret"\]/);
    }
  });
});
