/**
 * `sealchat plugin-path weechat|irssi`: where the plugin script of this installation is, so an
 * install step works the same from a clone and from a global npm install (the scripts ship in
 * the package's `plugins/` folder, beside `dist/`).
 */
import { access } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { CliError, UsageError } from './util.js';

/** Each client's script, relative to the package root. */
export const PLUGIN_FILES: Readonly<Record<string, string>> = {
  weechat: 'plugins/weechat/sealchat.py',
  irssi: 'plugins/irssi/sealchat.pl',
};

/** The absolute path of a client's plugin script in this installation. */
export function pluginPath(client: string): string {
  const rel = PLUGIN_FILES[client];
  if (rel === undefined) throw new UsageError(`unknown client "${client}" (expected ${Object.keys(PLUGIN_FILES).join(' or ')})`);
  // This file is src/cli/plugin-path.ts in a clone and dist/cli/plugin-path.js when installed:
  // the package root is two folders up either way.
  return fileURLToPath(new URL(`../../${rel}`, import.meta.url));
}

export async function runPluginPath(args: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const file = pluginPath(args[0]!.toLowerCase());
  try {
    await access(file);
  } catch {
    throw new CliError(`the ${args[0]} plugin is not where this installation keeps it (${file}); reinstall sealchat`);
  }
  out.write(`${file}\n`);
  return 0;
}
