/**
 * Starting and stopping the daemon: the store, the account service, the IRC listeners (plain
 * TCP and TLS) and the local control socket that keybot and the admin tool use.
 */
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { Accounts, type ServiceAccount } from './accounts.js';
import type { Config } from './config.js';
import { ControlServer, errorResponse, makeControlDispatcher, type ControlHandlers } from './control.js';
import { makeAccountMethods } from './control-accounts.js';
import { CONTROL_SOCKET_NAME } from '../protocol/files.js';
import { type ChannelInfo, type ControlRequest, type ControlResponse, type JoinOutcome } from '../protocol/control.js';
import { ControlFailure } from './control.js';
import { casefold, isValidChannelName, KEYBOT_NICK } from '../protocol/names.js';
import { sendChannelBurst } from './commands/channels.js';
import type { Channel } from './server/channel.js';
import { Relay } from './server/relay.js';
import { IrcServer } from './server/server.js';
import { openAccountStore, type AccountStore } from './store/index.js';

export interface ListenerInfo {
  host: string;
  port: number;
  tls: boolean;
}

export interface Daemon {
  readonly config: Config;
  readonly server: IrcServer;
  readonly accounts: Accounts;
  readonly listeners: ListenerInfo[];
  readonly service: ServiceAccount;
  readonly controlPath: string;
  close(): Promise<void>;
}

export async function startDaemon(config: Config): Promise<Daemon> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  // Claim the control socket first: a second daemon on the same data dir is refused before it
  // touches the store. Handlers are bound once the server state exists.
  const controlPath = path.join(config.dataDir, CONTROL_SOCKET_NAME);
  let dispatch: ((req: ControlRequest) => Promise<ControlResponse>) | null = null;
  const control = await ControlServer.start({
    path: controlPath,
    handle: (req) => (dispatch ? dispatch(req) : Promise.resolve(errorResponse('internal', 'the daemon is starting'))),
    serverName: config.serverName,
  });
  let store: AccountStore;
  let accounts: Accounts;
  let service: ServiceAccount;
  try {
    store = await openAccountStore(config.store);
    accounts = new Accounts(store, { hashConcurrency: config.limits.hashConcurrency });
    service = await accounts.ensureServiceAccount(config.dataDir);
  } catch (err) {
    await control.close();
    throw err;
  }
  const server = new IrcServer(config, accounts);
  const handlers: ControlHandlers = {
    ...makeAccountMethods(accounts, {
      isOnline: (name: string) => server.isOnline(name),
      disconnectAccount: (name: string, reason: string) => server.disconnectAccount(name, reason),
    }),
    ...makeServerMethods(server),
  };
  dispatch = makeControlDispatcher(handlers);
  server.on('presence', (data) => void control.broadcast({ event: 'presence', data }).catch(() => undefined));

  const netServers: Array<net.Server | tls.Server> = [];
  const listeners: ListenerInfo[] = [];
  try {
    for (const l of config.listen) {
      // A handshake that never completes is dropped well before Node's default 120 s.
      const handshakeTimeout = Math.min(config.limits.registrationTimeoutMs, 10_000);
      const srv = l.tls
        ? tls.createServer({ cert: readFileSync(l.tls.cert), key: readFileSync(l.tls.key), handshakeTimeout }, (s) => server.accept(s, true))
        : net.createServer((s) => {
            if (server.admitConnection(s, false)) server.accept(s, false);
          });
      if (l.tls) {
        srv.on('connection', (raw: net.Socket) => {
          raw.setNoDelay(true);
          server.admitConnection(raw, true);
        });
      }
      // Plain text on the TLS port, or a failed handshake: drop that socket, keep serving.
      srv.on('tlsClientError', (_err: Error, socket: net.Socket) => socket.destroy());
      srv.on('error', (err) => server.log.error(`listener ${l.host}:${l.port}: ${err.message}`));
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen({ host: l.host, port: l.port, backlog: 1024 }, () => {
          srv.off('error', reject);
          resolve();
        });
      });
      const addr = srv.address() as net.AddressInfo;
      listeners.push({ host: l.host, port: addr.port, tls: Boolean(l.tls) });
      netServers.push(srv);
    }
  } catch (err) {
    for (const s of netServers) s.close();
    await control.close();
    await server.close();
    await store.close();
    throw new Error(`cannot listen: ${(err as Error).message}`);
  }

  let closing: Promise<void> | undefined;
  return {
    config,
    server,
    accounts,
    listeners,
    service,
    controlPath,
    close() {
      closing ??= (async () => {
        for (const s of netServers) s.close();
        await server.close();
        await control.close();
        await store.close();
      })();
      return closing;
    },
  };
}

