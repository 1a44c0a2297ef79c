/**
 * Small helpers shared by the command-line tools: error kinds with exit codes, reading secrets
 * from stdin or from the terminal without echo, bounded file reads.
 */

import { open } from 'node:fs/promises';

/** Bad command line: exit code 2, as getopt-style tools do. */
export class UsageError extends Error {
  override name = 'UsageError';
  readonly exitCode = 2;
}

/** The command ran and failed: exit code 1. */
export class CliError extends Error {
  override name = 'CliError';
  readonly exitCode = 1;
}

/** Read all of stdin as UTF-8 (up to `maxBytes`). */
export async function readStdin(maxBytes = 1 << 20): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new CliError(`standard input is larger than ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * A password piped on stdin (`--password-stdin`): everything up to EOF, minus one trailing
 * newline, so `echo pw |` and `printf pw |` give the same password.
 */
export async function readPasswordFromStdin(): Promise<string> {
  const text = await readStdin(64 * 1024);
  return text.replace(/\r?\n$/, '');
}

/**
 * Prompt on the terminal without echoing what is typed. Ctrl-C aborts (exit 130), Ctrl-D on an
 * empty line ends input, Backspace edits.
 */
export async function promptHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) throw new UsageError('no terminal to prompt for a password on: pipe it in with --password-stdin');
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  try {
    return await new Promise<string>((resolve) => {
      let value = '';
      const onData = (data: string): void => {
        for (const ch of data) {
          if (ch === '\r' || ch === '\n' || ch === '\u0004') {
            stdin.off('data', onData);
            process.stderr.write('\n');
            resolve(value);
            return;
          }
          if (ch === '\u0003') {
            process.stderr.write('\n');
            stdin.setRawMode(false);
            process.exit(130);
          }
          if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
          else if (ch === '\u0015') value = ''; // Ctrl-U: erase the line
          else if (ch >= ' ') value += ch;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
  }
}

/**
 * A new password: from stdin with `fromStdin`, else prompted twice on the terminal. Refuses an
 * empty password or a mismatch.
 */
export async function readNewPassword(opts: { fromStdin: boolean; what?: string }): Promise<string> {
  const what = opts.what ?? 'Password';
  let password: string;
  if (opts.fromStdin) {
    password = await readPasswordFromStdin();
  } else {
    password = await promptHidden(`${what}: `);
    if (password !== '') {
      const again = await promptHidden(`${what} (again): `);
      if (again !== password) throw new CliError('the passwords do not match');
    }
  }
  if (password === '') throw new CliError('the password must not be empty');
  return password;
}

/** Read a text file, refusing anything larger than `maxBytes` (key files are a few KB). */
export async function readSmallTextFile(file: string, maxBytes = 1 << 20): Promise<string> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw new CliError(`cannot read ${file}: ${why}`);
  }
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) throw new CliError(`${file} is too large (${size} bytes) to be a key file`);
    return await handle.readFile('utf8');
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
  } finally {
    await handle.close();
  }
}
