/**
 * `/msg keybot remove …` and `/msg keybot leave …` typed into an unmodified IRC client (a raw
 * socket) through the local proxy: the proxy's companion core signs keybot's proposals on the
 * way out (src/client/core/operations.ts, the same core the agent and SealClient use), against
 * the real daemon and keybot; bob and carol are SealClient members.
 */
import { expect } from 'chai';
import { unlockPrivateKey } from '../../src/crypto/index.js';
import { LocalProxy } from '../../src/client/proxy/proxy.js';
import type { SealClient } from '../../src/client/client.js';
import { RawClient } from '../helpers/daemon.js';
import { ROOM_RE, startWorld, until, type World } from '../helpers/companions.js';
import { record } from '../client/helpers.js';

describe('the proxy signs typed leave and remove (real daemon, keybot, proxy)', function () {
  this.timeout(30_000);
  let w: World;
  let proxy: LocalProxy;
  let a: RawClient;
  let bob: SealClient, carol: SealClient;
  let bobKeys: Array<{ room: string; epoch: number; changes?: string[] }>;
  const up: string[] = [];

  before(async () => {
    w = await startWorld(['alice', 'bob', 'carol']);
    [bob, carol] = await Promise.all([w.member('bob'), w.member('carol')]);
    bobKeys = record(bob, 'key');
    proxy = await LocalProxy.start({
      listen: { host: '127.0.0.1', port: 0 },
      upstream: { host: '127.0.0.1', port: w.t.port },
      privateKey: (await unlockPrivateKey({ armored: w.users.alice!.privateKey })).key!,
      knownKeybotsFile: false,
      keybotFingerprint: w.bot.fingerprint,
      tap: (dir, line) => {
        if (dir === 'up') up.push(line);
      },
    });
    a = await RawClient.connect(proxy.address.port);
    a.send(`PASS ${w.users.alice!.password}`, 'NICK alice', 'USER alice 0 * :alice');
    await a.waitLine(/ NOTICE alice :end-to-end encryption is on; keybot's key [0-9a-f]{40} is pinned/, 8000);
  });
  after(async () => {
    a?.close();
    await proxy?.close();
    await w?.stop();
  });

  it('alice types remove, then leave, in a plain IRC client: the proxy signs each, and bob\'s companion shows both verified', async () => {
    let from = a.lines.length;
    a.send('PRIVMSG keybot :invite bob carol');
    const join = await a.waitLine(new RegExp(`^:alice!\\S+ JOIN :?(${ROOM_RE.source})`), 8000, from);
    const room = ROOM_RE.exec(join)![0];
    await until(() => [bob, carol].every((c) => c.localRooms().some((r) => r.room === room && r.hasKey)), 'bob and carol holding the key');

    from = a.lines.length;
    const sentFrom = up.length;
    a.send(`PRIVMSG keybot :remove ${room} carol`);
    await a.waitLine(new RegExp(`^:keybot!\\S+ NOTICE alice :removed carol from ${room}; the others get a new key$`), 8000, from);
    // What went up: the line as typed, then the signed operation (SC1O parts), nothing else to keybot.
    const toKeybot = up.slice(sentFrom).filter((l) => l.startsWith('PRIVMSG keybot '));
    expect(toKeybot[0]).to.equal(`PRIVMSG keybot :remove ${room} carol`);
    expect(toKeybot.length).to.be.greaterThan(1);
    for (const l of toKeybot.slice(1)) expect(l).to.match(/^PRIVMSG keybot :SC1O \S+ \d+\/\d+ [A-Za-z0-9+/=]+$/);
    // alice's own key notice and bob's key event say who removed carol, verified.
    await a.waitLine(new RegExp(`^:\\*sealchat!\\S+ NOTICE ${room} :key: ${room} epoch \\d+, members alice, bob; .*carol removed by alice, verified$`), 8000, from);
    await until(() => bobKeys.find((k) => k.room === room && k.changes?.includes('carol removed by alice, verified')), "bob's key event");
    await until(() => !carol.localRooms().some((r) => r.room === room && r.hasKey), "carol's key gone with the room");

    from = a.lines.length;
    a.send(`PRIVMSG keybot :leave ${room}`);
    await a.waitLine(new RegExp(`^:keybot!\\S+ NOTICE alice :you left ${room}$`), 8000, from);
    await until(() => bobKeys.find((k) => k.room === room && k.changes?.includes('alice left, verified')), "bob's key event for alice's leave");
  });
});