function channelInfo(channel: Channel): ChannelInfo {
  const { modes } = channel.modeString(false);
  const members: string[] = [];
  const operators: string[] = [];
  for (const [c, m] of channel.members) {
    members.push(c.nick);
    if (m.op) operators.push(c.nick);
  }
  return { name: channel.name, modes, topic: channel.topic, members, operators };
}

/**
 * Put an online user into a channel, creating it if needed. Bypasses +i/+k/+l, since the key
 * service decided who is in the room. Throws ControlFailure('offline') for a user not online.
 */
function serverSideJoin(server: IrcServer, channel: string, nick: string): void {
  const client = server.findClient(nick);
  if (!client) throw new ControlFailure('offline', `${nick} is not online`);
  const { channel: ch, created } = server.getOrCreateChannel(channel);
  // The key service gets op in its rooms, also when it rejoins one after a restart.
  if (!ch.members.has(client)) server.join(client, ch, created || client.isService, (s) => sendChannelBurst(server, s, ch));
  else if (client.isService) ch.members.get(client)!.op = true;
}

/** Presence and channel methods of the control socket; they act on the live server state. */
function makeServerMethods(server: IrcServer): ControlHandlers {
  return {
    'presence.online': async () => server.onlineAccounts(),
    'channel.get': async ({ channel }) => {
      const ch = server.channels.get(casefold(channel));
      return ch ? channelInfo(ch) : null;
    },
    // member '*' lists every channel (keybot uses it to find its rooms after a restart).
    'channel.list': async ({ member }) => {
      if (member === '*') return [...server.channels.values()].map(channelInfo);
      const who = server.findClient(member ?? KEYBOT_NICK);
      if (!who) return [];
      return [...who.channels.values()].map(channelInfo);
    },
    // Server-side join: bypasses +i/+k/+l, since the key service decided who is in the room.
    'channel.join': async ({ channel, nick }) => {
      if (!isValidChannelName(channel)) throw new ControlFailure('bad_request', `invalid channel name ${channel}`);
      serverSideJoin(server, channel, nick);
      return { ok: true };
    },
    // The same for many nicks in one call; each nick gets its own outcome, none stops the others.
    'channel.joinmany': async ({ channel, nicks }) => {
      if (!isValidChannelName(channel)) throw new ControlFailure('bad_request', `invalid channel name ${channel}`);
      return nicks.map((nick): JoinOutcome => {
        try {
          serverSideJoin(server, channel, nick);
          return { nick, ok: true };
        } catch (err) {
          if (!(err instanceof ControlFailure)) throw err;
          return { nick, ok: false, error: { code: err.code, message: err.message } };
        }
      });
    },
    'channel.kick': async ({ channel, nick, reason }) => {
      const ch = server.channels.get(casefold(channel));
      const client = server.findClient(nick);
      if (!ch || !client || !ch.members.has(client)) throw new ControlFailure('not_found', `${nick} is not in ${channel}`);
      server.leave(client, ch, new Relay(server.name, 'KICK', [ch.name, client.nick, reason ?? 'Removed'], Date.now()));
      return { ok: true };
    },
  };
}
