/**
 * Test harness for keybot: a real daemon, a real keybot in this process, real irc-framework users
 * that collect keybot's NOTICEs and open their envelopes with their own keys (src/crypto).
 */
import type { Client as IrcClient } from 'irc-framework';
import {
  advanceRoster,
  classifyLine,
  EnvelopeStatus,
  isEpochNotice,
  openEnvelope,
  openJoinEnvelope,
  PartsReassembler,
  peekKeyLine,
  RoomOpStatus,
  unwrapEpochKey,
  verifyEpochNotice,
  PartStatus,
  readPublicKey,
  unlockPrivateKey,
  type EnvelopePayload,
  type PrivateKeyHandle,
  type PublicKeyHandle,
} from '../../src/crypto/index.js';
import { RoomOperations } from '../../src/client/core/operations.js';
import { startKeybot, type Keybot, type KeybotOptions } from '../../src/bot/main.js';
import { setLogLevel, type LogLevel } from '../../src/util/log.js';
import { connectClient, startTestDaemon, type ConfigOverrides, type TestDaemon, type TestUser } from '../helpers/daemon.js';

export interface OpenedEnvelope {
  payload: EnvelopePayload;
  /** How many NOTICE lines it came in (a key line: 1; its epoch notice is counted in `noticeParts`). */
  parts: number;
  at: number;
  /** How it came (envelope version 3): a join envelope, or the epoch notice and our key line; `v2` for the older envelope. */
  via: 'join' | 'key-line' | 'v2';
  /** For a key line: how many NOTICE lines its epoch notice took. */
  noticeParts?: number;
}

/** A logged-in user who records keybot's replies and opens the envelopes keybot sends them. */
export class TestMember {
  readonly notices: string[] = [];
  readonly envelopes: OpenedEnvelope[] = [];
  readonly failures: string[] = [];
  readonly channelNotices: Array<{ target: string; text: string }> = [];
  /** Proposals this member's companion half refused to sign. */
  readonly refusals: string[] = [];
  /** The companion's signing half: invites this member types are signed when keybot proposes them. */
  readonly operations: RoomOperations;
  /** Every envelope part keybot sent this member, complete or not. */
  partsReceived = 0;
  private readonly reassembler = new PartsReassembler();
  private readonly noticeReassembler = new PartsReassembler();
  private partsSeen = 0;
  private noticePartsSeen = 0;
  /** Version 3: our member key per room, and the verified notice waiting for our key line. */
  private readonly memberKeys = new Map<string, Uint8Array>();
  private readonly notices3 = new Map<string, { epoch: number; digest: Uint8Array; roster: EnvelopePayload['members']; issuedAt: number; parts: number }>();
  /** Epoch notices this member refused (advanceRoster), with why. */
  readonly refusedNotices: string[] = [];
  /** The signed operations that came with each join envelope and accepted epoch notice, in order. */
  readonly opsSeen: Array<{ room: string; data: Uint8Array }> = [];
  private waiters = new Set<() => void>();

  constructor(
    readonly name: string,
    readonly client: IrcClient,
    private readonly key: PrivateKeyHandle,
    private readonly keybotKey: () => PublicKeyHandle,
  ) {
    this.operations = new RoomOperations(name, key);
    client.on('notice', (e: { nick?: string; target: string; message: string }) => {
      if (e.nick?.toLowerCase() !== 'keybot') return;
      if (e.target.startsWith('#') && classifyLine(e.message) === 'envelope-part') {
        // An epoch notice (envelope version 3), to the room.
        this.noticePartsSeen++;
        const r = this.noticeReassembler.accept({ sender: e.target, line: e.message, now: Date.now() });
        if (r.status === PartStatus.COMPLETE) this.notice(r.data!, this.noticePartsSeen);
        this.wake();
        return;
      }
      if (!e.target.startsWith('#') && e.message.startsWith('SC1K ')) {
        this.keyLine(e.message);
        this.wake();
        return;
      }
      if (e.target.startsWith('#')) {
        this.channelNotices.push({ target: e.target, text: e.message });
        this.wake();
        return;
      }
      if (classifyLine(e.message) === 'proposal-part') {
        // keybot proposes the invite we asked for: sign it as a companion does (src/client/core/operations.ts).
        const answer = this.operations.proposalPart(e.message, (room) => this.latest(room)?.payload.members, Date.now());
        for (const line of answer?.lines ?? []) this.client.say('keybot', line);
        if (answer?.refused) this.refusals.push(answer.refused);
        this.wake();
        return;
      }
      if (classifyLine(e.message) !== 'envelope-part') {
        this.notices.push(e.message);
        this.wake();
        return;
      }
      this.partsSeen++;
      this.partsReceived++;
      const r = this.reassembler.accept({ sender: e.nick, line: e.message, now: Date.now() });
      if (r.status === PartStatus.COMPLETE) void this.open(r.data!, this.partsSeen);
      else if (r.status !== PartStatus.INCOMPLETE) this.failures.push(`part: ${r.status}`);
    });
  }

