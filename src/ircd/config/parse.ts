/**
 * Checking a JSON config file against the schema (config/schema.ts): unknown keys are errors,
 * every value is checked, and relative paths are resolved against the file's directory.
 */

import path from 'node:path';
import { isIP } from 'node:net';
import { ConfigError, DEFAULT_CONFIG, DEFAULT_HISTORY, DEFAULT_LIMITS, type Config, type HistoryConfig, type Limits, type ListenerConfig } from './schema.js';

// ---------------------------------------------------------------------------------------------
// Validation. Each check names the key path (e.g. `limits.sendqBytes`) and shows the bad value.

type Obj = Record<string, unknown>;

export function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

function fail(key: string, what: string, got: unknown): never {
  throw new ConfigError(`config: ${key} ${what} (got ${show(got)})`);
}

/** Reject keys not in `known`, suggesting the intended one for a case/typo slip. */
function checkKeys(obj: Obj, known: readonly string[], prefix: string): void {
  for (const key of Object.keys(obj)) {
    if (known.includes(key)) continue;
    const near = known.find((k) => k.toLowerCase() === key.toLowerCase());
    const hint = near ? ` (did you mean "${prefix}${near}"?)` : ` (known keys: ${known.join(', ')})`;
    throw new ConfigError(`config: unknown key "${prefix}${key}"${hint}`);
  }
}

function str(v: unknown, key: string, re?: RegExp, what = 'must be a non-empty string'): string {
  if (typeof v !== 'string' || v === '' || (re && !re.test(v))) fail(key, what, v);
  return v;
}

function int(v: unknown, key: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const what = min === 0 ? 'must be a non-negative integer' : 'must be a positive integer';
  if (typeof v !== 'number' || !Number.isInteger(v) || v < Math.min(min, 1)) fail(key, what, v);
  if (v < min) fail(key, `must be at least ${min}`, v);
  if (v > max) fail(key, `must be at most ${max}`, v);
  return v;
}

function bool(v: unknown, key: string): boolean {
  if (typeof v !== 'boolean') fail(key, 'must be true or false', v);
  return v;
}

function arr(v: unknown, key: string): unknown[] {
  if (!Array.isArray(v)) fail(key, 'must be an array', v);
  return v;
}

function obj(v: unknown, key: string): Obj {
  if (!isObject(v)) fail(key, 'must be an object', v);
  return v;
}

