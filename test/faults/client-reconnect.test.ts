/**
 * SealClient's reconnect on its own (no keybot needed): it retries while the server is away,
 * stops when told to (quit, maxAttempts) or when the server refuses the login, and with
 * `reconnect: false` ends at the first loss as before.
 */
import { expect } from 'chai';
import { SealClient, type SealConnectOptions } from '../../src/client/client.js';
import { SealClientError } from '../../src/client/errors.js';
import { startTestDaemon, type TestDaemon, type TestUser } from '../helpers/daemon.js';
import { loginAs } from '../helpers/keybot.js';
import { next, record } from '../client/helpers.js';
import { restartDaemon, until } from './helpers.js';

describe('faults: SealClient reconnect', function () {
  this.timeout(30_000);
  let t: TestDaemon;
  let users: Record<string, TestUser>;
  const clients: SealClient[] = [];

  before(async () => {
    t = await startTestDaemon();
    users = {};
    for (const n of ['amy', 'ben', 'cy']) users[n] = await t.addUser(n);
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.quit().catch(() => undefined)));
    await until(() => !online('amy') && !online('ben') && !online('cy'), 'amy, ben and cy offline', 5000);
  });
  after(async () => {
    await t?.daemon.close();
    await t?.stop();
  });

  async function client(name: string, over: Partial<SealConnectOptions> = {}): Promise<SealClient> {
    const c = new SealClient();
    clients.push(c);
    // No keybot runs here: its key is "unavailable", which does not stop the login.
    await c.connect({
      ...loginAs(t, users[name]!),
      knownKeybotsFile: false,
      timeoutMs: 2000,
      reconnect: { initialMs: 50, maxMs: 200 },
      ...over,
    });
    return c;
  }

  const online = (name: string): boolean => t.daemon.server.findClient(name) !== undefined;

  /**
   * The marker for "no login afterwards": cy, who loses the connection with the others and retries
   * every second. Once cy is back, the daemon has been up for a while; a client still retrying on
   * the schedule of the others (every 50-200 ms) would most likely be back first (the check is not
   * airtight: cy's attempt can land right after the daemon comes back).
   */
  async function marker(): Promise<() => Promise<void>> {
    const cy = await client('cy', { reconnect: { initialMs: 1000, maxMs: 1000 } });
    const back = next(cy, 'reconnected', () => true, 15_000);
    return async () => {
      await back;
    };
  }

  it('retries while the server is away and logs in again once it is back', async () => {
    const amy = await client('amy');
    const tries = record(amy, 'reconnecting');
    const down = next(amy, 'disconnected');
    const back = next(amy, 'reconnected', () => true, 15_000);
    await restartDaemon(t, async () => {
      await down;
      // Several attempts fail while nothing listens, with growing delays.
      await until(() => tries.length >= 3, 'three attempts');
      expect(amy.reconnecting).to.equal(true);
      const err = await Promise.resolve()
        .then(() => amy.whois('ben'))
        .catch((e: unknown) => e);
      expect((err as SealClientError).code).to.equal('not-connected');
    });
    const r = await back;
    expect(r.nick).to.equal('amy');
    expect(r.attempts).to.be.greaterThanOrEqual(3);
    expect(tries[1]!.delayMs).to.be.at.most(100);
    await until(() => online('amy'), 'amy online again');
    expect(amy.reconnecting).to.equal(false);
    expect((await amy.whois('amy')).nick).to.equal('amy');
  });

  it('quit() while reconnecting stops it: close, and no login afterwards', async () => {
    const ben = await client('ben');
    const cyBack = await marker();
    const down = next(ben, 'disconnected');
    const closed = next(ben, 'close');
    const after = { reconnecting: 0 };
    await restartDaemon(t, async () => {
      await down;
      await ben.quit();
      await closed;
      ben.on('reconnecting', () => after.reconnecting++);
    });
    await cyBack();
    expect(after.reconnecting, 'attempts scheduled after close').to.equal(0);
    expect(online('ben')).to.equal(false);
    expect(ben.reconnecting).to.equal(false);
  });

  it('gives up after maxAttempts, and ends at once with reconnect: false', async () => {
    const amy = await client('amy', { reconnect: { initialMs: 20, maxMs: 20, maxAttempts: 2 } });
    const ben = await client('ben', { reconnect: false });
    const cyBack = await marker();
    const gaveUp = next(amy, 'disconnected', (d) => !d.reconnecting);
    const amyClosed = next(amy, 'close');
    const benEvents = record(ben, 'disconnected');
    const benClosed = next(ben, 'close');
    await restartDaemon(t, async () => {
      expect((await gaveUp).reason).to.equal('gave up reconnecting after 2 attempts');
      await amyClosed;
      await benClosed;
      expect(benEvents).to.deep.equal([]);
    });
    await cyBack();
    expect(online('amy')).to.equal(false);
    expect(online('ben')).to.equal(false);
  });

  it('stops when the server refuses the login (the account is gone)', async () => {
    const amy = await client('amy');
    const refused = next(amy, 'disconnected', (d) => !d.reconnecting, 15_000);
    const closed = next(amy, 'close', () => true, 15_000);
    const back = next(amy, 'reconnected', () => true, 15_000);
    await restartDaemon(t);
    await back;
    // The account is removed and its session dropped: the next login is refused.
    await t.daemon.accounts.remove('amy');
    t.daemon.server.disconnectAccount('amy', 'account removed');
    expect((await refused).reason).to.match(/refused the login/);
    await closed;
  });
});
