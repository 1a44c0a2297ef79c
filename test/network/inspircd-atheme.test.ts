/**
 * keybot on an existing IRC network: real InspIRCd 3 + Atheme from Debian (issue 16). alice and
 * bob have NickServ accounts, their companions register keys with keybot, alice invites bob and
 * they talk; carol cannot join by name (+i) and, joined by a network operator's SAJOIN, is kicked
 * without a key; bob leaves and gets no later key; a key change the old key did not sign is
 * refused during the cool-down. Every "did not happen" is checked after a positive marker.
 */
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client as IrcClient } from 'irc-framework';
import { startKeybot, type Keybot } from '../../src/bot/main.js';
import { SealClient, type RoomMessageEvent } from '../../src/client/client.js';
import { unlockPrivateKey } from '../../src/crypto/index.js';
import { keyFor } from '../helpers/daemon.js';
import { ROOM_RE, until } from '../helpers/poll.js';
import { OPER, ROOMY_PACE, connectPlain, missing, registerAccount, startNetwork, type TestNetwork } from './servers.js';

const PASSWORD = 'pw-for-tests-1';
/** keybot's reply with fingerprints as people read them ("B8D3 205E ...") made comparable to hex. */
const plainFp = (lines: string[]): string => lines.join('\n').replace(/([0-9A-F]{4}) (?=[0-9A-F]{4})/g, '$1').toLowerCase();

