/**
 * Attack 1: an outsider who knows a room's name. mallory has an account and a key of her own, is
 * online over a raw socket with every capability the daemon offers (invite-notify, echo-message,
 * message-tags...) from before the room exists until after its last line, and is told the room's
 * name. She tries every IRC command that touches a channel, asks keybot for the room's key in every
 * way its command table allows, and then listens while the members talk and rekey.
 *
 * Defence: the daemon refuses her (473 on JOIN, 403 everywhere else, never a member list), keybot
 * answers exactly as for a room that does not exist, and not one line of the room's traffic
 * (messages, envelopes, JOIN/PART/QUIT, key notices) reaches her socket.
 */
import { expect } from 'chai';
import type { SealClient } from '../../src/client/client.js';
import { casefold } from '../../src/protocol/names.js';
import { next, openRoom, sameEpoch, startSecWorld, type Insider, type Line, type SecWorld } from './world.js';

describe('security: an outsider who knows the room name', function () {
  this.timeout(30_000);
  let w: SecWorld;
  let mallory: Insider;
  let aliceTap: Insider;
  let alice: SealClient, bob: SealClient, carol: SealClient;
  let room: string;
  const nonexistent = '#sc-zzzzzzzzzz';

  before(async function () {
    w = await startSecWorld(['alice', 'bob', 'carol', 'mallory']);
    // Online before the room exists, so anything the daemon broadcast would reach her.
    mallory = await w.insider('mallory');
    [alice, bob, carol] = await Promise.all([w.member('alice'), w.member('bob'), w.member('carol')]);
    room = await openRoom(alice, ['bob']);
    await sameEpoch(room, [alice, bob], ['alice', 'bob']);
    // What the room carries: a second session of alice's account sees all of it.
    aliceTap = await w.insider('alice');
  });
  after(async () => w?.stop());

  /** Send one line as mallory; return what the server answered (up to a PING round trip). */
  async function probe(line: string): Promise<Line[]> {
    const from = mallory.lines.length;
    mallory.send(line);
    await mallory.sync();
    return mallory.since(from, (l) => l.command !== 'PONG');
  }

  const numerics = (ls: Line[]): string[] => ls.map((l) => l.command);

  it('the daemon lets her neither join, nor speak, nor list, nor look into the room', async function () {
    const upper = room.toUpperCase();
    const answers: Record<string, Line[]> = {};
    for (const line of [
      `JOIN ${room}`,
      `JOIN ${upper}`,
      `JOIN ${nonexistent}`,
      `PRIVMSG ${room} :let me in`,
      `TAGMSG ${room}`,
      `TOPIC ${room}`,
      `TOPIC ${room} :owned`,
      `NAMES ${room}`,
      `WHO ${room}`,
      `MODE ${room}`,
      `MODE ${room} -i`,
      `LIST`,
      `LIST ${room}`,
      `WHOIS alice`,
      `INVITE mallory ${room}`,
      `PART ${room}`,
      `KICK ${room} alice`,
    ]) {
      answers[line] = await probe(line);
    }
    // NOTICE gets no reply by definition; check it reached nobody below.
    mallory.send(`NOTICE ${room} :psst`);

    expect(numerics(answers[`JOIN ${room}`]!)).to.deep.equal(['473']);
    expect(numerics(answers[`JOIN ${upper}`]!)).to.deep.equal(['473']);
    expect(numerics(answers[`JOIN ${nonexistent}`]!)).to.deep.equal(['403']);
    for (const cmd of [`PRIVMSG ${room} :let me in`, `TAGMSG ${room}`, `TOPIC ${room}`, `TOPIC ${room} :owned`, `MODE ${room}`, `MODE ${room} -i`, `PART ${room}`, `KICK ${room} alice`]) {
      expect(numerics(answers[cmd]!), cmd).to.deep.equal(['403']);
    }
    // NAMES and WHO of a secret channel: only the end-of-list line, no member.
    expect(numerics(answers[`NAMES ${room}`]!)).to.deep.equal(['366']);
    expect(numerics(answers[`WHO ${room}`]!)).to.deep.equal(['315']);
    for (const cmd of ['LIST', `LIST ${room}`]) {
      expect(numerics(answers[cmd]!), cmd).to.deep.equal(['321', '323']);
    }
    // WHOIS of a member does not name the secret room.
    const whois = answers['WHOIS alice']!;
    expect(whois.map((l) => l.command)).to.include('318');
    expect(whois.some((l) => casefold(l.raw).includes(casefold(room)))).to.equal(false);
    // INVITE: 442 (not on that channel); members cannot invite either (+i needs op, only keybot has it).
    expect(numerics(answers[`INVITE mallory ${room}`]!)).to.deep.equal(['442']);

    // The room is untouched: same members on the server, same modes, nobody heard her.
    const ch = w.t.daemon.server.channels.get(casefold(room))!;
    expect([...ch.members.keys()].map((c) => c.nick).sort()).to.deep.equal(['alice', 'bob', 'keybot']);
    expect([...ch.flags].sort().join('')).to.include('i').and.to.include('s');
    await aliceTap.sync();
    expect(aliceTap.lines.filter((l) => l.nick === 'mallory')).to.deep.equal([]);
  });

  it('keybot gives her no key, no place and no sign that the room exists', async function () {
    const before = alice.crypto!.roomInfo(room)!;
    const ask = async (text: string): Promise<string[]> => {
      const from = mallory.lines.length;
      mallory.say('keybot', text);
      // The marker: keybot answers one user's commands in order, so its answer to "fingerprint",
      // asked next, comes after the whole answer to `text`.
      mallory.say('keybot', 'fingerprint');
      const end = await mallory.waitFor((l) => l.nick === 'keybot' && /^my key fingerprint is /.test(l.params[1] ?? ''), 'the marker answer', from);
      return mallory.since(from, (l) => l.nick === 'keybot' && l.i < end.i).map((l) => l.params[1]!);
    };
    expect(await ask(`key ${room}`)).to.deep.equal([`you are not in ${room}`]);
    expect(await ask(`invite ${room} mallory`)).to.deep.equal([`you are not in ${room}`]);
    expect(await ask(`invite ${room} alice bob`)).to.deep.equal([`you are not in ${room}`]);
    expect(await ask(`leave ${room}`)).to.deep.equal([`you are not in ${room}`]);
    expect(await ask('rooms')).to.deep.equal(['you are in no rooms; open one with: invite <user>...']);
    // The same words for a room that does not exist: keybot is no oracle for room names.
    expect(await ask(`key ${nonexistent}`)).to.deep.equal([`you are not in ${nonexistent}`]);
    expect(await ask(`invite ${nonexistent} mallory`)).to.deep.equal([`you are not in ${nonexistent}`]);

    await mallory.sync();
    expect(mallory.envelopes, 'envelopes sent to mallory').to.deep.equal([]);
    expect(mallory.keys).to.deep.equal([]);
    // No rekey was triggered, nobody was added.
    expect(alice.crypto!.roomInfo(room)).to.deep.equal(before);
    expect(w.bot.service!.roomsOf('mallory')).to.deep.equal([]);
  });

  it('reads nothing on the wire while the members talk, rekey and come and go', async function () {
    const tapFrom = aliceTap.lines.length;
    // Talk; a new member (a rekey with envelopes to three people); more talk; someone leaves.
    const toBob = next(bob, 'message', (m) => m.text === 'the launch code is 0000');
    await alice.send(room, 'the launch code is 0000');
    await toBob;
    await bob.send(room, 'noted');
    const old = await sameEpoch(room, [alice, bob], ['alice', 'bob']);
    expect(await alice.inviteTo(room, ['carol'])).to.include(`added carol to ${room}`);
    const withCarol = await sameEpoch(room, [alice, bob, carol], ['alice', 'bob', 'carol'], old);
    const toAlice = next(alice, 'message', (m) => m.text === 'hello all');
    await carol.send(room, 'hello all');
    await toAlice;
    await bob.action(room, 'waves');
    expect(await carol.leave(room)).to.include(`you left ${room}`);
    await sameEpoch(room, [alice, bob], ['alice', 'bob'], withCarol);
    const last = next(bob, 'message', (m) => m.text === 'last words');
    await alice.send(room, 'last words');
    await last;

    // What went through the room meanwhile (seen by a member's session).
    await aliceTap.sync();
    const roomLines = aliceTap.since(tapFrom, (l) => casefold(l.params[0] ?? '') === casefold(room) || (l.nick === 'keybot' && l.params[1]?.startsWith('SC1E ') === true));
    expect(roomLines.length).to.be.greaterThan(8);

    await mallory.sync();
    // Her own lines come back to her (echo-message); everything else is what the daemon sent her.
    const all = mallory.lines.filter((l) => l.nick !== 'mallory');
    // Nothing sealchat: no message, no part, no envelope.
    expect(all.filter((l) => l.raw.includes('SC1')).map((l) => l.raw)).to.deep.equal([]);
    // No relayed channel event at all: she shares no channel with anyone.
    const relayed = all.filter((l) => ['PRIVMSG', 'JOIN', 'PART', 'KICK', 'TOPIC', 'INVITE', 'QUIT', 'TAGMSG', 'NICK', 'AWAY', 'ACCOUNT'].includes(l.command));
    expect(relayed.map((l) => l.raw)).to.deep.equal([]);
    expect(all.filter((l) => l.command === 'MODE' && casefold(l.params[0] ?? '') !== 'mallory').map((l) => l.raw)).to.deep.equal([]);
    // The room's name reached her only in the daemon's refusals of her own probes and keybot's "you are not in".
    for (const l of all.filter((x) => casefold(x.raw).includes(casefold(room)))) {
      const refusal = (/^\d{3}$/.test(l.command) && l.nick === undefined) || (l.nick === 'keybot' && l.params[1] === `you are not in ${room}`);
      expect(refusal, l.raw).to.equal(true);
    }
    // And her NOTICE to the room never reached a member.
    expect(aliceTap.lines.filter((l) => l.nick === 'mallory')).to.deep.equal([]);
    expect(mallory.keys).to.deep.equal([]);
  });
});
