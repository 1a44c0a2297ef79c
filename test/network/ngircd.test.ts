/**
 * keybot on ngIRCd, a network without services (issue 16; docs/NETWORKS.md "ngIRCd"): keybot keeps
 * its own accounts. alice and bob log in to keybot by password through their companions and
 * register keys, alice invites bob and they talk; carol, logged in to keybot but not invited, is
 * kept out by +i and, let in by a network operator (an invite exception), is kicked without a key;
 * bob leaves and gets no later key. And the nick is not the identity: a login is bound to the
 * connection, so someone who takes carol's nick after she quits is not logged in as carol, though
 * keybot never saw her QUIT (no shared channel, no MONITOR on ngIRCd). Every "did not happen" is
 * checked after a positive marker.
 */
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client as IrcClient } from 'irc-framework';
import { startKeybot, type Keybot } from '../../src/bot/main.js';
import { SealClient, type RoomMessageEvent } from '../../src/client/client.js';
import { keyFor } from '../helpers/daemon.js';
import { ROOM_RE, sleep, until } from '../helpers/poll.js';
import { OPER, ROOMY_PACE, connectPlain, ngircdMissing, startNgircd, type TestNetwork } from './servers.js';

const PASSWORD = 'keybot-pw-for-tests';

/** keybot's NOTICEs to a plain client, and a way to wait for the next one matching `re`. */
function noticesOf(c: IrcClient): { lines: string[]; next(re: RegExp, what: string): Promise<string> } {
  const lines: string[] = [];
  c.on('notice', (e: { nick?: string; message: string }) => {
    if (e.nick === 'keybot') lines.push(e.message);
  });
  return {
    lines,
    next: async (re, what) => {
      const from = lines.length;
      return until(() => lines.slice(from).find((l) => re.test(l)), what, 20_000);
    },
  };
}

