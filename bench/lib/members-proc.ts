/**
 * A worker process of bench/keys.ts hosting some of the member companions (SealClient, each with
 * its own private key, logging in with PASS). Forked by bench/lib/members.ts
 * (`node --import tsx bench/lib/members-proc.ts`); the protocol is described there. Reports every
 * key install ('key') and every envelope whose last SC1E part was read off the wire ('envelope'),
 * stamped with wallNow(); exits when told to quit or when the bench goes away.
 */
import type { Socket } from 'node:net';
import type { Client as IrcClient } from 'irc-framework';
import { SealClient } from '../../src/client/index.js';
import { setLogLevel } from '../../src/util/log.js';
import { wallNow, type Commands, type FromMembers, type Replies, type ToMembers } from './members.js';

setLogLevel('warn');

const send = (m: FromMembers): void => void process.send?.(m);
const clients = new Map<string, SealClient>();
const inviteReplies = new Map<string, Promise<string[]>>();
let cpuMark = process.cpuUsage();
const reads = new Map<string, { bytes: number; lines: number }>();

function client(name: string): SealClient {
  const c = clients.get(name.toLowerCase());
  if (!c) throw new Error(`${name} is not hosted here`);
  return c;
}

/** Every IRC line of a member's connection as irc-framework reads or writes it (its 'raw' event is not in its types). */
function onRaw(irc: IrcClient, f: (e: { line: string; from_server: boolean }) => void): void {
  (irc as unknown as { on(ev: 'raw', f: (e: { line: string; from_server: boolean }) => void): void }).on('raw', f);
}

/**
 * Watch a member's raw IRC for keybot's SC1E parts and report each envelope once its last part
 * was read. Reads SealClient's irc-framework client (private) only to see lines as they come off
 * the socket; this listener runs before SealClient's queued handling of the same line.
 */
function watchEnvelopes(name: string, c: SealClient): void {
  const irc = (c as unknown as { irc: IrcClient }).irc;
  // Every line from keybot (envelope parts, roster pages, notices, key lines, its NOTICEs), as read off the socket.
  const r = { bytes: 0, lines: 0 };
  reads.set(name, r);
  onRaw(irc, (e) => {
    if (!e.from_server || !/^(@\S+ )?:keybot!/i.test(e.line)) return;
    r.bytes += Buffer.byteLength(e.line) + 2;
    r.lines += 1;
  });
  const got = new Map<string, { count: number; seen: Set<number> }>();
  irc.on('notice', (e: { nick?: string; message: string }) => {
    if (e.nick?.toLowerCase() !== 'keybot') return;
    const m = /^SC1E (\S+) (\d+)\/(\d+) /.exec(e.message);
    if (!m) return;
    const entry = got.get(m[1]!) ?? { count: Number(m[3]), seen: new Set<number>() };
    got.set(m[1]!, entry);
    entry.seen.add(Number(m[2]));
    if (entry.seen.size === entry.count) {
      got.delete(m[1]!);
      send({ ev: 'envelope', name, envelope: m[1]!, t: wallNow() });
    }
  });
}

/** Set by 'quit': from then on a closed connection is expected. */
let quitting = false;

/**
 * A member whose connection closes (the daemon's ERROR line says why: a ping timeout, a full sendq)
 * is reported at once, so that the bench fails naming it instead of waiting out its time limit for
 * a key the member can no longer receive (the 2,000-member run of the ninth session: 1,844 members
 * dropped by the daemon's ping timeout while their processes worked through the opening's JOINs).
 */
function watchConnection(name: string, c: SealClient): void {
  const irc = (c as unknown as { irc: IrcClient }).irc;
  let error = '';
  onRaw(irc, (e) => {
    if (e.from_server && /^ERROR /.test(e.line)) error = e.line;
  });
  // irc-framework's own checks end a connection that read no line for ping_timeout (120 s), and
  // destroy a socket idle for ping_interval + ping_timeout (150 s, without a word: the ninth
  // session's second and third 2,000-member runs lost 660 and 418 members so). Fine for one client
  // per process; here one event-loop turn reads a chunk of every member's socket, and during a
  // 2,000-member opening a turn lasts minutes. An hour, for the harness only; a member lost anyway
  // is reported below, with the check that ended it.
  const options = (irc as unknown as { options: { ping_timeout: number } }).options;
  options.ping_timeout = 3600;
  irc.on('ping timeout', () => {
    error = "irc-framework's ping timeout (no line read for an hour)";
  });
  const socket = (irc as unknown as { connection?: { transport?: { socket?: Socket } } }).connection?.transport?.socket;
  if (!socket) throw new Error(`${name}: no socket to watch (irc-framework changed?)`);
  socket.setTimeout(3_600_000);
  socket.on('timeout', () => {
    error = "irc-framework's socket timeout (an hour without a read or a write)";
  });
  c.on('close', () => {
    if (!quitting) send({ ev: 'lost', name, reason: error || 'the connection closed without an ERROR line' });
  });
}

