import { expect } from 'chai';
import { addressKey, KeyedRateLimiter } from '../../../src/ircd/server/throttle.js';
import type { Session } from '../../../src/ircd/server/session.js';
import { hashPassword } from '../../../src/ircd/accounts.js';
import { RawClient, startTestDaemon } from '../../helpers/daemon.js';

describe('src/ircd/server/throttle.ts', () => {
  it('allows `perMinute` attempts at once, then refills over the minute', () => {
    const l = new KeyedRateLimiter(3);
    const t0 = 1_000_000;
    expect([l.take('ip', t0), l.take('ip', t0), l.take('ip', t0), l.take('ip', t0)]).to.deep.equal([true, true, true, false]);
    expect(l.take('other', t0)).to.equal(true);
    expect(l.take('ip', t0 + 20_000)).to.equal(true); // one token back after a third of a minute
    expect(l.take('ip', t0 + 20_000)).to.equal(false);
  });

  it('refunds successful attempts so only failures count', () => {
    const l = new KeyedRateLimiter(1);
    expect(l.take('acct', 0)).to.equal(true);
    l.refund('acct');
    expect(l.take('acct', 0)).to.equal(true);
    expect(l.take('acct', 0)).to.equal(false);
  });

  it('forgets keys that are full again, and treats a rate of 0 as unlimited', () => {
    const l = new KeyedRateLimiter(2);
    l.take('a', 0);
    l.sweep(120_000);
    expect((l as unknown as { buckets: Map<string, unknown> }).buckets.size).to.equal(0);
    const open = new KeyedRateLimiter(0);
    for (let i = 0; i < 100; i++) expect(open.take('x')).to.equal(true);
  });

  it('counts an IPv6 address by its /64 (configurable), and IPv4 by the address', () => {
    expect(addressKey('2001:db8:1:2:3:4:5:6', 64)).to.equal('2001:db8:1:2:0:0:0:0/64');
    expect(addressKey('2001:DB8:1:2::ff', 64)).to.equal(addressKey('2001:db8:1:2:3:4:5:6', 64));
    expect(addressKey('2001:db8:1:3::1', 64)).not.to.equal(addressKey('2001:db8:1:2::1', 64));
    expect(addressKey('2001:db8:1:2::1', 48)).to.equal(addressKey('2001:db8:1:3::1', 48));
    expect(addressKey('2001:db8::1', 128)).not.to.equal(addressKey('2001:db8::2', 128));
    expect(addressKey('::1', 64)).to.equal('0:0:0:0:0:0:0:0/64');
    expect(addressKey('64:ff9b::192.0.2.1', 96)).to.equal('64:ff9b:0:0:0:0:0:0/96');
    expect(addressKey('fe80::1%eth0', 64)).to.equal('fe80:0:0:0:0:0:0:0/64');
    expect(addressKey('192.0.2.1', 64)).to.equal('192.0.2.1');
    expect(addressKey('not::an::address', 64)).to.equal('not::an::address');
  });

  it('throttles login guesses spread over one IPv6 /64 as one address, and OPER guesses per operator name', async () => {
    const t = await startTestDaemon({ limits: { loginAttemptsPerIpPerMinute: 2, loginAttemptsPerAccountPerMinute: 100 } });
    try {
      await t.addUser('alice');
      const server = t.daemon.server;
      const from = (ip: string): Session => ({ ip }) as Session;
      expect(await server.attemptLogin(from('2001:db8:0:1::1'), 'alice', 'wrong')).to.equal(null);
      expect(await server.attemptLogin(from('2001:db8:0:1::2'), 'alice', 'wrong')).to.equal(null);
      // A third address of the same /64 is the same attacker.
      expect(await server.attemptLogin(from('2001:db8:0:1:ffff::3'), 'alice', 'wrong')).to.equal('throttled');
      // Another /64 has its own budget.
      expect(await server.attemptLogin(from('2001:db8:0:2::1'), 'alice', 'wrong')).to.equal(null);
    } finally {
      await t.stop();
    }
  });

  it('throttles OPER guesses per operator name, across connections', async () => {
    const t = await startTestDaemon({
      operators: [{ name: 'root', passwordHash: await hashPassword('the-oper-password') }],
      limits: { loginAttemptsPerIpPerMinute: 100, loginAttemptsPerAccountPerMinute: 3 },
    });
    try {
      const alice = await t.addUser('alice');
      const bob = await t.addUser('bob');
      const a = await RawClient.connect(t.port);
      await a.login('alice', alice.password);
      for (let i = 0; i < 3; i++) {
        a.send('OPER root guess');
        await a.waitLine(/ 464 alice :Password incorrect/, 5000, a.lines.length);
      }
      a.send('OPER root guess');
      await a.waitLine(/ 464 alice :Too many attempts/, 5000, a.lines.length);
      // Another connection (another account) guessing the same operator name meets the same limit.
      const b = await RawClient.connect(t.port);
      await b.login('bob', bob.password);
      b.send('OPER root the-oper-password');
      await b.waitLine(/ 464 bob :Too many attempts/);
      a.close();
      b.close();
    } finally {
      await t.stop();
    }
  });
});
