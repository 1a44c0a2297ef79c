/**
 * Client side of the control socket (contract: control-protocol.ts), used by keybot and the
 * admin tool.
 *
 * net-ipc quirks handled here (docs/STACK.md 11): with reconnect off, a refused connect never
 * settles net-ipc's own promise, and a request on a dead connection waits for its timeout, so
 * this class tracks its own pending calls and fails them when the connection closes. Its write
 * queue is shared by every instance and only half-flushed per drain, so in-flight requests are
 * bounded, and shutdown uses destroy(), never close().
 */

import { EventEmitter } from 'node:events';
import { lstat } from 'node:fs/promises';
import { Client } from 'net-ipc';
import type { ControlErrorCode, ControlEvents, ControlMethod, ControlMethods } from './control.js';
import { Semaphore } from '../util/semaphore.js';

/** The daemon answered a call with an error. */
export class ControlCallError extends Error {
  override name = 'ControlCallError';
  constructor(
    readonly code: ControlErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** No daemon to talk to, or the connection was lost. */
export class ControlConnectError extends Error {
  override name = 'ControlConnectError';
}

export interface ControlClientOptions {
  /** Give up connecting after this long (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Default per-call timeout (default 30000 ms). */
  callTimeoutMs?: number;
  /** Calls on the wire at once; more wait their turn (default 32). */
  maxInFlight?: number;
}

type EventListener<E extends keyof ControlEvents> = (data: ControlEvents[E]) => void;

export class ControlClient {
  private readonly events = new EventEmitter();
  private readonly inFlight: Semaphore;
  private readonly pending = new Set<(err: Error) => void>();
  private closedError: Error | undefined;

  private constructor(
    private readonly ipc: Client,
    readonly path: string,
    private readonly opts: Required<ControlClientOptions>,
  ) {
    this.inFlight = new Semaphore(opts.maxInFlight);
    ipc.on('message', (msg: unknown) => {
      const m = msg as { event?: unknown; data?: unknown } | null;
      if (m && typeof m.event === 'string') this.events.emit(m.event, m.data);
    });
    ipc.on('close', () => this.lost(new ControlConnectError(`control connection to ${path} closed`)));
  }

  /** Connect to a daemon's control socket; a clear error if none is running there. */
  static async connect(path: string, options: ControlClientOptions = {}): Promise<ControlClient> {
    const opts: Required<ControlClientOptions> = { connectTimeoutMs: 5000, callTimeoutMs: 30_000, maxInFlight: 32, ...options };
    const st = await lstat(path).catch(() => null);
    if (!st) throw new ControlConnectError(`no control socket at ${path}: is sealchatd running?`);
    if (!st.isSocket()) throw new ControlConnectError(`${path} is not a socket`);

    const ipc = new Client({ path, reconnect: false, messagepack: false });
    let lastError: unknown;
    ipc.on('error', (err: unknown) => (lastError = err));
    await new Promise<void>((resolve, reject) => {
      const fail = (): void => {
        clearTimeout(timer);
        ipc.destroy();
        const code = (lastError as NodeJS.ErrnoException | undefined)?.code;
        reject(
          new ControlConnectError(
            code === 'ECONNREFUSED'
              ? `nothing answers on ${path} (a stale socket from a stopped sealchatd?)`
              : code === 'EACCES'
                ? `permission denied on ${path}: run as the user that runs sealchatd`
                : `cannot connect to ${path}: ${describe(lastError) ?? 'connection closed'}`,
          ),
        );
      };
      const timer = setTimeout(() => {
        lastError = new Error(`no answer within ${opts.connectTimeoutMs} ms`);
        fail();
      }, opts.connectTimeoutMs);
      ipc.once('close', fail);
      ipc.connect().then(
        () => {
          clearTimeout(timer);
          ipc.off('close', fail);
          resolve();
        },
        () => fail(),
      );
    });
    return new ControlClient(ipc, path, opts);
  }

  /** Call a control method: its result, or a ControlCallError carrying the daemon's code. */
  call<M extends ControlMethod>(
    method: M,
    params: ControlMethods[M]['params'],
    callOpts: { timeoutMs?: number } = {},
  ): Promise<ControlMethods[M]['result']> {
    return this.inFlight.run(() => this.send(method, params, callOpts.timeoutMs ?? this.opts.callTimeoutMs));
  }

  /** Subscribe to a pushed event (e.g. 'presence'). */
  on<E extends keyof ControlEvents>(event: E, listener: EventListener<E>): this {
    this.events.on(event, listener);
    return this;
  }

  off<E extends keyof ControlEvents>(event: E, listener: EventListener<E>): this {
    this.events.off(event, listener);
    return this;
  }

  /** Run `listener` once when the connection is lost (daemon stopped or close() called). */
  onClose(listener: (err: Error) => void): this {
    if (this.closedError) queueMicrotask(() => listener(this.closedError!));
    else this.events.once('__closed', listener);
    return this;
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /** Drop the connection; pending calls fail with ControlConnectError. */
  close(): void {
    this.lost(new ControlConnectError('control client closed'));
    this.ipc.destroy();
  }

  private async send<M extends ControlMethod>(method: M, params: ControlMethods[M]['params'], timeoutMs: number): Promise<ControlMethods[M]['result']> {
    if (this.closedError) throw this.closedError;
    const raw = await new Promise<unknown>((resolve, reject) => {
      const onLost = (err: Error): void => reject(err);
      this.pending.add(onLost);
      this.ipc.request({ method, params }, timeoutMs).then(
        (value) => {
          this.pending.delete(onLost);
          resolve(value);
        },
        (err: unknown) => {
          this.pending.delete(onLost);
          reject(
            err === 'request timed out'
              ? new ControlConnectError(`${method}: no answer from the daemon within ${timeoutMs} ms`)
              : new ControlConnectError(`${method}: ${describe(err) ?? 'request failed'}`),
          );
        },
      );
    });
    const res = raw as { ok?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown } } | null;
    if (res && res.ok === true) return res.result as ControlMethods[M]['result'];
    if (res && res.ok === false && res.error && typeof res.error.code === 'string') {
      throw new ControlCallError(res.error.code as ControlErrorCode, typeof res.error.message === 'string' ? res.error.message : res.error.code);
    }
    throw new ControlCallError('internal', `${method}: malformed response from the daemon`);
  }

  private lost(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    for (const fail of this.pending) fail(err);
    this.pending.clear();
    this.events.emit('__closed', err);
  }
}

/**
 * True if a live control server answers at `path` (a transport-level ping). False for a missing
 * path, a stale socket file, or no answer within `timeoutMs`.
 */
export async function probeControlSocket(path: string, timeoutMs = 1000): Promise<boolean> {
  let client: ControlClient;
  try {
    client = await ControlClient.connect(path, { connectTimeoutMs: timeoutMs });
  } catch {
    return false;
  }
  try {
    await client.call('ping', {}, { timeoutMs });
    return true;
  } catch (err) {
    // A server that answered with an error is alive all the same.
    return err instanceof ControlCallError;
  } finally {
    client.close();
  }
}

function describe(err: unknown): string | undefined {
  if (err === undefined || err === null) return undefined;
  if (typeof err === 'string') return err;
  if (err instanceof Error) return err.message;
  return String(err);
}
