import { expect } from 'chai';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client as IrcClient } from 'irc-framework';
import { SealClient, type SealConnectOptions } from '../../src/client/client.js';
import { SealClientError } from '../../src/client/errors.js';
import { generateRoomKey } from '../../src/crypto/index.js';
import { connectClient, startTestDaemon, waitFor, type TestDaemon, type TestUser } from '../helpers/daemon.js';
import { loginAs } from '../helpers/keybot.js';
import { envelopeLines, fromArmored, memberOf, party, type Party } from './fixtures.js';
import { FakeKeybot, next, record, sleep } from './helpers.js';

describe('src/client/client.ts', function () {
  this.timeout(30_000);
  let t: TestDaemon;
  let dir: string;
  let users: Record<string, TestUser & { party: Party }>;
  let keybotKey: Party;
  let mallory: Party;
  const clients: SealClient[] = [];
  const plain: IrcClient[] = [];
  let bot: FakeKeybot | undefined;

  before(async function () {
    t = await startTestDaemon();
    users = {};
    for (const name of ['alice', 'bob', 'eve']) {
      const u = await t.addUser(name);
      users[name] = { ...u, party: await fromArmored(name, u.publicKey, u.privateKey) };
    }
    [keybotKey, mallory] = await Promise.all([party('keybot'), party('mallory')]);
  });

  after(async function () {
    await t.stop();
  });

  beforeEach(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-client-'));
  });

  afterEach(async function () {
    await Promise.all(clients.splice(0).map((c) => c.quit()));
    for (const c of plain.splice(0)) c.quit();
    bot?.stop();
    bot = undefined;
    await rm(dir, { recursive: true, force: true });
    await sleep(50);
  });

  function opts(name: string, over: Partial<SealConnectOptions> = {}): SealConnectOptions {
    const u = users[name]!;
    return {
      ...loginAs(t, u),
      knownKeybotsFile: path.join(dir, 'known_keybots.json'),
      timeoutMs: 4000,
      ...over,
    };
  }

  async function connect(name: string, over: Partial<SealConnectOptions> = {}): Promise<SealClient> {
    const c = new SealClient();
    c.on('error', () => undefined);
    clients.push(c);
    await c.connect(opts(name, over));
    return c;
  }

  describe('login and keybot pinning', function () {
    it('refuses a wrong password with an auth error', async function () {
      const c = new SealClient();
      const err = await c.connect(opts('alice', { password: 'wrong-password-1' })).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(SealClientError);
      expect((err as SealClientError).code).to.equal('auth');
    });

    it('refuses an unusable private key before connecting', async function () {
      const err = await new SealClient().connect(opts('alice', { privateKeyArmored: users.alice!.publicKey })).catch((e: unknown) => e);
      expect((err as SealClientError).code).to.equal('key');
      expect((err as Error).message).to.match(/public key/);
    });

    it('pins keybot on first use from its pubkey reply, then uses the remembered key', async function () {
      bot = await FakeKeybot.start(t, keybotKey);
      const first = new SealClient();
      clients.push(first);
      const pinned = next(first, 'keybot-pinned');
      const r = await first.connect(opts('alice'));
      expect(r.keybot).to.deep.equal({ status: 'pinned', fingerprint: keybotKey.fingerprint, source: 'first-use' });
      expect(await pinned).to.include({ source: 'first-use', server: `127.0.0.1:${t.port}` });
      const file = JSON.parse(await readFile(path.join(dir, 'known_keybots.json'), 'utf8'));
      expect(file[`127.0.0.1:${t.port}`].fingerprint).to.equal(keybotKey.fingerprint);

      const asked = bot.commands.filter((c) => c.text === 'pubkey').length;
      const second = await connect('bob');
      expect(second.keybot).to.deep.equal({ status: 'pinned', fingerprint: keybotKey.fingerprint, source: 'known' });
      expect(bot.commands.filter((c) => c.text === 'pubkey').length).to.equal(asked);
    });

    it('refuses, loudly, a keybot key other than the remembered one, and every envelope after it', async function () {
      await writeFile(
        path.join(dir, 'known_keybots.json'),
        JSON.stringify({ [`127.0.0.1:${t.port}`]: { fingerprint: mallory.fingerprint, firstSeen: 'earlier' } }),
      );
      bot = await FakeKeybot.start(t, keybotKey);
      const c = new SealClient();
      clients.push(c);
      const changed = next(c, 'keybot-key-changed');
      const r = await c.connect(opts('alice'));
      expect(r.keybot).to.deep.include({ status: 'mismatch', expected: mallory.fingerprint, got: keybotKey.fingerprint });
      expect(await changed).to.include({ expected: mallory.fingerprint, got: keybotKey.fingerprint, source: 'known' });
      const rejected = next(c, 'envelope-rejected');
      await bot.sendEnvelope({ to: users.alice!.party, room: '#sc-x', epoch: 1, members: [memberOf(users.alice!.party)] });
      expect(await rejected).to.include({ code: 'keybot-untrusted' });
      expect(c.localRooms()).to.deep.equal([]);
    });

    it('refuses a keybot whose key does not match the configured fingerprint', async function () {
      bot = await FakeKeybot.start(t, keybotKey);
      const c = await connect('alice', { keybotFingerprint: mallory.fingerprint.toUpperCase(), knownKeybotsFile: false });
      expect(c.keybot).to.deep.include({ status: 'mismatch', source: 'configured' });
    });

    it('waits for keybot when it is offline, and pins its key when it comes online', async function () {
      const c = new SealClient();
      clients.push(c);
      const unavailable = next(c, 'keybot-unavailable');
      const r = await c.connect(opts('alice'));
      expect(r.keybot.status).to.equal('unavailable');
      expect((await unavailable).reason).to.match(/not online/);
      const pinned = next(c, 'keybot-pinned');
      bot = await FakeKeybot.start(t, keybotKey);
      expect(await pinned).to.include({ fingerprint: keybotKey.fingerprint, source: 'first-use' });
      expect(c.keybot.status).to.equal('pinned');
    });

    it('reports a keybot that does not serve its key, and accepts one given in the options', async function () {
      bot = await FakeKeybot.start(t, keybotKey, { pubkey: ['unknown command "pubkey"; send "help" for the list'] });
      const c = await connect('alice');
      expect(c.keybot).to.deep.include({ status: 'unavailable' });
      expect((c.keybot as { reason: string }).reason).to.match(/unknown command/);
      const d = await connect('bob', { keybotPublicKey: keybotKey.publicArmored });
      expect(d.keybot).to.deep.equal({ status: 'pinned', fingerprint: keybotKey.fingerprint, source: 'option-key' });
    });
  });

  describe('rooms', function () {
    const ROOM = '#sc-talk';

    async function roomWithKeys(): Promise<{ alice: SealClient; bob: SealClient; eve: IrcClient; epoch: number }> {
      bot = await FakeKeybot.start(t, keybotKey, { online: ['online (2): alice, bob'] });
      const alice = await connect('alice', { keybotPublicKey: keybotKey.publicArmored });
      const bob = await connect('bob', { keybotPublicKey: keybotKey.publicArmored });
      const eve = await connectClient(t.port, { nick: 'eve', password: users.eve!.password });
      plain.push(eve);
      const joined = Promise.all([
        next(alice, 'join', (e) => e.self && e.room === ROOM),
        next(bob, 'join', (e) => e.self && e.room === ROOM),
        waitFor(eve, 'join', (e: { nick: string }) => e.nick === 'eve'),
      ]);
      for (const nick of ['keybot', 'alice', 'bob', 'eve']) await bot.place(ROOM, nick);
      await joined;
      const epoch = 1_800_000_000;
      const key = generateRoomKey();
      const members = [memberOf(users.alice!.party), memberOf(users.bob!.party)];
      const keys = Promise.all([next(alice, 'key'), next(bob, 'key')]);
      await bot.sendEnvelope({ to: users.alice!.party, room: ROOM, epoch, key, members });
      await bot.sendEnvelope({ to: users.bob!.party, room: ROOM, epoch, key, members });
      const [ka, kb] = await keys;
      expect(ka).to.include({ room: ROOM, epoch, verified: true });
      expect(kb.members).to.deep.equal(['alice', 'bob']);
      return { alice, bob, eve, epoch };
    }

    it('sends and receives verified messages, while the wire carries only ciphertext', async function () {
      const { alice, bob, eve, epoch } = await roomWithKeys();
      const wire: string[] = [];
      eve.on('privmsg', (e: { target: string; message: string }) => e.target === ROOM && wire.push(e.message));
      const got = next(bob, 'message');
      const sent = await alice.send(ROOM, 'the plan is on');
      expect(sent).to.deep.equal({ epoch, lines: 1 });
      const { msgid: _m, ...message } = await got;
      expect(message).to.deep.equal({ room: ROOM, from: 'alice', text: 'the plan is on', epoch, command: 'PRIVMSG', action: false });
      const back = next(alice, 'message');
      await bob.action(ROOM, 'nods');
      expect(await back).to.include({ from: 'bob', text: 'nods', action: true });
      await sleep(100);
      expect(wire).to.have.length(2);
      for (const line of wire) {
        expect(line).to.match(/^SC1M [A-Za-z0-9+/=]+$/);
        expect(line).to.not.include('plan');
      }
    });

    it('flags plaintext in the room, and refuses to send to a room without a key', async function () {
      const { alice, bob, eve } = await roomWithKeys();
      const warned = next(bob, 'plaintext-warning');
      eve.say(ROOM, 'hello, I am in the clear');
      expect(await warned).to.deep.equal({ room: ROOM, from: 'eve', text: 'hello, I am in the clear', command: 'PRIVMSG' });
      const err = await alice.send('#sc-elsewhere', 'secret').catch((e: unknown) => e);
      expect(err).to.be.instanceOf(SealClientError);
      expect((err as SealClientError).code).to.equal('no-key');
      const notRoom = await alice.send('#lobby', 'hi').catch((e: unknown) => e);
      expect((notRoom as SealClientError).code).to.equal('not-encrypted');
    });

    it('wipes the key when removed from the room and refuses to send there', async function () {
      const { alice, bob } = await roomWithKeys();
      const gone = next(bob, 'part', (e) => e.self);
      const seen = next(alice, 'part', (e) => e.nick === 'bob');
      await bot!.kick(ROOM, 'bob');
      expect(await gone).to.include({ room: ROOM, self: true, reason: 'left (via keybot)' });
      await seen;
      expect(bob.localRooms()).to.deep.equal([{ room: ROOM, members: [], hasKey: false, highestEpoch: 1_800_000_000 }]);
      const err = await bob.send(ROOM, 'still here?').catch((e: unknown) => e);
      expect((err as SealClientError).code).to.equal('no-key');
      expect(bob.joinedRooms()).to.deep.equal([]);
    });

    it('rejects an envelope that does not come from keybot', async function () {
      const { bob, eve } = await roomWithKeys();
      const rejected = next(bob, 'envelope-rejected');
      for (const line of await envelopeLines({ to: users.bob!.party, signer: keybotKey, room: ROOM, epoch: 1_900_000_000, members: [memberOf(users.bob!.party)] })) {
        eve.notice('bob', line);
      }
      expect(await rejected).to.include({ from: 'eve', code: 'not-keybot' });
      expect(bob.localRooms()[0]!.epoch).to.equal(1_800_000_000);
    });

    it('reports private messages and user notices as privmsg and notice events, as received', async function () {
      const { alice, eve } = await roomWithKeys();
      const pm = next(alice, 'privmsg');
      eve.say('alice', 'psst, in the clear');
      expect(await pm).to.deep.equal({ from: 'eve', target: 'alice', text: 'psst, in the clear' });
      const notice = next(alice, 'notice', (n) => n.from === 'eve');
      eve.notice('alice', 'a notice from eve');
      expect(await notice).to.deep.equal({ from: 'eve', target: 'alice', text: 'a notice from eve' });
      // Room traffic is still not passed through: plaintext in a room is a warning, not a privmsg.
      const seen = record(alice, 'privmsg');
      const warned = next(alice, 'plaintext-warning');
      eve.say(ROOM, 'clear text in the room');
      await warned;
      expect(seen).to.deep.equal([]);
    });

    it('collects keybot replies to a command, and reports them as bot notices', async function () {
      const { alice } = await roomWithKeys();
      const notices = record(alice, 'bot-notice');
      expect(await alice.online()).to.deep.equal(['online (2): alice, bob']);
      expect(notices.map((n) => n.text)).to.deep.equal(['online (2): alice, bob']);
    });
  });
});
