/**
 * Secrets for the `sealchat` commands: account passwords and key passphrases, from a file, an
 * environment variable or a prompt without echo; and unlocking the user's private key with them.
 *
 * A secret is never taken from the command line itself (it would show in `ps` and the shell
 * history). Files and variables are for scripts and tests; people get a prompt.
 */
import { keybotPasswordProblem } from '../client/index.js';
import { UnlockStatus, unlockPrivateKey, type PrivateKeyHandle } from '../crypto/index.js';
import { CliError, UsageError, promptHidden, readSmallTextFile } from './util.js';

/** Where one secret comes from: the `--X-file` / `--X-env` options of a command. */
export interface SecretSource {
  file?: string;
  env?: string;
}

/** What the secret is, for prompts and messages ("passphrase", "password"). */
export interface SecretKind {
  what: string;
  /** The option names, to name them in messages. */
  fileOption: string;
  envOption: string;
}

export const PASSPHRASE: SecretKind = { what: 'passphrase', fileOption: '--passphrase-file', envOption: '--passphrase-env' };
export const PASSWORD: SecretKind = { what: 'password', fileOption: '--password-file', envOption: '--password-env' };

/** The two options of a secret, from parsed command-line values. */
export function secretSource(values: Record<string, unknown>, kind: SecretKind): SecretSource {
  const file = values[kind.fileOption.slice(2)];
  const env = values[kind.envOption.slice(2)];
  if (typeof file === 'string' && typeof env === 'string') {
    throw new UsageError(`give ${kind.fileOption} or ${kind.envOption}, not both`);
  }
  return {
    ...(typeof file === 'string' ? { file } : {}),
    ...(typeof env === 'string' ? { env } : {}),
  };
}

/**
 * `--keybot-account` (a network without services, where keybot keeps the accounts: docs/NETWORKS.md):
 * undefined without it, and then --password-file/--password-env are a usage error (the user's IRC
 * client gives the server password); with it, how to obtain the keybot password when the command
 * is ready to ask (a prompt, or the file or variable), refused if keybot could not read it as one word.
 */
export function keybotAccount(values: Record<string, unknown>): ((prompt: string) => Promise<string>) | undefined {
  const source = secretSource(values, PASSWORD);
  if (values['keybot-account'] !== true) {
    if (hasSecret(source)) throw new UsageError('--password-file and --password-env are for --keybot-account (your IRC client gives the server password)');
    return undefined;
  }
  return async (prompt) => {
    const password = await obtainSecret(source, PASSWORD, prompt);
    const bad = keybotPasswordProblem(password);
    if (bad !== undefined) throw new CliError(bad);
    return password;
  };
}

/** True if the source names a file or a variable (no prompt needed). */
export function hasSecret(source: SecretSource): boolean {
  return source.file !== undefined || source.env !== undefined;
}

/**
 * Read a secret from the file or variable of `source`; undefined if it names neither. A file
 * holds the secret up to its end, minus one trailing newline (so `echo pw > f` works).
 */
export async function readSecret(source: SecretSource, kind: SecretKind): Promise<string | undefined> {
  let value: string | undefined;
  if (source.file !== undefined) {
    value = (await readSmallTextFile(source.file, 64 * 1024)).replace(/\r?\n$/, '');
    if (value === '') throw new CliError(`${source.file} is empty; it should hold the ${kind.what}`);
  } else if (source.env !== undefined) {
    value = process.env[source.env];
    if (value === undefined) throw new CliError(`the environment variable ${source.env} (${kind.envOption}) is not set`);
    if (value === '') throw new CliError(`the environment variable ${source.env} is empty; it should hold the ${kind.what}`);
  }
  return value;
}

/** Prompt for a secret without echo; a clear message instead when there is no terminal. */
export async function promptSecret(prompt: string, kind: SecretKind): Promise<string> {
  if (!process.stdin.isTTY) {
    throw new UsageError(`no terminal to ask for the ${kind.what} on: use ${kind.fileOption} FILE or ${kind.envOption} VAR`);
  }
  return promptHidden(prompt);
}

/** A secret from `source`, else asked once on the terminal. */
export async function obtainSecret(source: SecretSource, kind: SecretKind, prompt: string): Promise<string> {
  const given = await readSecret(source, kind);
  if (given !== undefined) return given;
  const typed = await promptSecret(prompt, kind);
  if (typed === '') throw new CliError(`no ${kind.what} given`);
  return typed;
}

/**
 * Read a private key file and unlock it: without a passphrase if it has none, else with the one
 * from `source`, else asked once. Errors say what to do about them.
 */
export async function unlockKeyFile(file: string, source: SecretSource): Promise<PrivateKeyHandle> {
  const armored = await readSmallTextFile(file);
  let passphrase = await readSecret(source, PASSPHRASE);
  let r = await unlockPrivateKey({ armored, ...(passphrase !== undefined ? { passphrase } : {}) });
  if (r.status === UnlockStatus.PASSPHRASE_REQUIRED && passphrase === undefined) {
    passphrase = await promptSecret(`Passphrase for ${file}: `, PASSPHRASE);
    r = await unlockPrivateKey({ armored, passphrase });
  }
  if (r.status === UnlockStatus.OK && r.key) return r.key;
  switch (r.status) {
    case UnlockStatus.BAD_PASSPHRASE:
      throw new CliError(`wrong passphrase for ${file}`);
    case UnlockStatus.NOT_PRIVATE:
      throw new CliError(`${file} holds a public key; give the private key (NAME.key.asc)`);
    case UnlockStatus.PASSPHRASE_REQUIRED:
      throw new CliError(`${file} is protected by a passphrase and none was given`);
    case UnlockStatus.INVALID:
      throw new CliError(`${file} is not a readable OpenPGP private key${r.reason ? ` (${r.reason})` : ''}`);
    default:
      throw new CliError(`cannot use the key in ${file}${r.reason ? `: ${r.reason}` : ''}`);
  }
}
