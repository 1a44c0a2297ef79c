/**
 * The daemon as the adversary: it is keybot's only source of members' public keys (the control
 * socket's user.get, read fresh at every rekey, src/bot/keybook.ts), so a compromised daemon, or
 * whoever administers it (`sealchatd user setkey bob --key theirs.asc`), can swap a member's key
 * for its own. docs/PROTOCOL.md's trust model says the ircd alone cannot read a room; this test
 * checks that claim against a key swap.
 *
 * It failed before the fix (the attack worked); it now checks both layers of the defence:
 * keybot's per-room pins and the companions' member pins.
 */
import { expect } from 'chai';
import { createDecipheriv } from 'node:crypto';
import type { SealClient } from '../../src/client/client.js';
import { EnvelopeStatus, PartStatus, PartsReassembler, openEnvelope, openJoinEnvelope, type EnvelopePayload } from '../../src/crypto/index.js';
import { casefold } from '../../src/protocol/names.js';
import { insiderHas, openRoom, record, sameEpoch, startSecWorld, until, type Insider, type SecWorld } from './world.js';

/** AES-GCM on a one-line Ed25519 room message, signature ignored (the attacker only wants to read). */
function gcmOpen(key: Uint8Array, room: string, sender: string, payload: string): string | undefined {
  const rec = Buffer.from(payload.slice(5), 'base64');
  const r = Buffer.from(casefold(room));
  const s = Buffer.from(casefold(sender));
  const sealed = rec.subarray(22, rec.length - 64);
  try {
    const d = createDecipheriv('aes-256-gcm', key, rec.subarray(10, 22), { authTagLength: 16 });
    d.setAAD(Buffer.concat([Buffer.from('SC1M'), rec.subarray(0, 10), Buffer.of(r.length), r, Buffer.of(s.length), s]));
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    return Buffer.concat([d.update(sealed.subarray(0, sealed.length - 16)), d.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

describe('security: a daemon that swaps a member\'s registered key', function () {
  this.timeout(30_000);
  let w: SecWorld;
  let wire: Insider;
  let alice: SealClient, bob: SealClient, carol: SealClient;
  /** What the daemon sees of carol's traffic: alice's ciphertext after bob is gone. */
  let carolWire: Insider;

  before(async function () {
    w = await startSecWorld(['alice', 'bob', 'carol', 'mallory']);
    // What the daemon sees of bob's traffic (it delivers it): a second session of bob's account.
    wire = await w.insider('bob');
    [alice, bob] = await Promise.all([w.member('alice'), w.member('bob')]);
    carol = await w.member('carol');
    carolWire = await w.insider('carol');
  });
  after(async () => w?.stop());

  // FOUND (fixed): the daemon (or its administrator) could read an encrypted room and post in a
  // member's name, contrary to docs/PROTOCOL.md "Trust model" ("the ircd alone cannot"). keybot
  // took each member's public key from the daemon's directory at every rekey (src/bot/keybook.ts
  // KeyBook.lookup, no pinning; src/bot/service.ts rekey() and resendKey() even rekeyed on
  // purpose when the key changed), and companions accepted whatever fingerprint and signing key
  // an envelope listed for another member (src/client/engine.ts openEnvelopeData installed
  // `p.members` as is). So `accounts.setKey('bob', attackerKey)` (sealchatd user setkey, or a lie
  // in user.get) plus any rekey made keybot seal bob's copy of the room key to the attacker's key
  // and list the attacker's signing key as bob's: the daemon, which delivers that envelope,
  // opened it, read the room, and signed messages that everyone's companion showed as verified
  // from bob. Only bob noticed (his companion reported `not-for-me`).
  // The fix, two layers: keybot pins, per room and for the room's lifetime (and across a lost
  // session), the fingerprint each member had when placed, and removes a member whose registered
  // key changed ("key changed") instead of keying the new key; only a member's invite re-pins.
  // Companions pin every member account's fingerprint on first sight and refuse an envelope that
  // lists a known account with another one (`member-key-changed`), refusing to send into that
  // room until the user accepts the new fingerprint.
  it('cannot read the room or speak for bob after replacing bob\'s key in the directory', async function () {
    const room = await openRoom(alice, ['bob']);
    const e1 = await sameEpoch(room, [alice, bob], ['alice', 'bob']);
    await insiderHas(wire, room, e1);

    // The swap: bob's registered key becomes mallory's.
    const mallory = w.users.mallory!.party;
    await w.t.daemon.accounts.setKey('bob', mallory.publicArmored);
    // Any rekey will do; a member inviting someone is the everyday one.
    const bobRejects = record(bob, 'envelope-rejected');
    const alicePart = record(alice, 'part');
    const aliceNotices = record(alice, 'bot-notice');
    const bobNotices = record(bob, 'bot-notice');
    expect(await alice.inviteTo(room, ['carol'])).to.include(`added carol to ${room}`);
    // keybot keys alice and carol, and removes bob with "key changed" instead of keying mallory's key.
    const e2 = await sameEpoch(room, [alice, carol], ['alice', 'carol'], e1);
    await until(() => alicePart.find((p) => p.nick === 'bob' && /key changed/.test(p.reason)), "bob's removal (key changed)");
    await until(() => aliceNotices.find((n) => /bob removed: their registered key changed/.test(n.text)), 'the room told why');
    await until(() => bobNotices.find((n) => /key registered for your account changed/.test(n.text)), 'bob told why');

    // No envelope of a later epoch was sealed for "bob": nothing for the daemon to open.
    await wire.sync();
    const stolen: EnvelopePayload[] = [];
    for (const env of wire.envelopes) {
      const parts = new PartsReassembler();
      let data: Uint8Array | undefined;
      for (const l of env.lines) {
        const r = parts.accept({ sender: 'keybot', line: l, now: Date.now() });
        if (r.status === PartStatus.COMPLETE) data = r.data;
      }
      if (!data) continue;
      // Either envelope version: a join envelope (version 3) or a version-2 one.
      const j = await openJoinEnvelope({ data, decryptionKey: mallory.priv, keybotKey: w.keybotPub, expectedAccount: 'bob', now: Date.now() });
      if (j.payload) stolen.push({ room: j.payload.room, epoch: j.payload.epoch, key: j.payload.key, members: j.payload.roster, issuedAt: j.payload.issuedAt });
      const o = await openEnvelope({ data, decryptionKey: mallory.priv, signerKey: w.keybotPub, expectedAccount: 'bob', now: Date.now() });
      if (o.payload) stolen.push(o.payload);
    }
    expect(wire.envelopes.every((e) => e.status === EnvelopeStatus.OK)).to.equal(true);

    // alice speaks under the new epoch (the daemon sees the line: here through carol's wire)...
    const from = carolWire.lines.length;
    await alice.send(room, 'only carol may read this');
    const line = await carolWire.waitFor((l) => l.nick === 'alice' && l.command === 'PRIVMSG', "alice's line", from);
    const read = stolen.map((k) => gcmOpen(k.key, room, 'alice', line.params[1]!)).filter((t) => t !== undefined);
    // ...and "bob" (the daemon, with mallory's key) speaks to her with whatever it has.
    // bob's session is no longer in the room, but the daemon delivers whatever it likes under bob's
    // nick: its forgeries go straight into alice's engine, as the daemon would deliver them.
    const shown: string[] = [];
    for (const k of stolen) {
      const r = await alice.crypto!.handleIncoming({ from: 'bob', target: room, command: 'PRIVMSG', text: wire.seal(room, 'I, bob, approve', { key: k, seq: 99, signer: mallory.priv })[0]! });
      if (r.kind === 'message') shown.push(r.text);
    }

    console.log(`      [figure] epoch ${e2}: keys the daemon opened: ${stolen.length}; text it read: ${JSON.stringify(read)}; ` +
      `alice shown from bob: ${JSON.stringify(shown)}; bob's companion: ${JSON.stringify(bobRejects.map((r) => r.code))}`);
    expect(stolen, 'room keys the daemon obtained').to.deep.equal([]);
    expect(read).to.deep.equal([]);
    expect(shown).to.deep.equal([]);
  });

  it('companions refuse a new room that lists bob with the swapped key (a member pin), and send nothing into it', async function () {
    // keybot pins per room: a fresh room pins whatever the directory says now (mallory's key
    // for bob, after the swap above). alice's companion saw bob's real key in the first room.
    const mallory = w.users.mallory!.party;
    const changed = record(alice, 'member-key-changed');
    const shown = record(alice, 'message');
    const warned = record(alice, 'plaintext-warning');
    const room2 = await openRoom(alice, ['bob']);
    const ev = await until(() => changed.find((c) => c.room.toLowerCase() === room2.toLowerCase()), "alice's member-key-changed event");
    expect(ev).to.include({ account: 'bob', pinned: w.users.bob!.party.pub.fingerprint.toLowerCase(), offered: mallory.pub.fingerprint.toLowerCase() });
    expect(alice.crypto!.roomInfo(room2)).to.deep.include({ hasKey: false });
    let refused: Error | undefined;
    await alice.send(room2, 'secret', { hold: false }).catch((err: Error) => (refused = err));
    expect(refused?.message).to.match(/bob's key changed/);
    // The daemon holds room2's key (sealed to mallory's key for "bob") and speaks as bob: alice shows nothing.
    await until(() => wire.envelopes.some((e) => e.status === EnvelopeStatus.NOT_FOR_ME) || undefined, "bob's envelope of the new room");
    let forged = 0;
    for (const env of wire.envelopes.filter((e) => e.status === EnvelopeStatus.NOT_FOR_ME)) {
      const parts = new PartsReassembler();
      let data: Uint8Array | undefined;
      for (const l of env.lines) {
        const r = parts.accept({ sender: 'keybot', line: l, now: Date.now() });
        if (r.status === PartStatus.COMPLETE) data = r.data;
      }
      // keybot sends a join envelope (envelope version 3) to the key the directory names for bob: mallory's.
      const o = data && (await openJoinEnvelope({ data, decryptionKey: mallory.priv, keybotKey: w.keybotPub, expectedAccount: 'bob', now: Date.now() }));
      if (o && o.payload && casefold(o.payload.room) === casefold(room2)) {
        const key = { room: o.payload.room, epoch: o.payload.epoch, key: o.payload.key, members: o.payload.roster, issuedAt: o.payload.issuedAt };
        wire.say(room2, wire.seal(room2, 'I, bob, approve', { key, seq: 7, signer: mallory.priv })[0]!);
        forged++;
      }
    }
    // The precondition: the daemon really opened room2's key (sealed to mallory's key) and spoke with it.
    expect(forged, "forgeries sent with room2's key").to.equal(1);
    wire.say(room2, 'marker after the forgery');
    await until(() => warned.find((m) => m.from === 'bob' && m.text === 'marker after the forgery'), "alice's warning about the marker");
    expect(shown.filter((m) => m.from === 'bob')).to.deep.equal([]);
  });
});
