/**
 * Member companions (SealClient) hosted in worker processes for bench/keys.ts, so that the
 * members' work (parsing JOINs and envelope NOTICEs, openEnvelope) neither runs in the daemon's
 * event loop nor is serialised through a single loop: in a real deployment every member runs on
 * its own machine. The workers are bench/lib/members-proc.ts, forked and driven over the fork IPC
 * channel: requests carry an id and get exactly one reply (or error); 'key' and 'envelope' events
 * stream in between, stamped with {@link wallNow} so that times compare across processes.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Milliseconds on a clock shared by every process on this machine (sub-millisecond resolution). */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

export interface MemberLogin {
  name: string;
  password: string;
  privateKeyArmored: string;
}

/** What each command takes. */
export interface Commands {
  /** Log these members in (PASS), one after the other. */
  connect: { port: number; keybotPublicKey?: string; keybotFingerprint?: string; members: MemberLogin[] };
  /**
   * `name` sends `invite` (the first list of names), waits for its own JOIN, then sends
   * `invite <room> ...` for the other lists. Replies as soon as the room is known.
   */
  invite: { name: string; commands: string[][] };
  /** `name` sends one `invite <room> ...` (again, up to 3 times, while keybot asks to invite again). */
  'invite-more': { name: string; room: string; names: string[] };
  /** keybot's replies to the last `invite` of `name` (they settle after 300 ms of keybot silence). */
  'invite-replies': { name: string };
  /** These members (default: all of this process's) leave `room`; replies when keybot answered each. */
  leave: { room: string; names?: string[] };
  /** This process's CPU time since the previous 'cpu' command (or its start). */
  cpu: Record<string, never>;
  /** Bytes (whole IRC lines with CRLF) and lines each member read from keybot since the previous 'reads'. */
  reads: Record<string, never>;
  /** A round trip: every event sent before the reply has been delivered. */
  sync: Record<string, never>;
  /** Quit every member, then exit. */
  quit: Record<string, never>;
}

export interface Replies {
  connect: { names: string[] };
  /** `sentAt`: when the first invite command was handed to the socket (wallNow). */
  invite: { room: string; sentAt: number };
  'invite-replies': { lines: string[] };
  'invite-more': { lines: string[] };
  /** `sentAt`: when the first leave was sent; `doneAt`: when keybot's last reply had settled. */
  leave: { sentAt: number; doneAt: number; lines: string[] };
  cpu: { userMs: number; systemMs: number };
  reads: { members: Record<string, { bytes: number; lines: number }> };
  sync: Record<string, never>;
  quit: Record<string, never>;
}

export type ToMembers = { [K in keyof Commands]: { id: number; cmd: K } & Commands[K] }[keyof Commands];

/** A member installed a room key (the SealClient 'key' event). */
export interface KeyInstall {
  name: string;
  room: string;
  epoch: number;
  /** How many members the epoch lists. */
  count: number;
  t: number;
}

/** A member had read the last SC1E part of an envelope off the wire. */
export interface EnvelopeReceived {
  name: string;
  envelope: string;
  t: number;
}

export type FromMembers =
  | { ev: 'ready' }
  | { ev: 'reply'; id: number; data: unknown }
  | { ev: 'error'; id: number; message: string }
  | ({ ev: 'key' } & KeyInstall)
  | ({ ev: 'envelope' } & EnvelopeReceived)
  /** A member's connection closed (not at 'quit'): `reason` is the daemon's ERROR line if it sent one. */
  | { ev: 'lost'; name: string; reason: string }
  /** An uncaught error: the process exits next. */
  | { ev: 'fatal'; message: string };

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'members-proc.ts');
const lower = (s: string): string => s.toLowerCase();

class MemberProc {
  readonly child: ChildProcess;
  private nextId = 1;
  private pending = new Map<number, { resolve: (d: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  exited = false;
  stopping = false;
  fatal?: string;

  constructor(
    readonly index: number,
    onMessage: (m: FromMembers) => void,
    onExit: (p: MemberProc, code: number | null, signal: NodeJS.Signals | null) => void,
  ) {
    this.child = fork(SCRIPT, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (m: FromMembers) => {
      if (m.ev === 'reply' || m.ev === 'error') {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        clearTimeout(p.timer);
        if (m.ev === 'reply') p.resolve(m.data);
        else p.reject(new Error(`${this.label}: ${m.message}`));
        return;
      }
      if (m.ev === 'fatal') this.fatal = m.message;
      onMessage(m);
    });
    this.child.on('error', (err) => {
      // fork failed or the channel broke; 'exit' follows for a process that had started.
      this.fatal ??= err.message;
    });
    this.child.on('exit', (code, signal) => {
      this.exited = true;
      const err = this.exitError(code, signal);
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        p.reject(err);
      }
      this.pending.clear();
      onExit(this, code, signal);
    });
  }

  get label(): string {
    return `member process ${this.index + 1} (pid ${this.child.pid})`;
  }

  exitError(code: number | null, signal: NodeJS.Signals | null): Error {
    return new Error(`${this.label} exited ${signal ? `on ${signal}` : `with code ${code}`}${this.fatal ? `: ${this.fatal}` : ''}`);
  }

  request<K extends keyof Commands>(cmd: K, args: Commands[K], timeoutMs = 60_000): Promise<Replies[K]> {
    return new Promise((resolve, reject) => {
      if (this.exited) return reject(new Error(`${this.label} has exited`));
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.label}: no reply to '${cmd}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (d: unknown) => void, reject, timer });
      this.child.send({ id, cmd, ...args } as ToMembers);
    });
  }

