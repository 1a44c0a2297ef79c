import { expect } from 'chai';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'net-ipc';
import { ControlFailure, ControlServer, makeControlDispatcher, parseControlRequest } from '../../../src/ircd/control/index.js';
import { ControlCallError, ControlClient, ControlConnectError, probeControlSocket } from '../../../src/protocol/control-client.js';
import type { UserInfo } from '../../../src/protocol/control.js';
import { Accounts } from '../../../src/ircd/accounts.js';
import { makeAccountMethods } from '../../../src/ircd/control/index.js';
import { openAccountStore } from '../../../src/ircd/store/index.js';
import { generateUserKey } from '../../../src/crypto/index.js';

const alice: UserInfo = { name: 'alice', fingerprint: 'ab'.repeat(20), online: true, createdAt: 'x', updatedAt: 'x' };

describe('src/ircd/control/server.ts', () => {
  let dir: string;
  let sock: string;
  const servers: ControlServer[] = [];
  const clients: ControlClient[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sc-ctl-'));
    sock = path.join(dir, 'control.sock');
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    for (const s of servers.splice(0)) await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Calls of user.get "slow" the server is handling at once, and the most seen. */
  const slow = { now: 0, most: 0 };

  async function startServer(): Promise<ControlServer> {
    const handle = makeControlDispatcher({
      'user.get': async ({ name }) => {
        if (name === 'slow') {
          slow.most = Math.max(slow.most, ++slow.now);
          await new Promise((resolve) => setTimeout(resolve, 5));
          slow.now--;
          return null;
        }
        return name === 'alice' ? alice : null;
      },
      'user.del': async ({ name }) => {
        throw new ControlFailure('not_found', `no account named ${name}`);
      },
      'user.list': async () => {
        throw new Error('boom');
      },
    });
    const s = await ControlServer.start({ path: sock, handle, serverName: 'test.local' });
    servers.push(s);
    return s;
  }

  async function connect(): Promise<ControlClient> {
    const c = await ControlClient.connect(sock);
    clients.push(c);
    return c;
  }

  it('answers calls, handler failures and pings over a socket with mode 0600', async () => {
    await startServer();
    expect((await stat(sock)).mode & 0o777).to.equal(0o600);
    const c = await connect();
    expect(await c.call('user.get', { name: 'alice' })).to.deep.equal(alice);
    expect(await c.call('user.get', { name: 'bob' })).to.equal(null);
    expect(await c.call('ping', {})).to.include({ server: 'test.local' });
    const err = await c.call('user.del', { name: 'bob' }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(ControlCallError);
    expect(err).to.include({ code: 'not_found', message: 'no account named bob' });
    const internal = await c.call('user.list', {}).catch((e: unknown) => e);
    expect(internal).to.include({ code: 'internal' });
    const missing = await c.call('presence.online', {}).catch((e: unknown) => e);
    expect(missing).to.include({ code: 'bad_request' });
  });

  it('answers malformed requests with bad_request and keeps serving', async () => {
    await startServer();
    const raw = new Client({ path: sock, reconnect: false });
    await raw.connect();
    try {
      for (const bad of [null, 42, 'x', [], { method: 'nope' }, { method: 'user.get' }, { method: 'user.get', params: { name: 7 } }, { method: 'user.get', params: [] }]) {
        const res = await raw.request(bad, 2000);
        expect(res, JSON.stringify(bad)).to.include({ ok: false });
        expect(res.error.code).to.equal('bad_request');
      }
      expect(await raw.request({ method: 'user.get', params: { name: 'alice', extra: 1 } }, 2000)).to.deep.equal({ ok: true, result: alice });
    } finally {
      raw.destroy();
    }
  });

  it('parses requests strictly', () => {
    expect(parseControlRequest({ method: 'channel.kick', params: { channel: '#a', nick: 'b' } })).to.deep.equal({ method: 'channel.kick', params: { channel: '#a', nick: 'b' } });
    expect(parseControlRequest({ method: 'channel.kick', params: { channel: '#a', nick: 'b', reason: 3 } })).to.be.a('string');
    expect(parseControlRequest({ method: 'toString' })).to.match(/unknown method/);
  });

  it('pushes presence events to clients', async () => {
    const s = await startServer();
    const c = await connect();
    const got = new Promise((resolve) => c.on('presence', resolve));
    // The server registers a connection once its handshake completes.
    for (let i = 0; i < 50 && s.clients === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await s.broadcast({ event: 'presence', data: { name: 'alice', online: false } });
    expect(await got).to.deep.equal({ name: 'alice', online: false });
  });

  it('refuses to start a second server on a live socket', async () => {
    await startServer();
    const err = await ControlServer.start({ path: sock, handle: async () => ({ ok: true, result: null }) }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(Error);
    expect((err as Error).message).to.equal(`another sealchatd is running on ${sock}`);
    // The first server still answers.
    expect(await probeControlSocket(sock)).to.equal(true);
  });

  it('replaces a stale socket file and refuses a non-socket file', async () => {
    // A socket file nobody listens on: what a killed daemon leaves behind (a clean close
    // would unlink it).
    await makeStaleSocket(sock);
    expect((await stat(sock)).isSocket()).to.equal(true);
    await writeFile(path.join(dir, 'x'), '');
    expect(await probeControlSocket(sock)).to.equal(false);
    await startServer();
    expect(await probeControlSocket(sock)).to.equal(true);

    const err = await ControlServer.start({ path: path.join(dir, 'x'), handle: async () => ({ ok: true, result: null }) }).catch((e: unknown) => e);
    expect((err as Error).message).to.match(/is not a socket/);
  });

  it('gives clear errors without a daemon and fails pending calls when it goes away', async () => {
    const none = await ControlClient.connect(sock).catch((e: unknown) => e);
    expect(none).to.be.instanceOf(ControlConnectError);
    expect((none as Error).message).to.match(/no control socket at .*is sealchatd running/);

    const s = await startServer();
    const c = await connect();
    const closed = new Promise<Error>((r) => c.onClose(r));
    await s.close();
    expect(await closed).to.be.instanceOf(ControlConnectError);
    const late = await c.call('user.get', { name: 'alice' }).catch((e: unknown) => e);
    expect(late).to.be.instanceOf(ControlConnectError);
    // close() removed the socket file.
    expect(await stat(sock).catch(() => null)).to.equal(null);
  });

  it('bounds in-flight calls yet completes a burst', async () => {
    await startServer();
    const c = await ControlClient.connect(sock, { maxInFlight: 4 });
    clients.push(c);
    // Each call takes the server 5 ms: an unbounded client would have dozens in progress at once.
    slow.most = 0;
    const results = await Promise.all(Array.from({ length: 200 }, () => c.call('user.get', { name: 'slow' })));
    expect(results).to.have.length(200);
    expect(slow.most, 'calls in progress at the server at once').to.be.within(1, 4);
    console.log(`      [figure] 200 calls with maxInFlight 4: at most ${slow.most} in progress at the server at once`);
  });
});

async function makeStaleSocket(file: string): Promise<void> {
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(file)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve) => child.stdout!.once('data', resolve));
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
}

describe('src/ircd/control/accounts.ts', () => {
  it('maps the account service onto user.* methods and AccountErrors onto codes', async () => {
    const store = await openAccountStore('memory:');
    const disconnected: string[] = [];
    const released: string[] = [];
    const m = makeAccountMethods(new Accounts(store), {
      isOnline: (name) => name === 'Erin',
      disconnectAccount: (name, reason) => disconnected.push(`${name}: ${reason}`),
      releaseNick: (name, reason) => released.push(`${name}: ${reason}`),
    });
    const dispatch = makeControlDispatcher(m);
    const key = await generateUserKey({ name: 'erin' });
    const added = await m['user.add']({ name: 'Erin', password: 'pw', publicKey: key.publicArmored });
    expect(added).to.include({ name: 'Erin', fingerprint: key.fingerprint, online: true });
    expect(added).not.to.have.property('passwordHash');
    expect(added).not.to.have.property('publicKey');
    // A guest holding the new account's nick is let go (issue 12: no guest takes an account).
    expect(released).to.deep.equal(['Erin: The nick Erin now belongs to a registered account']);
    expect((await m['user.get']({ name: 'erin' }))?.publicKey).to.match(/BEGIN PGP PUBLIC KEY BLOCK/);
    expect((await m['user.list']({}))[0]).not.to.have.property('publicKey');
    expect(await dispatch({ method: 'user.add', params: { name: 'ERIN', password: 'pw', publicKey: key.publicArmored } })).to.deep.equal({
      ok: false,
      error: { code: 'exists', message: 'account Erin already exists' },
    });
    expect(await dispatch({ method: 'user.del', params: { name: 'erin' } })).to.deep.equal({ ok: true, result: { ok: true } });
    expect(disconnected).to.deep.equal(['Erin: Account deleted']);
    expect(await m['user.get']({ name: 'erin' })).to.equal(null);
    await store.close();
  });
});