describe('keybot on InspIRCd 3 + Atheme (issue 16)', function () {
  this.timeout(120_000);
  const why = missing();
  let net: TestNetwork | undefined;
  let dataDir: string;
  let bot: Keybot | undefined;
  const clients: SealClient[] = [];
  const plains: IrcClient[] = [];

  before(async function () {
    if (why) return this.skip();
    net = await startNetwork();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-netbot-'));
    for (const name of ['keybot', 'alice', 'bob', 'carol']) await registerAccount(net.port, name, PASSWORD);
    bot = await startKeybot({
      dataDir,
      irc: { host: '127.0.0.1', port: net.port },
      rotateAfterMessages: 1000,
      rotateAfterMs: 3_600_000,
      commands: { burst: 100 },
      network: { account: 'keybot', password: PASSWORD, keyChangeCoolDownMs: 3_600_000, pace: ROOMY_PACE },
    });
  });

  after(async () => {
    for (const c of clients) await c.quit().catch(() => undefined);
    for (const p of plains) p.quit();
    await bot?.close();
    await net?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  async function companion(name: string, keyName = name): Promise<SealClient> {
    const k = await keyFor(keyName);
    const c = new SealClient();
    clients.push(c);
    c.on('error', () => undefined);
    await c.connect({
      host: '127.0.0.1',
      port: net!.port,
      nick: name,
      sasl: { account: name, password: PASSWORD },
      privateKeyArmored: k.privateArmored,
      knownKeybotsFile: false,
      reconnect: false,
    });
    return c;
  }

  it('(skip reason) needs the Debian servers', function () {
    if (why) this.skip();
  });

  it('alice and bob register keys, talk in a room alice opens; carol is kept out; bob leaves; an unsigned key change waits', async function () {
    if (why) return this.skip();
    const alice = await companion('alice');
    const bob = await companion('bob');
    expect(alice.keybot).to.include({ status: 'pinned', fingerprint: bot!.fingerprint });

    // Keys are registered by proof of possession, for the account the network says sent them.
    expect((await alice.register()).join('\n')).to.match(/^register: key [0-9a-f]+ registered for alice$/m);
    expect((await bob.register()).join('\n')).to.match(/^register: key [0-9a-f]+ registered for bob$/m);
    const bobFp = (await keyFor('bob')).fingerprint;

    // alice opens a room with bob: keybot INVITEs, the companions join, one epoch for both.
    const bobKey = new Promise<{ room: string; members: string[] }>((resolve) => bob.on('key', (k) => resolve(k)));
    const reply = (await alice.invite(['bob'])).join('\n');
    const room = ROOM_RE.exec(reply)?.[0];
    expect(room, reply).to.be.a('string');
    const k = await bobKey;
    expect(k.room.toLowerCase()).to.equal(room);
    expect([...k.members].sort()).to.deep.equal(['alice', 'bob']);

    const bobGot: RoomMessageEvent[] = [];
    const aliceGot: RoomMessageEvent[] = [];
    bob.on('message', (m) => bobGot.push(m));
    alice.on('message', (m) => aliceGot.push(m));
    await until(() => alice.localRooms().some((r) => r.room.toLowerCase() === room), 'alice to hold the key');
    await alice.send(room!, 'hello bob, over InspIRCd');
    await until(() => bobGot.find((m) => m.text === 'hello bob, over InspIRCd'), "bob to read alice's message");
    await bob.send(room!, 'hello alice');
    await until(() => aliceGot.find((m) => m.text === 'hello alice'), "alice to read bob's message");

    // carol, logged in but not invited: +i keeps her out by name...
    const carol = await connectPlain(net!.port, 'carol', { account: 'carol', password: PASSWORD });
    plains.push(carol);
    const carolNotices: string[] = [];
    carol.on('notice', (e: { nick?: string; message: string }) => {
      if (e.nick === 'keybot') carolNotices.push(e.message);
    });
    const refused = new Promise<string>((resolve) => carol.on('irc error', (e: { error: string }) => resolve(e.error)));
    carol.join(room!);
    expect(await refused).to.equal('invite_only_channel');
    // ...and when the network's operator puts her in (SAJOIN), keybot kicks her and keys only the members.
    const op = await connectPlain(net!.port, 'netop');
    plains.push(op);
    op.raw('OPER', OPER.name, OPER.password);
    await new Promise<void>((resolve) => op.on('raw', (e: { line: string }) => /^\S+ 381 /.test(e.line.replace(/^@\S+ /, '')) && resolve()));
    const kicked = new Promise<{ kicked: string; nick: string }>((resolve) => carol.on('kick', (e: { kicked: string; nick: string }) => resolve(e)));
    op.raw('SAJOIN', 'carol', room);
    const kick = await kicked;
    expect(kick).to.include({ kicked: 'carol', nick: 'keybot' });
    // Marker: a later message reaches bob, so any key for carol would have been sent by now.
    await alice.send(room!, 'after carol');
    await until(() => bobGot.find((m) => m.text === 'after carol'), 'bob to read the message after the kick');
    expect(carolNotices.filter((n) => n.startsWith('SC1E'))).to.deep.equal([]);

    // bob leaves: keybot kicks him on request and keys alice alone; bob reads nothing after.
    const aliceAlone = new Promise<{ epoch: number; members: string[] }>((resolve) =>
      alice.on('key', (e) => e.members.length === 1 && resolve(e)),
    );
    await bob.leave(room!);
    const alone = await aliceAlone;
    expect(alone.members).to.deep.equal(['alice']);
    const bobSeen = bobGot.length;
    await alice.send(room!, 'bob is gone');
    await until(() => aliceGot.length >= 0 && alice.localRooms().some((r) => r.epoch === alone.epoch), 'alice to use the new epoch');
    // Marker: a round trip for bob after alice's message (WHOIS answered) before looking.
    expect((await bob.whois('alice')).nick).to.equal('alice');
    expect(bobGot.length).to.equal(bobSeen);
    expect(bob.localRooms().every((r) => r.room.toLowerCase() !== room || (r.epoch ?? 0) < alone.epoch)).to.equal(true);

    // A key change the registered key did not sign is refused during the cool-down...
    await bob.quit();
    const bob2 = await companion('bob', 'bob-new-key');
    const newFp = (await keyFor('bob-new-key')).fingerprint;
    const change = (await bob2.register()).join('\n');
    expect(change).to.match(new RegExp(`refused for now: the change to ${newFp} is not signed by the registered key ${bobFp}`));
    expect(plainFp(await bob2.status('bob'))).to.include(bobFp);
    // ...and taken at once when the old key signs it.
    const oldKey = await unlockPrivateKey({ armored: (await keyFor('bob')).privateArmored });
    const endorsed = (await bob2.register({ oldKey: oldKey.key! })).join('\n');
    expect(endorsed, endorsed).to.match(new RegExp(`registered for bob, replacing ${bobFp}`));
    expect(plainFp(await bob2.status('bob'))).to.include(newFp);
  });
});
