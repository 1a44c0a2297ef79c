/**
 * Attack 6: line and CTCP injection through decrypted text. eve is a member with a hostile client:
 * she encrypts and signs, under the room key she was given, plaintexts that no companion would
 * produce (CR, LF, NUL, CTCP and DCC framing, terminal escapes), so the receivers verify them as
 * genuinely hers. alice receives with SealClient; bob uses an unmodified IRC client (a raw socket
 * here) through the local proxy (src/client/proxy), which writes decrypted text downstream as
 * IRC lines.
 *
 * Defence: sanitizeText (src/crypto/sanitize.ts, run inside decryptRoomMessage) removes CR, LF,
 * NUL, other C0 controls but the formatting codes, DEL, C1, and CTCP framing except a whole
 * `/me`; SealClient's `message` text and each line the proxy writes to its client carry none of
 * them, so one sealed message is one line downstream and never a command. The unit cases are in
 * test/crypto/sanitize.test.ts and test/client/engine.test.ts "sanitises decrypted text".
 */
import { expect } from 'chai';
import type { SealClient } from '../../src/client/client.js';
import { LocalProxy } from '../../src/client/proxy/proxy.js';
import { parseLine } from '../../src/protocol/message.js';
import { RawClient } from '../helpers/daemon.js';
import { insiderHas, openRoom, record, sameEpoch, startSecWorld, until, type Insider, type SecWorld } from './world.js';

const FORBIDDEN = /[\r\n\0\x01\x04-\x08\x0b\x0c\x0e\x10-\x15\x17-\x1c\x7f-\x9f]/;

