#!/usr/bin/env node
/**
 * sealchat: the user's side of sealchat.
 *
 *   sealchat keygen NAME           make your key pair (the administrator registers the public key)
 *   sealchat chat --server H:P     a terminal client
 *   sealchat proxy --server H:P    a local proxy for any IRC client (irssi, WeeChat, HexChat...)
 *   sealchat agent --account NAME  the helper the WeeChat/irssi plugins talk to
 *   sealchat register --server H:P on a network where keybot keeps its own key directory: register your key
 *
 * Errors print as `sealchat: <message>` on stderr; exit 2 for a bad command line, 1 when the
 * command failed. Passwords and passphrases come from a prompt without echo, a file or an
 * environment variable; never from the command line, never printed.
 */

import { runCommandLine, type Command, type Options } from './command-table.js';

const PASSPHRASE_OPTIONS: Options = { 'passphrase-file': { type: 'string' }, 'passphrase-env': { type: 'string' } };
const PASSPHRASE_HELP: Array<[string, string]> = [
  ['--passphrase-file FILE', "read the private key's passphrase from FILE (else it is asked, without echo)"],
  ['--passphrase-env VAR', "read the private key's passphrase from the environment variable VAR"],
];
const SERVER_OPTIONS: Options = {
  server: { type: 'string', short: 's' },
  tls: { type: 'boolean' },
  'tls-fingerprint': { type: 'string' },
  insecure: { type: 'boolean' },
  'keybot-fingerprint': { type: 'string' },
  'keybot-key': { type: 'string' },
};
const SERVER_HELP: Array<[string, string]> = [
  ['-s, --server HOST:PORT', 'the sealchat server'],
  ['--tls', "connect with TLS; a self-signed server certificate is pinned on first use (~/.sealchat/known_servers.json)"],
  ['--tls-fingerprint FP', "the SHA-256 fingerprint the server's TLS certificate must have (sealchatd prints it; implies --tls)"],
  ['--insecure', "do not verify the server's TLS certificate (test servers only)"],
  ['--keybot-fingerprint FP', "pin keybot's key to this fingerprint (ask your administrator; recommended)"],
  ['--keybot-key FILE', "keybot's armored public key, instead of asking keybot for it"],
];

