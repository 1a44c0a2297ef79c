/**
 * The local proxy (src/client/proxy) in this process, with a raw socket as the "unmodified IRC
 * client", against the real daemon and the real keybot; SealClient and raw members on the other
 * side. The real irssi/WeeChat journeys are in test/companions.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { startKeybot } from '../../../src/bot/main.js';
import { unlockPrivateKey, type PrivateKeyHandle } from '../../../src/crypto/index.js';
import { LocalProxy, type LocalProxyOptions } from '../../../src/client/proxy/proxy.js';
import { LineSplitter } from '../../../src/client/proxy/lines.js';
import { RawClient, startTestDaemon } from '../../helpers/daemon.js';
import { ROOM_RE, startWorld, tempDir, until, type World } from '../../helpers/companions.js';
import { haveCommand } from '../../helpers/tmux.js';

describe('src/client/proxy/lines.ts', () => {
  it('splits CRLF and LF lines across chunks, keeps bytes, and refuses an endless line', () => {
    const s = new LineSplitter(16);
    expect(s.push(Buffer.from('PING a\r\nPRIV'))!.map(String)).to.deep.equal(['PING a']);
    expect(s.push(Buffer.from([0x4d, 0x53, 0x47, 0x20, 0xe9, 0x0a]))!.map((b) => [...b])).to.deep.equal([[0x50, 0x52, 0x49, 0x56, 0x4d, 0x53, 0x47, 0x20, 0xe9]]);
    expect(s.push(Buffer.from('\r\n\n'))).to.deep.equal([]);
    expect(new LineSplitter(16).push(Buffer.from('x'.repeat(40)))).to.equal(null);
    expect(new LineSplitter(16).push(Buffer.from('x'.repeat(20) + '\n'))).to.equal(null);
  });
});

describe('src/client/proxy (LocalProxy with the real daemon and keybot)', function () {
  this.timeout(30_000);
  let w: World;
  let aliceKey: PrivateKeyHandle;
  const proxies: LocalProxy[] = [];
  const raws: RawClient[] = [];

  before(async () => {
    w = await startWorld(['alice', 'bob', 'carol']);
    aliceKey = (await unlockPrivateKey({ armored: w.users.alice!.privateKey })).key!;
  });
  afterEach(async () => {
    for (const r of raws.splice(0)) r.close();
    await Promise.all(proxies.splice(0).map((p) => p.close()));
  });
  after(async () => w?.stop());

  async function proxy(opts: Partial<LocalProxyOptions> = {}): Promise<{ p: LocalProxy; up: string[] }> {
    const up: string[] = [];
    const p = await LocalProxy.start({
      listen: { host: '127.0.0.1', port: 0 },
      upstream: { host: '127.0.0.1', port: w.t.port },
      privateKey: aliceKey,
      knownKeybotsFile: false,
      keybotFingerprint: w.bot.fingerprint,
      tap: (dir, line) => {
        if (dir === 'up') up.push(line);
      },
      ...opts,
    });
    proxies.push(p);
    return { p, up };
  }

  /** A raw client through the proxy, logged in like WeeChat does (PASS, NICK, USER). */
  async function through(p: LocalProxy, nick = 'alice', password = w.users[nick]?.password ?? 'x'): Promise<RawClient> {
    const c = await RawClient.connect(p.address.port);
    raws.push(c);
    c.send(`PASS ${password}`, `NICK ${nick}`, `USER ${nick} 0 * :${nick}`);
    return c;
  }

  async function rawMember(name: string): Promise<RawClient> {
    const c = await RawClient.connect(w.t.port);
    raws.push(c);
    await c.login(name, w.users[name]!.password);
    return c;
  }

  /** alice (through the proxy) opens a room with bob (SealClient) and carol (raw); both hold its key. */
  async function openRoom(a: RawClient): Promise<string> {
    // After the invite: the daemon placed alice back in the rooms of earlier tests at login.
    const from = a.lines.length;
    a.send('PRIVMSG keybot :invite bob carol');
    const join = await a.waitLine(new RegExp(`^:alice!\\S+ JOIN :?(${ROOM_RE.source})`), 8000, from);
    const room = ROOM_RE.exec(join)![0];
    // The proxy signed alice's invite as typed; the key notice says who opened the room, verified.
    await a.waitLine(new RegExp(`^:\\*sealchat!\\S+ NOTICE ${room} :key: ${room} epoch \\d+ \\(first key\\), members alice, bob, carol; verified \\(signed by keybot\\); room opened by alice with bob, carol, verified$`), 8000, from);
    return room;
  }

  it('logs in with PASS, pins keybot, opens a room, decrypts what comes in and encrypts what goes out', async () => {
    const bob = await w.member('bob');
    const bobGot: Array<{ from: string; text: string }> = [];
    bob.on('message', (m) => bobGot.push(m));
    const carol = await rawMember('carol');
    const { p, up } = await proxy();
    const a = await through(p);
    await a.waitLine(/^:sealchat\.local 001 alice /);
    await a.waitLine(/^:\*sealchat!\S+ NOTICE alice :end-to-end encryption is on; keybot's key [0-9a-f]{40} is pinned \(matches the fingerprint you configured\)$/);
    // keybot's key came from keybot itself, in NOTICEs the client never saw.
    expect(up).to.include('PRIVMSG keybot :pubkey');
    expect(a.lines.some((l) => l.includes('BEGIN PGP'))).to.equal(false);

    const room = await openRoom(a);
    await until(() => bob.localRooms().some((r) => r.room === room && r.hasKey), "bob's key");
    // No envelope part reaches the client.
    expect(a.lines.some((l) => / :SC1[EMP] /.test(l))).to.equal(false);

    const hello = 'héllo wörld ✓ 你好 🦭';
    const long = Array.from({ length: 90 }, (_, i) => `w${i}`).join(' ') + ' ünïcödé';
    a.send(`PRIVMSG ${room} :${hello}`, `PRIVMSG ${room} :${long}`);
    await until(() => bobGot.map((m) => m.text).join('') === hello + long, () => `bob to read both; got ${JSON.stringify(bobGot)}`);
    expect(bobGot.every((m) => m.from === 'alice')).to.equal(true);

    await bob.send(room, 'hi alice ✓');
    await a.waitLine(new RegExp(`^(?:@\\S+ )?:bob!bob@127\\.0\\.0\\.1 PRIVMSG ${room} :hi alice ✓$`));
    await bob.action(room, 'waves');
    await a.waitLine(new RegExp(`^(?:@\\S+ )?:bob!\\S+ PRIVMSG ${room} :\\x01ACTION waves\\x01$`));

    // What crossed the proxy's upstream socket, and what another member's raw client received.
    const sentToRoom = up.filter((l) => l.startsWith(`PRIVMSG ${room} `));
    expect(sentToRoom.length).to.be.greaterThan(2);
    for (const l of sentToRoom) expect(l).to.match(new RegExp(`^PRIVMSG ${room} :SC1M [A-Za-z0-9+/=]+$`));
    await carol.waitLine(/^:bob!\S+ PRIVMSG #sc-\S+ :SC1M /);
    const carolSaw = carol.lines.filter((l) => / PRIVMSG #sc-/.test(l));
    for (const l of carolSaw) expect(l).to.match(/ PRIVMSG #sc-\S+ :SC1M [A-Za-z0-9+/=]+$/);
    for (const secret of ['héllo', 'w42 w43', 'hi alice', 'ACTION waves']) expect([...up, ...carol.lines].join('\n')).not.to.include(secret);
  });

  it('fails closed: no key, private messages, ordinary channels and topics are refused with a notice', async () => {
    const { p, up } = await proxy();
    const a = await through(p);
    await a.waitLine(/NOTICE alice :end-to-end encryption is on/);
    a.send('PRIVMSG #sc-abcdefghij :secret one');
    await a.waitLine(/^:\*sealchat!\S+ NOTICE #sc-abcdefghij :NOT SENT: no key for #sc-abcdefghij yet: keybot has not sent you one/);
    a.send('PRIVMSG bob :secret two');
    await a.waitLine(/^:\*sealchat!\S+ NOTICE alice :not sent to bob: private messages are not encrypted\. Open an encrypted room with: \/msg keybot invite bob$/);
    a.send('JOIN #plain', 'PRIVMSG #plain :secret three');
    await a.waitLine(/NOTICE #plain :NOT SENT: #plain is not a sealchat room .* --allow-plaintext/);
    a.send('PRIVMSG @#sc-abcdefghij :secret four', 'NOTICE #sc-abcdefghij :secret five');
    await a.waitLine(/NOTICE #sc-abcdefghij :not sent to @#sc-abcdefghij: messages to part of a room cannot be encrypted/);
    await a.waitLine(/NOTICE #sc-abcdefghij :NOT SENT: no key/, 5000, a.lines.findIndex((l) => l.includes('part of a room')));
    a.send('TOPIC #sc-abcdefghij :secret six');
    await a.waitLine(/NOTICE #sc-abcdefghij :not set: topics are not encrypted/);
    a.send(`PRIVMSG #sc-abcdefghij :secret seven ${'x'.repeat(600)}`);
    await a.waitLine(/NOTICE #sc-abcdefghij :NOT SENT: the line is longer than IRC allows; nothing was sent/);
    a.send('PRIVMSG *sealchat :status');
    // No key for the room typed into (the rooms of earlier tests, where the daemon placed alice back, have theirs).
    await a.waitLine(/NOTICE alice :keybot's key is pinned: /);
    // The marker: the proxy answers its own commands in order, so the status lines all came before this.
    a.send('PRIVMSG *sealchat :help');
    await a.waitLine(/NOTICE alice :sealchat proxy commands: /);
    expect(a.lines.filter((l) => l.includes('NOTICE alice :#sc-abcdefghij'))).to.deep.equal([]);
    // A CTCP query is not a message: it passes.
    a.send('PRIVMSG keybot :\x01VERSION\x01');
    await until(() => up.some((l) => /^PRIVMSG keybot :?\x01VERSION\x01$/.test(l)), 'the CTCP query upstream');
    expect(up.join('\n')).not.to.match(/secret (one|two|three|four|five|six|seven)/);
  });

  it('with --allow-plaintext, lets ordinary channels and private messages through, but never an encrypted room', async () => {
    const bob = await rawMember('bob');
    const { p, up } = await proxy({ allowPlaintext: true });
    const a = await through(p);
    await a.waitLine(/NOTICE alice :end-to-end encryption is on/);
    a.send('PRIVMSG bob :plain hello', 'JOIN #plain');
    await bob.waitLine(/^:alice!\S+ PRIVMSG bob :plain hello$/);
    bob.send('JOIN #plain');
    await a.waitLine(/^:bob!\S+ JOIN :?#plain/);
    a.send('PRIVMSG #plain :plain channel');
    await bob.waitLine(/^:alice!\S+ PRIVMSG #plain :plain channel$/);
    a.send('PRIVMSG #sc-abcdefghij :still secret');
    await a.waitLine(/NOTICE #sc-abcdefghij :NOT SENT: no key/);
    expect(up.join('\n')).not.to.include('still secret');
  });

  it('flags plaintext that someone writes into an encrypted room, and shows undecryptable lines as notices', async () => {
    await w.member('bob');
    const carol = await rawMember('carol');
    const { p } = await proxy();
    const a = await through(p);
    await a.waitLine(/NOTICE alice :end-to-end encryption is on/);
    const room = await openRoom(a);
    carol.send(`PRIVMSG ${room} :i do not encrypt`, `PRIVMSG ${room} :\x01ACTION shrugs\x01`, `PRIVMSG ${room} :SC1M AAAA`);
    await a.waitLine(new RegExp(`^(?:@\\S+ )?:carol!\\S+ PRIVMSG ${room} :\\[NOT ENCRYPTED, NOT VERIFIED\\] i do not encrypt$`));
    await a.waitLine(new RegExp(`:carol!\\S+ PRIVMSG ${room} :\\x01ACTION \\[NOT ENCRYPTED, NOT VERIFIED\\] shrugs\\x01$`));
    await a.waitLine(new RegExp(`^:\\*sealchat!\\S+ NOTICE ${room} :could not read a message from carol: `));
  });

  it('refuses keybot when its key is not the configured one: a warning, and no room key is accepted', async () => {
    await w.member('bob');
    const { p } = await proxy({ keybotFingerprint: '0123456789abcdef0123456789abcdef01234567' });
    const a = await through(p);
    await a.waitLine(/^:\*sealchat!\S+ NOTICE alice :WARNING: keybot's key changed! .* offered [0-9a-f]{40}, but you configured 0123456789abcdef0123456789abcdef01234567/);
    a.send('PRIVMSG keybot :invite bob');
    const join = await a.waitLine(/ JOIN :?#sc-/);
    const room = ROOM_RE.exec(join)![0];
    await a.waitLine(/NOTICE alice :refused a key envelope from keybot: keybot's key is not trusted/);
    a.send(`PRIVMSG ${room} :must not leak`);
    await a.waitLine(new RegExp(`NOTICE ${room} :NOT SENT: no key for ${room}`));
  });

  it('admits only the key owner when --user is given, and tells a client when the server is unreachable', async () => {
    const { p } = await proxy({ account: 'alice' });
    const b = await through(p, 'bob');
    await b.waitLine(/^ERROR :Closing link: this sealchat proxy holds the key of alice; log in as alice, not bob$/);
    await b.waitClose();

    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const { p: dead } = await proxy({ upstream: { host: '127.0.0.1', port } });
    const c = await through(dead);
    await c.waitLine(new RegExp(`^ERROR :Closing link: cannot reach 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
    await c.waitClose();
  });

  it('ends the server connection when the client goes away, and on close', async () => {
    const bob = await w.member('bob');
    const { p } = await proxy();
    const a = await through(p);
    await a.waitLine(/ 001 alice /);
    expect((await bob.whois('alice')).error).to.equal(undefined);
    a.close();
    await until(() => p.sessionCount === 0, 'the session to end');
    const deadline = Date.now() + 5000;
    while ((await bob.whois('alice')).error === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect((await bob.whois('alice')).error).to.equal('not_found');

    const a2 = await through(p);
    await a2.waitLine(/ 001 alice /);
    await p.close();
    await a2.waitLine(/NOTICE alice :the sealchat proxy is shutting down/);
    await a2.waitClose();
  });

  // Last: it stops the world's keybot (and starts one of its own).
  it('holds text once a member left while keybot is away: reported unsent after the hold time, or sent under the next epoch', async () => {
    const bob = await w.member('bob');
    const bobGot: string[] = [];
    bob.on('message', (m) => bobGot.push(m.text));
    const carol = await rawMember('carol');
    const { p, up } = await proxy({ outbox: { holdMs: 1500 } });
    const a = await through(p);
    await a.waitLine(/NOTICE alice :end-to-end encryption is on/);
    const room = await openRoom(a);
    await until(() => bob.localRooms().some((r) => r.room === room && r.hasKey), "bob's key");
    a.send(`PRIVMSG ${room} :before`);
    await until(() => bobGot.includes('before'), 'bob to read "before"');

    await w.bot.close();
    // A PART (a QUIT is only going offline: it changes nothing for the key).
    const from = a.lines.length;
    carol.send(`PART ${room} :bye`);
    await a.waitLine(/^:carol!\S+ PART /, 5000, from);
    const sent = up.length;
    a.send(`PRIVMSG ${room} :too late`);
    await a.waitLine(new RegExp(`^:\\*sealchat!\\S+ NOTICE ${room} :held: the key of ${room} is being replaced \\(carol left\\): held until the new key arrives \\(at most 2 s\\)$`), 5000, from);
    await a.waitLine(new RegExp(`NOTICE ${room} :NOT SENT: no key for ${room} arrived within 2 s; nothing was sent: "too late"$`), 5000, from);
    a.send(`PRIVMSG ${room} :after the new key`);
    await a.waitLine(/NOTICE #sc-\S+ :held: the key of /, 5000, a.lines.length - 1);
    expect(up.slice(sent).filter((l) => l.startsWith(`PRIVMSG ${room} `))).to.deep.equal([]);

    // keybot is back: a new epoch without carol, and the held text goes out under it.
    const bot = await startKeybot({ dataDir: w.t.dataDir, irc: { host: '127.0.0.1', port: w.t.port }, rotateAfterMessages: 1000, rotateAfterMs: 3_600_000, commands: { burst: 100 } });
    try {
      await a.waitLine(new RegExp(`NOTICE ${room} :key: ${room} epoch \\d+, members alice, bob; verified`), 15_000, from);
      await a.waitLine(new RegExp(`NOTICE ${room} :sent: a held message went out under epoch \\d+ \\(held \\d+\\.\\d s\\)$`), 5000, from);
      await until(() => bobGot.includes('after the new key'), 'bob to read the held text');
      expect(bobGot).not.to.include('too late');
    } finally {
      await bot.close();
    }

    // keybot is away again and bob leaves (from a session of his own): text is held, and given
    // up, with its text, when alice leaves the room too (her keys for it are wiped at once).
    const again = a.lines.length;
    (await rawMember('bob')).send(`PART ${room}`);
    await a.waitLine(/^:bob!\S+ PART /, 5000, again);
    const sentBefore = up.length;
    a.send(`PRIVMSG ${room} :left behind`, `PART ${room}`);
    await a.waitLine(new RegExp(`NOTICE ${room} :held: the key of ${room} is being replaced \\(bob left\\)`), 5000, again);
    await a.waitLine(new RegExp(`NOTICE ${room} :NOT SENT: you left ${room}; nothing was sent: "left behind"$`), 5000, again);
    expect(up.slice(sentBefore).filter((l) => l.startsWith(`PRIVMSG ${room} `))).to.deep.equal([]);
  });
});

describe('src/client/proxy to a TLS listener', function () {
  this.timeout(30_000);

  it('logs in over TLS, and refuses a certificate it cannot verify unless told to skip the check', async function () {
    if (!(await haveCommand('openssl'))) this.skip();
    const { dir, remove } = await tempDir('sc-proxy-tls-');
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=localhost', '-keyout', key, '-out', cert]);
    const t = await startTestDaemon({ listen: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 0, tls: { cert, key } }] });
    const proxies: LocalProxy[] = [];
    const raws: RawClient[] = [];
    try {
      const alice = await t.addUser('alice');
      const privateKey = (await unlockPrivateKey({ armored: alice.privateKey })).key!;
      const tlsPort = t.daemon.listeners.find((l) => l.tls)!.port;
      const start = async (rejectUnauthorized: boolean): Promise<RawClient> => {
        const p = await LocalProxy.start({
          listen: { host: '127.0.0.1', port: 0 },
          upstream: { host: '127.0.0.1', port: tlsPort, tls: true, rejectUnauthorized },
          privateKey,
          knownKeybotsFile: false,
          keyFetchTimeoutMs: 1000,
        });
        proxies.push(p);
        const c = await RawClient.connect(p.address.port);
        raws.push(c);
        c.send(`PASS ${alice.password}`, 'NICK alice', 'USER alice 0 * :alice');
        return c;
      };
      const strict = await start(true);
      await strict.waitLine(/^ERROR :Closing link: cannot reach 127\.0\.0\.1:\d+: self.signed certificate/);
      const insecure = await start(false);
      await insecure.waitLine(/ 001 alice /);
      // No keybot on this server: the proxy says so instead of pretending.
      await insecure.waitLine(/NOTICE alice :cannot get keybot's key: keybot is not online; encrypted rooms get no keys/);
    } finally {
      for (const r of raws) r.close();
      await Promise.all(proxies.map((p) => p.close()));
      await t.stop();
      await remove();
    }
  });
});
