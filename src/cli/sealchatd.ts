#!/usr/bin/env node
/**
 * sealchatd: the daemon and its admin tool.
 *
 *   sealchatd ircd | serve | keybot        run a component in the foreground
 *   sealchatd user add|list|passwd|setkey|del   manage accounts
 *   sealchatd hash-password                make an argon2 hash for the config file
 *
 * Errors print as `sealchatd: <message>` on stderr; exit 2 for a bad command line, 1 when the
 * command failed. Passwords are never printed or logged.
 */

import { ControlCallError, ControlConnectError } from '../protocol/control-client.js';
import type { UserInfo } from '../protocol/control.js';
import { ConfigError, loadConfig, type Config } from '../ircd/config.js';
import { AdminError, formatUserTable, openAdmin, type AdminBackend } from '../ircd/control/index.js';
import { hashPassword, passwordProblem } from '../ircd/accounts.js';
import { StoreError } from '../ircd/store/index.js';
import { isValidAccountName } from '../protocol/names.js';
import { runCommandLine, type Command, type Options, type Values } from './command-table.js';
import { CliError, UsageError, readNewPassword, readSmallTextFile, readStdin } from './util.js';
import { runIrcd, runServe } from './serve.js';
import { addDefaultTlsListener } from './tls-default.js';


const CONFIG_OPTIONS: Options = {
  config: { type: 'string', short: 'c' },
  data: { type: 'string', short: 'd' },
};
const CONFIG_HELP: Array<[string, string]> = [
  ['-c, --config FILE', 'JSON config file (see docs/OPERATIONS.md)'],
  ['-d, --data DIR', 'data directory (overrides the config file; default ./data)'],
];
const DAEMON_OPTIONS: Options = { ...CONFIG_OPTIONS, listen: { type: 'string', short: 'l', multiple: true } };
const DAEMON_HELP: Array<[string, string]> = [
  ...CONFIG_HELP,
  ['-l, --listen HOST:PORT', 'plain IRC listener, repeatable ([::1]:6667 for IPv6); replaces the config file\'s plain IRC listeners'],
  ['-l, --listen ws://HOST:PORT', 'plain WebSocket listener serving the web companion; replaces the config file\'s plain WebSocket listeners (TLS listeners are always kept)'],
];

async function configFrom(values: Values): Promise<Config> {
  return loadConfig({
    file: values.config as string | undefined,
    dataDir: values.data as string | undefined,
    listen: values.listen as string[] | undefined,
  });
}

/** The --config/--data given, to repeat in hints. */
function dataArgs(values: Values): string[] {
  const out: string[] = [];
  if (typeof values.config === 'string') out.push('--config', values.config);
  if (typeof values.data === 'string') out.push('--data', values.data);
  return out;
}

/**
 * keybot's services password for `--network`: from a file or a variable, never the command line;
 * keybot runs unattended, so there is no prompt.
 */
async function networkPassword(values: Values): Promise<string> {
  const file = values['password-file'];
  const env = values['password-env'];
  if (typeof file === 'string' && typeof env === 'string') throw new UsageError('give --password-file or --password-env, not both');
  if (typeof file === 'string') {
    const text = (await readSmallTextFile(file, 64 * 1024)).replace(/\r?\n$/, '');
    if (text === '') throw new CliError(`${file} is empty; it should hold keybot's services password`);
    return text;
  }
  if (typeof env === 'string') {
    const text = process.env[env];
    if (text === undefined || text === '') throw new CliError(`the environment variable ${env} (--password-env) is not set or empty`);
    return text;
  }
  throw new UsageError("--network needs keybot's services password: --password-file FILE or --password-env VAR");
}

/** Run one admin action against the daemon (if running) or the store, closing either after. */
async function withAdmin<T>(values: Values, action: (admin: AdminBackend) => Promise<T>, opts: { create?: boolean } = {}): Promise<T> {
  const config = await configFrom(values);
  const admin = await openAdmin(config, opts);
  try {
    return await action(admin);
  } finally {
    await admin.close();
  }
}

