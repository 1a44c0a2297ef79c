/**
 * A gap in one sender's sequence numbers is shown to the reader (issue 12): the server can drop a
 * line (or one chunk of a long text, a "not", say) but cannot hide that it did.
 */
import { expect } from 'chai';
import { RoomCryptoEngine, missingMessagesText, type IncomingResult } from '../../../src/client/index.js';
import { generateRoomKey } from '../../../src/crypto/index.js';
import { envelopeLines, memberOf, party, type Party } from '../fixtures.js';

const ROOM = '#sc-gaps';

describe('src/client/core/room-messages.ts: messages the server did not deliver', function () {
  this.timeout(30_000);
  let alice: Party, bob: Party, keybot: Party;

  before(async () => {
    [alice, bob, keybot] = await Promise.all(['alice', 'bob', 'keybot'].map((n) => party(n)));
  });

  async function keyed(p: Party, key: Uint8Array, now: number): Promise<RoomCryptoEngine> {
    const e = new RoomCryptoEngine({ account: p.name, privateKey: p.priv, keybotKey: keybot.pub });
    for (const text of await envelopeLines({ to: p, signer: keybot, room: ROOM, epoch: 7, key, members: [memberOf(alice), memberOf(bob)], issuedAt: now })) {
      await e.handleIncoming({ from: 'keybot', target: p.name, command: 'NOTICE', text, now });
    }
    return e;
  }

  it("says how many of a sender's messages are missing before the next one that arrives, and nothing when none are", async () => {
    const now = Date.now();
    const key = generateRoomKey();
    const a = await keyed(alice, key, now);
    const b = await keyed(bob, key, now);
    const sent: string[][] = [];
    for (const text of ['one', 'two', 'three', 'four', 'five']) {
      const r = a.encryptOutgoing({ room: ROOM, text, now });
      if (r.status !== 'ok') throw new Error(r.reason);
      sent.push(r.lines);
    }
    const deliver = async (i: number): Promise<IncomingResult> => b.handleIncoming({ from: 'alice', target: ROOM, command: 'PRIVMSG', text: sent[i]![0]!, now });
    const first = await deliver(0);
    expect(first).to.include({ kind: 'message', text: 'one' });
    expect(first).not.to.have.property('missingBefore');
    // The server drops "two" and "three".
    const fourth = await deliver(3);
    expect(fourth).to.include({ kind: 'message', text: 'four', missingBefore: 2 });
    const fifth = await deliver(4);
    expect(fifth).to.include({ kind: 'message', text: 'five' });
    expect(fifth).not.to.have.property('missingBefore');
    expect(missingMessagesText(2, 'alice', ROOM)).to.equal(`2 messages from alice in ${ROOM} are missing: the server did not deliver them`);
  });
});
