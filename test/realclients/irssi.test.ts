/**
 * User journey with a real irssi (Debian's irssi, driven in a private tmux server) against the
 * real daemon: PASS login, channel chat both ways with an irc-framework user, WHOIS online and
 * offline, and a refused password. test/helpers/realclients.ts drives irssi.
 */
import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Client as IrcClient } from 'irc-framework';
import { waitFor } from '../helpers/daemon.js';
import { escapeRe, haveIrssi, startIrssi, type RealClient } from '../helpers/realclients.js';
import { aliceTellsBob, realClientScenario, refusesWrongPassword } from '../helpers/realclient-scenario.js';
import { haveCommand } from '../helpers/tmux.js';

const available = (await haveIrssi()) && (await haveCommand('tmux'));
const describeIf = available ? describe : describe.skip;

describeIf(`real client: irssi${available ? '' : ' (SKIPPED: irssi or tmux is not installed)'}`, function () {
  this.timeout(60_000);
  const s = realClientScenario(startIrssi);

  /** irssi logged in as alice with a bare PASS (nick = account), in `channel` with bob. */
  async function aliceIn(channel: string, b: IrcClient): Promise<RealClient> {
    const irssi = await s.startAlice();
    await irssi.connect(s.alice.password);
    await irssi.waitForText(/Welcome to the sealchat IRC network, alice!alice@127\.0\.0\.1/);
    const seen = waitFor(b, 'join', (e: { nick: string; channel: string }) => e.nick === 'alice' && e.channel === channel);
    await irssi.send(`/join ${channel}`);
    await irssi.waitForText(new RegExp(`alice \\[alice@127\\.0\\.0\\.1\\] has joined ${escapeRe(channel)}`));
    await seen;
    return irssi;
  }

  it('logs in with PASS, joins #test and exchanges messages both ways with an irc-framework user', async () => {
    const b = await s.bobIn('#test');
    const irssi = await aliceIn('#test', b);
    const fromBob = await aliceTellsBob(irssi, b, '#test', 'hello from irssi');
    await irssi.showChannel('#test');
    await irssi.waitForText(new RegExp(`<[@+ ]?bob> ${escapeRe(fromBob)}`));
  });

  it('/whois shows bob online, and offline (401 "bob is offline" + 318) once he quits', async () => {
    const b = await s.bobIn('#test');
    const irssi = await aliceIn('#test', b);

    // WHOIS output lands in the status window.
    await irssi.showServer();
    await irssi.send('/whois bob');
    const online = await irssi.waitForText(/End of WHOIS/);
    expect(online).to.match(/-!- bob \[bob@127\.0\.0\.1\]/);
    expect(online).to.match(/channels\s*: @#test/);
    expect(online).to.match(/account\s*: bob/);
    expect(online).not.to.match(/There is no such nick bob/);

    // Bob leaves; irssi shows his quit in the channel window, which also orders it before the next WHOIS.
    await irssi.showChannel('#test');
    b.quit('gone home');
    await irssi.waitForText(/bob \[bob@127\.0\.0\.1\] has quit/);

    await irssi.showServer();
    await irssi.send('/whois bob');
    // irssi renders 401 to a WHOIS with its own text; the wire line is checked in the rawlog below.
    await irssi.waitForText(/There is no such nick bob/);

    const rawFile = path.join(irssi.home, 'raw.log');
    await irssi.send(`/rawlog save ${rawFile}`);
    const raw = await readWhenPresent(rawFile, /318 alice bob/);
    const lines = raw.split('\n');
    const whoisSent = lines.findLastIndex((l) => /^<< WHOIS bob$/.test(l.trim()));
    expect(whoisSent, `irssi's rawlog has no WHOIS bob:\n${raw}`).to.be.greaterThan(-1);
    const after = lines.slice(whoisSent + 1).map((l) => l.trim());
    const i401 = after.findIndex((l) => /^>> (?:@\S+ )?:\S+ 401 alice bob :bob is offline$/.test(l));
    const i318 = after.findIndex((l) => /^>> (?:@\S+ )?:\S+ 318 alice bob :/.test(l));
    expect(i401, `no "401 alice bob :bob is offline" after the WHOIS:\n${after.join('\n')}`).to.be.greaterThan(-1);
    expect(i318, `no 318 after the 401:\n${after.join('\n')}`).to.be.greaterThan(i401);
    expect(after.slice(0, i318).some((l) => / 311 alice bob /.test(l)), 'an offline WHOIS must not answer 311').to.equal(false);
  });

  it('refuses a wrong password: irssi shows 464 "Password incorrect" and the link is closed', () =>
    refusesWrongPassword(s, /Password incorrect[\s\S]*Connection lost to 127\.0\.0\.1/));
});

/** Read `file` once it exists and matches `re` (irssi writes it asynchronously); bounded wait. */
async function readWhenPresent(file: string, re: RegExp, ms = 5000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const text = await readFile(file, 'utf8').catch(() => '');
    if (re.test(text)) return text;
    if (Date.now() >= deadline) throw new Error(`timed out waiting for ${re} in ${file}:\n${text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
