/**
 * A real InspIRCd 3 with Atheme services for the network tests (Debian: apt-get install inspircd
 * atheme-services), started on free loopback ports with configs in a temp dir, and stopped by
 * pid. `available()` says why not when the binaries are missing (the suite then skips, and
 * scripts/check-skips.mjs fails CI for it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import IRC, { type Client as IrcClient } from 'irc-framework';
import { until } from '../helpers/poll.js';

const INSPIRCD = '/usr/sbin/inspircd';
const ATHEME = '/usr/bin/atheme-services';
export const NETWORK_NAME = 'sctest';
export const OPER = { name: 'netop', password: 'operpass' };

/** Undefined when both servers can run here, else why not. */
export function missing(): string | undefined {
  const gone = [INSPIRCD, ATHEME].filter((b) => !existsSync(b));
  return gone.length ? `needs ${gone.join(' and ')} (apt-get install inspircd atheme-services)` : undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface TestNetwork {
  port: number;
  dir: string;
  stop(): Promise<void>;
}

/** The test network's connect class: room for keybot's bursts (docs/NETWORKS.md "Running it"). */
export const ROOMY_CLASS = 'threshold="100" commandrate="20000" hardsendq="1048576" softsendq="65536" recvq="65536"';
/** keybot's pace for ROOMY_CLASS (and ngIRCd with +F): well under threshold 100, commandrate 20/s. */
export const ROOMY_PACE = { burst: 50, perSecond: 15 };
/** InspIRCd 3's default connect class (its inspircd.conf example and built-in defaults). */
export const DEFAULT_CLASS = 'threshold="10" commandrate="1000" hardsendq="1048576" softsendq="8192" recvq="8192"';

function inspircdConf(dir: string, port: number, linkPort: number, connectClass: string): string {
  return `<server name="irc.test.local" description="sealchat test" network="${NETWORK_NAME}" id="001">
<admin name="test" nick="test" email="test@example.org">
<bind address="127.0.0.1" port="${port}" type="clients">
<bind address="127.0.0.1" port="${linkPort}" type="servers">
<connect allow="*" timeout="20" pingfreq="120" ${connectClass} localmax="100" globalmax="100" limit="1000" useident="no" resolvehostnames="no">
<files motd="${dir}/motd.txt">
<pid file="${dir}/inspircd.pid">
<options prefixquit="Quit: " hostintopic="yes">
<security hideserver="" userstats="Pu" customversion="">
<performance softlimit="1024" somaxconn="128" netbuffersize="10240">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="${dir}/ircd.log">
<class name="SA" commands="SAJOIN SAPART" privs="users/sajoin-others channels/auspex">
<type name="NetOp" classes="SA">
<oper name="${OPER.name}" password="${OPER.password}" host="*@*" type="NetOp">
<module name="cap">
<module name="ircv3">
<module name="ircv3_accounttag">
<module name="ircv3_capnotify">
<module name="ircv3_ctctags">
<module name="ircv3_servertime">
<module name="ircv3_invitenotify">
<module name="monitor">
<module name="sasl">
<module name="services_account">
<module name="spanningtree">
<module name="botmode">
<module name="sajoin">
<ircv3 accountnotify="yes" awaynotify="yes" extendedjoin="yes">
<monitor maxentries="100">
<sasl target="services.test.local">
<uline server="services.test.local" silent="yes">
<link name="services.test.local" ipaddr="127.0.0.1" port="${linkPort}" allowmask="127.0.0.0/8" sendpass="linkpass" recvpass="linkpass">
`;
}

function athemeConf(linkPort: number): string {
  return `loadmodule "modules/protocol/inspircd";
loadmodule "modules/backend/opensex";
loadmodule "modules/crypto/pbkdf2v2";
loadmodule "modules/nickserv/main";
loadmodule "modules/nickserv/register";
loadmodule "modules/nickserv/identify";
loadmodule "modules/nickserv/logout";
loadmodule "modules/saslserv/main";
loadmodule "modules/saslserv/plain";
serverinfo {
  name = "services.test.local"; desc = "Atheme test services"; numeric = "00A"; recontime = 1;
  netname = "${NETWORK_NAME}"; hidehostsuffix = "users.sctest"; adminname = "test";
  adminemail = "test@example.org"; registeremail = "noreply@example.org"; auth = none;
  casemapping = ascii; loglevel = { admin; error; info; network; register; };
  maxlogins = 5; maxusers = 5; mdlimit = 30; emaillimit = 10; emailtime = 300;
};
uplink "irc.test.local" { host = "127.0.0.1"; port = ${linkPort}; send_password = "linkpass"; receive_password = "linkpass"; };
nickserv { nick = "NickServ"; user = "NickServ"; host = "services.test.local"; real = "Nickname Services"; };
saslserv { nick = "SaslServ"; user = "SaslServ"; host = "services.test.local"; real = "SASL Authentication Agent"; };
general {
  helpchan = "#help"; helpurl = "http://example.org"; join_chans; leave_chans; uflags = { hidemail; };
  cflags = { guard; }; flood_msgs = 0; flood_time = 10; ratelimit_uses = 0; ratelimit_period = 60;
  vhost_change = 30; kline_time = 7; commit_interval = 5; default_clone_allowed = 50; clone_increase = no;
  uplink_sendq_limit = 1048576; language = "en"; exempts { };
};
nicknames { enforce_time = 30; };
`;
}

/** Start InspIRCd and Atheme linked to it; resolves once services have synched. */
export async function startNetwork(o: { connectClass?: string } = {}): Promise<TestNetwork> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-net-'));
  const [port, linkPort] = [await freePort(), await freePort()];
  await writeFile(path.join(dir, 'motd.txt'), 'sealchat network test\n');
  await writeFile(path.join(dir, 'inspircd.conf'), inspircdConf(dir, port, linkPort, o.connectClass ?? ROOMY_CLASS));
  await writeFile(path.join(dir, 'atheme.conf'), athemeConf(linkPort));
  await mkdir(path.join(dir, 'atheme'), { recursive: true });
  const asRoot = process.getuid?.() === 0 ? ['--runasroot'] : [];
  const procs: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    for (const p of procs.reverse()) if (p.exitCode === null && p.pid) p.kill('SIGTERM');
    await Promise.all(procs.map((p) => (p.exitCode !== null ? undefined : new Promise((r) => p.once('exit', r)))));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const ircd = spawn(INSPIRCD, [...asRoot, '--nofork', `--config=${path.join(dir, 'inspircd.conf')}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(ircd);
    let ircdOut = '';
    ircd.stdout!.on('data', (d: Buffer) => (ircdOut += d.toString()));
    ircd.stderr!.on('data', (d: Buffer) => (ircdOut += d.toString()));
    await until(() => ircdOut.includes('InspIRCd is now running') || ircd.exitCode !== null, 'InspIRCd to start', 15_000);
    if (ircd.exitCode !== null) throw new Error(`InspIRCd did not start:\n${ircdOut}`);
    const atheme = spawn(
      ATHEME,
      ['-n', '-c', path.join(dir, 'atheme.conf'), '-D', path.join(dir, 'atheme'), '-l', path.join(dir, 'atheme.log'), '-p', path.join(dir, 'atheme.pid')],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    procs.push(atheme);
    let athemeOut = '';
    atheme.stdout!.on('data', (d: Buffer) => (athemeOut += d.toString()));
    atheme.stderr!.on('data', (d: Buffer) => (athemeOut += d.toString()));
    await until(() => athemeOut.includes('finished synching with uplink') || atheme.exitCode !== null, 'Atheme to link', 15_000);
    if (atheme.exitCode !== null) throw new Error(`Atheme did not start:\n${athemeOut}`);
  } catch (err) {
    const log = await readFile(path.join(dir, 'ircd.log'), 'utf8').catch(() => '');
    await stop();
    throw new Error(`${(err as Error).message}\n${log.slice(-2000)}`);
  }
  return { port, dir, stop };
}

/** A plain irc-framework client on the network (optionally logged in with SASL). */
export function connectPlain(port: number, nick: string, account?: { account: string; password: string }): Promise<IrcClient> {
  const c = new IRC.Client();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${nick}: no registration`)), 10_000);
    c.once('registered', () => {
      clearTimeout(t);
      resolve(c);
    });
    c.once('close', () => reject(new Error(`${nick}: closed during registration`)));
    c.connect({ host: '127.0.0.1', port, nick, username: nick, gecos: nick, auto_reconnect: false, ...(account ? { account } : {}) });
  });
}

