/**
 * A configurable room prefix on a real InspIRCd 3 + Atheme (issue 16; docs/NETWORKS.md "Rooms"):
 * keybot told to open `##sc-` rooms (Libera's namespace policy keeps `#name` for registered
 * projects) opens one, its INVITE is joined and the members talk, with companions given no
 * option: they know both prefixes, so text for a `##sc-` room they hold no key for fails closed.
 */
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startKeybot, type Keybot } from '../../src/bot/main.js';
import { SealClient, type RoomMessageEvent } from '../../src/client/client.js';
import { SealClientError } from '../../src/client/errors.js';
import { keyFor } from '../helpers/daemon.js';
import { until } from '../helpers/poll.js';
import { ROOMY_PACE, missing, registerAccount, startNetwork, type TestNetwork } from './servers.js';

const PASSWORD = 'pw-for-tests-1';
const LIBERA_ROOM_RE = /##sc-[a-z2-7]{10}/;

describe('keybot with --room-prefix ##sc- on InspIRCd 3 + Atheme (issue 16)', function () {
  this.timeout(120_000);
  const why = missing();
  let net: TestNetwork | undefined;
  let dataDir: string;
  let bot: Keybot | undefined;
  const clients: SealClient[] = [];

  before(async function () {
    if (why) return this.skip();
    net = await startNetwork();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-prefix-'));
    for (const name of ['keybot', 'alice', 'bob']) await registerAccount(net.port, name, PASSWORD);
    bot = await startKeybot({
      dataDir,
      irc: { host: '127.0.0.1', port: net.port },
      rotateAfterMessages: 1000,
      rotateAfterMs: 3_600_000,
      commands: { burst: 100 },
      network: { account: 'keybot', password: PASSWORD, keyChangeCoolDownMs: 3_600_000, pace: ROOMY_PACE, roomPrefix: '##sc-' },
    });
  });

  after(async () => {
    for (const c of clients) await c.quit().catch(() => undefined);
    await bot?.close();
    await net?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  async function companion(name: string): Promise<SealClient> {
    const c = new SealClient();
    clients.push(c);
    c.on('error', () => undefined);
    await c.connect({
      host: '127.0.0.1',
      port: net!.port,
      nick: name,
      sasl: { account: name, password: PASSWORD },
      privateKeyArmored: (await keyFor(name)).privateArmored,
      knownKeybotsFile: false,
      keybotFingerprint: bot!.fingerprint,
      reconnect: false,
    });
    expect((await c.register()).join('\n')).to.match(new RegExp(`^register: key [0-9a-f]+ registered for ${name}$`, 'm'));
    return c;
  }

  it('(skip reason) needs the Debian servers', function () {
    if (why) this.skip();
  });

  it('opens a ##sc- room, whose INVITE the companion joins, and the members talk; text for a ##sc- room without a key is refused', async function () {
    if (why) return this.skip();
    const alice = await companion('alice');
    const bob = await companion('bob');

    const bobKey = new Promise<{ room: string; members: string[] }>((resolve) => bob.on('key', (k) => resolve(k)));
    const reply = (await alice.invite(['bob'])).join('\n');
    const room = LIBERA_ROOM_RE.exec(reply)?.[0];
    expect(room, reply).to.be.a('string');
    const k = await bobKey;
    expect(k.room.toLowerCase()).to.equal(room);
    expect([...k.members].sort()).to.deep.equal(['alice', 'bob']);
    expect(bob.joinedRooms().map((r) => r.toLowerCase())).to.include(room);

    const bobGot: RoomMessageEvent[] = [];
    bob.on('message', (m) => bobGot.push(m));
    await until(() => alice.localRooms().some((r) => r.room.toLowerCase() === room && r.hasKey), "alice's key");
    await alice.send(room!, 'hello bob, in a ##sc- room');
    await until(() => bobGot.find((m) => m.text === 'hello bob, in a ##sc- room'), "bob to read alice's message");

    // A ##sc- room nobody keyed us for: refused as a sealchat room without a key, not sent as plaintext.
    const err = await alice.send('##sc-zzzzzzzzzz', 'must not go out', { hold: false }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(SealClientError);
    expect((err as SealClientError).code).to.equal('no-key');
  });
});
