/**
 * `sealchat agent`: unlock the user's key once and serve the WeeChat/irssi plugins on a unix
 * socket until SIGINT/SIGTERM. See server.ts (the socket) and docs/COMPANIONS.md ("Plugins").
 *
 * The passphrase comes from --passphrase-file, from the environment variable named by
 * --passphrase-env, or is asked once on the terminal without echo. It is never logged or printed.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { UnlockStatus, unlockPrivateKey, type PrivateKeyHandle } from '../crypto/index.js';
import { isValidAccountName } from '../protocol/names.js';
import { UsageError, promptHidden } from './util.js';
import { keybotAccount } from './secrets.js';
import { unlockFailure } from '../client/identity.js';
import { sealchatHome } from '../client/index.js';
import { normalizeFingerprint } from '../protocol/fingerprint.js';
import { startAgent, type Agent } from '../client/agent/server.js';

/** Default socket: `~/.sealchat/agent-<account>.sock` ($SEALCHAT_HOME instead of ~/.sealchat). */
export function defaultSocketPath(account: string): string {
  return path.join(sealchatHome(), `agent-${account}.sock`);
}

/** Default private key file: `~/.sealchat/<account>.key.asc`. */
export function defaultKeyFile(account: string): string {
  return path.join(sealchatHome(), `${account}.key.asc`);
}

class AgentStartError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

function opt(values: Record<string, string | boolean | undefined>, name: string): string | undefined {
  const v = values[name];
  if (v === undefined || v === false) return undefined;
  if (v === true || v === '') throw new AgentStartError(`--${name} needs a value`, 2);
  return v;
}

/** The passphrase from a file (first line), an environment variable, or the terminal. */
async function passphraseFor(values: Record<string, string | boolean | undefined>, keyFile: string): Promise<string | undefined> {
  const file = opt(values, 'passphrase-file');
  const env = opt(values, 'passphrase-env');
  if (file !== undefined && env !== undefined) throw new AgentStartError('give --passphrase-file or --passphrase-env, not both', 2);
  if (file !== undefined) {
    try {
      return (await readFile(file, 'utf8')).replace(/\r?\n[\s\S]*$/, '');
    } catch (err) {
      throw new AgentStartError(`cannot read the passphrase file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  if (env !== undefined) {
    const v = process.env[env];
    if (v === undefined) throw new AgentStartError(`the environment variable ${env} (--passphrase-env) is not set`, 2);
    return v;
  }
  if (!process.stdin.isTTY) {
    throw new AgentStartError(`${keyFile} is protected by a passphrase: run the agent in a terminal, or use --passphrase-file or --passphrase-env`);
  }
  return promptHidden(`Passphrase for ${keyFile}: `);
}

/** What the shared option code throws (src/cli/secrets.ts), as the agent reports it: a usage error exits 2, a refusal 1. */
async function asStartError<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof AgentStartError) throw e;
    throw new AgentStartError((e as Error).message, e instanceof UsageError ? 2 : 1);
  }
}

/** Read and unlock the key; asks for a passphrase only if the key has one. */
async function unlock(values: Record<string, string | boolean | undefined>, keyFile: string): Promise<PrivateKeyHandle> {
  let armored: string;
  try {
    armored = await readFile(keyFile, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new AgentStartError(`cannot read the private key ${keyFile}: ${code === 'ENOENT' ? 'no such file (give --key FILE)' : code ?? (err as Error).message}`);
  }
  const given = values['passphrase-file'] !== undefined || values['passphrase-env'] !== undefined;
  let r = await unlockPrivateKey({ armored, ...(given ? { passphrase: (await passphraseFor(values, keyFile)) ?? '' } : {}) });
  if (r.status === UnlockStatus.PASSPHRASE_REQUIRED && !given) {
    r = await unlockPrivateKey({ armored, passphrase: (await passphraseFor(values, keyFile)) ?? '' });
  }
  if (r.status === UnlockStatus.OK && r.key) return r.key;
  throw new AgentStartError(`cannot use the private key ${keyFile}: ${unlockFailure(r.status)}`);
}

/**
 * Run the agent: options `account` (required), `key`, `socket`, `passphrase-file`,
 * `passphrase-env`, `keybot-fingerprint`, `keybot-key` (a file with keybot's armored public key).
 * Resolves with the exit code once stopped by a signal (0), or at once when it cannot start
 * (1; 2 for a bad command line).
 */
export async function runAgent(values: Record<string, string | boolean | undefined>): Promise<number> {
  const err = process.stderr;
  let agent: Agent;
  try {
    const account = opt(values, 'account');
    if (account === undefined) throw new AgentStartError('--account NAME is required (the account whose key this agent holds)', 2);
    if (!isValidAccountName(account)) throw new AgentStartError(`"${account}" is not a valid account name`, 2);
    const fpOpt = opt(values, 'keybot-fingerprint');
    const keybotFingerprint = fpOpt === undefined ? undefined : normalizeFingerprint(fpOpt);
    if (fpOpt !== undefined && keybotFingerprint === undefined) {
      throw new AgentStartError(`--keybot-fingerprint: "${fpOpt}" is not a fingerprint (40 or 64 hex digits)`, 2);
    }
    const keybotKeyFile = opt(values, 'keybot-key');
    let keybotPublicKey: string | undefined;
    if (keybotKeyFile !== undefined) {
      try {
        keybotPublicKey = await readFile(keybotKeyFile, 'utf8');
      } catch (err) {
        throw new AgentStartError(`cannot read keybot's key ${keybotKeyFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    }
    const keyFile = opt(values, 'key') ?? defaultKeyFile(account);
    const socketPath = path.resolve(opt(values, 'socket') ?? defaultSocketPath(account));
    const keybotLogin = await asStartError(async () => keybotAccount(values));
    const privateKey = await unlock(values, keyFile);
    // A network without services (ngIRCd): every plugin connection logs in to keybot (never logged, never shown).
    const keybotPassword = keybotLogin ? await asStartError(() => keybotLogin(`keybot password for ${account}: `)) : undefined;
    agent = await startAgent({
      account,
      privateKey,
      socketPath,
      ...(keybotPassword !== undefined ? { keybotPassword } : {}),
      ...(keybotFingerprint ? { keybotFingerprint } : {}),
      ...(keybotPublicKey !== undefined ? { keybotPublicKey } : {}),
    });
    err.write(`sealchat agent: ${account}'s key ${privateKey.fingerprint} unlocked\n`);
    err.write(`sealchat agent: listening on ${socketPath}\n`);
    err.write(
      keybotFingerprint
        ? `sealchat agent: keybot must have the key ${keybotFingerprint}\n`
        : keybotPublicKey !== undefined
          ? `sealchat agent: keybot's key is the one in ${keybotKeyFile}\n`
          : `sealchat agent: keybot's key is trusted on first use (give --keybot-fingerprint to pin it)\n`,
    );
  } catch (e) {
    if (e instanceof AgentStartError) {
      err.write(`sealchat agent: ${e.message}\n`);
      return e.exitCode;
    }
    err.write(`sealchat agent: ${(e as Error).message}\n`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await agent.close();
  err.write('sealchat agent: stopped; room keys wiped\n');
  return 0;
}
