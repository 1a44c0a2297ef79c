/**
 * The journey shared by the real-client tests (irssi, WeeChat) against the real daemon: a test
 * daemon with alice and bob, bob on irc-framework, alice in the real client, the clients of each
 * test stopped after it, and the steps that read the same for every client. How a client shows
 * things (its prompts and line formats) stays in the client's own test file.
 */
import { expect } from 'chai';
import type { Client as IrcClient } from 'irc-framework';
import { connectClient, quitAll, startTestDaemon, waitFor, type TestDaemon, type TestUser } from './daemon.js';
import type { RealClient, StartOptions } from './realclients.js';

export const token = (): string => Math.random().toString(36).slice(2, 8);

/** irc-framework's WHOIS, bounded (its callback waits for a 318 that may never come). */
export function whois(c: IrcClient, nick: string, ms = 5000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`WHOIS ${nick}: no reply within ${ms} ms`)), ms);
    c.whois(nick, (e: Record<string, unknown>) => {
      clearTimeout(timer);
      resolve(e);
    });
  });
}

export interface RealClientScenario {
  t: TestDaemon;
  alice: TestUser;
  bob: TestUser;
  /** bob on irc-framework, in `channel`; quits after the test. */
  bobIn(channel: string): Promise<IrcClient>;
  /** bob on irc-framework, logged in only; quits after the test. */
  bobOnline(): Promise<IrcClient>;
  /** The real client for alice, started, not connected; stopped after the test. */
  startAlice(): Promise<RealClient>;
}

/** Registers the journey's hooks in the current describe; `start` starts the real client. */
export function realClientScenario(start: (opts: StartOptions) => Promise<RealClient>): RealClientScenario {
  const clients: RealClient[] = [];
  const ircs: IrcClient[] = [];
  const s = {
    async bobOnline() {
      const c = await connectClient(s.t.port, { nick: 'bob', password: s.bob.password });
      ircs.push(c);
      return c;
    },
    async bobIn(channel: string) {
      const c = await s.bobOnline();
      const joined = waitFor(c, 'join', (e: { nick: string; channel: string }) => e.nick === 'bob' && e.channel === channel);
      c.join(channel);
      await joined;
      return c;
    },
    async startAlice() {
      const client = await start({ port: s.t.port, nick: 'alice' });
      clients.push(client);
      return client;
    },
  } as RealClientScenario;

  before(async () => {
    s.t = await startTestDaemon();
    s.alice = await s.t.addUser('alice');
    s.bob = await s.t.addUser('bob');
  });
  afterEach(async () => {
    quitAll(...ircs.splice(0));
    await Promise.all(clients.splice(0).map((c) => c.stop()));
  });
  after(async () => s.t?.stop());
  return s;
}

/** alice (in `client`, in `channel` with bob) says `hello …`, bob reads it; then bob says a line, returned for the client to show. */
export async function aliceTellsBob(client: RealClient, b: IrcClient, channel: string, hello: string): Promise<string> {
  const fromAlice = `${hello} ${token()}`;
  const got = waitFor(b, 'message', (e: { nick: string; target: string; message: string }) => e.nick === 'alice' && e.target === channel);
  await client.send(fromAlice);
  expect((await got).message).to.equal(fromAlice);

  const fromBob = `hi from bob ${token()}`;
  b.say(channel, fromBob);
  return fromBob;
}

/**
 * A wrong password: the client's screen matches `refused` (464 "Password incorrect", then the
 * client's own words for the lost link), the server said why, and alice never comes online.
 */
export async function refusesWrongPassword(s: RealClientScenario, refused: RegExp): Promise<void> {
  const b = await s.bobOnline();
  const client = await s.startAlice();
  await client.connect(`${s.alice.password}-wrong`);
  const screen = await client.waitForText(refused);
  expect(screen).to.match(/Closing link: .*\(Bad password\)/);
  expect(screen).not.to.match(/Welcome to the sealchat IRC network/);
  // And alice never came online.
  expect((await whois(b, 'alice')).error).to.equal('not_found');
}