  /** Ask it to quit its members and exit; SIGKILL if it has not gone within `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopping = true;
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
    const kill = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    this.request('quit', {}, graceMs).catch(() => this.child.kill('SIGKILL'));
    await gone;
    clearTimeout(kill);
  }
}

/**
 * W worker processes hosting the members, spread round-robin (member i in process i mod W), and
 * what they report: every key install and every completely received envelope, by member name.
 */
export class MemberProcs {
  private readonly procs: MemberProc[] = [];
  private readonly home = new Map<string, MemberProc>();
  /** Key installs per member, in arrival order. */
  readonly installs = new Map<string, KeyInstall[]>();
  /** Completely received envelopes per member, in arrival order. */
  readonly envelopes = new Map<string, EnvelopeReceived[]>();
  private readonly waiters = new Set<() => void>();
  private failure?: Error;

  private constructor(count: number, names: string[], inviterAlone: boolean) {
    // The inviter (names[0]) in a process of its own: beside a thousand other companions, each
    // reading every JOIN of a large opening, its reply to keybot's proposal waited behind them past
    // keybot's 30 s for signing (the 2,000-member runs, refused at 1,297 and twice at 1,585 members).
    const total = inviterAlone ? count + 1 : count;
    for (let i = 0; i < total; i++) {
      this.procs.push(new MemberProc(i, (m) => this.onEvent(m), (p, code, signal) => {
        if (!p.stopping) this.fail(p.exitError(code, signal));
      }));
    }
    names.forEach((name, i) => {
      // With the inviter alone, it takes the extra process and the others round-robin after it.
      const shared = inviterAlone ? i - 1 : i;
      this.home.set(lower(name), shared < 0 ? this.procs[count]! : this.procs[shared % count]!);
      this.installs.set(lower(name), []);
      this.envelopes.set(lower(name), []);
    });
  }

  /** Fork `count` processes for `names` (round-robin; and one more for names[0] alone, if asked) and wait until each has loaded. */
  static async start(count: number, names: string[], opts: { inviterAlone?: boolean } = {}): Promise<MemberProcs> {
    const set = new MemberProcs(count, names, opts.inviterAlone === true);
    const ready = set.procs.map((p) => new Promise<void>((resolve) => p.child.once('message', () => resolve())));
    try {
      await set.guard(Promise.all(ready), 'member processes starting', 60_000);
    } catch (err) {
      await set.stop();
      throw err;
    }
    return set;
  }

  get size(): number {
    return this.procs.length;
  }

  get pids(): number[] {
    return this.procs.map((p) => p.child.pid!).filter((pid) => pid !== undefined);
  }

  /** Which process (0-based) hosts `name`. */
  processOf(name: string): number {
    return this.proc(name).index;
  }

  /** Fail every wait from now on (a process died, or keybot did). */
  fail(err: Error): void {
    this.failure ??= err;
    for (const w of [...this.waiters]) w();
  }

  async connect(o: Omit<Commands['connect'], 'members'> & { members: MemberLogin[] }): Promise<void> {
    await Promise.all(
      this.procs.map((p) => {
        const mine = o.members.filter((m) => this.proc(m.name) === p);
        return mine.length === 0 ? undefined : this.guard(p.request('connect', { ...o, members: mine }, 1_800_000), 'members logging in', 1_800_000);
      }),
    );
  }

  invite(name: string, commands: string[][]): Promise<Replies['invite']> {
    return this.guard(this.proc(name).request('invite', { name, commands }), `${name}'s invite`);
  }

  async inviteMore(name: string, room: string, names: string[]): Promise<string[]> {
    return (await this.guard(this.proc(name).request('invite-more', { name, room, names }, 300_000), `${name}'s invite into ${room}`)).lines;
  }