async function connect(o: Commands['connect']): Promise<Replies['connect']> {
  for (const m of o.members) {
    const c = new SealClient();
    c.on('error', () => undefined);
    c.on('key', (e) => send({ ev: 'key', name: m.name, room: e.room, epoch: e.epoch, count: e.members.length, t: wallNow() }));
    await c.connect({
      host: '127.0.0.1', port: o.port, nick: m.name, password: m.password, privateKeyArmored: m.privateKeyArmored,
      ...(o.keybotPublicKey !== undefined ? { keybotPublicKey: o.keybotPublicKey } : {}),
      ...(o.keybotFingerprint !== undefined ? { keybotFingerprint: o.keybotFingerprint } : {}),
      knownKeybotsFile: false, reconnect: false,
    });
    clients.set(m.name.toLowerCase(), c);
    watchEnvelopes(m.name, c);
    watchConnection(m.name, c);
  }
  return { names: o.members.map((m) => m.name) };
}

/**
 * keybot's replies to an invite, sent again (3 tries in all) while keybot answers that it was not
 * carried out: a proposal not signed within its 30 s (a companion busy with a login burst), or one
 * signed for a roster that changed before keybot carried it out.
 */
async function carriedOut(what: string, send: () => Promise<string[]>): Promise<string[]> {
  for (let attempt = 1; ; attempt++) {
    const lines = await send();
    if (!lines.some((l) => /not done|invite again/.test(l)) || attempt >= 3) return lines;
    process.stderr.write(`members-proc: ${what} not carried out (${lines.join(' | ')}); again\n`);
  }
}

/**
 * The room's name comes from the inviter's own JOIN; invite()'s reply resolves only after 300 ms
 * of keybot silence (SealClient's reply heuristic), so it is collected separately.
 */
async function invite(o: Commands['invite']): Promise<Replies['invite']> {
  const c = client(o.name);
  const joined = new Promise<string>((resolve) => {
    const f = (e: { room: string; self: boolean }): void => {
      if (!e.self) return;
      c.off('join', f);
      resolve(e.room);
    };
    c.on('join', f);
  });
  const sentAt = wallNow();
  // keybot proposes the operation and alice's companion signs it; a proposal not signed within
  // keybot's 30 s (a companion still busy with a 2,000-member login burst) is refused: invite again.
  const first = carriedOut(`${o.name}'s invite`, () => c.invite(o.commands[0]!));
  const adds: Array<Promise<string[]>> = [first];
  const room = await joined;
  if (o.commands.length > 1) {
    // Adding to a room is signed against the roster of its current epoch (docs/PROTOCOL.md "Room
    // operations"): the further invites wait until the inviter holds the room's first key.
    await new Promise<void>((resolve) => {
      const k = (e: { room: string }): void => {
        if (e.room.toLowerCase() !== room.toLowerCase()) return;
        c.off('key', k);
        resolve();
      };
      c.on('key', k);
      if (c.localRooms().some((r) => r.room.toLowerCase() === room.toLowerCase() && r.epoch !== undefined)) {
        c.off('key', k);
        resolve();
      }
    });
  }
  // The rest one after the other, each once the inviter holds the epoch that keyed the one
  // before: keybot proposes each `add` against the room's current roster, and an `add` signed
  // for a roster that changed before keybot carried it out is refused ("invite again"). Sent all
  // at once, as this bench did, only the first two or so landed (the 100/200-member runs that
  // never finished: 126 of 200 keyed).
  const holds = (names: string[]): boolean => {
    const info = c.crypto?.roomInfo(room);
    return info?.hasKey === true && names.every((n) => info.members.some((m) => m.toLowerCase() === n.toLowerCase()));
  };
  /**
   * Until the inviter holds an epoch with `names` in it. keybot's answer to an invite can come
   * after SealClient's 300 ms reply window (a signing round trip while the inviter's process is
   * busy), so a refusal may never be seen as the reply: after `ms` without the key, invite the
   * ones still missing again (keybot adds only those not in the room), at most twice, then fail
   * loudly instead of waiting for ever (the 2,000-member run that stalled at 1,297).
   */
  const heldWith = async (names: string[], ms = 120_000): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      const got = await new Promise<boolean>((resolve) => {
        const t = setTimeout(() => { c.off('key', k); resolve(false); }, ms);
        const k = (): void => {
          if (!holds(names)) return;
          clearTimeout(t);
          c.off('key', k);
          resolve(true);
        };
        c.on('key', k);
        k();
      });
      if (got) return;
      const members = c.crypto?.roomInfo(room)?.members.map((m) => m.toLowerCase()) ?? [];
      const missing = names.filter((n) => !members.includes(n.toLowerCase()));
      if (attempt >= 3) throw new Error(`${o.name} holds no epoch of ${room} with ${missing.length} of the invitees (${missing.slice(0, 5).join(', ')}…) after ${attempt} tries`);
      process.stderr.write(`members-proc: ${missing.length} invitees not in ${room} after ${ms / 1000} s; inviting them again\n`);
      await c.inviteTo(room, missing);
    }
  };
  const chain = (async () => {
    for (const more of o.commands.slice(1)) {
      const previous = adds[adds.length - 1]!;
      await previous;
      await heldWith(o.commands[adds.length - 1]!);
      adds.push(carriedOut(`${o.name}'s invite into ${room}`, () => c.inviteTo(room, more)));
    }
    await heldWith(o.commands[o.commands.length - 1]!);
  })();
  const all = chain.then(() => Promise.all(adds)).then((r) => r.flat());
  all.catch(() => undefined);
  inviteReplies.set(o.name.toLowerCase(), all);
  return { room, sentAt };
}

