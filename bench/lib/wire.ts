/**
 * The benchmark's message layout and the IPC shapes between the orchestrator (bench/run.ts)
 * and the load generators (bench/loadgen.ts).
 *
 * Every relayed message has a fixed-size trailing parameter that looks like a typical
 * one-line sealchat room message (`SC1M <base64>`, see src/crypto/message.ts: a ~50-byte
 * plaintext gives a 152-byte record, 204 base64 characters). Its last characters carry
 * decimal fields at fixed offsets, so a receiver reads them from the end of the line without
 * parsing the IRC prefix:
 *
 *   SC1M <filler> <member:2> <seq:9> <sentAt:14>          (no spaces inside; widths in digits)
 *
 * member = the sender's index inside its room, seq = its per-run sequence number, sentAt =
 * the send time in microseconds (performance.now() of the load generator that holds both the
 * sender and the receivers of a room, so no cross-process clock is needed).
 */

export const TRAIL_BYTES = 209;
export const MARKER = 'SC1M ';
export const MEMBER_DIGITS = 2;
export const SEQ_DIGITS = 9;
export const TIME_DIGITS = 14;
export const FILLER_BYTES = TRAIL_BYTES - MARKER.length - MEMBER_DIGITS - SEQ_DIGITS - TIME_DIGITS;
/** Largest room the layout can address. */
export const MAX_ROOM = 10 ** MEMBER_DIGITS;

/** One connection the load generator opens: its nick and the PASS argument (null: none). */
export interface ConnSpec {
  nick: string;
  pass: string | null;
}

/** A room inside one load generator: local connection indexes; the first `senders` send. */
export interface RoomSpec {
  name: string;
  members: number[];
  senders: number;
}

export type RunMode = 'blast' | 'paced';

export interface RunSpec {
  mode: RunMode;
  durationMs: number;
  /** blast: messages a sender may have in flight (sent but not yet seen by every receiver). */
  window: number;
  /** paced: messages per second from this load generator, spread evenly over its senders. */
  rate: number;
}

export type ToWorker =
  | { cmd: 'connect'; port: number; conns: ConnSpec[]; concurrency: number; keep: boolean }
  | { cmd: 'join'; rooms: RoomSpec[] }
  | { cmd: 'run'; spec: RunSpec }
  | { cmd: 'part' }
  /** Log out every connection after the first `count` (QUIT, then close). */
  | { cmd: 'trim'; count: number }
  | { cmd: 'close' };

export interface ConnectResult {
  ok: number;
  failed: number;
  /** First failure, for the report. */
  error: string | null;
  ms: number;
}

export interface RunResult {
  sent: number;
  expected: number;
  delivered: number;
  /** Lines that arrived twice (sequence number already seen). */
  duplicates: number;
  /** Sequence numbers skipped (never delivered). */
  missing: number;
  /** A sender that received its own message (no echo-message was asked for). */
  selfDeliveries: number;
  /** (receiver, sender) pairs whose final count differs from what the sender sent. */
  badPairs: number;
  /** Connections of this run's rooms that the server closed during the run, with its reason. */
  closed: number;
  closeReason: string | null;
  /** From the first send to the last delivery. */
  elapsedMs: number;
  /** Load-generator CPU (user + system) during the run. */
  cpuMs: number;
  /** Sparse latency histogram: [bucket, count] pairs (see hist.ts). */
  hist: Array<[number, number]>;
}

export type FromWorker =
  | { ev: 'ready' }
  | { ev: 'connected'; result: ConnectResult }
  | { ev: 'joined'; ms: number }
  | { ev: 'ran'; result: RunResult }
  | { ev: 'parted' }
  | { ev: 'trimmed' }
  | { ev: 'closed' }
  | { ev: 'error'; message: string };