async function readKey(values: Values, passwordOnStdin: boolean): Promise<string> {
  const file = values.key;
  if (typeof file !== 'string' || file === '') throw new UsageError('--key FILE is required (an armored OpenPGP public key)');
  if (file === '-') {
    if (passwordOnStdin) throw new UsageError('--key - and --password-stdin cannot both read standard input');
    return readStdin();
  }
  return readSmallTextFile(file);
}

async function newPassword(values: Values): Promise<string> {
  const password = await readNewPassword({ fromStdin: values['password-stdin'] === true });
  const problem = passwordProblem(password);
  if (problem) throw new CliError(problem);
  return password;
}

const COMMANDS: Command[] = [
  {
    name: 'ircd',
    usage: '[--config FILE] [--data DIR] [--listen [ws://]HOST:PORT]...',
    summary: 'run the IRC daemon in the foreground',
    options: DAEMON_OPTIONS,
    optionHelp: DAEMON_HELP,
    args: { min: 0, max: 0 },
    run: async (values) => runIrcd(await configFrom(values), { adminArgs: dataArgs(values) }),
  },
  {
    name: 'serve',
    usage: '[--config FILE] [--data DIR] [--listen [ws://]HOST:PORT]...',
    summary: 'run the IRC daemon and keybot together (npm start)',
    options: DAEMON_OPTIONS,
    optionHelp: DAEMON_HELP,
    args: { min: 0, max: 0 },
    run: async (values) => {
      const config = await configFrom(values);
      const tls = await addDefaultTlsListener(config, { listenGiven: values.listen !== undefined });
      return runServe(config, { adminArgs: dataArgs(values), defaultTls: tls });
    },
  },
  {
    name: 'keybot',
    usage: '[--config FILE] [--data DIR] [--irc HOST:PORT] | --network irc(s)://HOST[:PORT] --password-file FILE [--account NAME] [--accounts keybot [--oper NAME]]',
    summary: 'run the key service bot (connects to a running ircd, or with --network to an existing IRC network)',
    options: {
      ...CONFIG_OPTIONS,
      irc: { type: 'string' },
      network: { type: 'string' },
      account: { type: 'string' },
      'password-file': { type: 'string' },
      'password-env': { type: 'string' },
      'key-change-cool-down': { type: 'string' },
      insecure: { type: 'boolean' },
      accounts: { type: 'string' },
      oper: { type: 'string' },
      pace: { type: 'string' },
      'room-prefix': { type: 'string' },
    },
    optionHelp: [
      ...CONFIG_HELP,
      ['--irc HOST:PORT', "the ircd to log in to (default: the config's first plain listener)"],
      ['--network URL', 'serve an existing IRC network instead: irc://HOST[:PORT] or ircs://HOST[:PORT] (TLS); see docs/NETWORKS.md'],
      ['--account NAME', "with --network: keybot's services account (default keybot; keybot uses the nick keybot)"],
      ['--password-file FILE', "with --network: read the services account's password from FILE"],
      ['--password-env VAR', "with --network: read it from the environment variable VAR"],
      ['--key-change-cool-down D', 'with --network: how long a key change not signed by the old key waits, e.g. 7d, 12h (default 7d)'],
      ['--insecure', "with --network ircs://: do not verify the server's TLS certificate (test networks only)"],
      ['--accounts services|keybot', "with --network: whose accounts say who a user is: the network's services (default), or keybot's own on a network without services (ngIRCd); then no services password"],
      ['--pace BURST,PER_SECOND|off', "with --network: keybot's lines, BURST at once then PER_SECOND (default 8,1: under InspIRCd's default connect class); raise it with the class (docs/NETWORKS.md)"],
      ['--room-prefix #sc-|##sc-', "with --network: the prefix of keybot's rooms (default #sc-; ##sc- where the network keeps #name for registered projects, as Libera does)"],
      ['--oper NAME', 'with --accounts keybot: OPER as NAME after login (the password from --password-file/--password-env) for ngIRCd\'s +F, relaxed flood protection'],
    ],
    args: { min: 0, max: 0 },
    run: async (values) => {
      const keybot = await import('./keybot.js');
      if (typeof values.network !== 'string') {
        for (const flag of ['account', 'password-file', 'password-env', 'key-change-cool-down', 'insecure', 'accounts', 'oper', 'pace', 'room-prefix']) {
          if (values[flag] !== undefined) throw new UsageError(`--${flag} is for --network`);
        }
        return keybot.runKeybot({ config: await configFrom(values), irc: values.irc as string | undefined });
      }
      if (values.irc !== undefined) throw new UsageError('give --irc (a sealchatd) or --network (another network), not both');
      const endpoint = keybot.parseNetworkUrl(values.network);
      if (values.insecure === true) {
        if (!endpoint.tls) throw new UsageError('--insecure is for ircs:// networks');
        endpoint.rejectUnauthorized = false;
      }
      const account = typeof values.account === 'string' ? values.account : 'keybot';
      if (!isValidAccountName(account)) throw new UsageError(`--account: "${account}" is not a valid account name`);
      const keyChangeCoolDownMs =
        typeof values['key-change-cool-down'] === 'string' ? keybot.parseDuration(values['key-change-cool-down'], '--key-change-cool-down') : 7 * 86_400_000;
      const accounts = values.accounts ?? 'services';
      if (accounts !== 'services' && accounts !== 'keybot') throw new UsageError(`--accounts: "${String(accounts)}" is not services or keybot`);
      if (typeof values.oper === 'string' && accounts !== 'keybot') throw new UsageError('--oper is for --accounts keybot (ngIRCd)');
      const pace = typeof values.pace === 'string' ? keybot.parsePace(values.pace) : undefined;
      const roomPrefix = typeof values['room-prefix'] === 'string' ? keybot.parseRoomPrefix(values['room-prefix']) : undefined;
      // With keybot's own accounts there is no services login: the password, if any, is --oper's.
      const needsPassword = accounts === 'services' || typeof values.oper === 'string';
      const password = needsPassword ? await networkPassword(values) : '';
      return keybot.runNetworkKeybot({
        config: await configFrom(values),
        endpoint,
        account,
        password,
        keyChangeCoolDownMs,
        accounts,
        ...(typeof values.oper === 'string' ? { oper: { name: values.oper, password } } : {}),
        ...(pace !== undefined ? { pace } : {}),
        ...(roomPrefix !== undefined ? { roomPrefix } : {}),
      });
    },
  },
  {
    name: 'user add',
    usage: 'NAME --key FILE [--password-stdin] [--config FILE] [--data DIR]',
    summary: 'create an account with an OpenPGP public key',
    options: { ...CONFIG_OPTIONS, key: { type: 'string', short: 'k' }, 'password-stdin': { type: 'boolean' } },
    optionHelp: [
      ['-k, --key FILE', 'armored OpenPGP public key (- for standard input)'],
      ['--password-stdin', 'read the password from standard input instead of prompting'],
      ...CONFIG_HELP,
    ],
    args: { min: 1, max: 1, name: 'NAME' },
    run: async (values, [name]) => {
      const fromStdin = values['password-stdin'] === true;
      const publicKey = await readKey(values, fromStdin);
      const password = await newPassword(values);
      const user = await withAdmin(values, (a) => a.call('user.add', { name: name!, password, publicKey }), { create: true });
      process.stdout.write(`added ${user.name} (key fingerprint ${user.fingerprint})\n`);
      return 0;
    },
  },
  {
    name: 'user list',
    usage: '[--json] [--config FILE] [--data DIR]',
    summary: 'list accounts with their key fingerprints and presence',
    options: { ...CONFIG_OPTIONS, json: { type: 'boolean' } },
    optionHelp: [['--json', 'print JSON instead of a table'], ...CONFIG_HELP],
    args: { min: 0, max: 0 },
    run: async (values) => {
      const users: UserInfo[] = await withAdmin(values, (a) => a.call('user.list', {}));
      process.stdout.write(values.json ? JSON.stringify(users, null, 2) + '\n' : formatUserTable(users));
      return 0;
    },
  },
  {
    name: 'user passwd',
    usage: 'NAME [--password-stdin] [--config FILE] [--data DIR]',
    summary: "change an account's password",
    options: { ...CONFIG_OPTIONS, 'password-stdin': { type: 'boolean' } },
    optionHelp: [['--password-stdin', 'read the password from standard input instead of prompting'], ...CONFIG_HELP],
    args: { min: 1, max: 1, name: 'NAME' },
    run: async (values, [name]) => {
      const changed = await withAdmin(values, async (a) => {
        // Look the account up first, so a typo fails before the password prompt.
        const found = await a.call('user.get', { name: name! });
        if (!found) throw new CliError(`no account named ${name}`);
        const password = await newPassword(values);
        await a.call('user.passwd', { name: name!, password });
        return found.name;
      });
      process.stdout.write(`changed the password of ${changed}\n`);
      return 0;
    },
  },
  {
    name: 'user setkey',
    usage: 'NAME --key FILE [--config FILE] [--data DIR]',
    summary: "replace an account's OpenPGP public key",
    options: { ...CONFIG_OPTIONS, key: { type: 'string', short: 'k' } },
    optionHelp: [['-k, --key FILE', 'armored OpenPGP public key (- for standard input)'], ...CONFIG_HELP],
    args: { min: 1, max: 1, name: 'NAME' },
    run: async (values, [name]) => {
      const publicKey = await readKey(values, false);
      const user = await withAdmin(values, (a) => a.call('user.setkey', { name: name!, publicKey }));
      process.stdout.write(`set the key of ${user.name} (fingerprint ${user.fingerprint})\n`);
      return 0;
    },
  },
  {
    name: 'user del',
    usage: 'NAME [--config FILE] [--data DIR]',
    summary: 'delete an account (and disconnect it, if the daemon runs)',
    options: CONFIG_OPTIONS,
    optionHelp: CONFIG_HELP,
    args: { min: 1, max: 1, name: 'NAME' },
    run: async (values, [name]) => {
      await withAdmin(values, (a) => a.call('user.del', { name: name! }));
      process.stdout.write(`deleted ${name}\n`);
      return 0;
    },
  },
  {
    name: 'hash-password',
    usage: '[--stdin]',
    summary: 'print an argon2 hash for serverPasswordHash / operators in the config file',
    options: { stdin: { type: 'boolean' } },
    optionHelp: [['--stdin', 'read the password from standard input instead of prompting']],
    args: { min: 0, max: 0 },
    run: async (values) => {
      const password = await readNewPassword({ fromStdin: values.stdin === true });
      const problem = passwordProblem(password);
      if (problem) throw new CliError(problem);
      process.stdout.write((await hashPassword(password)) + '\n');
      return 0;
    },
  },
];

/** Errors people cause (bad input, no daemon, refused by the service) print one line, no stack. */
function isExpected(err: unknown): err is Error {
  return (
    err instanceof CliError ||
    err instanceof ConfigError ||
    err instanceof ControlCallError ||
    err instanceof ControlConnectError ||
    err instanceof AdminError ||
    err instanceof StoreError
  );
}

runCommandLine(
  {
    program: 'sealchatd',
    tagline: 'secure group chat over IRC (daemon and admin tool)',
    footer: "Run 'sealchatd COMMAND --help' for a command's options.",
    commands: COMMANDS,
    unknown: (argv) => {
      if (argv[0] !== 'user') return undefined;
      const subs = COMMANDS.filter((c) => c.name.startsWith('user ')).map((c) => c.name.slice(5));
      return new UsageError(argv[1] === undefined || argv[1].startsWith('-') ? `user needs a subcommand: ${subs.join(', ')}` : `unknown user subcommand "${argv[1]}" (try: ${subs.join(', ')})`);
    },
    // The admin commands print their own outcome; the service's info lines would only repeat it.
    logLevel: (cmd) => (['ircd', 'serve', 'keybot'].includes(cmd.name) ? undefined : 'warn'),
    isExpected,
  },
  process.argv.slice(2),
);
