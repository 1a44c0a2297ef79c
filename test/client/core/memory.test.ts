/**
 * What outlives a connection (src/client/core/memory.ts): member pins and each room's highest
 * epoch, kept per (account, server) by the agent and the proxy across IRC connections and, in the
 * memory file, across restarts. The agent and the proxy run against the real daemon with a
 * scripted keybot that logs in with the service account (test/client/helpers.ts), so every
 * envelope crosses real sockets the way keybot's do.
 */
import { expect } from 'chai';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startAgent, type Agent } from '../../../src/client/agent/server.js';
import { MemoryBook, memoryFileFor } from '../../../src/client/core/memory.js';
import { LocalProxy } from '../../../src/client/proxy/proxy.js';
import { PluginDouble, tempDir } from '../../helpers/agent.js';
import { RawClient, startTestDaemon, type TestDaemon, type TestUser } from '../../helpers/daemon.js';
import { envelopeLines, fromArmored, memberOf, party, type Party } from '../fixtures.js';
import { FakeKeybot } from '../helpers.js';

const ROOM = '#sc-memorytest';
const SWAPPED = /lists a member with another key than the one you saw for them before: epoch (\d+) .* lists bob with key/;
const REPLAYED = /epoch 100 of #sc-memorytest was already received/;

describe('src/client/core/memory.ts', function () {
  this.timeout(60_000);
  let dir: string;
  let remove: () => Promise<void>;

  beforeEach(async () => {
    ({ dir, remove } = await tempDir('sc-mem-'));
  });
  afterEach(async () => remove());

  describe('MemoryBook (the file)', function () {
    it('sits next to the known-keybots file, is written 0600 and atomically, and holds no key', async () => {
      const file = memoryFileFor(path.join(dir, 'known_keybots.json'));
      expect(file).to.equal(path.join(dir, 'known_keybots.memory.json'));
      expect(memoryFileFor(false)).to.equal(false);
      const book = new MemoryBook(file);
      const m = await book.memory('Alice', 'irc.example:6697');
      m.pinMember('Bob', 'AB'.repeat(20));
      m.recordEpoch('#sc-Room', 7);
      m.recordEpoch('#sc-room', 5);
      await book.flush();
      expect((await stat(file as string)).mode & 0o777).to.equal(0o600);
      const again = await new MemoryBook(file).memory('alice', 'irc.example:6697');
      expect(again.memberPin('bob')).to.equal('ab'.repeat(20));
      // The highest epoch wins, whatever the case of the room's name.
      expect(again.highestEpoch('#SC-ROOM')).to.equal(7);
      expect(await new MemoryBook(file).memory('alice', 'other:6697').then((x) => x.highestEpoch('#sc-room'))).to.equal(undefined);
    });

    it('refuses a corrupt file instead of starting from nothing', async () => {
      const file = path.join(dir, 'k.memory.json');
      await writeFile(file, '{"version":1,"entries":{"alice s:1":{"members":{"bob":"nothex"}}}}');
      const err = await new MemoryBook(file).memory('alice', 's:1').catch((e: Error) => e);
      expect((err as Error).message).to.match(/pin of bob is not a fingerprint/);
    });
  });

  describe('kept by the agent and the proxy (real daemon, scripted keybot)', function () {
    let t: TestDaemon;
    let alice: TestUser & { party: Party };
    let bob: Party;
    let mallory: Party;
    let keybotKey: Party;
    let bot: FakeKeybot;
    /** epoch 100 as keybot sent it to alice: replayed later. */
    let first: string[];
    const agents: Agent[] = [];
    const proxies: LocalProxy[] = [];
    const closers: Array<() => void> = [];

    before(async () => {
      t = await startTestDaemon();
      const a = await t.addUser('alice');
      alice = { ...a, party: await fromArmored('alice', a.publicKey, a.privateKey) };
      const b = await t.addUser('bob');
      bob = await fromArmored('bob', b.publicKey, b.privateKey);
      [keybotKey, mallory] = await Promise.all([party('keybot'), party('mallory')]);
      bot = await FakeKeybot.start(t, keybotKey);
      first = await envelope(100, bob);
    });
    afterEach(async () => {
      for (const c of closers.splice(0)) c();
      await Promise.all([...agents.splice(0).map((x) => x.close()), ...proxies.splice(0).map((x) => x.close())]);
    });
    after(async () => {
      bot?.stop();
      await t?.stop();
    });

    /** keybot's envelope for alice: bob listed with `bobKey` (mallory's: a swapped key). */
    function envelope(epoch: number, bobKey: Party): Promise<string[]> {
      return envelopeLines({ to: alice.party, signer: keybotKey, room: ROOM, epoch, members: [memberOf(alice.party), memberOf(bobKey, 'bob')] });
    }
    function deliver(lines: string[]): void {
      for (const l of lines) bot.irc.notice('alice', l);
    }

    it('the agent: a member key swapped and an envelope replayed stay refused after a reconnect and after a restart', async () => {
      const known = path.join(dir, 'known_keybots.json');
      const start = async (): Promise<Agent> => {
        const agent = await startAgent({ account: 'alice', privateKey: alice.party.priv, socketPath: path.join(dir, 'a.sock'), knownKeybotsFile: known });
        agents.push(agent);
        return agent;
      };
      const plugin = async (agent: Agent): Promise<PluginDouble> => {
        const p = await PluginDouble.connect({ port: t.port, name: 'alice', password: alice.password, socketPath: agent.socketPath });
        closers.push(() => p.close());
        return p;
      };
      const notices = (p: PluginDouble, re: RegExp): Array<Record<string, any>> => p.eventsOf('notice').filter((e) => re.test(e.text));
      const keyEvents = (p: PluginDouble, epoch: number): Array<Record<string, any>> =>
        p.eventsOf('key').filter((e) => e.text.includes(`(epoch ${epoch})`));
      /**
       * On a new connection: the swapped key is refused again; epoch 100, the newest we took, is
       * taken once more (keybot re-sends the current epoch at each login: "Rooms that outlive a
       * connection"), and its replay after that is refused.
       */
      const stillRefused = async (p: PluginDouble, epoch: number): Promise<void> => {
        deliver(await envelope(epoch, mallory));
        await p.pumpUntil(() => notices(p, SWAPPED).some((e) => e.text.includes(`epoch ${epoch} `)), `epoch ${epoch} refused (swapped key)`);
        deliver(first);
        await p.pumpUntil(() => keyEvents(p, 100).length > 0, 'epoch 100 re-sent at login');
        deliver(first);
        // The refusal is the answer to the replay's last part: nothing after it can still install it.
        await p.pumpUntil(() => notices(p, REPLAYED).length > 0, 'the replay of epoch 100 refused');
        expect(keyEvents(p, epoch)).to.deep.equal([]);
        expect(keyEvents(p, 100)).to.have.length(1);
      };

      let agent = await start();
      let p = await plugin(agent);
      await p.pumpUntil(() => notices(p, /keybot's key [0-9a-f]{40} is pinned/).length > 0, "keybot's key pinned");
      deliver(first);
      await p.pumpUntil(() => keyEvents(p, 100).length > 0, 'the key of epoch 100');
      deliver(await envelope(101, mallory));
      await p.pumpUntil(() => notices(p, SWAPPED).length > 0, 'epoch 101 refused (swapped key)');

      // A reconnect: the plugin's IRC connection goes, a new one comes (a fresh session).
      await p.call({ op: 'disconnected', server: p.label });
      p.close();
      p = await plugin(agent);
      await stillRefused(p, 102);

      // A restart: a new agent process on the same files.
      p.close();
      await agent.close();
      agent = await start();
      p = await plugin(agent);
      await stillRefused(p, 103);
      const file = memoryFileFor(known) as string;
      expect((await stat(file)).mode & 0o777).to.equal(0o600);
      const text = await readFile(file, 'utf8');
      expect(text).to.include(bob.fingerprint).and.not.include(mallory.fingerprint);
    });

    it('the proxy: a member key swapped and an envelope replayed stay refused after a reconnect and after a restart', async () => {
      const known = path.join(dir, 'known_keybots.json');
      const start = (): Promise<LocalProxy> =>
        LocalProxy.start({
          listen: { host: '127.0.0.1', port: 0 },
          upstream: { host: '127.0.0.1', port: t.port },
          privateKey: alice.party.priv,
          knownKeybotsFile: known,
        }).then((x) => (proxies.push(x), x));
      const through = async (proxy: LocalProxy): Promise<RawClient> => {
        const c = await RawClient.connect(proxy.address.port);
        closers.push(() => c.close());
        c.send(`PASS ${alice.password}`, 'NICK alice', 'USER alice 0 * :alice');
        await c.waitLine(/^:\*sealchat!\S+ NOTICE alice :end-to-end encryption is on; keybot's key [0-9a-f]{40} is pinned/, 8000);
        return c;
      };
      const refused = (re: RegExp): RegExp => new RegExp(`^:\\*sealchat!\\S+ NOTICE ${ROOM} :refused a key envelope from keybot: .*${re.source}`);
      const stillRefused = async (c: RawClient, epoch: number): Promise<void> => {
        const from = c.lines.length;
        deliver(await envelope(epoch, mallory));
        await c.waitLine(new RegExp(refused(SWAPPED).source.replace('epoch (\\d+)', `epoch ${epoch}`)), 8000, from);
        // Epoch 100, the newest taken, is taken once more (keybot re-sends it at each login); its replay is refused.
        deliver(first);
        await c.waitLine(new RegExp(`NOTICE ${ROOM} :key: ${ROOM} epoch 100 `), 8000, from);
        deliver(first);
        await c.waitLine(new RegExp(`NOTICE ${ROOM} :key: ${ROOM} epoch 100 is the one already held`), 8000, from);
        expect(c.lines.slice(from).filter((l) => / NOTICE \S+ :key: .*members/.test(l))).to.have.length(1);
      };

      let proxy = await start();
      let c = await through(proxy);
      deliver(first);
      await c.waitLine(new RegExp(`NOTICE ${ROOM} :key: ${ROOM} epoch 100 \\(first key\\)`), 8000);
      deliver(await envelope(101, mallory));
      await c.waitLine(refused(SWAPPED), 8000);

      // A reconnect: the IRC client leaves and comes back through the same proxy.
      c.send('QUIT :back soon');
      await c.waitClose();
      c = await through(proxy);
      await stillRefused(c, 102);

      // A restart: a new proxy on the same files.
      c.close();
      await proxy.close();
      proxy = await start();
      c = await through(proxy);
      await stillRefused(c, 103);
    });
  });
});
