/**
 * One named logger per module, writing single lines to stderr.
 *
 * The level comes from SEALCHAT_LOG (debug | info | warn | error | silent; default info), read
 * once per process, so tests can run with SEALCHAT_LOG=silent. Never pass secrets (passwords,
 * private keys, room keys) to a logger: lines may end up in journald or a shared terminal.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

function levelFromEnv(): LogLevel {
  const v = (process.env.SEALCHAT_LOG ?? '').toLowerCase();
  return v in RANK ? (v as LogLevel) : 'info';
}

let threshold = RANK[levelFromEnv()];

/** Change the process-wide level (the daemon's CLI uses this; tests may too). */
export function setLogLevel(level: LogLevel): void {
  threshold = RANK[level];
}

export interface Logger {
  debug(msg: string, ...details: unknown[]): void;
  info(msg: string, ...details: unknown[]): void;
  warn(msg: string, ...details: unknown[]): void;
  error(msg: string, ...details: unknown[]): void;
}

function render(detail: unknown): string {
  if (detail instanceof Error) return detail.stack ?? `${detail.name}: ${detail.message}`;
  if (typeof detail === 'string') return detail;
  try {
    return JSON.stringify(detail);
  } catch {
    return String(detail);
  }
}

export function createLogger(name: string): Logger {
  const emit = (level: Exclude<LogLevel, 'silent'>, msg: string, details: unknown[]): void => {
    if (RANK[level] < threshold) return;
    const extra = details.length ? ' ' + details.map(render).join(' ') : '';
    process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} [${name}] ${msg}${extra}\n`);
  };
  return {
    debug: (msg, ...d) => emit('debug', msg, d),
    info: (msg, ...d) => emit('info', msg, d),
    warn: (msg, ...d) => emit('warn', msg, d),
    error: (msg, ...d) => emit('error', msg, d),
  };
}
