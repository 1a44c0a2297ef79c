/**
 * The `user.*` control methods over the account service. The daemon merges these with its
 * presence and channel methods; the admin tool uses them directly when no daemon runs.
 */

import { AccountError, type Accounts } from '../accounts.js';
import { ControlFailure, type ControlHandler } from './server.js';
import type { UserInfo } from '../../protocol/control.js';
import type { AccountRecord } from '../store/types.js';

export interface PresenceView {
  isOnline(name: string): boolean;
  /** Close every session of the account (it was deleted). */
  disconnectAccount(name: string, reason: string): void;
  /**
   * A new account's name is no longer free: disconnect a guest who holds it as a nick, so that
   * the account's own login is never refused, or merged into the guest (issue 12, item 5).
   */
  releaseNick(name: string, reason: string): void;
  /** The account was deleted: take it out of every room (as `room.remove` would). */
  removeFromRooms?(name: string, reason: string): Promise<void>;
}

/** Presence when no daemon runs: nobody is online, nothing to disconnect. */
export const OFFLINE_PRESENCE: PresenceView = { isOnline: () => false, disconnectAccount: () => {}, releaseNick: () => {} };

export type AccountMethods = {
  [M in 'user.get' | 'user.list' | 'user.add' | 'user.passwd' | 'user.setkey' | 'user.del']: ControlHandler<M>;
};

/** What the control socket reports of an account: never the password hash. */
export function toUserInfo(record: AccountRecord, online: boolean, withKey = false): UserInfo {
  const info: UserInfo = {
    name: record.name,
    fingerprint: record.fingerprint ?? '',
    online,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  };
  if (record.service) info.service = true;
  if (withKey && record.publicKey !== null) info.publicKey = record.publicKey;
  return info;
}

export function makeAccountMethods(accounts: Accounts, presence: PresenceView): AccountMethods {
  const info = (r: AccountRecord, withKey = false): UserInfo => toUserInfo(r, presence.isOnline(r.name), withKey);
  return {
    'user.get': mapped(async ({ name }) => {
      const r = await accounts.get(name);
      return r ? info(r, true) : null;
    }),
    'user.list': mapped(async () => (await accounts.list()).map((r) => info(r))),
    'user.add': mapped(async ({ name, password, publicKey }) => {
      const r = await accounts.add({ name, password, publicKey });
      presence.releaseNick(r.name, `The nick ${r.name} now belongs to a registered account`);
      return info(r);
    }),
    'user.passwd': mapped(async ({ name, password }) => {
      await accounts.setPassword(name, password);
      return { ok: true as const };
    }),
    'user.setkey': mapped(async ({ name, publicKey }) => info(await accounts.setKey(name, publicKey))),
    'user.del': mapped(async ({ name }) => {
      const r = await accounts.remove(name);
      // Removed from its rooms first (members see a KICK), then its sessions close (QUIT).
      await presence.removeFromRooms?.(r.name, 'account deleted');
      presence.disconnectAccount(r.name, 'Account deleted');
      return { ok: true as const };
    }),
  };
}

/** Report AccountErrors as their control error code; anything else stays an internal error. */
function mapped<P, R>(fn: (params: P) => Promise<R>): (params: P) => Promise<R> {
  return async (params) => {
    try {
      return await fn(params);
    } catch (err) {
      if (err instanceof AccountError) throw new ControlFailure(err.code, err.message);
      throw err;
    }
  };
}
