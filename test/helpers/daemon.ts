/**
 * Test harness: a real daemon on port 0 in a temporary data dir, real accounts with real
 * OpenPGP keys, and real clients (irc-framework, or a raw socket for wire-level checks).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import IRC, { type Client as IrcClient, type ConnectOptions } from 'irc-framework';
import { generateUserKey } from '../../src/crypto/index.js';
import { loadConfig, type Config, type Limits } from '../../src/ircd/config.js';
import { startDaemon, type Daemon } from '../../src/ircd/daemon.js';
import { setLogLevel } from '../../src/util/log.js';

if (!process.env.SEALCHAT_LOG) setLogLevel('warn');

export interface TestUser {
  name: string;
  password: string;
  publicKey: string;
  privateKey: string;
  fingerprint: string;
}

const keyCache = new Map<string, { publicArmored: string; privateArmored: string; fingerprint: string }>();

/** A key pair per name, generated once per test process (keygen is ~3 ms, but adds up). */
export async function keyFor(name: string): Promise<{ publicArmored: string; privateArmored: string; fingerprint: string }> {
  let k = keyCache.get(name);
  if (!k) {
    k = await generateUserKey({ name });
    keyCache.set(name, k);
  }
  return k;
}

export interface TestDaemon {
  daemon: Daemon;
  port: number;
  dataDir: string;
  config: Config;
  addUser(name: string, password?: string): Promise<TestUser>;
  stop(): Promise<void>;
}

export type ConfigOverrides = Partial<Omit<Config, 'limits'>> & { limits?: Partial<Limits> };

export interface StartOptions {
  /** Use this data dir (and its sqlite store) instead of a fresh one; stop() then leaves it in place. */
  dataDir?: string;
}

export async function startTestDaemon(overrides: ConfigOverrides = {}, start: StartOptions = {}): Promise<TestDaemon> {
  const dataDir = start.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'sealchat-test-')));
  const base = await loadConfig({ dataDir, listen: ['127.0.0.1:0'] });
  const { limits, ...rest } = overrides;
  const config: Config = { ...base, ...rest, limits: { ...base.limits, ...limits } };
  const daemon = await startDaemon(config);
  const port = daemon.listeners.find((l) => !l.tls)!.port;
  return {
    daemon,
    port,
    dataDir,
    config,
    async addUser(name, password = `pw-${name}-secret`) {
      const k = await keyFor(name);
      await daemon.accounts.add({ name, password, publicKey: k.publicArmored });
      return { name, password, publicKey: k.publicArmored, privateKey: k.privateArmored, fingerprint: k.fingerprint };
    },
    async stop() {
      await daemon.close();
      if (start.dataDir === undefined) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The service account's (keybot's) password, from the credentials file the daemon wrote. */
export async function keybotPassword(t: TestDaemon): Promise<string> {
  return (JSON.parse(await readFile(t.daemon.service.credentialsFile, 'utf8')) as { password: string }).password;
}

/**
 * Connect an irc-framework client and wait until it is registered (or fails). `beforeConnect`
 * sees the client before it connects (to listen to what the server sends right after login).
 */
export function connectClient(
  port: number,
  { beforeConnect, ...opts }: Partial<ConnectOptions> & { nick: string; beforeConnect?: (client: IrcClient) => void },
): Promise<IrcClient> {
  const client = new IRC.Client();
  beforeConnect?.(client);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${opts.nick}: registration timed out`)), 8000);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      client.removeAllListeners('registered');
      client.quit();
      reject(err);
    };
    client.once('registered', () => {
      clearTimeout(timer);
      resolve(client);
    });
    client.on('irc error', (e: { reason?: string; error?: string }) => fail(new Error(`irc error: ${e.error} ${e.reason ?? ''}`)));
    client.once('close', () => fail(new Error(`${opts.nick}: connection closed before registration`)));
    client.connect({ host: '127.0.0.1', port, auto_reconnect: false, username: opts.nick, gecos: opts.nick, ...opts });
  });
}

/** Wait for an event on an irc-framework client that satisfies `pred`. */
export function waitFor<T = any>(client: IrcClient, event: string, pred: (e: T) => boolean = () => true, ms = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off(event, on);
      reject(new Error(`timed out waiting for ${event}`));
    }, ms);
    const on = (e: T): void => {
      if (!pred(e)) return;
      clearTimeout(timer);
      client.off(event, on);
      resolve(e);
    };
    client.on(event, on);
  });
}

export function quitAll(...clients: Array<IrcClient | undefined>): void {
  for (const c of clients) c?.quit();
}

/** A raw socket peer for wire-level assertions. */
export class RawClient {
  readonly lines: string[] = [];
  private buf = '';
  private waiters: Array<() => void> = [];
  closed = false;
  /** Answer server PINGs, as every real client does; off to provoke a ping timeout. */
  autoPong = true;

  private constructor(readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buf += d;
      let i: number;
      while ((i = this.buf.indexOf('\r\n')) !== -1) {
        const line = this.buf.slice(0, i);
        this.lines.push(line);
        this.buf = this.buf.slice(i + 2);
        if (this.autoPong && line.startsWith('PING ')) this.socket.write(`PONG ${line.slice(5)}\r\n`);
      }
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  send(...lines: string[]): void {
    this.socket.write(lines.map((l) => l + '\r\n').join(''));
  }

  /** Wait for a line matching `re` that arrived after index `from`; returns it. */
  async waitLine(re: RegExp, ms = 5000, from = 0): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.lines.slice(from).find((l) => re.test(l));
      if (found) return found;
      if (this.closed) throw new Error(`connection closed while waiting for ${re}; got:\n${this.lines.join('\n')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${re}; got:\n${this.lines.join('\n')}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  waitClose(ms = 5000): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed) return resolve();
      const t = setTimeout(() => reject(new Error('timed out waiting for close')), ms);
      this.socket.once('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /**
   * Send a PING with a fresh token and wait for its PONG: every line the server sent before it
   * handled the PING has arrived. Returns the index of the PONG line.
   */
  async sync(ms = 5000): Promise<number> {
    const token = `sync${Math.random().toString(36).slice(2)}`;
    this.send(`PING ${token}`);
    await this.waitLine(new RegExp(` PONG \\S+ :?${token}$`), ms);
    return this.lines.findIndex((l) => l.includes(` PONG `) && l.endsWith(token));
  }

  /** Register with PASS account:password and wait for 001. */
  async login(name: string, password: string): Promise<void> {
    this.send(`PASS ${name}:${password}`, `NICK ${name}`, `USER ${name} 0 * :${name}`);
    await this.waitLine(/ 001 /);
  }

  close(): void {
    this.socket.destroy();
  }
}
