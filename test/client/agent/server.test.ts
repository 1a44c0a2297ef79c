/**
 * The plugin agent over its real unix socket, with real crypto: what the WeeChat and irssi
 * plugins send (JSON lines) and what they are told to do.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { generateRoomKey } from '../../../src/crypto/index.js';
import { startAgent, type Agent, type AgentOptions } from '../../../src/client/agent/server.js';
import { AgentClient, tempDir, type Reply } from '../../helpers/agent.js';
import { envelopeLines, memberOf, party, type Party } from '../fixtures.js';

const ROOM = '#sc-agenttest';
const SERVER = 'test/t';

describe('src/client/agent/server.ts (unix socket, real crypto)', function () {
  let alice: Party, bob: Party, keybot: Party, mallory: Party;
  let dir: string;
  let remove: () => Promise<void>;
  const agents: Agent[] = [];
  const clients: AgentClient[] = [];
  let n = 0;

  before(async function () {
    this.timeout(30_000);
    [alice, bob, keybot, mallory] = await Promise.all(['alice', 'bob', 'keybot', 'mallory'].map((x) => party(x)));
    ({ dir, remove } = await tempDir());
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await Promise.all(agents.splice(0).map((a) => a.close()));
  });
  after(async () => remove());

  async function agentFor(p: Party, over: Partial<AgentOptions> = {}): Promise<{ agent: Agent; c: AgentClient }> {
    const agent = await startAgent({
      account: p.name,
      privateKey: p.priv,
      socketPath: path.join(dir, `a${++n}.sock`),
      knownKeybotsFile: path.join(dir, `known${n}.json`),
      ...over,
    });
    agents.push(agent);
    const c = await AgentClient.connect(agent.socketPath);
    clients.push(c);
    return { agent, c };
  }

  /** An agent for `p` whose keybot key is already pinned (given as an option). */
  async function pinned(p: Party): Promise<{ agent: Agent; c: AgentClient }> {
    const a = await agentFor(p, { keybotPublicKey: keybot.publicArmored });
    const r = await a.c.call({ op: 'connected', server: SERVER, nick: p.name, host: '127.0.0.1', port: 6667, fresh: true });
    expect(r.ok).to.equal(true);
    return a;
  }

  /** Feed lines as incoming NOTICEs/PRIVMSGs; return every reply. */
  async function feed(c: AgentClient, from: string, target: string, lines: string[], command = 'PRIVMSG'): Promise<Reply[]> {
    const out: Reply[] = [];
    for (const text of lines) out.push(await c.call({ op: 'incoming', server: SERVER, from, target, command, text }));
    return out;
  }

  async function keyUp(c: AgentClient, to: Party, epoch: number, key: Uint8Array, members = [alice, bob]): Promise<Reply[]> {
    const lines = await envelopeLines({ to, signer: keybot, room: ROOM, epoch, key, members: members.map((m) => memberOf(m)) });
    return feed(c, 'keybot', to.name, lines, 'NOTICE');
  }

  it('answers hello with its protocol version and account; the socket is owner-only', async () => {
    const { agent, c } = await agentFor(alice);
    const r = await c.call({ op: 'hello', client: 'test' });
    expect(r).to.include({ ok: true, protocol: 3, account: 'alice', agent: 'sealchat' });
    expect((await stat(agent.socketPath)).mode & 0o777).to.equal(0o600);
  });

  it('refuses to start on a socket another agent is serving', async () => {
    const { agent } = await agentFor(alice);
    let err: Error | undefined;
    try {
      agents.push(await startAgent({ account: 'alice', privateKey: alice.priv, socketPath: agent.socketPath, knownKeybotsFile: false }));
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.match(/already listening/);
  });

  it('asks keybot for its key on connect, hides the armored answer, pins it on first use and remembers it', async () => {
    const { c } = await agentFor(alice);
    const r = await c.call({ op: 'connected', server: SERVER, nick: 'alice', host: '127.0.0.1', port: 6667, fresh: true });
    expect(r.ok).to.equal(true);
    expect(r.send).to.deep.equal([{ server: SERVER, line: 'PRIVMSG keybot :pubkey' }]);
    const armorLines = keybot.publicArmored.split('\n').filter((l) => l !== '');
    const replies = await feed(c, 'keybot', 'alice', armorLines, 'NOTICE');
    for (const x of replies) expect(x.action).to.equal('hide');
    const events = replies.flatMap((x) => (x.events ?? []) as Reply[]);
    expect(events.some((e) => e.type === 'notice' && e.text.includes(keybot.fingerprint) && /first use/.test(e.text))).to.equal(true);
    const known = JSON.parse(await readFile(path.join(dir, `known${n}.json`), 'utf8'));
    expect(known['127.0.0.1:6667'].fingerprint).to.equal(keybot.fingerprint);
    expect((await stat(path.join(dir, `known${n}.json`))).mode & 0o777).to.equal(0o600);
    // A later envelope opens under the pinned key.
    const key = await keyUp(c, alice, 10, generateRoomKey());
    expect(key.at(-1)!.events.find((e: Reply) => e.type === 'key')).to.include({ room: ROOM, target: ROOM });
  });

  it('when keybot does not answer "pubkey", says so and asks again later (through poll)', async () => {
    const { c } = await agentFor(alice, { sweepMs: 20, keyFetchTimeoutMs: 100, keyRetryMs: 150 });
    const r = await c.call({ op: 'connected', server: SERVER, nick: 'alice', fresh: true });
    expect(r.send).to.have.length(1);
    const events: Reply[] = [];
    const sends: Reply[] = [];
    const deadline = Date.now() + 5000;
    while (sends.length === 0 && Date.now() < deadline) {
      const p = await c.call({ op: 'poll' });
      events.push(...(p.events ?? []));
      sends.push(...(p.send ?? []));
      await new Promise((res) => setTimeout(res, 20));
    }
    expect(events.map((e) => e.text)).to.include("keybot did not send its key (is it online?); asking again later");
    expect(sends).to.deep.equal([{ server: SERVER, line: 'PRIVMSG keybot :pubkey' }]);
    // Envelopes that come meanwhile wait for the key and open once it is pinned.
    const env = await keyUp(c, alice, 12, generateRoomKey());
    expect(env.at(-1)!.action).to.equal('hide');
    const pinnedNow = await feed(c, 'keybot', 'alice', keybot.publicArmored.split('\n'), 'NOTICE');
    const types = pinnedNow.flatMap((x) => (x.events ?? []) as Reply[]).map((e) => e.type);
    expect(types).to.include('key');
  });

  it('refuses a keybot key other than the configured fingerprint, and then every envelope', async () => {
    const { c } = await agentFor(alice, { keybotFingerprint: mallory.fingerprint });
    await c.call({ op: 'connected', server: SERVER, nick: 'alice', fresh: true });
    const replies = await feed(c, 'keybot', 'alice', keybot.publicArmored.split('\n'), 'NOTICE');
    const events = replies.flatMap((x) => (x.events ?? []) as Reply[]);
    expect(events.find((e) => e.level === 'error')!.text).to.match(/keybot's key changed!.*refused/);
    const env = await keyUp(c, alice, 11, generateRoomKey());
    const last = env.at(-1)!;
    expect(last.action).to.equal('hide');
    expect(last.events[0].text).to.match(/refused a key envelope from keybot.*not trusted/);
    expect((await c.call({ op: 'check', server: SERVER, target: ROOM })).canSend).to.equal(false);
  });

  it('installs a key from an envelope (parts hidden) and round-trips text between two agents, non-ASCII and longer than one line', async () => {
    const a = await pinned(alice);
    const b = await pinned(bob);
    const key = generateRoomKey();
    const ra = await keyUp(a.c, alice, 20, key);
    await keyUp(b.c, bob, 20, key);
    for (const x of ra) expect(x.action).to.equal('hide');
    expect(ra.at(-1)!.events[0]).to.include({ type: 'key', room: ROOM });
    expect(ra.at(-1)!.events[0].text).to.match(/epoch 20.*alice, bob/);

    const text = `grüße 🌍 ${'ünïcödé '.repeat(40)}end`;
    const out = await a.c.call({ op: 'outgoing', server: SERVER, target: ROOM, command: 'PRIVMSG', text });
    expect(out.action).to.equal('send');
    expect(out.lines.length).to.be.greaterThan(1);
    for (const line of out.lines as string[]) {
      expect(line).to.match(/^SC1M [A-Za-z0-9+/=]+$/);
      expect(Buffer.byteLength(line)).to.be.at.most(320);
    }
    const shown = await feed(b.c, 'alice', ROOM, out.lines);
    for (const x of shown) expect(x).to.include({ action: 'show', verified: true });
    expect(shown.map((x) => x.text).join('')).to.equal(text);

    // /me stays an action.
    const act = await a.c.call({ op: 'outgoing', server: SERVER, target: ROOM, text: '\x01ACTION waves\x01' });
    const [me] = await feed(b.c, 'alice', ROOM, act.lines);
    expect(me).to.include({ action: 'show', text: '\x01ACTION waves\x01', verified: true });

    // The same line again is a replay: hidden, and reported.
    const [again] = await feed(b.c, 'alice', ROOM, [act.lines[0]]);
    expect(again.action).to.equal('hide');
    expect(again.events[0]).to.include({ type: 'notice', target: ROOM, level: 'warn' });
    expect(again.events[0].text).to.match(/replay/);
  });

  it('refuses to send into a room without a key (and says why), passes text to nicks and ordinary channels', async () => {
    const a = await pinned(alice);
    const refused = await a.c.call({ op: 'outgoing', server: SERVER, target: '#sc-nokey', text: 'secret' });
    expect(refused.action).to.equal('refuse');
    expect(refused.reason).to.match(/no key for #sc-nokey.*nothing was sent/);
    expect(await a.c.call({ op: 'check', server: SERVER, target: '#sc-nokey' })).to.include({ encrypted: true, canSend: false });
    expect((await a.c.call({ op: 'outgoing', server: SERVER, target: 'bob', text: 'hi' })).action).to.equal('pass');
    expect((await a.c.call({ op: 'outgoing', server: SERVER, target: '#lobby', text: 'hi' })).action).to.equal('pass');
    expect(await a.c.call({ op: 'check', server: SERVER, target: '#lobby' })).to.include({ encrypted: false, canSend: true });
    expect((await a.c.call({ op: 'outgoing', server: SERVER, target: '#lobby,#sc-nokey', text: 'hi' })).action).to.equal('refuse');
    // After leaving a room its key is gone and sending there stays refused.
    await keyUp(a.c, alice, 30, generateRoomKey());
    expect((await a.c.call({ op: 'outgoing', server: SERVER, target: ROOM, text: 'x' })).action).to.equal('send');
    expect((await a.c.call({ op: 'left', server: SERVER, room: ROOM })).ok).to.equal(true);
    const after = await a.c.call({ op: 'outgoing', server: SERVER, target: ROOM, text: 'x' });
    expect(after.action).to.equal('refuse');
    expect(after.reason).to.match(/no longer hold a key/);
  });

  it('marks plaintext in an encrypted room, shows keybot notices, passes other lines', async () => {
    const a = await pinned(alice);
    await keyUp(a.c, alice, 40, generateRoomKey());
    const [plain] = await feed(a.c, 'bob', ROOM, ['not encrypted at all']);
    expect(plain).to.include({ action: 'show', verified: false, warning: 'NOT ENCRYPTED, NOT VERIFIED', text: 'not encrypted at all' });
    const [bot] = await feed(a.c, 'keybot', 'alice', ['opened #sc-x with bob; keys follow'], 'NOTICE');
    expect(bot).to.include({ action: 'show', verified: false, text: 'opened #sc-x with bob; keys follow' });
    const [other] = await feed(a.c, 'carol', 'alice', ['hello privately']);
    expect(other.action).to.equal('pass');
    const [server] = await feed(a.c, '', 'alice', ['*** server notice'], 'NOTICE');
    expect(server.action).to.equal('pass');
  });

  it('holds a message that arrives before its key and releases it as an event when the key comes', async () => {
    const a = await pinned(alice);
    const b = await pinned(bob);
    const key = generateRoomKey();
    await keyUp(a.c, alice, 50, key);
    const out = await a.c.call({ op: 'outgoing', server: SERVER, target: ROOM, text: 'early bird' });
    const [held] = await feed(b.c, 'alice', ROOM, out.lines);
    expect(held.action).to.equal('hide');
    const env = await keyUp(b.c, bob, 50, key);
    const events = env.at(-1)!.events as Reply[];
    expect(events.map((e) => e.type)).to.deep.equal(['key', 'message']);
    expect(events[1]).to.include({ type: 'message', target: ROOM, from: 'alice', text: 'early bird', verified: true });
  });

  it('answers malformed and unknown requests with an error and keeps serving', async () => {
    const { c } = await agentFor(alice);
    c.raw('this is not json\n');
    expect(JSON.parse(await c.nextLine())).to.include({ ok: false, code: 'bad-request', id: null });
    c.raw('[1,2,3]\n');
    expect(JSON.parse(await c.nextLine())).to.include({ ok: false, code: 'bad-request' });
    c.raw(`{"id":7,"op":"hello","pad":"${'x'.repeat(70_000)}"}\n`);
    expect(JSON.parse(await c.nextLine()).error).to.match(/longer than/);
    expect(await c.call({ op: 'nonsense' })).to.include({ ok: false, code: 'bad-request' });
    expect(await c.call({ op: 'incoming', server: 'nowhere', from: 'bob', target: '#x', command: 'PRIVMSG', text: 'hi' })).to.include({
      ok: false,
      code: 'unknown-server',
    });
    expect(await c.call({ op: 'connected', server: SERVER, nick: 'mallory' })).to.include({ ok: false, code: 'bad-request' });
    expect(await c.call({ op: 'connected', server: SERVER, nick: 'alice', fresh: true })).to.include({ ok: true });
    expect(await c.call({ op: 'incoming', server: SERVER, from: 'bob', target: '#x', command: 'JOIN', text: 'hi' })).to.include({ ok: false });
    expect(await c.call({ op: 'hello' })).to.include({ ok: true, protocol: 3 });
  });

  it('re-attaches a reloaded plugin to its session (keys kept) unless the IRC session is fresh', async () => {
    const a = await pinned(alice);
    await keyUp(a.c, alice, 60, generateRoomKey());
    const c2 = await AgentClient.connect(a.agent.socketPath);
    clients.push(c2);
    expect(await c2.call({ op: 'connected', server: SERVER, nick: 'alice', fresh: false })).to.include({ ok: true, attached: true });
    expect(await c2.call({ op: 'check', server: SERVER, target: ROOM })).to.include({ canSend: true });
    const status = await c2.call({ op: 'status' });
    expect(status.servers[0].rooms[0]).to.include({ room: ROOM, epoch: 60, hasKey: true });
    expect(await c2.call({ op: 'connected', server: SERVER, nick: 'alice', fresh: true })).to.include({ ok: true, attached: false });
    expect(await c2.call({ op: 'check', server: SERVER, target: ROOM })).to.include({ canSend: false });
  });

  it('a plugin that reconnects its socket gets the events that were waiting for it', async () => {
    const a = await pinned(alice);
    a.c.close();
    // A key arrives for nobody to see yet (fed by another connection that does not own the session).
    const other = await AgentClient.connect(a.agent.socketPath);
    clients.push(other);
    const lines = await envelopeLines({ to: alice, signer: keybot, room: ROOM, epoch: 70, key: generateRoomKey(), members: [memberOf(alice)] });
    const replies: Reply[] = [];
    for (const text of lines) replies.push(await other.call({ op: 'incoming', server: SERVER, from: 'keybot', target: 'alice', command: 'NOTICE', text }));
    // The asker now owns the session, so the key event came with the reply.
    expect(replies.flatMap((x) => (x.events ?? []) as Reply[]).map((e) => e.type)).to.include('key');
    other.close();
    await new Promise((r) => setTimeout(r, 50));
    // Events queued while no connection owns the session go to whoever polls next.
    const session = a.agent.session(SERVER)!;
    const next = await envelopeLines({ to: alice, signer: keybot, room: ROOM, epoch: 71, key: generateRoomKey(), members: [memberOf(alice)] });
    for (const text of next) await session.incoming({ from: 'keybot', target: 'alice', command: 'NOTICE', text });
    const again = await AgentClient.connect(a.agent.socketPath);
    clients.push(again);
    const polled = await again.call({ op: 'poll' });
    expect(polled.events.find((e: Reply) => e.type === 'key')).to.include({ room: ROOM });
    expect(polled.events.find((e: Reply) => e.type === 'key').text).to.match(/epoch 71/);
  });

  it('runAgent: unlocks a passphrase-protected key from a file, serves, and stops cleanly on SIGTERM', async function () {
    this.timeout(30_000);
    const { generateUserKey } = await import('../../../src/crypto/index.js');
    const k = await generateUserKey({ name: 'dora', passphrase: 'correct horse' });
    const keyFile = path.join(dir, 'dora.key.asc');
    const passFile = path.join(dir, 'dora.pass');
    await writeFile(keyFile, k.privateArmored, { mode: 0o600 });
    await writeFile(passFile, 'correct horse\n', { mode: 0o600 });
    const socketPath = path.join(dir, 'dora.sock');
    const script =
      `import('${path.resolve('src/cli/agent.ts')}').then((m) => m.runAgent(` +
      `{ account: 'dora', key: ${JSON.stringify(keyFile)}, socket: ${JSON.stringify(socketPath)}, 'passphrase-file': ${JSON.stringify(passFile)} }))` +
      `.then((code) => process.exit(code))`;
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], {
      env: { ...process.env, SEALCHAT_HOME: dir, SEALCHAT_LOG: 'silent' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 20_000;
      while (!/listening on/.test(stderr)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`agent did not start: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(stderr).not.to.include('correct horse');
      const c = await AgentClient.connect(socketPath);
      clients.push(c);
      expect(await c.call({ op: 'hello' })).to.include({ ok: true, account: 'dora' });
      child.kill('SIGTERM');
      expect(await exited).to.equal(0);
      expect(stderr).to.match(/stopped/);
      let gone = false;
      await stat(socketPath).catch(() => (gone = true));
      expect(gone, 'the socket file is removed').to.equal(true);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('runAgent: a wrong passphrase or a missing account is an error exit, not a running agent', async function () {
    this.timeout(10_000);
    const { runAgent } = await import('../../../src/cli/agent.js');
    const saved = process.stderr.write.bind(process.stderr);
    let out = '';
    process.stderr.write = ((s: string) => ((out += s), true)) as typeof process.stderr.write;
    try {
      expect(await runAgent({})).to.equal(2);
      await writeFile(path.join(dir, 'wrong.pass'), 'nope\n');
      const code = await runAgent({ account: 'dora', key: path.join(dir, 'dora.key.asc'), 'passphrase-file': path.join(dir, 'wrong.pass'), socket: path.join(dir, 'x.sock') });
      expect(code).to.equal(1);
    } finally {
      process.stderr.write = saved;
    }
    expect(out).to.match(/--account NAME is required/);
    expect(out).to.match(/passphrase is wrong/);
    expect(out).not.to.include('nope');
  });
});