/** Register a NickServ account (nick = account) and disconnect. */
export async function registerAccount(port: number, name: string, password: string): Promise<void> {
  const c = await connectPlain(port, name);
  try {
    const done = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`NickServ did not register ${name}`)), 10_000);
      c.on('notice', (e: { nick?: string; message: string }) => {
        if (e.nick === 'NickServ' && /is now registered/.test(e.message)) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    c.say('NickServ', `REGISTER ${password} ${name}@example.org`);
    await done;
  } finally {
    c.quit();
  }
}

/** Whether the Debian binaries answer at all (a broken install is a failure, not a skip). */
export function versions(): string {
  return `${spawnSync(INSPIRCD, ['--version']).stdout?.toString().trim()} / ${spawnSync(ATHEME, ['-v']).stdout?.toString().split('\n')[0]}`;
}

const NGIRCD = '/usr/sbin/ngircd';
export const NGIRCD_NETWORK = 'ngtest';

/** Undefined when ngIRCd can run here, else why not. */
export function ngircdMissing(): string | undefined {
  return existsSync(NGIRCD) ? undefined : `needs ${NGIRCD} (apt-get install ngircd)`;
}

/**
 * ngIRCd (no services: keybot keeps its own accounts there) on a free loopback port, with a
 * generated config that includes nothing of the system's (IncludeDir is the temp dir). Nicks up to
 * 30 characters (ngIRCd's default is 9). Under root it drops to nobody after reading the config.
 */
