/**
 * `sealchat keygen NAME`: make the user's OpenPGP key pair.
 *
 * The private key is written passphrase-protected with mode 0600 (created that way, never
 * chmod-ed afterwards, so it is not readable by others for an instant); the public key is what
 * the administrator registers with `sealchatd user add`. An existing pair is never replaced
 * without --force: the account's registered key would no longer match.
 */
import { constants } from 'node:fs';
import { mkdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { generateUserKey } from '../crypto/index.js';
import { isValidAccountName } from '../protocol/names.js';
import { CliError, UsageError } from './util.js';
import { sealchatHome } from '../client/index.js';
import { PASSPHRASE, promptSecret, readSecret, secretSource } from './secrets.js';
import { formatFingerprint } from '../protocol/fingerprint.js';

export type Values = Record<string, string | boolean | string[] | undefined>;

/** The two files of a key pair for NAME in DIR. */
export function keyPaths(dir: string, name: string): { privateFile: string; publicFile: string } {
  return { privateFile: path.join(dir, `${name}.key.asc`), publicFile: path.join(dir, `${name}.pub.asc`) };
}

/** The default place of NAME's private key: ~/.sealchat/NAME.key.asc (or under $SEALCHAT_HOME). */
export function defaultKeyFile(name: string): string {
  return keyPaths(sealchatHome(), name).privateFile;
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new CliError(`cannot check ${file}: ${(err as Error).message}`);
  }
}

/** Write through a temporary file created with `mode`, then rename: never half-written. */
async function writeNew(file: string, text: string, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await unlink(tmp).catch(() => undefined);
  try {
    await writeFile(tmp, text, { mode, flag: constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL });
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw new CliError(`cannot write ${file}: ${(err as Error).message}`);
  }
}

async function newPassphrase(values: Values): Promise<string | undefined> {
  const source = secretSource(values, PASSPHRASE);
  if (values['no-passphrase'] === true) {
    if (source.file !== undefined || source.env !== undefined) {
      throw new UsageError('--no-passphrase cannot be combined with --passphrase-file or --passphrase-env');
    }
    return undefined;
  }
  const given = await readSecret(source, PASSPHRASE);
  if (given !== undefined) return given;
  const first = await promptSecret('Passphrase for the new key: ', PASSPHRASE);
  if (first === '') throw new CliError('the passphrase must not be empty (--no-passphrase makes a key without one)');
  const again = await promptSecret('Passphrase (again): ', PASSPHRASE);
  if (again !== first) throw new CliError('the passphrases do not match');
  return first;
}

/** Run `sealchat keygen`; prints what was written and what the administrator runs. */
export async function runKeygen(values: Values, [name]: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  if (!isValidAccountName(name!)) {
    throw new UsageError(`"${name}" is not a valid account name (a letter, then up to 29 letters, digits, _ or -)`);
  }
  const dir = path.resolve(typeof values.dir === 'string' ? values.dir : sealchatHome());
  const { privateFile, publicFile } = keyPaths(dir, name!);
  if (values.force !== true) {
    for (const f of [privateFile, publicFile]) {
      if (await exists(f)) throw new CliError(`${f} already exists; refusing to overwrite it (--force replaces the key pair)`);
    }
  }
  const passphrase = await newPassphrase(values);
  const rsa = values.rsa === true;
  if (rsa) process.stderr.write('generating an RSA-3072 key (a few seconds)...\n');
  const key = await generateUserKey({ name: name!, type: rsa ? 'rsa' : 'ecc', ...(passphrase !== undefined ? { passphrase } : {}) });
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new CliError(`cannot create ${dir}: ${(err as Error).message}`);
  }
  await writeNew(privateFile, key.privateArmored, 0o600);
  await writeNew(publicFile, key.publicArmored, 0o644);
  out.write(
    [
      `private key: ${privateFile} (${passphrase === undefined ? 'NOT passphrase-protected' : 'passphrase-protected'}; keep it to yourself)`,
      `public key:  ${publicFile}`,
      `fingerprint: ${formatFingerprint(key.fingerprint)}`,
      '',
      `Send ${path.basename(publicFile)} to the administrator, who adds your account with:`,
      `  sealchatd user add ${name} --key ${publicFile}`,
      '',
    ].join('\n'),
  );
  return 0;
}