  private async open(data: Uint8Array, parts: number): Promise<void> {
    this.partsSeen = 0;
    const now = Date.now();
    const j = await openJoinEnvelope({ data, decryptionKey: this.key, keybotKey: this.keybotKey(), expectedAccount: this.name, now });
    if (j.status === EnvelopeStatus.OK && j.payload) {
      const p = j.payload;
      this.memberKeys.set(p.room.toLowerCase(), p.memberKey);
      for (const data of p.ops) this.opsSeen.push({ room: p.room, data });
      this.envelopes.push({ payload: { room: p.room, epoch: p.epoch, key: p.key, members: p.roster, issuedAt: p.issuedAt }, parts, at: now, via: 'join' });
    } else if (j.legacy) {
      const res = await openEnvelope({ data, decryptionKey: this.key, signerKey: this.keybotKey(), expectedAccount: this.name, now });
      if (res.status === EnvelopeStatus.OK) this.envelopes.push({ payload: res.payload!, parts, at: now, via: 'v2' });
      else this.failures.push(`envelope: ${res.status} ${res.reason ?? ''}`);
    } else this.failures.push(`envelope: ${j.status} ${j.reason ?? ''}`);
    this.wake();
  }

  /** An epoch notice: followed only from the epoch we hold (the latest we opened), as a companion does. */
  private notice(data: Uint8Array, parts: number): void {
    this.noticePartsSeen = 0;
    if (!isEpochNotice(data)) return;
    const v = verifyEpochNotice({ data, keybotKey: this.keybotKey(), now: Date.now() });
    if (v.status !== EnvelopeStatus.OK || !v.notice) {
      this.failures.push(`notice: ${v.status}`);
      return;
    }
    const n = v.notice;
    const held = this.latest(n.room);
    if (!held || held.payload.epoch !== n.prev) return;
    const r = advanceRoster({ roster: held.payload.members, notice: n });
    if (r.status !== RoomOpStatus.OK) {
      this.refusedNotices.push(`${n.room}@${n.epoch}: ${r.status} ${r.reason ?? ''}`);
      return;
    }
    for (const data of n.ops) this.opsSeen.push({ room: n.room, data });
    this.notices3.set(n.room.toLowerCase(), { epoch: n.epoch, digest: v.digest!, roster: r.roster!, issuedAt: n.issuedAt, parts });
  }

  private keyLine(line: string): void {
    const peek = peekKeyLine(line);
    if (!peek) return;
    const n = this.notices3.get(peek.room.toLowerCase());
    const mk = this.memberKeys.get(peek.room.toLowerCase());
    if (!n || !mk || n.epoch !== peek.epoch) {
      this.failures.push(`key line for ${peek.room}@${peek.epoch} without its notice`);
      return;
    }
    const k = unwrapEpochKey({ line, memberKey: mk, account: this.name, digest: n.digest });
    if (!k) {
      this.failures.push(`key line for ${peek.room}@${peek.epoch} does not open`);
      return;
    }
    this.envelopes.push({ payload: { room: k.room, epoch: k.epoch, key: k.key, members: n.roster, issuedAt: n.issuedAt }, parts: 1, at: Date.now(), via: 'key-line', noticeParts: n.parts });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Wait until `check` returns something truthy (re-checked on every NOTICE). */
  async until<T>(check: () => T | undefined | false, what: string, ms = 8000): Promise<T> {
    const first = check();
    if (first) return first;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`${this.name}: timed out waiting for ${what}; notices: ${JSON.stringify(this.notices)}; envelopes: ${this.envelopes.map((e) => `${e.payload.room}@${e.payload.epoch}`).join(' ')}; failures: ${this.failures.join("; ")}; refusals: ${this.refusals.join("; ")}`));
      }, ms);
      const w = (): void => {
        const v = check();
        if (!v) return;
        clearTimeout(timer);
        this.waiters.delete(w);
        resolve(v);
      };
      this.waiters.add(w);
    });
  }

  /** Send a command and wait for the first reply NOTICE that matches `re`. */
  async ask(command: string, re: RegExp, ms = 8000): Promise<string> {
    const from = this.notices.length;
    this.operations.typed(command, Date.now());
    this.client.say('keybot', command);
    return this.until(() => this.notices.slice(from).find((n) => re.test(n)), `reply ${re} to "${command}"`, ms);
  }

  /** The next envelope for `room` with an epoch above `after`. */
  envelopeFor(room: string, after = -1, ms = 8000): Promise<OpenedEnvelope> {
    return this.until(
      () => this.envelopes.find((e) => e.payload.room.toLowerCase() === room.toLowerCase() && e.payload.epoch > after),
      `an envelope for ${room} after epoch ${after}`,
      ms,
    );
  }

  latest(room: string): OpenedEnvelope | undefined {
    return this.envelopes.filter((e) => e.payload.room.toLowerCase() === room.toLowerCase()).at(-1);
  }

  quit(): void {
    this.client.quit();
  }
}

