/**
 * Epoch triggers seen through the real daemon: room messages, an operator's kick over the
 * control socket (and a ping timeout, which is none: the member is offline, still a member);
 * and keybot's public key over IRC.
 */
import { expect } from 'chai';
import { readPublicKey } from '../../src/crypto/index.js';
import { ControlClient } from '../../src/protocol/control-client.js';
import { RawClient } from '../helpers/daemon.js';
import { channelMembers, loginPerTest, startWorld, waitUntil, type BotWorld, type TestMember } from './helpers.js';
import { ROOM_RE } from '../helpers/poll.js';

describe('src/bot keybot epochs through the daemon', function () {
  this.timeout(30_000);
  let w: BotWorld;
  const login = loginPerTest(() => w);

  before(async () => {
    w = await startWorld(['alice', 'bob', 'carol'], {
      daemon: { limits: { pingIntervalMs: 400, pingTimeoutMs: 600 } },
      bot: { rotateAfterMessages: 4, commands: { burst: 100 } },
    });
  });
  after(async () => w.stop());

  async function openRoom(owner: TestMember, ...others: TestMember[]): Promise<{ room: string; epoch: number }> {
    const line = await owner.ask(`invite ${others.map((o) => o.name).join(' ')}`, /^opened /);
    const room = ROOM_RE.exec(line)![0];
    const e = await owner.envelopeFor(room);
    for (const o of others) await o.envelopeFor(room);
    return { room, epoch: e.payload.epoch };
  }

  it('rotates the key after rotateAfterMessages room messages', async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    const { room, epoch } = await openRoom(alice, bob);
    for (let i = 0; i < 4; i++) alice.client.say(room, `SC1M message-${i}`);
    const next = await bob.envelopeFor(room, epoch);
    const announce = await bob.until(() => bob.channelNotices.find((n) => n.text.includes(`epoch ${next.payload.epoch}`)), 'key event');
    expect(announce.text).to.match(/\(4 messages\)$/);
  });

  it('a ping timeout (a QUIT) makes the member offline, not gone: no epoch, and the next one is sealed for them too', async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    const raw = await RawClient.connect(w.t.port);
    await raw.login('carol', w.users.carol!.password);
    const line = await alice.ask('invite carol', /^opened /);
    const room = ROOM_RE.exec(line)![0];
    const first = (await alice.envelopeFor(room)).payload;
    expect(first.members.map((m) => m.account).sort()).to.deep.equal(['alice', 'carol']);
    raw.autoPong = false;
    await raw.waitClose(5000);
    await waitUntil(() => w.t.daemon.server.findClient('carol') === undefined, 'carol offline');
    // The marker: alice adds bob. A QUIT epoch would come before his, or be merged into it.
    await alice.ask(`invite ${room} bob`, /^added /);
    const next = (await alice.envelopeFor(room, first.epoch)).payload;
    expect(next.members.map((m) => m.account).sort()).to.deep.equal(['alice', 'bob', 'carol']);
    const announce = await alice.until(() => alice.channelNotices.find((n) => n.text.includes(`epoch ${next.epoch}`)), 'key event');
    expect(announce.text).to.match(/\(bob added by alice\)$/);
    await bob.envelopeFor(room);
  });

  it("rekeys when an operator kicks a member over the control socket, and says they were removed", async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    const carol = await login('carol');
    const { room, epoch } = await openRoom(alice, bob, carol);
    const carolParts = carol.partsReceived;
    const control = await ControlClient.connect(w.t.daemon.controlPath);
    try {
      await control.call('channel.kick', { channel: room, nick: 'carol', reason: 'test' });
    } finally {
      control.close();
    }
    const next = (await bob.envelopeFor(room, epoch)).payload;
    expect(next.members.map((m) => m.account).sort()).to.deep.equal(['alice', 'bob']);
    const announce = await bob.until(() => bob.channelNotices.find((n) => n.text.includes(`epoch ${next.epoch}`)), 'key event');
    expect(announce.text).to.match(/\(carol was removed\)$/);
    // The marker: keybot's answer to carol comes after anything it sent her before.
    await carol.ask('fingerprint', /fingerprint/);
    expect(carol.partsReceived, 'envelope parts carol got after the kick').to.equal(carolParts);
    expect(carol.envelopes.filter((e) => e.payload.epoch > epoch)).to.deep.equal([]);
  });

  it('hands out its public key with pubkey; it is the key that signs the envelopes', async () => {
    const alice = await login('alice');
    const from = alice.notices.length;
    alice.client.say('keybot', 'pubkey');
    await alice.until(() => alice.notices.slice(from).includes('-----END PGP PUBLIC KEY BLOCK-----'), 'the END line');
    const lines = alice.notices.slice(from);
    expect(lines[0]).to.equal('-----BEGIN PGP PUBLIC KEY BLOCK-----');
    // Rebuild the armor the way a client does: the blank line after the headers was not sent.
    const headers = lines.slice(1, -1).filter((l) => /^[A-Za-z-]+: /.test(l));
    const body = lines.slice(1, -1).filter((l) => !/^[A-Za-z-]+: /.test(l));
    const armored = [lines[0], ...headers, '', ...body, lines.at(-1), ''].join('\n');
    const key = await readPublicKey({ armored });
    expect(key.key!.fingerprint).to.equal(w.bot.fingerprint);
  });

  it('a keybot that loses its connection comes back, re-enters its rooms and rekeys them', async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    const { room, epoch } = await openRoom(alice, bob);
    // Drop keybot's IRC connection from the server side.
    w.t.daemon.server.disconnectAccount('keybot', 'test: connection dropped');
    await waitUntil(() => !channelMembers(w.t, room).includes('keybot'), 'keybot to drop out');
    const next = await alice.envelopeFor(room, epoch, 15_000);
    expect((await bob.envelopeFor(room, epoch)).payload.epoch).to.equal(next.payload.epoch);
    expect(channelMembers(w.t, room)).to.deep.equal(['alice', 'bob', 'keybot']);
  });
});