describe('security: decrypted text cannot inject lines or CTCP into a client', function () {
  this.timeout(30_000);
  let w: SecWorld;
  let eve: Insider;
  let alice: SealClient;
  let proxy: LocalProxy;
  let bobClient: RawClient;
  const down: string[] = [];
  let room: string;

  before(async function () {
    w = await startSecWorld(['alice', 'bob', 'eve']);
    eve = await w.insider('eve');
    alice = await w.member('alice');
    proxy = await LocalProxy.start({
      listen: { host: '127.0.0.1', port: 0 },
      upstream: { host: '127.0.0.1', port: w.t.port },
      privateKey: w.users.bob!.party.priv,
      knownKeybotsFile: false,
      keybotFingerprint: w.bot.fingerprint,
      tap: (dir, line) => {
        if (dir === 'down') down.push(line);
      },
    });
    bobClient = await RawClient.connect(proxy.address.port);
    bobClient.send(`PASS ${w.users.bob!.password}`, 'NICK bob', 'USER bob 0 * :bob');
    await bobClient.waitLine(/NOTICE bob :end-to-end encryption is on/, 8000);
    room = await openRoom(alice, ['bob', 'eve']);
    const epoch = await sameEpoch(room, [alice], ['alice', 'bob', 'eve']);
    await insiderHas(eve, room, epoch);
    await bobClient.waitLine(new RegExp(`NOTICE ${room} :key: ${room} epoch ${epoch}`), 8000);
  });
  after(async () => {
    bobClient?.close();
    await proxy?.close();
    await w?.stop();
  });

  it('hostile plaintexts arrive as one harmless line each, in SealClient and through the proxy', async function () {
    const cases: Array<{ plain: string; shown: string; action?: boolean }> = [
      { plain: 'hello\r\nPRIVMSG #x :owned', shown: 'helloPRIVMSG #x :owned' },
      { plain: `x\nPRIVMSG keybot :leave ${room}`, shown: `xPRIVMSG keybot :leave ${room}` },
      { plain: 'a\0b\r\nQUIT :bye', shown: 'abQUIT :bye' },
      { plain: '\x01DCC SEND evil.exe 2130706433 4444 1024\x01', shown: 'DCC SEND evil.exe 2130706433 4444 1024' },
      { plain: '\x01VERSION\x01', shown: 'VERSION' },
      { plain: '\x01ACTION waves\r\nJOIN #evil\x01', shown: 'wavesJOIN #evil', action: true },
      { plain: '\x01ACTION \x01DCC CHAT chat 2130706433 4444\x01', shown: 'ACTION DCC CHAT chat 2130706433 4444' },
      { plain: '\x1b[2J\x1b]0;owned\x07\u009b31m\u0085next\x7f', shown: '[2J]0;owned31mnext' },
      { plain: 'tab\there \x02bold\x02 \x0304red\x03 \x1funder\x1f', shown: 'tab here \x02bold\x02 \x0304red\x03 \x1funder\x1f' },
      { plain: '\r\n\0', shown: '' },
      { plain: ':starts with a colon', shown: ':starts with a colon' },
    ];
    const got = record(alice, 'message');
    const warned = record(alice, 'plaintext-warning');
    const from = bobClient.lines.length;
    for (const c of cases) eve.say(room, eve.seal(room, c.plain)[0]!);
    // And without encryption: flagged, and just as clean. (A line that is one whole CTCP is taken
    // by irc-framework as a CTCP request and never shown by SealClient; the proxy flags it.)
    eve.say(room, '\x01DCC SEND plain.exe 2130706433 4444 1\x01');
    eve.say(room, 'plain \x1b[2J\x01DCC SEND plain.exe 2130706433 4444 1\x01');
    eve.say(room, eve.seal(room, 'the end')[0]!);
    await until(() => got.some((m) => m.text === 'the end') || undefined, 'alice to read the last line');
    await bobClient.waitLine(/ PRIVMSG #sc-\S+ :the end$/, 8000, from);

    // SealClient: exactly these texts, verified as eve's, with no control character left.
    const fromEve = got.filter((m) => m.from === 'eve');
    expect(fromEve.map((m) => [m.text, m.action])).to.deep.equal([...cases.map((c) => [c.shown, c.action === true]), ['the end', false]]);
    for (const m of fromEve) expect(FORBIDDEN.test(m.text), JSON.stringify(m.text)).to.equal(false);
    expect(warned.map((p) => p.text)).to.deep.equal(['plain [2JDCC SEND plain.exe 2130706433 4444 1']);

    // The proxy: every line it wrote downstream is one line, and what the client parsed from the
    // socket is exactly one PRIVMSG to the room per non-empty message, nothing else from eve.
    for (const l of down) expect(/[\r\n\0]/.test(l), JSON.stringify(l)).to.equal(false);
    const fromEveDown = bobClient.lines.slice(from).filter((l) => /^(?:@\S+ )?:eve!/.test(l));
    const expected = [
      ...cases.filter((c) => c.shown !== '').map((c) => (c.action ? `\x01ACTION ${c.shown}\x01` : c.shown)),
      '[NOT ENCRYPTED, NOT VERIFIED] DCC SEND plain.exe 2130706433 4444 1',
      '[NOT ENCRYPTED, NOT VERIFIED] plain [2JDCC SEND plain.exe 2130706433 4444 1',
      'the end',
    ];
    const parsed = fromEveDown.map((l) => {
      const p = parseLine(l);
      return p.ok ? [p.message.command, ...p.message.params] : ['unparsable', l];
    });
    expect(parsed).to.deep.equal(expected.map((t) => ['PRIVMSG', room, t]));
    // CTCP reaches the client only as the one whole /me.
    expect(fromEveDown.filter((l) => l.includes('\x01'))).to.have.length(1);
    // Nothing resembling a command line appeared on its own.
    for (const l of bobClient.lines.slice(from)) {
      expect(/^(?:@\S+ )?(?::\S+ )?(?:QUIT|JOIN #evil|PRIVMSG #x|PRIVMSG keybot)/.test(l), l).to.equal(false);
    }
  });

  it('a plaintext CTCP VERSION in the room is answered only with a software name, privately', async function () {
    // Not text injection, but a stranger-triggered reply: irc-framework under SealClient answers
    // CTCP VERSION by itself (as most IRC clients do), keybot too. It names software, nothing else.
    const from = eve.lines.length;
    const toRoom = record(alice, 'message');
    eve.say(room, '\x01VERSION\x01');
    // alice's companion must answer (else this test would check nothing)...
    await eve.waitFor((l) => l.nick === 'alice' && l.command === 'NOTICE', "alice's reply", from);
    // ...and then say something in the room: whatever else she sent in reply went before this marker.
    await alice.send(room, 'marker after the VERSION');
    await eve.waitFor((l) => l.nick === 'alice' && l.command === 'PRIVMSG' && l.params[0] === room, "alice's marker", from);
    await eve.sync();
    const answers = eve.since(from, (l) => l.nick !== 'eve' && l.command !== 'PONG' && !(l.nick === 'alice' && l.command === 'PRIVMSG' && l.params[0] === room && /^SC1M /.test(l.params[1] ?? '')));
    expect(answers.filter((l) => l.nick === 'alice'), "alice's answers").to.have.length(1);
    const summary = answers.map((l) => [l.nick, l.command, l.params[0], l.params[1]]);
    console.log(`      [figure] answers to a CTCP VERSION in the room: ${JSON.stringify(summary)}`);
    for (const l of answers) {
      expect(l.command).to.equal('NOTICE');
      expect(l.params[0]).to.equal('eve');
      expect(l.params[1]).to.match(/^\x01VERSION [A-Za-z0-9. -]+\x01$/);
    }
    expect(toRoom).to.deep.equal([]);
  });
});
