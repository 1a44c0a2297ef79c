/**
 * Protocol 3 over the agent's real unix socket, with real crypto: a plugin hands over raw IRC
 * lines (`line`, in and out) and applies the action answered; everything it would otherwise have
 * to know (which lines matter, the marker, which lines the agent asked for, what to tell the user)
 * is decided by the agent.
 */
import { expect } from 'chai';
import path from 'node:path';
import { generateRoomKey } from '../../../src/crypto/index.js';
import { startAgent, type Agent } from '../../../src/client/agent/server.js';
import { AgentClient, tempDir, type Reply } from '../../helpers/agent.js';
import { envelopeLines, memberOf, party, type Party } from '../fixtures.js';

const ROOM = '#sc-linetest';
const SERVER = 'test/lines';

describe('src/client/agent/session.ts: raw lines (protocol 3)', function () {
  let alice: Party, bob: Party, keybot: Party;
  let dir: string;
  let remove: () => Promise<void>;
  const agents: Agent[] = [];
  const clients: AgentClient[] = [];
  let n = 0;

  before(async function () {
    this.timeout(30_000);
    [alice, bob, keybot] = await Promise.all(['alice', 'bob', 'keybot'].map((x) => party(x)));
    ({ dir, remove } = await tempDir('sc-lines-'));
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await Promise.all(agents.splice(0).map((a) => a.close()));
  });
  after(async () => remove());

  /** An agent for `p` (keybot's key given), connected as a protocol-3 plugin. */
  async function plugin(p: Party, connected: Record<string, unknown> = {}): Promise<AgentClient> {
    const agent = await startAgent({
      account: p.name,
      privateKey: p.priv,
      socketPath: path.join(dir, `l${++n}.sock`),
      knownKeybotsFile: false,
      keybotPublicKey: keybot.publicArmored,
    });
    agents.push(agent);
    const c = await AgentClient.connect(agent.socketPath);
    clients.push(c);
    const r = await c.call({ op: 'connected', server: SERVER, nick: p.name, fresh: true, protocol: 3, ...connected });
    expect(r.ok).to.equal(true);
    return c;
  }

  const lineIn = (c: AgentClient, line: string): Promise<Reply> => c.call({ op: 'line', server: SERVER, dir: 'in', line });
  const lineOut = (c: AgentClient, line: string): Promise<Reply> => c.call({ op: 'line', server: SERVER, dir: 'out', line });

  /** keybot's envelope for `to`, as the raw NOTICE lines its client receives. */
  async function keyUp(c: AgentClient, to: Party, epoch: number, key: Uint8Array, members = [alice, bob]): Promise<Reply[]> {
    const texts = await envelopeLines({ to, signer: keybot, room: ROOM, epoch, key, members: members.map((m) => memberOf(m)) });
    const out: Reply[] = [];
    for (const t of texts) out.push(await lineIn(c, `:keybot!keybot@sealchat NOTICE ${to.name} :${t}`));
    return out;
  }

  const notices = (r: Reply): Reply[] => ((r.events ?? []) as Reply[]).filter((e) => e.type === 'notice');

  it('encrypts an outgoing line into whole lines to send, and the other side shows the whole received line, marked, tags and source kept', async () => {
    const a = await plugin(alice);
    const b = await plugin(bob, { marker: '[ok]' });
    const key = generateRoomKey();
    for (const r of await keyUp(a, alice, 5, key)) expect(r.action).to.equal('hide');
    await keyUp(b, bob, 5, key);

    const out = await lineOut(a, `PRIVMSG ${ROOM} :grüße, bob`);
    expect(out.action).to.equal('send');
    expect(out.lines).to.have.length(1);
    expect(out.lines[0]).to.match(new RegExp(`^PRIVMSG ${ROOM} :SC1M [A-Za-z0-9+/=]+$`));

    const sealed = (out.lines[0] as string).slice(`PRIVMSG ${ROOM} :`.length);
    const shown = await lineIn(b, `@time=2026-01-01T00:00:00.000Z :alice!alice@127.0.0.1 PRIVMSG ${ROOM} :${sealed}`);
    expect(shown).to.include({ action: 'show', text: '[ok] grüße, bob' });
    expect(shown.line).to.equal(`@time=2026-01-01T00:00:00.000Z :alice!alice@127.0.0.1 PRIVMSG ${ROOM} :[ok] grüße, bob`);

    // A /me keeps its CTCP framing, with the marker inside it.
    const me = await lineOut(a, `PRIVMSG ${ROOM} :\x01ACTION waves\x01`);
    const meShown = await lineIn(b, `:alice!alice@127.0.0.1 PRIVMSG ${ROOM} :${(me.lines[0] as string).split(' :')[1]}`);
    expect(meShown.text).to.equal('\x01ACTION [ok] waves\x01');
  });

  it('flags plaintext in an encrypted room inside the line (a /me too), and passes lines that are not its business', async () => {
    const a = await plugin(alice);
    await keyUp(a, alice, 6, generateRoomKey());
    const plain = await lineIn(a, `:bob!bob@h PRIVMSG ${ROOM} :\x01ACTION not sealed\x01`);
    expect(plain).to.include({ action: 'show', line: `:bob!bob@h PRIVMSG ${ROOM} :\x01ACTION [NOT ENCRYPTED, NOT VERIFIED] not sealed\x01` });
    expect(await lineIn(a, ':carol!c@h PRIVMSG alice :hello privately')).to.include({ action: 'pass' });
    expect(await lineIn(a, ':irc.test.local 372 alice :- motd')).to.include({ action: 'pass' });
    expect(await lineOut(a, 'PRIVMSG #lobby :hi all')).to.include({ action: 'pass' });
    expect(await lineOut(a, 'PRIVMSG keybot :invite bob')).to.include({ action: 'pass' });
    expect(await lineOut(a, 'MODE #lobby +i')).to.include({ action: 'pass' });
  });

  it("answers a server's lines before `connected` without a session, and asks for `connected` for anything else", async () => {
    const agent = await startAgent({ account: 'alice', privateKey: alice.priv, socketPath: path.join(dir, `l${++n}.sock`), knownKeybotsFile: false });
    agents.push(agent);
    const c = await AgentClient.connect(agent.socketPath);
    clients.push(c);
    expect(await lineIn(c, ':irc.test.local NOTICE * :*** Looking up your hostname')).to.include({ ok: true, action: 'pass' });
    expect(await lineIn(c, 'NOTICE AUTH :*** hello')).to.include({ ok: true, action: 'pass' });
    expect(await lineIn(c, `:bob!bob@h PRIVMSG ${ROOM} :SC1M x`)).to.include({ ok: false, code: 'unknown-server' });
    expect(await lineOut(c, `PRIVMSG ${ROOM} :secret`)).to.include({ ok: false, code: 'unknown-server' });
    expect(await c.call({ op: 'line', server: SERVER, dir: 'sideways', line: 'PING x' })).to.include({ ok: false, code: 'bad-request' });
  });

  it('refuses what it cannot encrypt, and says so in events: no key, a malformed line, a PRIVMSG without text, a topic for a room', async () => {
    const a = await plugin(alice);
    const nokey = await lineOut(a, 'PRIVMSG #sc-nokey :secret');
    expect(nokey).to.include({ action: 'refuse' });
    expect(notices(nokey)).to.deep.equal([
      { server: SERVER, type: 'notice', target: '#sc-nokey', level: 'error', text: `NOT SENT: ${nokey.reason}` },
    ]);
    expect(nokey.reason).to.match(/^no key for #sc-nokey yet/);
    // Read the way the server reads it: two spaces still name the room; a list naming one is refused.
    expect(await lineOut(a, 'PRIVMSG  #sc-nokey :secret')).to.include({ action: 'refuse' });
    expect(await lineOut(a, 'PRIVMSG #lobby,#sc-nokey :secret')).to.include({ action: 'refuse' });
    expect(await lineOut(a, 'privmsg @#sc-nokey :secret')).to.include({ action: 'refuse' });
    const bare = await lineOut(a, 'PRIVMSG #sc-nokey');
    expect(bare.action).to.equal('refuse');
    expect(notices(bare)[0]!.text).to.match(/^NOT SENT: a PRIVMSG without a target and text/);
    const long = await lineOut(a, `PRIVMSG #lobby :${'x'.repeat(600)}`);
    expect(long.action, 'a line too long to parse is never passed on').to.equal('refuse');

    await keyUp(a, alice, 7, generateRoomKey());
    const topic = await lineOut(a, `TOPIC ${ROOM} :our plans`);
    expect(topic).to.include({ action: 'refuse', reason: `the topic of ${ROOM} would not be encrypted` });
    expect(notices(topic)[0]).to.include({ target: ROOM, text: `NOT SENT: the topic of ${ROOM} would not be encrypted` });
    expect(await lineOut(a, `TOPIC ${ROOM}`), 'asking for the topic').to.include({ action: 'pass' });
    expect(await lineOut(a, 'TOPIC #lobby :hello'), "an ordinary channel's topic").to.include({ action: 'pass' });

    const check = await a.call({ op: 'check', server: SERVER, target: '#sc-nokey' });
    expect(check).to.include({ action: 'refuse', encrypted: true, canSend: false });
    expect(notices(check)[0]!.text).to.match(/^NOT SENT: no key for #sc-nokey/);
    expect(await a.call({ op: 'check', server: SERVER, target: ROOM })).to.include({ action: 'pass' });
  });

  it('applies raw JOIN/PART/KICK/QUIT lines: after a KICK text is held (with a notice), and goes out under the next key as a line it then passes once', async () => {
    const a = await plugin(alice);
    await lineIn(a, `:alice!alice@h JOIN ${ROOM}`);
    await keyUp(a, alice, 8, generateRoomKey());
    expect(await lineIn(a, `:keybot!k@h KICK ${ROOM} bob :left (via keybot)`)).to.include({ action: 'pass' });
    const held = await lineOut(a, `PRIVMSG ${ROOM} :after bob`);
    expect(held.action).to.equal('hold');
    expect(notices(held)[0]).to.include({ target: ROOM, level: 'warn', text: `held: ${held.reason}` });

    const next = await keyUp(a, alice, 9, generateRoomKey(), [alice]);
    const send = next.flatMap((r) => (r.send ?? []) as Reply[]).map((s) => s.line as string);
    expect(send).to.have.length(1);
    expect(send[0]).to.match(new RegExp(`^PRIVMSG ${ROOM} :SC1M `));
    // The plugin sends it, so its outgoing hook hands it over again: it passes as it is, once.
    expect(await lineOut(a, send[0]!)).to.include({ action: 'pass' });
    const twice = await lineOut(a, send[0]!);
    expect(twice.action, 'a second copy is not one the agent asked for').to.equal('send');
    expect(twice.lines[0]).not.to.equal(send[0]);

    // A QUIT of a member suspends the key again; our own PART wipes it.
    await lineIn(a, `:bob!bob@h JOIN ${ROOM}`);
    expect((await lineOut(a, `PRIVMSG ${ROOM} :bob is back unkeyed`)).action).to.equal('hold');
    await lineIn(a, `:alice!alice@h PART ${ROOM} :bye`);
    expect((await lineOut(a, `PRIVMSG ${ROOM} :after leaving`)).action).to.equal('refuse');
  });

  it('marks released messages for protocol-3 plugins (they show event text as it is), not for older ones', async () => {
    const key = generateRoomKey();
    const a = await plugin(alice);
    const out = await lineOut(a, `PRIVMSG ${ROOM} :early bird`);
    expect(out.action, 'no key yet').to.equal('refuse');
    await keyUp(a, alice, 10, key);
    const sealed = ((await lineOut(a, `PRIVMSG ${ROOM} :early bird`)).lines[0] as string).split(' :')[1]!;

    const b3 = await plugin(bob, { marker: '+v' });
    expect(await lineIn(b3, `:alice!a@h PRIVMSG ${ROOM} :${sealed}`)).to.include({ action: 'hide' });
    const released = (await keyUp(b3, bob, 10, key)).flatMap((r) => (r.events ?? []) as Reply[]).find((e) => e.type === 'message');
    expect(released).to.include({ from: 'alice', text: '+v early bird', verified: true });

    const b2 = await plugin(bob, { protocol: 2 });
    await b2.call({ op: 'incoming', server: SERVER, from: 'alice', target: ROOM, command: 'PRIVMSG', text: sealed });
    const released2 = (await keyUp(b2, bob, 10, key)).flatMap((r) => (r.events ?? []) as Reply[]).find((e) => e.type === 'message');
    expect(released2).to.include({ text: 'early bird' });
  });
});
