/**
 * User journey with a real WeeChat (Debian's weechat-curses, driven in a private tmux server)
 * against the real daemon: PASS login, channel chat both ways with an irc-framework user, WHOIS
 * online and offline, and a refused password. test/helpers/realclients.ts drives WeeChat.
 */
import { expect } from 'chai';
import type { Client as IrcClient } from 'irc-framework';
import { waitFor } from '../helpers/daemon.js';
import { escapeRe, haveWeechat, startWeechat, type RealClient } from '../helpers/realclients.js';
import { aliceTellsBob, realClientScenario, refusesWrongPassword } from '../helpers/realclient-scenario.js';
import { haveCommand } from '../helpers/tmux.js';

const available = (await haveWeechat()) && (await haveCommand('tmux'));
const describeIf = available ? describe : describe.skip;

describeIf(`real client: WeeChat${available ? '' : ' (SKIPPED: weechat-curses or tmux is not installed)'}`, function () {
  this.timeout(60_000);
  const s = realClientScenario(startWeechat);

  /** WeeChat logged in as alice with a bare PASS (nick = account), in `channel` with bob. */
  async function aliceIn(channel: string, b: IrcClient): Promise<RealClient> {
    const weechat = await s.startAlice();
    await weechat.connect(s.alice.password);
    // The server's 001, not WeeChat's own first-start "Welcome to WeeChat!".
    await weechat.waitForText(/Welcome to the sealchat IRC network, alice!alice@127\.0\.0\.1/);
    const seen = waitFor(b, 'join', (e: { nick: string; channel: string }) => e.nick === 'alice' && e.channel === channel);
    await weechat.send(`/join ${channel}`);
    await seen;
    await weechat.showChannel(channel);
    await weechat.waitForText(new RegExp(`alice .*\\(alice@127\\.0\\.0\\.1\\) has joined ${escapeRe(channel)}`));
    return weechat;
  }

  it('logs in with PASS, joins #test and exchanges messages both ways with an irc-framework user', async () => {
    const b = await s.bobIn('#test');
    const weechat = await aliceIn('#test', b);
    const fromBob = await aliceTellsBob(weechat, b, '#test', 'hello from weechat');
    await weechat.waitForText(new RegExp(`[@+ ]bob \\| ${escapeRe(fromBob)}`));
  });

  it('/whois shows bob online, and offline (401 "bob is offline" + 318) once he quits', async () => {
    const b = await s.bobIn('#test');
    const weechat = await aliceIn('#test', b);

    // WHOIS output lands in the server buffer.
    await weechat.showServer();
    await weechat.send('/whois bob');
    const online = await weechat.waitForText(/\[bob\] End of \/WHOIS list/);
    expect(online).to.match(/\[bob\] \(bob@127\.0\.0\.1\): bob/);
    expect(online).to.match(/\[bob\] @#test/);
    expect(online).to.match(/\[bob\] is logged in as bob/);
    expect(online).not.to.match(/bob is offline/);

    // Bob leaves; WeeChat shows his quit in the channel buffer, which also orders it before the next WHOIS.
    await weechat.showChannel('#test');
    b.quit('gone home');
    await weechat.waitForText(/bob \(bob@127\.0\.0\.1\) has quit/);

    await weechat.showServer();
    await weechat.send('/whois bob');
    // WeeChat prints the 401's own text, then the 318.
    const offline = await weechat.waitForText(/bob: bob is offline[^\n]*\n[^\n]*\[bob\] End of \/WHOIS list/);
    // Nothing of an online reply (311) between the first WHOIS's end and the 401.
    const end = '[bob] End of /WHOIS list';
    const at401 = offline.lastIndexOf('bob: bob is offline');
    const prevEnd = offline.lastIndexOf(end, at401);
    const between = offline.slice(prevEnd === -1 ? 0 : prevEnd + end.length, at401);
    expect(between, 'an offline WHOIS must not answer 311').not.to.match(/\[bob\] \(bob@/);
  });

  it('refuses a wrong password: WeeChat shows 464 "Password incorrect" and is disconnected', () =>
    refusesWrongPassword(s, /Password incorrect[\s\S]*irc: disconnected from server/));
});