export interface BotWorld {
  t: TestDaemon;
  bot: Keybot;
  users: Record<string, TestUser>;
  login(name: string): Promise<TestMember>;
  /** Close keybot, run `whileDown`, start a new instance. */
  restartBot(overrides?: Partial<KeybotOptions>, whileDown?: () => Promise<void>): Promise<Keybot>;
  keybotOptions(overrides?: Partial<KeybotOptions>): KeybotOptions;
  stop(): Promise<void>;
}

/** A daemon with `names` as users, and keybot running against it. */
export async function startWorld(names: string[], opts: { daemon?: ConfigOverrides; bot?: Partial<KeybotOptions> } = {}): Promise<BotWorld> {
  const t = await startTestDaemon(opts.daemon);
  const users: Record<string, TestUser> = {};
  for (const n of names) users[n] = await t.addUser(n);
  const keybotOptions = (overrides: Partial<KeybotOptions> = {}): KeybotOptions => ({
    dataDir: t.dataDir,
    irc: { host: '127.0.0.1', port: t.port },
    rotateAfterMessages: t.config.keybot.rotateAfterMessages,
    rotateAfterMs: t.config.keybot.rotateAfterMs,
    ...opts.bot,
    ...overrides,
  });
  let bot = await startKeybot(keybotOptions());
  let botKey: PublicKeyHandle = (await readPublicKey({ armored: bot.identity.publicArmored })).key!;
  const clients: TestMember[] = [];
  const world: BotWorld = {
    t,
    get bot() {
      return bot;
    },
    users,
    async login(name) {
      const u = users[name]!;
      const key = (await unlockPrivateKey({ armored: u.privateKey })).key!;
      // The member listens before it connects: the daemon delivers the mailbox (envelopes sealed
      // while the member was offline) right after registration.
      let m: TestMember | undefined;
      await connectClient(t.port, {
        nick: name,
        password: u.password,
        beforeConnect: (client) => {
          m = new TestMember(name, client, key, () => botKey);
        },
      });
      clients.push(m!);
      return m!;
    },
    async restartBot(overrides, whileDown) {
      await bot.close();
      await whileDown?.();
      bot = await startKeybot(keybotOptions(overrides));
      botKey = (await readPublicKey({ armored: bot.identity.publicArmored })).key!;
      return bot;
    },
    keybotOptions,
    async stop() {
      for (const c of clients) c.quit();
      await bot.close();
      await t.stop();
    },
  };
  return world;
}

/**
 * `login` for the tests of one describe: a member of `world()` that quits after the test it logged
 * in for (an afterEach hook, then a short pause for the daemon to see the QUITs).
 */
export function loginPerTest(world: () => BotWorld): (name: string) => Promise<TestMember> {
  const online: TestMember[] = [];
  afterEach(async () => {
    const gone = online.splice(0);
    for (const m of gone) m.quit();
    // The next test starts once the daemon has seen the QUITs.
    await waitUntil(() => gone.every((m) => world().t.daemon.server.findClient(m.name) === undefined), 'the members offline');
  });
  return async (name) => {
    const m = await world().login(name);
    online.push(m);
    return m;
  };
}

/** Poll `check` every 20 ms until it holds. */
export async function waitUntil(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Members of a channel as the daemon sees them. */
export function channelMembers(t: TestDaemon, room: string): string[] {
  const ch = t.daemon.server.channels.get(room.toLowerCase());
  return ch ? [...ch.members.keys()].map((c) => c.nick).sort() : [];
}

export function channelFlags(t: TestDaemon, room: string): string {
  const ch = t.daemon.server.channels.get(room.toLowerCase());
  return ch ? [...ch.flags].sort().join('') : '';
}

/** Run `fn` with warnings on, and return the log lines at warn level or above it wrote. */
export async function captureWarnings(fn: () => Promise<void>): Promise<string[]> {
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  setLogLevel('warn');
  process.stderr.write = ((chunk: string | Uint8Array): boolean => {
    lines.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    await fn();
  } finally {
    process.stderr.write = write;
    setLogLevel((process.env.SEALCHAT_LOG as LogLevel | undefined) || 'warn');
  }
  return lines;
}
