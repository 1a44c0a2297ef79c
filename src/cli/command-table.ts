/**
 * The command-table machinery both command-line tools share (`sealchat`, `sealchatd`): one
 * table of commands drives parsing, `--help` for the tool and for each command, argument-count
 * checks, and how errors end the process (usage errors exit 2, failures exit 1, one line each).
 */

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { setLogLevel, type LogLevel } from '../util/log.js';
import { VERSION } from '../util/version.js';
import { CliError, UsageError } from './util.js';

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Command {
  /** Words after the program name, e.g. "chat" or "user add". */
  name: string;
  /** Arguments after the name, for the usage line. */
  usage: string;
  summary: string;
  options: Options;
  /** One line per option: [flag, meaning]. */
  optionHelp: Array<[string, string]>;
  /** Positional arguments accepted, and what they are called in errors (default "argument"). */
  args: { min: number; max: number; name?: string };
  run(values: Values, args: string[]): Promise<number>;
}

export interface CommandLine {
  /** The program's name, as the user types it. */
  program: string;
  /** First line of the general help, after "<program> <version>: ". */
  tagline: string;
  /** Last line of the general help. */
  footer: string;
  commands: Command[];
  /** An error for a command line that names no command (the default: "unknown command"). */
  unknown?(argv: string[]): UsageError | undefined;
  /** The log level for a command when SEALCHAT_LOG does not set one (undefined: leave it). */
  logLevel(cmd: Command): LogLevel | undefined;
  /** Errors people cause (bad input, no daemon...): one line, no stack even with debug logs. */
  isExpected?(err: unknown): boolean;
}

function commandHelp(cli: CommandLine, cmd: Command): string {
  const width = Math.max(...cmd.optionHelp.map(([f]) => f.length), '-h, --help'.length);
  const lines = [
    `usage: ${cli.program} ${cmd.name} ${cmd.usage}`.trimEnd(),
    '',
    cmd.summary.charAt(0).toUpperCase() + cmd.summary.slice(1) + '.',
    '',
    'options:',
    ...[...cmd.optionHelp, ['-h, --help', 'show this help'] as [string, string]].map(([f, m]) => `  ${f.padEnd(width)}  ${m}`),
  ];
  return lines.join('\n') + '\n';
}

function generalHelp(cli: CommandLine): string {
  const width = Math.max(...cli.commands.map((c) => c.name.length));
  return (
    [
      `${cli.program} ${VERSION}: ${cli.tagline}`,
      '',
      `usage: ${cli.program} COMMAND [options]`,
      '',
      'commands:',
      ...cli.commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
      '',
      cli.footer,
    ].join('\n') + '\n'
  );
}

/** The command named by the first two words, or else the first one. */
function findCommand(cli: CommandLine, argv: string[]): { cmd: Command; rest: string[] } | null {
  for (const words of [2, 1]) {
    const name = argv.slice(0, words).join(' ');
    const cmd = cli.commands.find((c) => c.name === name);
    if (cmd) return { cmd, rest: argv.slice(words) };
  }
  return null;
}

async function runCommand(cli: CommandLine, argv: string[]): Promise<number> {
  if (argv.length === 0) {
    process.stderr.write(generalHelp(cli));
    return 2;
  }
  if (argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    const found = argv.length > 1 ? findCommand(cli, argv.slice(1)) : null;
    process.stdout.write(found ? commandHelp(cli, found.cmd) : generalHelp(cli));
    return 0;
  }
  if (argv[0] === '--version' || argv[0] === '-V') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const found = findCommand(cli, argv);
  if (!found) throw cli.unknown?.(argv) ?? new UsageError(`unknown command "${argv[0]}" (try '${cli.program} --help')`);
  const { cmd, rest } = found;
  let values: Values;
  let args: string[];
  try {
    const parsed = parseArgs({ args: rest, options: { ...cmd.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    values = parsed.values as Values;
    args = parsed.positionals;
  } catch (err) {
    // node:util's messages run on with advice about '--'; the first sentence is the point.
    const first = (err as Error).message.split(/\.\s/)[0]!.replace(/\.$/, '');
    throw new UsageError(`${cmd.name}: ${first}`, { cause: err });
  }
  if (values.help) {
    process.stdout.write(commandHelp(cli, cmd));
    return 0;
  }
  const usage = `usage: ${cli.program} ${cmd.name} ${cmd.usage}`;
  if (args.length < cmd.args.min) throw new UsageError(`${cmd.name}: missing ${cmd.args.name ?? 'argument'}\n${usage}`);
  if (args.length > cmd.args.max) throw new UsageError(`${cmd.name}: unexpected argument "${args[cmd.args.max]}"\n${usage}`);
  const level = cli.logLevel(cmd);
  if (level !== undefined && process.env.SEALCHAT_LOG === undefined) setLogLevel(level);
  return cmd.run(values, args);
}

/** Run the command `argv` names and set the exit code: 0 done, 1 failed, 2 bad command line. */
export function runCommandLine(cli: CommandLine, argv: string[]): void {
  const expected = (err: unknown): boolean => err instanceof CliError || cli.isExpected?.(err) === true;
  runCommand(cli, argv).then(
    (code) => {
      process.exitCode = code;
      // A finished command leaves nothing running that should keep the process (sockets are closed).
      if (process.stdin.isTTY) process.stdin.pause();
    },
    (err: unknown) => {
      if (err instanceof UsageError) {
        process.stderr.write(`${cli.program}: ${err.message}\n`);
        process.exitCode = 2;
        return;
      }
      const message = err instanceof Error ? err.message : String(err);
      process.stderr.write(`${cli.program}: ${message}\n`);
      if (!expected(err) && process.env.SEALCHAT_LOG === 'debug' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
      process.exitCode = 1;
    },
  );
}
