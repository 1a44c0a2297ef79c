/**
 * Account administration for `sealchatd user ...`.
 *
 * The daemon is the store's one writer: if `<dataDir>/control.sock` answers, every change goes
 * through it (so it can also disconnect a deleted user and report who is online). Otherwise the
 * admin tool opens the store itself, for the few seconds one command takes, through the same
 * account service and the same `user.*` methods, so both paths validate and answer alike.
 */

import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Accounts } from '../accounts.js';
import type { Config } from '../config.js';
import { makeAccountMethods, OFFLINE_PRESENCE, type AccountMethods } from './accounts.js';
import { ControlCallError, ControlClient, probeControlSocket } from '../../protocol/control-client.js';
import type { ControlMethods, UserInfo } from '../../protocol/control.js';
import { CONTROL_SOCKET_NAME } from '../../protocol/files.js';
import { ControlFailure } from './server.js';
import { openAccountStore } from '../store/index.js';

export type UserMethod = keyof AccountMethods;

/** Either path to the accounts; errors are ControlCallErrors in both. */
export interface AdminBackend {
  /** 'daemon': through the running daemon's control socket; 'direct': the store opened here. */
  readonly mode: 'daemon' | 'direct';
  call<M extends UserMethod>(method: M, params: ControlMethods[M]['params']): Promise<ControlMethods[M]['result']>;
  close(): Promise<void>;
}

export class AdminError extends Error {
  override name = 'AdminError';
}

/**
 * Reach the accounts of the daemon configured by `config`. With `create: false` a missing data
 * directory is an error (a mistyped --data should not silently create an empty one).
 */
export async function openAdmin(config: Config, opts: { create?: boolean } = {}): Promise<AdminBackend> {
  const socketPath = path.join(config.dataDir, CONTROL_SOCKET_NAME);
  if (await probeControlSocket(socketPath)) {
    const client = await ControlClient.connect(socketPath);
    return {
      mode: 'daemon',
      call: (method, params) => client.call(method, params),
      close: async () => client.close(),
    };
  }
  if (!opts.create && !(await stat(config.dataDir).catch(() => null))) {
    throw new AdminError(`no data directory at ${config.dataDir} (wrong --data or --config?)`);
  }
  const store = await openAccountStore(config.store);
  const methods = makeAccountMethods(new Accounts(store, { hashConcurrency: 1 }), OFFLINE_PRESENCE);
  return {
    mode: 'direct',
    call: async (method, params) => {
      try {
        return await (methods[method] as (p: typeof params) => Promise<ControlMethods[typeof method]['result']>)(params);
      } catch (err) {
        if (err instanceof ControlFailure) throw new ControlCallError(err.code, err.message);
        throw err;
      }
    },
    close: () => store.close(),
  };
}

/** `user list` as a table: name, fingerprint, online/offline (and "service" for keybot). */
export function formatUserTable(users: UserInfo[]): string {
  if (users.length === 0) return 'no accounts\n';
  const rows = users.map((u) => [u.name, u.fingerprint || '(no key yet)', u.online ? 'online' : 'offline', u.service ? 'service' : '']);
  const header = ['NAME', 'FINGERPRINT', 'STATUS', ''];
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  return all.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}
