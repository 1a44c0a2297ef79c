/**
 * Real IRC clients (irssi, WeeChat) in a private tmux server, configured against a local port.
 * irssi needs cmd_queue_speed set before connecting: its flood control
 * would otherwise hold commands for seconds after long lines, and even "10msec" leaves a 500 ms pace
 * after a short burst, so the tests use "0". WeeChat's anti-flood delays are set to 0 as well, and
 * since its `-r` commands are split on ';' and evaluated, the password is typed into /server add.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { haveCommand, Tmux } from './tmux.js';

export interface RealClient {
  readonly kind: 'irssi' | 'weechat';
  readonly nick: string;
  readonly home: string;
  readonly tmux: Tmux;
  /** Type a line (a /command or text) and press Enter. */
  send(line: string): Promise<void>;
  /** Connect to 127.0.0.1:port as `nick` with `password` (bare password; the nick is the account). */
  connect(password: string): Promise<void>;
  /** Show the channel's window/buffer. */
  showChannel(channel: string): Promise<void>;
  /** Show the status/server window/buffer (where WHOIS output lands). */
  showServer(): Promise<void>;
  capture(): Promise<string>;
  waitForText(re: RegExp, ms?: number): Promise<string>;
  /** /quit, wait briefly for the client to exit, kill the tmux server, remove the home dir. */
  stop(): Promise<void>;
}

export interface StartOptions {
  port: number;
  nick: string;
  /**
   * irssi only: log in with SASL PLAIN (a network with services) to 127.0.0.1:port, as the
   * chatnet `sc` of the config; connect with `send('/connect sc')`.
   */
  sasl?: { account: string; password: string };
}

abstract class Base implements RealClient {
  abstract readonly kind: 'irssi' | 'weechat';
  private stopped = false;

  constructor(readonly nick: string, readonly home: string, readonly tmux: Tmux, protected readonly port: number) {}

  send(line: string): Promise<void> {
    return this.tmux.sendKeys(line);
  }

  abstract connect(password: string): Promise<void>;
  abstract showChannel(channel: string): Promise<void>;
  abstract showServer(): Promise<void>;

  capture(): Promise<string> {
    return this.tmux.capture();
  }

  waitForText(re: RegExp, ms = 10_000): Promise<string> {
    return this.tmux.waitForText(re, ms);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    try {
      await this.send('/quit');
      // The wrapper prints "exited" once the client is gone; do not wait long for it.
      await this.tmux.waitForText(/^exited$/m, 3000);
    } catch {
      // a client that does not quit in time is killed with its tmux server
    }
    await this.tmux.kill();
    await rm(this.home, { recursive: true, force: true });
  }
}

class Irssi extends Base {
  readonly kind = 'irssi' as const;

  async connect(password: string): Promise<void> {
    await this.send(`/connect 127.0.0.1 ${this.port} ${password} ${this.nick}`);
  }

  async showChannel(channel: string): Promise<void> {
    await this.send(`/window goto ${channel}`);
  }

  async showServer(): Promise<void> {
    await this.send('/window 1');
  }
}

class Weechat extends Base {
  readonly kind = 'weechat' as const;

  async connect(password: string): Promise<void> {
    // Typed, not passed via -r: no ';' splitting; the value is plain letters, digits and '-'.
    await this.send(
      `/server add t 127.0.0.1/${this.port} -password=${password} -nicks=${this.nick} -username=${this.nick} ` +
        `-realname=${this.nick} -notls -autoreconnect=off`,
    );
    await this.send('/connect t');
  }

  async showChannel(channel: string): Promise<void> {
    await this.send(`/buffer irc.t.${channel}`);
  }

  async showServer(): Promise<void> {
    await this.send('/buffer irc.server.t');
  }
}

/** `s` as a literal inside a RegExp. */
export function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

export function haveIrssi(): Promise<boolean> {
  return haveCommand('irssi');
}

export async function haveWeechat(): Promise<boolean> {
  return (await haveCommand('weechat')) || (await haveCommand('weechat-curses'));
}

/** irssi with a pre-written config (no first-run setup, flood control off), not yet connected. */
export async function startIrssi(opts: StartOptions): Promise<RealClient> {
  const home = await mkdtemp(path.join(os.tmpdir(), 'sealchat-irssi-'));
  const config = `settings = {
  core = {
    real_name = "${opts.nick}";
    user_name = "${opts.nick}";
    nick = "${opts.nick}";
    settings_autosave = "no";
    server_reconnect_time = "1h";
  };
  "irc/core" = {
    # "0" turns irssi's command queue off. With "10msec" irssi still sends only a short burst at
    # once and then one queued line per 500 ms tick of its queue timer (measured with irssi 1.4.3).
    cmd_queue_speed = "0";
  };
  "fe-common/core" = {
    autolog = "no";
  };
};
${
    opts.sasl
      ? `servers = ( { address = "127.0.0.1"; chatnet = "sc"; port = "${opts.port}"; use_tls = "no"; autoconnect = "no"; } );
chatnets = { sc = { type = "IRC"; sasl_mechanism = "PLAIN"; sasl_username = "${opts.sasl.account}"; sasl_password = "${opts.sasl.password}"; }; };`
      : 'servers = ( );\nchatnets = { };'
  }
channels = ( );
`;
  await writeFile(path.join(home, 'config'), config, { mode: 0o600 });
  let tmux: Tmux;
  try {
    tmux = await Tmux.start({ argv: ['irssi', `--home=${home}`, '-n', opts.nick, '--noconnect'], cwd: home, env: { HOME: home } });
  } catch (err) {
    await rm(home, { recursive: true, force: true });
    throw err;
  }
  const client = new Irssi(opts.nick, home, tmux, opts.port);
  try {
    // The input prompt of the status window marks a started UI. A config irssi does not fully
    // understand makes it ask "Remove unknown settings (Y/n)?", which would eat the next line typed.
    const screen = await tmux.waitForText(/^\[\(status\)\]/m, 10_000);
    if (/Unknown settings|Remove unknown/.test(screen)) throw new Error(`irssi rejected its test config:\n${screen}`);
  } catch (err) {
    await client.stop();
    throw err;
  }
  return client;
}

/** WeeChat in its own home dir, paste confirmation off, not yet connected. */
export async function startWeechat(opts: StartOptions): Promise<RealClient> {
  const home = await mkdtemp(path.join(os.tmpdir(), 'sealchat-weechat-'));
  const bin = (await haveCommand('weechat')) ? 'weechat' : 'weechat-curses';
  let tmux: Tmux;
  try {
    tmux = await Tmux.start({
      argv: [bin, '-d', home, '-r', '/set weechat.look.paste_max_lines -1;/set weechat.startup.display_logo off;' +
          '/set irc.server_default.anti_flood_prio_high 0;/set irc.server_default.anti_flood_prio_low 0'],
      cwd: home,
      env: { HOME: home },
    });
  } catch (err) {
    await rm(home, { recursive: true, force: true });
    throw err;
  }
  const client = new Weechat(opts.nick, home, tmux, opts.port);
  try {
    await tmux.waitForText(/anti_flood_prio_low = 0/, 10_000);
  } catch (err) {
    await client.stop();
    throw err;
  }
  return client;
}
