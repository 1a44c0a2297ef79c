/**
 * Starting and stopping the daemon: the store, the account service, the IRC listeners (plain
 * TCP and TLS) and the local control socket that keybot and the admin tool use. Here the pipeline
 * is put together (docs/DESIGN.md "The daemon"): the command table goes into the dispatcher, the
 * dispatcher into the server state.
 */
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { Accounts, type ServiceAccount } from './accounts.js';
import type { Config } from './config.js';
import {
  ControlServer, errorResponse, makeAccountMethods, makeChannelMethods, makeControlDispatcher, type ControlHandlers,
} from './control/index.js';
import { CONTROL_SOCKET_NAME } from '../protocol/files.js';
import { casefold } from '../protocol/names.js';
import { type ControlRequest, type ControlResponse } from '../protocol/control.js';
import { makeDispatcher } from './commands/dispatch.js';
import { Commands } from './commands/table.js';
import { removeFromAllRooms } from './server/placement.js';
import { RoomRegistry } from './server/rooms.js';
import { IrcServer } from './server/server.js';
import { createWebSocketListener } from './server/websocket.js';
import { openAccountStore, openRoomStore, type AccountStore, type RoomStore } from './store/index.js';
import { createLogger } from '../util/log.js';

export interface ListenerInfo {
  host: string;
  port: number;
  tls: boolean;
  /** IRC over WebSocket (and the web companion's page) rather than raw TCP. */
  websocket: boolean;
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
  let store: AccountStore | undefined;
  let roomStore: RoomStore | undefined;
  let accounts: Accounts;
  let service: ServiceAccount;
  let rooms: RoomRegistry;
  try {
    store = await openAccountStore(config.store);
    accounts = new Accounts(store, { hashConcurrency: config.limits.hashConcurrency });
    service = await accounts.ensureServiceAccount(config.dataDir);
    roomStore = await openRoomStore(config.store);
    rooms = await RoomRegistry.open(roomStore, config.history, createLogger('rooms'));
    // Accounts deleted while the daemon was down (the admin tool writes the store directly)
    // lose their places in rooms, as `user.del` would have taken them.
    const existing = new Set((await accounts.list()).map((r) => casefold(r.name)));
    for (const room of rooms.all()) for (const a of Object.keys(room.members)) if (!existing.has(a)) rooms.forgetAccount(a);
    for (const a of rooms.mailAccounts()) if (!existing.has(a)) rooms.forgetAccount(a);
  } catch (err) {
    await control.close();
    await roomStore?.close();
    await store?.close();
    throw err;
  }
  // The pipeline: socket → session (framing) → dispatcher (parse, the command table) → handler → state.
  const server = new IrcServer(config, accounts, makeDispatcher(Commands), rooms);
  const handlers: ControlHandlers = {
    ...makeAccountMethods(accounts, {
      isOnline: (name: string) => server.isOnline(name),
      disconnectAccount: (name: string, reason: string) => server.disconnectAccount(name, reason),
      releaseNick: (name: string, reason: string) => server.releaseGuestNick(name, reason),
      removeFromRooms: async (name: string, reason: string) => {
        removeFromAllRooms(server, name, reason);
        await server.rooms.flush();
      },
    }),
    ...makeChannelMethods(server),
  };
  dispatch = makeControlDispatcher(handlers);
  server.on('presence', (data) => void control.broadcast({ event: 'presence', data }).catch(() => undefined));

  const netServers: net.Server[] = [];
  const listeners: ListenerInfo[] = [];
  try {
    for (const l of config.listen) {
      // A handshake that never completes is dropped well before Node's default 120 s.
      const handshakeTimeout = Math.min(config.limits.registrationTimeoutMs, 10_000);
      const tlsFiles = l.tls ? { cert: readFileSync(l.tls.cert), key: readFileSync(l.tls.key) } : undefined;
      // A WebSocket listener hands its connections to the same sessions (server/websocket.ts).
      const srv: net.Server = l.websocket
        ? createWebSocketListener(server, {
            options: l.websocket,
            ...(tlsFiles ? { tls: tlsFiles } : {}),
            recvqBytes: config.limits.recvqBytes,
            handshakeTimeoutMs: handshakeTimeout,
          })
        : tlsFiles
        ? tls.createServer({ ...tlsFiles, handshakeTimeout }, (s) => server.accept(s, true))
        : net.createServer((s) => {
            if (server.admitConnection(s, false)) server.accept(s, false);
          });
      if (l.tls && !l.websocket) {
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
      listeners.push({ host: l.host, port: addr.port, tls: Boolean(l.tls), websocket: Boolean(l.websocket) });
      netServers.push(srv);
    }
  } catch (err) {
    for (const s of netServers) s.close();
    await control.close();
    await server.close();
    await roomStore.close();
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
        await roomStore.close();
        await store.close();
      })();
      return closing;
    },
  };
}
