/**
 * One `invite` naming 49 users (as many as a person types in one IRC line) opens one room for
 * all 50, keyed in one epoch: real daemon, real keybot, irc-framework members, real crypto.
 */
import { expect } from 'chai';
import { MAX_INVITEES } from '../../src/bot/service.js';
import { channelMembers, startWorld, type BotWorld, type TestMember } from './helpers.js';

describe('src/bot invite of 50 names (real daemon, real keybot)', function () {
  this.timeout(60_000);
  const names = Array.from({ length: 50 }, (_, i) => `member${String(i).padStart(2, '0')}`);
  let w: BotWorld;
  const members: TestMember[] = [];

  before(async () => {
    w = await startWorld(names, { daemon: { limits: { loginAttemptsPerIpPerMinute: 0, loginAttemptsPerAccountPerMinute: 0 } } });
    for (const n of names) members.push(await w.login(n));
  });
  after(async () => {
    for (const m of members) m.quit();
    await w.stop();
  });

  it('fits in one IRC line and within MAX_INVITEES', () => {
    const line = `PRIVMSG keybot :invite ${names.slice(1).join(' ')}`;
    expect(line.length).to.be.at.most(510);
    expect(MAX_INVITEES).to.be.at.least(49);
  });

  it('opens one room with everyone and keys it in one epoch listing all 50', async () => {
    const [alice, ...rest] = members;
    // As one line (irc-framework's say() would split a message this long in two).
    alice!.operations.typed(`invite ${names.slice(1).join(' ')}`, Date.now());
    alice!.client.raw('PRIVMSG', 'keybot', `invite ${names.slice(1).join(' ')}`);
    const reply = await alice!.until(() => alice!.notices.find((n) => /^opened /.test(n)), 'the room', 20_000);
    const room = /#sc-[a-z2-7]{10}/.exec(reply)![0];
    expect(reply).to.equal(`opened ${room} with 49 users; keys follow`);
    // Then the names, in lines that each fit IRC.
    const listed = await alice!.until(() => {
      const from = alice!.notices.indexOf(reply);
      const lines = alice!.notices.slice(from + 1);
      const got = lines.join(' ').replace(/^with: /, '').split(/,\s*/).filter(Boolean);
      return got.length === 49 && lines;
    }, 'the names of the invited');
    for (const l of listed) expect(l.length).to.be.at.most(310);
    expect(channelMembers(w.t, room)).to.deep.equal([...names, 'keybot'].sort());
    const envs = await Promise.all(members.map((m) => m.envelopeFor(room, -1, 20_000)));
    const epoch = envs[0]!.payload.epoch;
    for (const e of envs) {
      expect(e.payload.epoch).to.equal(epoch);
      expect(e.payload.members.map((m) => m.account).sort()).to.deep.equal(names);
      expect(Buffer.from(e.payload.key).equals(Buffer.from(envs[0]!.payload.key))).to.equal(true);
    }
    // One epoch only: one key event in the room, and nobody got a second envelope for it.
    const events = await alice!.until(() => alice!.channelNotices.filter((n) => n.target === room && /^new key/.test(n.text)), 'key event');
    expect(events.map((e) => e.text)).to.deep.equal([`new key: epoch ${epoch} for 50 members (room opened)`]);
    for (const m of [alice!, ...rest]) expect(m.envelopes.filter((e) => e.payload.room === room)).to.have.length(1);
    // ... and keybot has no further epoch coming: the key it sent is for the room as it is.
    const r = w.bot.service!.rooms.get(room)!;
    expect(r.current?.epoch).to.equal(epoch);
    expect(r.keyedVersion).to.equal(r.version);
    expect(r.forced).to.equal(false);
    expect(r.settleTimer).to.equal(undefined);
    for (const m of members) expect(m.failures).to.deep.equal([]);
  });
});
