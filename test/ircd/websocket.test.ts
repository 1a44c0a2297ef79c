/**
 * src/ircd/server/websocket.ts: IRC over WebSocket (IRCv3 WebSocket spec) on a daemon with a TCP
 * and a WebSocket listener. The same sessions: login, limits, fan-out across both transports.
 */
import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { WebSocket } from 'ws';
import { makeSelfSignedCertificate } from '../../src/crypto/self-signed.js';
import { MAX_WS_MESSAGE } from '../../src/ircd/server/websocket.js';
import { startTestDaemon, type TestDaemon, type TestUser } from '../helpers/daemon.js';
import { LineConn } from '../hardening/harness.js';

/** One WebSocket connection, its messages kept as lines (with their frame kind). */
class WsConn {
  readonly lines: string[] = [];
  readonly binary: boolean[] = [];
  closed = false;
  closeCode = 0;
  private waiters: Array<() => void> = [];

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const line = data.toString('utf8');
      this.lines.push(line);
      this.binary.push(isBinary);
      if (line.startsWith('PING ')) ws.send(`PONG ${line.slice(5)}`);
      this.wake();
    });
    ws.on('close', (code: number) => {
      this.closed = true;
      this.closeCode = code;
      this.wake();
    });
    ws.on('error', () => undefined);
  }

  static open(url: string, protocols: string[], opts: { origin?: string; ca?: string } = {}): Promise<WsConn> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, protocols, {
        ...(opts.origin ? { origin: opts.origin } : {}),
        ...(opts.ca ? { ca: opts.ca } : {}),
      });
      ws.once('open', () => resolve(new WsConn(ws)));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  send(...lines: string[]): void {
    for (const l of lines) this.ws.send(l);
  }

  async waitLine(re: RegExp, ms = 5000, from = 0): Promise<string> {
    const deadline = Date.now() + ms;
    let i = from;
    for (;;) {
      for (; i < this.lines.length; i++) if (re.test(this.lines[i]!)) return this.lines[i]!;
      if (this.closed) throw new Error(`closed while waiting for ${re}; last: ${this.lines.slice(-5).join(' | ')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${re}; last: ${this.lines.slice(-5).join(' | ')}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async waitClose(ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('timed out waiting for close');
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async login(name: string, password: string): Promise<void> {
    const from = this.lines.length;
    this.send(`PASS ${name}:${password}`, `NICK ${name}`, `USER ${name} 0 * :${name}`);
    await this.waitLine(/^(?:@\S+ )?:\S+ 001 /, 8000, from);
  }

  close(): void {
    this.ws.terminate();
  }
}

describe('src/ircd/server/websocket.ts', function () {
  this.timeout(20_000);
  let dir: string;
  let cert: { certPem: string; keyPem: string };
  let t: TestDaemon;
  let wsUrl: string;
  let wssUrl: string;
  let alice: TestUser;
  let bob: TestUser;
  const open: Array<WsConn | LineConn> = [];
  const track = <T extends WsConn | LineConn>(c: T): T => {
    open.push(c);
    return c;
  };

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-ws-'));
    cert = makeSelfSignedCertificate();
    await writeFile(path.join(dir, 'cert.pem'), cert.certPem);
    await writeFile(path.join(dir, 'key.pem'), cert.keyPem, { mode: 0o600 });
    await writeFile(path.join(dir, 'index.html'), '<!doctype html><title>sealchat</title>');
    t = await startTestDaemon({
      listen: [
        { host: '127.0.0.1', port: 0 },
        { host: '127.0.0.1', port: 0, websocket: { origins: ['https://chat.example.org'], page: dir } },
        { host: '127.0.0.1', port: 0, tls: { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') }, websocket: { origins: [], page: false } },
      ],
      limits: { commandBurst: 5, commandsPerSecond: 5, recvqBytes: 4096 },
    });
    const ws = t.daemon.listeners.find((l) => l.websocket && !l.tls)!;
    const wss = t.daemon.listeners.find((l) => l.websocket && l.tls)!;
    wsUrl = `ws://127.0.0.1:${ws.port}/`;
    wssUrl = `wss://localhost:${wss.port}/`;
    alice = await t.addUser('alice');
    bob = await t.addUser('bob');
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });
  after(async () => {
    await t?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('negotiates binary.ircv3.net when offered, else text.ircv3.net, and takes a client that offers neither as text', async () => {
    const both = track(await WsConn.open(wsUrl, ['text.ircv3.net', 'binary.ircv3.net']));
    expect(both.ws.protocol).to.equal('binary.ircv3.net');
    const text = track(await WsConn.open(wsUrl, ['text.ircv3.net']));
    expect(text.ws.protocol).to.equal('text.ircv3.net');
    const none = track(await WsConn.open(wsUrl, []));
    expect(none.ws.protocol).to.equal('');
    for (const c of [both, text, none]) c.send('PING :hello');
    await both.waitLine(/ PONG \S+ :?hello$/);
    await text.waitLine(/ PONG \S+ :?hello$/);
    await none.waitLine(/ PONG \S+ :?hello$/);
    expect(both.binary.at(-1)).to.equal(true);
    expect(text.binary.at(-1)).to.equal(false);
    expect(none.binary.at(-1)).to.equal(false);
  });

  it('logs in with PASS and sends one IRC line per message, without CR LF, as TCP clients get them', async () => {
    const c = track(await WsConn.open(wsUrl, ['text.ircv3.net']));
    await c.login('alice', alice.password);
    await c.waitLine(/ 376 | 422 /);
    for (const l of c.lines) expect(l).to.not.match(/[\r\n]/);
    // The welcome burst is many lines: each is its own message.
    expect(c.lines.filter((l) => / 00[1-5] /.test(l)).length).to.be.at.least(5);
  });

  it('relays between a WebSocket and a TCP client (one session type, two transports), non-ASCII intact', async () => {
    const a = track(await WsConn.open(wsUrl, ['text.ircv3.net']));
    await a.login('alice', alice.password);
    const b = track(await LineConn.connect(t.port));
    await b.login('bob', bob.password);
    a.send('PRIVMSG bob :grüße, 世界');
    await b.waitLine(/:alice!\S+ PRIVMSG bob :grüße, 世界$/);
    b.send('PRIVMSG alice :ñandú ✓');
    await a.waitLine(/:bob!\S+ PRIVMSG alice :ñandú ✓$/);
  });

  it('closes a connection whose message holds two lines, and never runs the second', async () => {
    const a = track(await WsConn.open(wsUrl, ['text.ircv3.net']));
    await a.login('alice', alice.password);
    const b = track(await LineConn.connect(t.port));
    await b.login('bob', bob.password);
    const from = b.lines.length;
    a.send('PRIVMSG bob :first\r\nPRIVMSG bob :smuggled');
    await a.waitLine(/^ERROR :Closing link: a WebSocket message must hold exactly one IRC line/);
    await a.waitClose();
    // The marker comes after anything alice's message could have caused.
    const c = track(await WsConn.open(wsUrl, ['text.ircv3.net']));
    await c.login('alice', alice.password);
    c.send('PRIVMSG bob :marker');
    await b.waitLine(/PRIVMSG bob :?marker$/, 5000, from);
    expect(b.lines.slice(from).filter((l) => /first|smuggled/.test(l))).to.deep.equal([]);
  });

  it('answers an overlong line with 417 and keeps the connection, as on TCP', async () => {
    const a = track(await WsConn.open(wsUrl, ['binary.ircv3.net']));
    await a.login('alice', alice.password);
    a.send(`PRIVMSG bob :${'x'.repeat(9000)}`);
    await a.waitLine(/ 417 alice :Input line was too long/);
    a.send('PING :still-here');
    await a.waitLine(/ PONG \S+ :?still-here$/);
    // A message no line could ever fill is not buffered whole: ws closes with 1009 (too big).
    a.send(`PRIVMSG bob :${'x'.repeat(MAX_WS_MESSAGE + 1)}`);
    await a.waitClose();
    expect(a.closeCode).to.equal(1009);
  });

  it('applies fakelag and the recvq: a flood past it is dropped with Excess Flood', async () => {
    const a = track(await WsConn.open(wsUrl, ['text.ircv3.net']));
    await a.login('alice', alice.password);
    const sentAt = Date.now();
    const from = a.lines.length;
    for (let i = 0; i < 12; i++) a.send(`WHOIS n${i}`);
    await a.waitLine(/ 401 alice n11 /, 8000, from);
    // 5 at once, then 5 per second (the login used some tokens): at least a second for the rest.
    expect(Date.now() - sentAt).to.be.greaterThan(900);
    a.send(...Array.from({ length: 400 }, (_, i) => `WHOIS flood-${i}`));
    await a.waitLine(/^ERROR :Closing link: .*Excess Flood/, 5000);
  });

  it('refuses a handshake from an Origin not allowed, and takes the listed one, its own, and none', async () => {
    let err: Error | undefined;
    await WsConn.open(wsUrl, ['text.ircv3.net'], { origin: 'https://evil.example' }).then(
      (c) => track(c),
      (e: Error) => (err = e),
    );
    expect(err?.message).to.equal('HTTP 403');
    track(await WsConn.open(wsUrl, ['text.ircv3.net'], { origin: 'https://chat.example.org' }));
    track(await WsConn.open(wsUrl, ['text.ircv3.net'], { origin: `http://${new URL(wsUrl).host}` }));
    track(await WsConn.open(wsUrl, ['text.ircv3.net']));
  });

  it('serves the page at GET / with a strict Content-Security-Policy, and nothing outside its folder', async () => {
    const base = wsUrl.replace('ws:', 'http:');
    const res = await fetch(base);
    expect(res.status).to.equal(200);
    expect(await res.text()).to.contain('<title>sealchat</title>');
    expect(res.headers.get('content-security-policy')).to.contain("script-src 'self'");
    expect((await fetch(`${base}..%2Fcert.pem`)).status).to.equal(404);
    expect((await fetch(`${base}.hidden`)).status).to.equal(404);
  });

  it('speaks TLS with the listener certificate (wss://), logging in like any client', async () => {
    const c = track(await WsConn.open(wssUrl, ['text.ircv3.net'], { ca: cert.certPem }));
    await c.login('bob', bob.password);
    let err: Error | undefined;
    await WsConn.open(wssUrl, ['text.ircv3.net']).then((x) => track(x), (e: Error) => (err = e));
    expect(err?.message).to.match(/self[- ]signed|unable to verify|certificate/i);
  });

  it('counts WebSocket connections in the same per-IP clone limit as TCP ones', async () => {
    const t2 = await startTestDaemon({
      listen: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 0, websocket: { origins: [], page: false } }],
      limits: { clonesPerIp: 2, exemptIps: [] },
    });
    try {
      const url = `ws://127.0.0.1:${t2.daemon.listeners.find((l) => l.websocket)!.port}/`;
      track(await LineConn.connect(t2.port));
      const second = track(await WsConn.open(url, ['text.ircv3.net']));
      second.send('PING :ok');
      await second.waitLine(/PONG/);
      const third = track(await WsConn.open(url, ['text.ircv3.net']));
      await third.waitLine(/^ERROR :Closing link: .*Too many connections from your address/);
      await third.waitClose();
    } finally {
      for (const c of open.splice(0)) c.close();
      await t2.stop();
    }
  });
});