export async function startNgircd(): Promise<TestNetwork> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-ngircd-'));
  const port = await freePort();
  const conf = `[Global]
Name = irc.ngtest.local
Info = sealchat test
Listen = 127.0.0.1
Ports = ${port}
Network = ${NGIRCD_NETWORK}
MotdPhrase = sealchat ngIRCd test
[Limits]
MaxNickLength = 30
MaxJoins = 50
# Every test client comes from 127.0.0.1 (the default allows 5 connections per address).
MaxConnectionsIP = 0
[Options]
PAM = no
Ident = no
DNS = no
IncludeDir = ${dir}
# An IRC operator may set channel modes without being a channel operator: the tests' stand-in
# for what a network's operators can do to a room.
OperCanUseMode = yes
[Operator]
Name = ${OPER.name}
Password = ${OPER.password}
`;
  await writeFile(path.join(dir, 'ngircd.conf'), conf);
  const ircd = spawn(NGIRCD, ['--nodaemon', '--config', path.join(dir, 'ngircd.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  ircd.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  ircd.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const stop = async (): Promise<void> => {
    if (ircd.exitCode === null && ircd.signalCode === null) {
      const gone = new Promise((r) => ircd.once('exit', r));
      ircd.kill('SIGTERM');
      await gone;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await until(() => /Now listening on \[127\.0\.0\.1\]:\d+/.test(out) || ircd.exitCode !== null, 'ngIRCd to listen', 15_000);
    if (ircd.exitCode !== null) throw new Error(`ngIRCd did not start:\n${out}`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, dir, stop };
}
