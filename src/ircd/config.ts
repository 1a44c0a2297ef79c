/**
 * Daemon configuration: defaults, a JSON config file merged over them, and command-line overrides.
 *
 * The file is JSON (no comments). Every key is optional; unknown keys are errors, so a typo never
 * silently falls back to a default. Relative paths in the file (dataDir, TLS cert/key, a sqlite
 * store path) are resolved against the file's directory; `--data` and the built-in defaults are
 * resolved against the working directory. docs/OPERATIONS.md lists every key.
 */

import { constants as fsConstants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { BlockList, isIP } from 'node:net';
import path from 'node:path';
import { isObject, parseConfig, parseIpEntry } from './config/parse.js';
import { ConfigError, DEFAULT_CONFIG, type Config, type ListenerConfig } from './config/schema.js';
import { STORE_FILE_NAME } from '../protocol/files.js';
import { parseHostPort } from '../protocol/address.js';

export * from './config/schema.js';

export interface LoadConfigOptions {
  /** JSON config file. */
  file?: string;
  /** `--data DIR`: overrides the file's dataDir. */
  dataDir?: string;
  /**
   * `--listen HOST:PORT` or `--listen ws://HOST:PORT` (repeatable): the plain IRC (or plain
   * WebSocket) listeners given replace the file's plain listeners of that kind; the other kind and
   * every TLS listener are kept.
   */
  listen?: string[];
  /** Base for relative CLI paths and defaults (default: process.cwd()). */
  cwd?: string;
}

export async function loadConfig(opts: LoadConfigOptions = {}): Promise<Config> {
  const cwd = opts.cwd ?? process.cwd();
  let raw: unknown = {};
  let fileDir = cwd;
  if (opts.file !== undefined) {
    const file = path.resolve(cwd, opts.file);
    fileDir = path.dirname(file);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`config: cannot read ${file}: ${errnoText(err)}`);
    }
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(`config: ${file} is not valid JSON: ${(err as Error).message}`);
    }
  }
  const config = parseConfig(raw, fileDir);
  if (opts.dataDir !== undefined) {
    if (opts.dataDir === '') throw new ConfigError('config: --data must not be empty');
    config.dataDir = path.resolve(cwd, opts.dataDir);
  } else if (!isObject(raw) || raw.dataDir === undefined) {
    config.dataDir = path.resolve(cwd, DEFAULT_CONFIG.dataDir);
  }
  if (opts.listen !== undefined && opts.listen.length > 0) config.listen = overrideListeners(config.listen, opts.listen);
  if (config.store === '') config.store = `sqlite://${path.join(config.dataDir, STORE_FILE_NAME)}`;
  await checkTlsFiles(config.listen);
  return config;
}

const WS_SCHEME = 'ws://';

/**
 * `--listen` over the file's listeners. `HOST:PORT` is a plain IRC listener, `ws://HOST:PORT` a
 * plain WebSocket one serving the built-in page (its own origin only, as `"websocket": true`).
 * Given plain IRC listeners replace the file's plain IRC ones and given WebSocket listeners its
 * plain WebSocket ones; a kind not given is kept (a `--listen` for IRC must not silently take
 * away the web companion's listener), and so is every TLS listener.
 */
function overrideListeners(file: ListenerConfig[], specs: string[]): ListenerConfig[] {
  const given = specs.map((spec): ListenerConfig => {
    const ws = spec.toLowerCase().startsWith(WS_SCHEME);
    let hp;
    try {
      hp = parseHostPort(ws ? spec.slice(WS_SCHEME.length).replace(/\/$/, '') : spec, { allowZero: true });
    } catch (err) {
      throw new ConfigError(`config: --listen: ${(err as Error).message}`);
    }
    return ws ? { ...hp, websocket: { origins: [], page: true } } : hp;
  });
  const givesIrc = given.some((l) => !l.websocket);
  const givesWs = given.some((l) => l.websocket);
  const kept = file.filter((l) => l.tls || (l.websocket ? !givesWs : !givesIrc));
  return [...given, ...kept];
}

/**
 * Build a predicate for `limits.exemptIps` (addresses or CIDR ranges). IPv4-mapped IPv6 peers
 * (`::ffff:127.0.0.1`, as a dual-stack listener reports them) match their IPv4 entries.
 */
export function makeIpMatcher(entries: readonly string[]): (ip: string) => boolean {
  const list = new BlockList();
  for (const entry of entries) {
    const { address, prefix, family } = parseIpEntry(entry);
    if (prefix === undefined) list.addAddress(address, family);
    else list.addSubnet(address, prefix, family);
  }
  return (ip: string) => {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
    const addr = mapped ? mapped[1]! : ip;
    const family = isIP(addr);
    if (family === 0) return false;
    return list.check(addr, family === 4 ? 'ipv4' : 'ipv6');
  };
}

async function checkTlsFiles(listeners: ListenerConfig[]): Promise<void> {
  for (const [i, l] of listeners.entries()) {
    if (!l.tls) continue;
    for (const which of ['cert', 'key'] as const) {
      const file = l.tls[which];
      try {
        await access(file, fsConstants.R_OK);
      } catch (err) {
        throw new ConfigError(`config: listen[${i}].tls.${which}: cannot read ${file}: ${errnoText(err)}`);
      }
    }
  }
}

function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return 'no such file';
  if (e.code === 'EACCES') return 'permission denied';
  if (e.code === 'EISDIR') return 'is a directory';
  return e.code ?? e.message;
}