  async inviteReplies(name: string): Promise<string[]> {
    return (await this.guard(this.proc(name).request('invite-replies', { name }), `${name}'s invite replies`)).lines;
  }

  /** `names` leave `room` (each process sends its members' leaves at once). */
  async leave(room: string, names: string[]): Promise<Replies['leave']> {
    const parts = await Promise.all(
      this.procs.map((p) => {
        const mine = names.filter((n) => this.proc(n) === p);
        return mine.length === 0 ? undefined : this.guard(p.request('leave', { room, names: mine }), `leaving ${room}`);
      }),
    );
    const done = parts.filter((x): x is Replies['leave'] => x !== undefined);
    return {
      sentAt: Math.min(...done.map((d) => d.sentAt)),
      doneAt: Math.max(...done.map((d) => d.doneAt)),
      lines: done.flatMap((d) => d.lines),
    };
  }

  /** CPU ms (user + system) of all processes since the previous call, summed. */
  async cpuMs(): Promise<number> {
    const r = await Promise.all(this.procs.map((p) => this.guard(p.request('cpu', {}), 'CPU reading')));
    return r.reduce((sum, x) => sum + x.userMs + x.systemMs, 0);
  }

  /** Bytes and lines each member read from keybot since the previous call (all members, all processes). */
  async reads(): Promise<Map<string, { bytes: number; lines: number }>> {
    const r = await Promise.all(this.procs.map((p) => this.guard(p.request('reads', {}), 'reads')));
    const out = new Map<string, { bytes: number; lines: number }>();
    for (const x of r) for (const [name, v] of Object.entries(x.members)) out.set(lower(name), v);
    return out;
  }

  /** Wait until every event the processes sent so far has arrived. */
  async sync(): Promise<void> {
    await Promise.all(this.procs.map((p) => this.guard(p.request('sync', {}), 'sync')));
  }

  /** The first install by `name` of `room` that satisfies `ok`, or undefined. */
  firstInstall(name: string, room: string, ok: (k: KeyInstall) => boolean): KeyInstall | undefined {
    return this.installs.get(lower(name))!.find((k) => lower(k.room) === lower(room) && ok(k));
  }

  /** Resolves once `check()` holds (re-checked on every event); rejects on timeout or a failure. */
  until(check: () => boolean, what: string, ms = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer);
        this.waiters.delete(poll);
        if (err) reject(err);
        else resolve();
      };
      const poll = (): void => {
        if (this.failure) return done(new Error(`${what}: ${this.failure.message}`));
        try {
          if (check()) done();
        } catch (err) {
          done(err as Error);
        }
      };
      const timer = setTimeout(() => done(new Error(`timed out after ${ms} ms: ${what}`)), ms);
      this.waiters.add(poll);
      poll();
    });
  }

  /** Quit every process (SIGKILL after a grace period). */
  async stop(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.stop()));
  }

  /** Last resort (a signal to the bench): SIGKILL every process now. */
  killNow(): void {
    for (const p of this.procs) {
      p.stopping = true;
      if (!p.exited) p.child.kill('SIGKILL');
    }
  }

  private proc(name: string): MemberProc {
    const p = this.home.get(lower(name));
    if (!p) throw new Error(`no member process hosts ${name}`);
    return p;
  }

  /** `p`, but rejected as soon as anything fails (a process crash would otherwise only time out). */
  private guard<T>(p: Promise<T>, what: string, ms = 0): Promise<T> {
    if (this.failure) return Promise.reject(new Error(`${what}: ${this.failure.message}`));
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const finish = (f: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.waiters.delete(check);
        f();
      };
      const check = (): void => {
        if (this.failure) finish(() => reject(new Error(`${what}: ${this.failure!.message}`)));
      };
      const timer = ms > 0 ? setTimeout(() => finish(() => reject(new Error(`timed out after ${ms} ms: ${what}`))), ms) : undefined;
      this.waiters.add(check);
      p.then(
        (v) => finish(() => resolve(v)),
        (e: unknown) => finish(() => reject(e as Error)),
      );
    });
  }

  private onEvent(m: FromMembers): void {
    if (m.ev === 'key') {
      const { ev: _e, ...k } = m;
      this.installs.get(lower(k.name))?.push(k);
    } else if (m.ev === 'envelope') {
      const { ev: _e, ...e } = m;
      this.envelopes.get(lower(e.name))?.push(e);
    } else if (m.ev === 'lost') {
      process.stderr.write(`members: ${m.name} lost its connection: ${m.reason}\n`);
      this.failure ??= new Error(`${m.name} lost its connection (${m.reason})`);
    }
    for (const w of [...this.waiters]) w();
  }
}