const COMMANDS: Command[] = [
  {
    name: 'keygen',
    usage: 'NAME [--dir DIR] [--rsa] [--force]',
    summary: 'make your OpenPGP key pair: NAME.key.asc (private) and NAME.pub.asc (for the administrator)',
    options: {
      dir: { type: 'string', short: 'd' },
      rsa: { type: 'boolean' },
      force: { type: 'boolean', short: 'f' },
      'no-passphrase': { type: 'boolean' },
      ...PASSPHRASE_OPTIONS,
    },
    optionHelp: [
      ['-d, --dir DIR', 'where to write the files (default ~/.sealchat, or $SEALCHAT_HOME)'],
      ['--rsa', 'an RSA-3072 key instead of the default Ed25519/Curve25519 one'],
      ['-f, --force', 'replace an existing key pair of that name'],
      ['--passphrase-file FILE', 'protect the key with the passphrase in FILE (else it is asked twice, without echo)'],
      ['--passphrase-env VAR', 'protect the key with the passphrase in the environment variable VAR'],
      ['--no-passphrase', 'leave the private key unprotected (tests only)'],
    ],
    args: { min: 1, max: 1, name: 'NAME' },
    run: async (values, args) => (await import('./keygen.js')).runKeygen(values, args),
  },
  {
    name: 'chat',
    usage: '--server HOST:PORT --user NAME [--tls] [--sasl | --keybot-account] [--key FILE] [--keybot-fingerprint FP]',
    summary: 'chat in encrypted rooms from the terminal',
    options: {
      ...SERVER_OPTIONS,
      user: { type: 'string', short: 'u' },
      key: { type: 'string', short: 'k' },
      'password-file': { type: 'string' },
      'password-env': { type: 'string' },
      'reconnect-attempts': { type: 'string' },
      sasl: { type: 'boolean' },
      'keybot-account': { type: 'boolean' },
      ...PASSPHRASE_OPTIONS,
    },
    optionHelp: [
      ...SERVER_HELP,
      ['-u, --user NAME', 'your account name'],
      ['-k, --key FILE', 'your private key (default ~/.sealchat/NAME.key.asc)'],
      ['--password-file FILE', 'read the account password from FILE (else it is asked, without echo)'],
      ['--password-env VAR', 'read the account password from the environment variable VAR'],
      ['--sasl', "log in with SASL (an existing network's services account, docs/NETWORKS.md) instead of PASS"],
      ['--keybot-account', "a network without services (ngIRCd): the password is your keybot account's, sent as `login` to keybot at connect and after every reconnect"],
      ...PASSPHRASE_HELP,
      ['--reconnect-attempts N', 'after a lost connection, give up after N failed attempts in a row (default: keep trying; 0: exit at once)'],
    ],
    args: { min: 0, max: 0 },
    run: async (values, args) => (await import('./chat.js')).runChat(values, args),
  },
  {
    name: 'register',
    usage: '--server HOST:PORT --user NAME [--tls] [--key FILE] [--old-key FILE] [--keybot-account] [--keybot-fingerprint FP]',
    summary: "on an IRC network where keybot keeps its own key directory, register your key with keybot (docs/NETWORKS.md)",
    options: {
      ...SERVER_OPTIONS,
      user: { type: 'string', short: 'u' },
      key: { type: 'string', short: 'k' },
      'old-key': { type: 'string' },
      'old-passphrase-file': { type: 'string' },
      'password-file': { type: 'string' },
      'password-env': { type: 'string' },
      'keybot-account': { type: 'boolean' },
      ...PASSPHRASE_OPTIONS,
    },
    optionHelp: [
      ...SERVER_HELP,
      ['-u, --user NAME', "your services account on the network (logged in with SASL)"],
      ['-k, --key FILE', 'your private key (default ~/.sealchat/NAME.key.asc)'],
      ['--old-key FILE', 'the private key registered so far: signs the change, so it needs no cool-down'],
      ['--old-passphrase-file FILE', "read the old key's passphrase from FILE (else it is asked)"],
      ['--password-file FILE', 'read the account password from FILE (else it is asked, without echo)'],
      ['--password-env VAR', 'read the account password from the environment variable VAR'],
      ['--keybot-account', "a network without services (ngIRCd): no SASL; the password is your keybot account's (made the first time)"],
      ...PASSPHRASE_HELP,
    ],
    args: { min: 0, max: 0 },
    run: async (values, args) => (await import('./register.js')).runRegister(values, args),
  },
  {
    name: 'proxy',
    usage: '--server HOST:PORT --key FILE [--listen [HOST:]PORT] [--tls] [--user NAME] [--keybot-account] [--keybot-fingerprint FP]',
    summary: 'a local IRC proxy that encrypts and decrypts for any IRC client',
    options: {
      ...SERVER_OPTIONS,
      listen: { type: 'string', short: 'l' },
      key: { type: 'string', short: 'k' },
      user: { type: 'string', short: 'u' },
      'allow-plaintext': { type: 'boolean' },
      'allow-remote': { type: 'boolean' },
      'keybot-account': { type: 'boolean' },
      'password-file': { type: 'string' },
      'password-env': { type: 'string' },
      ...PASSPHRASE_OPTIONS,
    },
    optionHelp: [
      ['-l, --listen [HOST:]PORT', 'where your IRC client connects (default 127.0.0.1:6680)'],
      ...SERVER_HELP,
      ['-k, --key FILE', 'your private key (default with --user: ~/.sealchat/NAME.key.asc)'],
      ['-u, --user NAME', 'only this account may log in through the proxy (the key\'s owner)'],
      ...PASSPHRASE_HELP,
      ['--allow-plaintext', 'let plaintext through to ordinary channels and private messages (encrypted rooms never)'],
      ['--allow-remote', 'allow a --listen address other machines can reach'],
      ['--keybot-account', "a network without services (ngIRCd): log every connection in to your keybot account (needs --user; the password is asked once, or --password-file/--password-env)"],
      ['--password-file FILE', 'with --keybot-account: read your keybot password from FILE'],
      ['--password-env VAR', 'with --keybot-account: read your keybot password from the environment variable VAR'],
    ],
    args: { min: 0, max: 0 },
    run: async (values, args) => (await import('./proxy.js')).runProxy(values, args),
  },
  {
    name: 'agent',
    usage: '--account NAME [--socket PATH] [--key FILE] [--keybot-account] [--keybot-fingerprint FP | --keybot-key FILE]',
    summary: 'serve the WeeChat/irssi plugins on a local socket',
    options: {
      socket: { type: 'string' },
      key: { type: 'string', short: 'k' },
      account: { type: 'string', short: 'a' },
      'keybot-fingerprint': { type: 'string' },
      'keybot-key': { type: 'string' },
      'keybot-account': { type: 'boolean' },
      'password-file': { type: 'string' },
      'password-env': { type: 'string' },
      ...PASSPHRASE_OPTIONS,
    },
    optionHelp: [
      ['-a, --account NAME', 'your account name'],
      ['--socket PATH', 'the unix socket the plugins connect to (default ~/.sealchat/agent-NAME.sock)'],
      ['-k, --key FILE', 'your private key (default ~/.sealchat/NAME.key.asc)'],
      ...PASSPHRASE_HELP,
      ['--keybot-fingerprint FP', "pin keybot's key to this fingerprint (ask your administrator; recommended)"],
      ['--keybot-key FILE', "keybot's armored public key, instead of asking keybot for it"],
      ['--keybot-account', "a network without services (ngIRCd): log every plugin connection in to your keybot account (the password is asked once, or --password-file/--password-env)"],
      ['--password-file FILE', 'with --keybot-account: read your keybot password from FILE'],
      ['--password-env VAR', 'with --keybot-account: read your keybot password from the environment variable VAR'],
    ],
    args: { min: 0, max: 0 },
    run: async (values) => {
      const { runAgent } = await import('./agent.js');
      return runAgent(values as Record<string, string | boolean | undefined>);
    },
  },
  {
    name: 'plugin-path',
    usage: 'weechat|irssi',
    summary: "print where this installation keeps the WeeChat or irssi plugin script, for your client's install step",
    options: {},
    optionHelp: [],
    args: { min: 1, max: 1, name: 'CLIENT' },
    run: async (_values, args) => (await import('./plugin-path.js')).runPluginPath(args),
  },
];

runCommandLine(
  {
    program: 'sealchat',
    tagline: 'secure group chat over IRC (your side: keys, terminal client, proxy)',
    footer: "Run 'sealchat COMMAND --help' for a command's options. Guide: docs/COMPANIONS.md.",
    commands: COMMANDS,
    // The commands print what the user needs; library info lines would only clutter the terminal.
    logLevel: (cmd) => (cmd.name === 'proxy' || cmd.name === 'agent' ? 'info' : 'warn'),
  },
  process.argv.slice(2),
);