async function leave(o: Commands['leave']): Promise<Replies['leave']> {
  const who = o.names ? o.names.map(client) : [...clients.values()];
  const sentAt = wallNow();
  const replies = await Promise.all(who.map((c) => c.leave(o.room).catch((err: Error) => [`error: ${err.message}`])));
  return { sentAt, doneAt: wallNow(), lines: replies.flat() };
}

/** One more invite into an open room (the bench's paced opening). */
async function inviteMore(o: Commands['invite-more']): Promise<Replies['invite-more']> {
  const c = client(o.name);
  return { lines: await carriedOut(`${o.name}'s invite into ${o.room}`, () => c.inviteTo(o.room, o.names)) };
}

async function handle(msg: ToMembers): Promise<unknown> {
  switch (msg.cmd) {
    case 'connect':
      return connect(msg);
    case 'invite':
      return invite(msg);
    case 'invite-more':
      return inviteMore(msg);
    case 'invite-replies': {
      const p = inviteReplies.get(msg.name.toLowerCase());
      if (!p) throw new Error(`${msg.name} sent no invite`);
      return { lines: await p } satisfies Replies['invite-replies'];
    }
    case 'leave':
      return leave(msg);
    case 'cpu': {
      const now = process.cpuUsage();
      const r = { userMs: (now.user - cpuMark.user) / 1000, systemMs: (now.system - cpuMark.system) / 1000 };
      cpuMark = now;
      return r satisfies Replies['cpu'];
    }
    case 'reads': {
      const members: Record<string, { bytes: number; lines: number }> = {};
      for (const [name, r] of reads) {
        members[name] = { ...r };
        r.bytes = 0;
        r.lines = 0;
      }
      return { members } satisfies Replies['reads'];
    }
    case 'sync':
      return {};
    case 'quit':
      quitting = true;
      await Promise.all([...clients.values()].map((c) => c.quit()));
      return {};
  }
}

process.on('message', (msg: ToMembers) => {
  handle(msg).then(
    (data) => {
      if (msg.cmd === 'quit') process.send!({ ev: 'reply', id: msg.id, data } satisfies FromMembers, () => process.exit(0));
      else send({ ev: 'reply', id: msg.id, data });
    },
    (err: unknown) => send({ ev: 'error', id: msg.id, message: (err as Error)?.message ?? String(err) }),
  );
});
// The bench went away (crashed or was killed): do not linger.
process.on('disconnect', () => process.exit(0));
const die = (err: unknown): void => {
  const message = (err as Error)?.stack ?? String(err);
  console.error(`members-proc ${process.pid}: ${message}`);
  if (process.connected) process.send!({ ev: 'fatal', message } satisfies FromMembers, () => process.exit(1));
  else process.exit(1);
};
process.on('uncaughtException', die);
process.on('unhandledRejection', die);
send({ ev: 'ready' });