// argon2 PHC string as produced by the argon2 package (and `sealchatd hash-password`).
const ARGON2_RE = /^\$argon2(?:id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/;
const ARGON2_WHAT = 'must be an argon2 hash (make one with `sealchatd hash-password`)';
// A server name must contain a dot, or clients may mistake it for a nick (RFC 2812 §2.3.1).
const SERVERNAME_RE = /^(?=.{3,63}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/;
// NETWORK= in ISUPPORT: no spaces or control characters.
const NETWORKNAME_RE = /^[A-Za-z0-9._-]{1,32}$/;
// A reply's last parameter: printable, no control characters; bounded so 312 and 364 fit 512.
const SERVERINFO_RE = /^[^\x00-\x1f\x7f]{1,100}$/;
const OPERNAME_RE = /^[A-Za-z0-9._-]{1,32}$/;
const URL_RE = /^[A-Za-z][A-Za-z0-9+.-]*:/;
// MOTD lines travel as IRC parameters: no CR, LF or NUL (RFC 2812 §2.3).
const MOTD_LINE_RE = /^[^\r\n\0]*$/;

const TOP_KEYS = [
  'serverName', 'networkName', 'serverInfo', 'dataDir', 'listen', 'store', 'requireAccount', 'utf8Only',
  'forceNickEqualsAccount', 'serverPasswordHash', 'operators', 'motd', 'keybot', 'limits', 'history',
] as const;

export function parseConfig(raw: unknown, baseDir: string): Config {
  const src = obj(raw, '(top level)');
  checkKeys(src, TOP_KEYS, '');
  const d = DEFAULT_CONFIG;
  const cfg: Config = {
    serverName: src.serverName === undefined ? d.serverName : str(src.serverName, 'serverName', SERVERNAME_RE, 'must be a host name with at least one dot'),
    networkName: src.networkName === undefined ? d.networkName : str(src.networkName, 'networkName', NETWORKNAME_RE, 'must be 1-32 letters, digits, ".", "_" or "-"'),
    serverInfo: src.serverInfo === undefined ? d.serverInfo : str(src.serverInfo, 'serverInfo', SERVERINFO_RE, 'must be 1-100 printable characters'),
    dataDir: path.resolve(baseDir, src.dataDir === undefined ? d.dataDir : str(src.dataDir, 'dataDir')),
    listen: src.listen === undefined ? d.listen.map((l) => ({ ...l })) : parseListeners(src.listen, baseDir),
    store: '',
    requireAccount: src.requireAccount === undefined ? d.requireAccount : bool(src.requireAccount, 'requireAccount'),
    utf8Only: src.utf8Only === undefined ? d.utf8Only : bool(src.utf8Only, 'utf8Only'),
    forceNickEqualsAccount: src.forceNickEqualsAccount === undefined ? d.forceNickEqualsAccount : bool(src.forceNickEqualsAccount, 'forceNickEqualsAccount'),
    serverPasswordHash:
      src.serverPasswordHash === undefined || src.serverPasswordHash === null
        ? null
        : str(src.serverPasswordHash, 'serverPasswordHash', ARGON2_RE, ARGON2_WHAT + ' or null'),
    operators: src.operators === undefined ? [] : parseOperators(src.operators),
    motd: src.motd === undefined ? [...d.motd] : arr(src.motd, 'motd').map((l, i) => parseMotdLine(l, `motd[${i}]`)),
    keybot: parseKeybot(src.keybot),
    limits: parseLimits(src.limits),
    history: parseHistory(src.history),
  };
  if (src.store !== undefined) cfg.store = resolveStoreUrl(str(src.store, 'store', URL_RE, 'must be a keyv URL such as sqlite:///path/to/file.sqlite'), baseDir);
  return cfg;
}

function parseMotdLine(v: unknown, key: string): string {
  if (typeof v !== 'string' || !MOTD_LINE_RE.test(v)) fail(key, 'must be a string without CR, LF or NUL', v);
  return v;
}

function parseListeners(v: unknown, baseDir: string): ListenerConfig[] {
  const list = arr(v, 'listen');
  if (list.length === 0) fail('listen', 'must name at least one listener', v);
  return list.map((entry, i) => {
    const key = `listen[${i}]`;
    const o = obj(entry, key);
    checkKeys(o, ['host', 'port', 'tls', 'websocket', 'origins', 'page'], `${key}.`);
    const host = str(o.host, `${key}.host`);
    if (/[\s[\]]/.test(host)) fail(`${key}.host`, 'must be a bare address or host name (no brackets)', host);
    const listener: ListenerConfig = { host, port: int(o.port, `${key}.port`, 0, 65535) };
    if (o.tls !== undefined) {
      const t = obj(o.tls, `${key}.tls`);
      checkKeys(t, ['cert', 'key'], `${key}.tls.`);
      listener.tls = {
        cert: path.resolve(baseDir, str(t.cert, `${key}.tls.cert`)),
        key: path.resolve(baseDir, str(t.key, `${key}.tls.key`)),
      };
    }
    const websocket = o.websocket === undefined ? false : bool(o.websocket, `${key}.websocket`);
    if (!websocket) {
      for (const k of ['origins', 'page'] as const) {
        if (o[k] !== undefined) fail(`${key}.${k}`, 'applies only to a WebSocket listener (add "websocket": true)', o[k]);
      }
      return listener;
    }
    const origins = o.origins === undefined ? [] : arr(o.origins, `${key}.origins`).map((x, j) => parseOrigin(x, `${key}.origins[${j}]`));
    let page: boolean | string = true;
    if (typeof o.page === 'string') page = path.resolve(baseDir, str(o.page, `${key}.page`));
    else if (o.page !== undefined) page = bool(o.page, `${key}.page`);
    listener.websocket = { origins, page };
    return listener;
  });
}

// An origin as browsers send it (RFC 6454 §6.1): scheme://host[:port], no path, no trailing slash.
const ORIGIN_RE = /^https?:\/\/(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

function parseOrigin(v: unknown, key: string): string {
  if (v === '*') return v;
  return str(v, key, ORIGIN_RE, 'must be an origin like "https://chat.example.org" (scheme, host, optional port; no path) or "*"').toLowerCase();
}

function parseOperators(v: unknown): Config['operators'] {
  const seen = new Set<string>();
  return arr(v, 'operators').map((entry, i) => {
    const key = `operators[${i}]`;
    const o = obj(entry, key);
    checkKeys(o, ['name', 'passwordHash'], `${key}.`);
    const name = str(o.name, `${key}.name`, OPERNAME_RE, 'must be 1-32 letters, digits, ".", "_" or "-"');
    if (seen.has(name)) fail(`${key}.name`, 'is a duplicate', name);
    seen.add(name);
    return { name, passwordHash: str(o.passwordHash, `${key}.passwordHash`, ARGON2_RE, ARGON2_WHAT) };
  });
}

function parseKeybot(v: unknown): Config['keybot'] {
  const d = DEFAULT_CONFIG.keybot;
  if (v === undefined) return { ...d };
  const o = obj(v, 'keybot');
  checkKeys(o, ['rotateAfterMessages', 'rotateAfterMs'], 'keybot.');
  return {
    rotateAfterMessages: o.rotateAfterMessages === undefined ? d.rotateAfterMessages : int(o.rotateAfterMessages, 'keybot.rotateAfterMessages', 1),
    rotateAfterMs: o.rotateAfterMs === undefined ? d.rotateAfterMs : int(o.rotateAfterMs, 'keybot.rotateAfterMs', 1),
  };
}

/** Upper bounds that keep one room's history and one mailbox within memory (they are held in memory). */
const HISTORY_MAX: Record<keyof HistoryConfig, number> = { maxMessages: 1_000_000, maxAgeDays: 36_500, mailboxMax: 100_000 };

function parseHistory(v: unknown): HistoryConfig {
  const history: HistoryConfig = { ...DEFAULT_HISTORY };
  if (v === undefined) return history;
  const o = obj(v, 'history');
  checkKeys(o, Object.keys(DEFAULT_HISTORY), 'history.');
  for (const k of Object.keys(DEFAULT_HISTORY) as Array<keyof HistoryConfig>) {
    if (o[k] !== undefined) history[k] = int(o[k], `history.${k}`, 1, HISTORY_MAX[k]);
  }
  return history;
}

/** Minimum of each numeric limit: 0 only where 0 means "unlimited". */
const LIMIT_MIN: Record<Exclude<keyof Limits, 'exemptIps'>, number> = {
  maxClients: 1,
  clonesPerIp: 0,
  registrationTimeoutMs: 1,
  pingIntervalMs: 1,
  pingTimeoutMs: 1,
  commandBurst: 1,
  commandsPerSecond: 1,
  recvqBytes: 512,
  sendqBytes: 512,
  channelsPerUser: 1,
  monitorLimit: 1,
  loginAttemptsPerIpPerMinute: 1,
  loginAttemptsPerAccountPerMinute: 1,
  ipv6PrefixLength: 16,
  hashConcurrency: 1,
  maxTargets: 1,
};

function parseLimits(v: unknown): Limits {
  const limits: Limits = { ...DEFAULT_LIMITS, exemptIps: [...DEFAULT_LIMITS.exemptIps] };
  if (v === undefined) return limits;
  const o = obj(v, 'limits');
  checkKeys(o, Object.keys(DEFAULT_LIMITS), 'limits.');
  for (const [k, min] of Object.entries(LIMIT_MIN) as Array<[keyof typeof LIMIT_MIN, number]>) {
    if (o[k] !== undefined) limits[k] = int(o[k], `limits.${k}`, min);
  }
  if (limits.ipv6PrefixLength > 128) fail('limits.ipv6PrefixLength', 'must be at most 128', limits.ipv6PrefixLength);
  if (o.exemptIps !== undefined) {
    limits.exemptIps = arr(o.exemptIps, 'limits.exemptIps').map((e, i) => {
      const key = `limits.exemptIps[${i}]`;
      if (typeof e !== 'string') fail(key, 'must be an IP address or CIDR range', e);
      try {
        parseIpEntry(e);
      } catch {
        fail(key, 'must be an IP address or CIDR range', e);
      }
      return e;
    });
  }
  return limits;
}

export function parseIpEntry(entry: string): { address: string; prefix?: number; family: 'ipv4' | 'ipv6' } {
  const [address = '', prefixText, ...rest] = entry.split('/');
  const version = isIP(address);
  if (version === 0 || rest.length > 0) throw new Error(`not an IP address or CIDR range: ${entry}`);
  const family = version === 4 ? 'ipv4' : 'ipv6';
  if (prefixText === undefined) return { address, family };
  const prefix = Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText) || prefix > (version === 4 ? 32 : 128)) throw new Error(`bad prefix length in ${entry}`);
  return { address, prefix, family };
}

/** A relative sqlite path in the file is relative to the file, not to wherever the daemon starts. */
function resolveStoreUrl(url: string, baseDir: string): string {
  const m = /^sqlite:\/\/(.*)$/.exec(url);
  if (!m) return url;
  const file = m[1]!;
  if (file === '' || file === ':memory:') return url;
  return `sqlite://${path.resolve(baseDir, file)}`;
}
