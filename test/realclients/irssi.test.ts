/**
 * User journey with a real irssi (Debian's irssi, driven in a private tmux server) against the
 * real daemon: PASS login, channel chat both ways with an irc-framework user, WHOIS online and
 * offline, and a refused password. See shared/REAL_CLIENTS.md for how irssi is driven.
 */
import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Client as IrcClient } from 'irc-framework';
import { connectClient, quitAll, startTestDaemon, waitFor, type TestDaemon, type TestUser } from '../helpers/daemon.js';
import { escapeRe, haveIrssi, startIrssi, type RealClient } from '../helpers/realclients.js';
import { haveCommand } from '../helpers/tmux.js';

const available = (await haveIrssi()) && (await haveCommand('tmux'));
const describeIf = available ? describe : describe.skip;
const token = (): string => Math.random().toString(36).slice(2, 8);

/** irc-framework's WHOIS, bounded (its callback waits for a 318 that may never come). */
function whois(c: IrcClient, nick: string, ms = 5000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`WHOIS ${nick}: no reply within ${ms} ms`)), ms);
    c.whois(nick, (e: Record<string, unknown>) => {
      clearTimeout(timer);
      resolve(e);
    });
  });
}

describeIf(`real client: irssi${available ? '' : ' (SKIPPED: irssi or tmux is not installed)'}`, function () {
  this.timeout(60_000);
  let t: TestDaemon;
  let alice: TestUser;
  let bob: TestUser;
  const clients: RealClient[] = [];
  const ircs: IrcClient[] = [];

  before(async () => {
    t = await startTestDaemon();
    alice = await t.addUser('alice');
    bob = await t.addUser('bob');
  });
  afterEach(async () => {
    quitAll(...ircs.splice(0));
    await Promise.all(clients.splice(0).map((c) => c.stop()));
  });
  after(async () => t?.stop());

  async function bobIn(channel: string): Promise<IrcClient> {
    const c = await connectClient(t.port, { nick: 'bob', password: bob.password });
    ircs.push(c);
    const joined = waitFor(c, 'join', (e: { nick: string; channel: string }) => e.nick === 'bob' && e.channel === channel);
    c.join(channel);
    await joined;
    return c;
  }

  /** irssi logged in as alice with a bare PASS (nick = account), in `channel` with bob. */
  async function aliceIn(channel: string, b: IrcClient): Promise<RealClient> {
    const irssi = await startIrssi({ port: t.port, nick: 'alice' });
    clients.push(irssi);
    await irssi.connect(alice.password);
    await irssi.waitForText(/Welcome to the sealchat IRC network, alice!alice@127\.0\.0\.1/);
    const seen = waitFor(b, 'join', (e: { nick: string; channel: string }) => e.nick === 'alice' && e.channel === channel);
    await irssi.send(`/join ${channel}`);
    await irssi.waitForText(new RegExp(`alice \\[alice@127\\.0\\.0\\.1\\] has joined ${escapeRe(channel)}`));
    await seen;
    return irssi;
  }

  it('logs in with PASS, joins #test and exchanges messages both ways with an irc-framework user', async () => {
    const b = await bobIn('#test');
    const irssi = await aliceIn('#test', b);

    const fromAlice = `hello from irssi ${token()}`;
    const got = waitFor(b, 'message', (e: { nick: string; target: string; message: string }) => e.nick === 'alice' && e.target === '#test');
    await irssi.send(fromAlice);
    expect((await got).message).to.equal(fromAlice);

    const fromBob = `hi from bob ${token()}`;
    b.say('#test', fromBob);
    await irssi.showChannel('#test');
    await irssi.waitForText(new RegExp(`<[@+ ]?bob> ${escapeRe(fromBob)}`));
  });

  it('/whois shows bob online, and offline (401 "bob is offline" + 318) once he quits', async () => {
    const b = await bobIn('#test');
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

  it('refuses a wrong password: irssi shows 464 "Password incorrect" and the link is closed', async () => {
    const b = await connectClient(t.port, { nick: 'bob', password: bob.password });
    ircs.push(b);
    const irssi = await startIrssi({ port: t.port, nick: 'alice' });
    clients.push(irssi);
    await irssi.connect(`${alice.password}-wrong`);
    const screen = await irssi.waitForText(/Password incorrect[\s\S]*Connection lost to 127\.0\.0\.1/);
    expect(screen).to.match(/Closing link: .*\(Bad password\)/);
    expect(screen).not.to.match(/Welcome to the sealchat IRC network/);
    // And alice never came online.
    expect((await whois(b, 'alice')).error).to.equal('not_found');
  });
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