describe('keybot on ngIRCd with its own accounts (issue 16)', function () {
  this.timeout(180_000);
  const why = ngircdMissing();
  let net: TestNetwork | undefined;
  let dataDir: string;
  let bot: Keybot | undefined;
  const clients: SealClient[] = [];
  const plains: IrcClient[] = [];

  before(async function () {
    if (why) return this.skip();
    net = await startNgircd();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-ngbot-'));
    bot = await startKeybot({
      dataDir,
      irc: { host: '127.0.0.1', port: net.port },
      rotateAfterMessages: 1000,
      rotateAfterMs: 3_600_000,
      commands: { burst: 100 },
      network: { account: 'keybot', password: '', accounts: 'keybot', oper: OPER, keyChangeCoolDownMs: 3_600_000, pace: ROOMY_PACE },
    });
  });

  after(async () => {
    for (const c of clients) await c.quit().catch(() => undefined);
    for (const p of plains) p.quit();
    await bot?.close();
    await net?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  /** A companion on ngIRCd: no SASL (there are no services), logged in to keybot by password. */
  async function companion(name: string): Promise<SealClient> {
    const k = await keyFor(name);
    const c = new SealClient();
    clients.push(c);
    c.on('error', () => undefined);
    await c.connect({
      host: '127.0.0.1',
      port: net!.port,
      nick: name,
      privateKeyArmored: k.privateArmored,
      knownKeybotsFile: false,
      reconnect: false,
    });
    expect((await c.command(`login ${PASSWORD}`, 15_000)).join('\n')).to.match(new RegExp(`^login: keybot account ${name} created; you are logged in as ${name}$`, 'm'));
    return c;
  }

  it('(skip reason) needs ngIRCd', function () {
    if (why) this.skip();
  });

  it('alice and bob log in to keybot, register keys and talk; carol is kept out; bob leaves', async function () {
    if (why) return this.skip();
    const alice = await companion('alice');
    const bob = await companion('bob');
    expect(alice.keybot).to.include({ status: 'pinned', fingerprint: bot!.fingerprint });
    expect((await alice.register()).join('\n')).to.match(/^register: key [0-9a-f]+ registered for alice$/m);
    expect((await bob.register()).join('\n')).to.match(/^register: key [0-9a-f]+ registered for bob$/m);

    const bobKey = new Promise<{ room: string; members: string[] }>((resolve) => bob.on('key', (k) => resolve(k)));
    // ngIRCd reads about one line a second from a user after a short burst (its penalty), and
    // alice's signed operation is several lines: give keybot's answer time.
    const t0 = Date.now();
    const reply = (await alice.command('invite bob', 30_000)).join('\n');
    const room = ROOM_RE.exec(reply)?.[0];
    expect(room, `${reply} (${(Date.now() - t0)} ms)`).to.be.a('string');
    const k = await bobKey;
    expect(k.room.toLowerCase()).to.equal(room);
    expect([...k.members].sort()).to.deep.equal(['alice', 'bob']);

    const bobGot: RoomMessageEvent[] = [];
    const aliceGot: RoomMessageEvent[] = [];
    bob.on('message', (m) => bobGot.push(m));
    alice.on('message', (m) => aliceGot.push(m));
    await until(() => alice.localRooms().some((r) => r.room.toLowerCase() === room), 'alice to hold the key', 20_000);
    await alice.send(room!, 'hello bob, over ngIRCd');
    await until(() => bobGot.find((m) => m.text === 'hello bob, over ngIRCd'), "bob to read alice's message", 20_000);
    await bob.send(room!, 'hello alice');
    await until(() => aliceGot.find((m) => m.text === 'hello alice'), "alice to read bob's message", 20_000);

    // carol has a keybot account but no invite: +i keeps her out by name...
    const carol = await connectPlain(net!.port, 'carol');
    plains.push(carol);
    const carolSays = noticesOf(carol);
    carol.say('keybot', `login ${PASSWORD}`);
    await carolSays.next(/^login: keybot account carol created/, "keybot's answer to carol's login");
    const refused = new Promise<string>((resolve) => carol.on('irc error', (e: { error: string }) => resolve(e.error)));
    carol.join(room!);
    expect(await refused).to.equal('invite_only_channel');
    // ...and when a network operator lets her in (an invite exception; OperCanUseMode), keybot
    // kicks her and keys only the members.
    const op = await connectPlain(net!.port, 'netop');
    plains.push(op);
    op.raw('OPER', OPER.name, OPER.password);
    await new Promise<void>((resolve) => op.on('raw', (e: { line: string }) => /^\S+ 381 /.test(e.line) && resolve()));
    op.raw('MODE', room, '+I', 'carol!*@*');
    await new Promise<void>((resolve) => op.on('raw', (e: { line: string }) => / MODE \S+ \+I carol!\*@\*/.test(e.line) && resolve()));
    const kicked = new Promise<{ kicked: string; nick: string }>((resolve) => carol.on('kick', (e: { kicked: string; nick: string }) => resolve(e)));
    carol.join(room!);
    expect(await kicked).to.include({ kicked: 'carol', nick: 'keybot' });
    await alice.send(room!, 'after carol');
    await until(() => bobGot.find((m) => m.text === 'after carol'), 'bob to read the message after the kick', 20_000);
    expect(carolSays.lines.filter((n) => n.startsWith('SC1E'))).to.deep.equal([]);

    // bob leaves: keybot kicks him on request and keys alice alone; bob reads nothing after.
    const aliceAlone = new Promise<{ epoch: number; members: string[] }>((resolve) => alice.on('key', (e) => e.members.length === 1 && resolve(e)));
    await bob.command(`leave ${room}`, 30_000);
    const alone = await aliceAlone;
    expect(alone.members).to.deep.equal(['alice']);
    const bobSeen = bobGot.length;
    await alice.send(room!, 'bob is gone');
    await until(() => alice.localRooms().some((r) => r.epoch === alone.epoch), 'alice to use the new epoch', 20_000);
    expect((await bob.whois('alice')).nick).to.equal('alice');
    expect(bobGot.length).to.equal(bobSeen);
    expect(bob.localRooms().every((r) => r.room.toLowerCase() !== room || (r.epoch ?? 0) < alone.epoch)).to.equal(true);
  });

  it("someone who takes carol's nick after she quits is not logged in as carol (the login is the connection's, not the nick's)", async function () {
    if (why) return this.skip();
    const carol = await connectPlain(net!.port, 'carol2');
    plains.push(carol);
    const carolSays = noticesOf(carol);
    carol.say('keybot', `login ${PASSWORD}`);
    await carolSays.next(/^login: keybot account carol2 created/, "keybot's answer to carol2's login");
    carol.say('keybot', 'register');
    await carolSays.next(/^register: nonce \S+ network ngtest account carol2$/, 'a nonce for the logged-in carol2');
    // carol2 shares no channel with keybot: keybot does not see her QUIT.
    const gone = new Promise((resolve) => carol.once('close', resolve));
    carol.quit('bye');
    await gone;
    const taker = await connectPlain(net!.port, 'carol2');
    plains.push(taker);
    const takerSays = noticesOf(taker);
    taker.say('keybot', 'register');
    expect(await takerSays.next(/^register/, "keybot's answer to the taker")).to.equal(
      'register refused: log in to keybot first: login <password> (sealchat register --keybot-account does it)',
    );
    taker.say('keybot', 'rooms');
    expect(await takerSays.next(/account/, "keybot's answer to rooms")).to.match(/^you need an account to use rooms/);
    // A wrong password does not log the taker in either.
    taker.say('keybot', 'login not-the-password');
    expect(await takerSays.next(/^login/, "keybot's answer to a wrong password")).to.equal('login refused: wrong password for the keybot account carol2');
  });

  it("keybot notices by ISON that a user with a key quit where it could not see it (ngIRCd has no MONITOR)", async function () {
    if (why) return this.skip();
    const erin = await companion('erin');
    expect((await erin.register()).join('\n')).to.match(/registered for erin$/m);
    const dave = await connectPlain(net!.port, 'dave');
    plains.push(dave);
    const daveSays = noticesOf(dave);
    dave.say('keybot', `login ${PASSWORD}`);
    await daveSays.next(/^login: keybot account dave created/, "keybot's answer to dave's login");
    dave.say('keybot', 'online');
    expect(await daveSays.next(/^online/, "keybot's online list")).to.include('erin');
    // erin shares no channel with keybot and sends nothing more: only a poll can tell.
    await erin.quit();
    const deadline = Date.now() + 45_000;
    for (;;) {
      dave.say('keybot', 'online');
      const list = await daveSays.next(/^online|^nobody/, "keybot's online list");
      if (!list.includes('erin')) break;
      if (Date.now() > deadline) throw new Error(`keybot still lists erin online 45 s after she quit: ${list}`);
      await sleep(5_000);
    }
  });
});
