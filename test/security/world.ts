/**
 * The attacker's toolkit for test/security: the real daemon on port 0, the real keybot in this
 * process, SealClient members, and two kinds of raw sessions that play the adversary:
 *
 * - an Insider: an account with a key of its own, logged in over a raw socket with every IRCv3
 *   capability the daemon offers. It records every line it receives, opens the envelopes keybot
 *   sends it with its own key, and **keeps every room key it ever got** (a custom client that
 *   ignores the protocol's rules). It can seal room messages with any plaintext, sequence number
 *   or claimed sender, and send whatever it likes. Logged in as a member's account (a second
 *   session, which needs that member's password) it is a tap: it sees exactly what the server
 *   sends that member, envelopes included, i.e. what the ircd or a network without TLS sees.
 * - an outsider is an Insider that was never placed in a room.
 *
 * An Insider signs keybot's proposals (invite, leave, remove) only for what it `typed`, as a
 * companion does (src/client/core/operations.ts): a member with a client of her own. What it
 * merely `say`s to keybot is never signed.
 */
import { createDecipheriv } from 'node:crypto';
import { startKeybot, type Keybot, type KeybotOptions } from '../../src/bot/main.js';
import { SealClient } from '../../src/client/client.js';
import {
  EnvelopeStatus,
  MessageStatus,
  PartStatus,
  PartsReassembler,
  classifyLine,
  RoomOpStatus,
  advanceRoster,
  encryptRoomMessage,
  isEpochNotice,
  openEnvelope,
  openJoinEnvelope,
  parsePart,
  peekKeyLine,
  readPublicKey,
  unwrapEpochKey,
  verifyEpochNotice,
  type EnvelopePayload,
  type PrivateKeyHandle,
  type PublicKeyHandle,
} from '../../src/crypto/index.js';
import { RoomOperations } from '../../src/client/core/operations.js';
import { casefold } from '../../src/protocol/names.js';
import { parseLine } from '../../src/protocol/message.js';
import { RawClient, startTestDaemon, type ConfigOverrides, type TestDaemon, type TestUser } from '../helpers/daemon.js';
import { until } from '../helpers/companions.js';
import { testKeybotOptions } from '../helpers/keybot.js';
import { fromArmored, type Party } from '../client/fixtures.js';

export { until, sleep, ROOM_RE } from '../helpers/companions.js';
export { next, record } from '../client/helpers.js';

/** One line a raw session received, parsed. */
export interface Line {
  /** Index in the session's stream. */
  i: number;
  raw: string;
  source: string | null;
  /** The nick of a `nick!user@host` source; undefined for the server. */
  nick?: string;
  command: string;
  params: string[];
}

/** The SC1E lines of one envelope keybot sent, as they crossed the wire, and what they held. */
export interface CapturedEnvelope {
  id: string;
  /** In arrival order (keybot sends them in index order). */
  lines: string[];
  status?: EnvelopeStatus;
  payload?: EnvelopePayload;
}

export interface SecWorld {
  t: TestDaemon;
  bot: Keybot;
  users: Record<string, TestUser & { party: Party }>;
  keybotPub: PublicKeyHandle;
  /** A SealClient member, keybot pinned by its key and fingerprint. */
  member(name: string): Promise<SealClient>;
  /** A raw session of `name`'s account (see the file comment). */
  insider(name: string): Promise<Insider>;
  stop(): Promise<void>;
}

/** A daemon, keybot and accounts (each with its own OpenPGP key) for `names`. */
export async function startSecWorld(
  names: string[],
  opts: { bot?: Partial<KeybotOptions>; daemon?: ConfigOverrides } = {},
): Promise<SecWorld> {
  const t = await startTestDaemon(opts.daemon);
  const users: SecWorld['users'] = {};
  const members: SealClient[] = [];
  const insiders: Insider[] = [];
  let bot: Keybot;
  try {
    await Promise.all(
      names.map(async (n) => {
        const u = await t.addUser(n);
        users[n] = { ...u, party: await fromArmored(n, u.publicKey, u.privateKey) };
      }),
    );
    bot = await startKeybot(testKeybotOptions(t, opts.bot));
  } catch (err) {
    await t.stop();
    throw err;
  }
  const keybotPub = (await readPublicKey({ armored: bot.identity.publicArmored })).key!;
  const world: SecWorld = {
    t,
    bot,
    users,
    keybotPub,
    async member(name) {
      const c = new SealClient();
      c.on('error', (err) => {
        throw err;
      });
      members.push(c);
      const r = await c.connect({
        host: '127.0.0.1',
        port: t.port,
        nick: name,
        password: users[name]!.password,
        privateKey: users[name]!.party.priv,
        keybotPublicKey: bot.identity.publicArmored,
        keybotFingerprint: bot.fingerprint,
        knownKeybotsFile: false,
      });
      if (r.keybot.status !== 'pinned') throw new Error(`${name}: keybot not pinned: ${JSON.stringify(r.keybot)}`);
      return c;
    },
    async insider(name) {
      const i = await Insider.connect(t.port, users[name]!, keybotPub);
      insiders.push(i);
      return i;
    },
    async stop() {
      for (const i of insiders) i.close();
      await Promise.all(members.map((m) => m.quit().catch(() => undefined)));
      await world.bot.close();
      await t.stop();
    },
  };
  return world;
}

let markers = 0;

/** A raw session that plays by its own rules; see the file comment. */
export class Insider {
  readonly lines: Line[] = [];
  /** Every room key this account opened, in order (none is ever forgotten). */
  readonly keys: EnvelopePayload[] = [];
  /** Every envelope keybot sent this account, complete or not. */
  readonly envelopes: CapturedEnvelope[] = [];
  private readonly parts = new PartsReassembler();
  /** Envelope version 3: epoch notices to rooms, our member keys, the notice each key line waits for. */
  private readonly noticeParts = new PartsReassembler();
  private readonly memberKeys = new Map<string, Uint8Array>();
  private readonly notices = new Map<string, { epoch: number; digest: Uint8Array; roster: EnvelopePayload['members']; issuedAt: number }>();
  private readonly seqs = new Map<string, number>();
  private opening: Promise<unknown> = Promise.resolve();
  private processed = 0;
  /** The capabilities it asked for (all the daemon offers but sasl). */
  caps: string[] = [];
  /** The signing half of a companion: proposals for what this session `typed`, and nothing else. */
  private readonly operations: RoomOperations;
  /** keybot's proposals this session refused to sign (nothing typed for them), with why. */
  readonly refusedProposals: string[] = [];

  private constructor(
    readonly raw: RawClient,
    readonly user: TestUser & { party: Party },
    readonly keybotPub: PublicKeyHandle,
  ) {
    this.operations = new RoomOperations(user.name, user.party.priv);
    raw.socket.on('data', () => this.drain());
  }

  get name(): string {
    return this.user.name;
  }

  /** Log in with every capability the daemon offers (invite-notify, echo-message, tags...). */
  static async connect(port: number, user: TestUser & { party: Party }, keybotPub: PublicKeyHandle): Promise<Insider> {
    const raw = await RawClient.connect(port);
    const me = new Insider(raw, user, keybotPub);
    raw.send('CAP LS 302');
    const ls = await raw.waitLine(/ CAP \* LS :/, 8000);
    const caps = ls.slice(ls.indexOf(' LS :') + 5).split(' ').map((c) => c.split('=')[0]!).filter((c) => c && c !== 'sasl');
    raw.send(`CAP REQ :${caps.join(' ')}`, 'CAP END', `PASS ${user.name}:${user.password}`, `NICK ${user.name}`, `USER ${user.name} 0 * :${user.name}`);
    await raw.waitLine(/ 001 /, 8000);
    me.caps = caps;
    return me;
  }

  send(...lines: string[]): void {
    this.raw.send(...lines);
  }

  say(target: string, text: string): void {
    this.raw.send(`PRIVMSG ${target} :${text}`);
  }

  /** Send `text` to keybot as typed by this account's owner: keybot's proposal for it is signed with the account's key. */
  typed(text: string): void {
    this.operations.typed(text, Date.now());
    this.say('keybot', text);
  }

  /**
   * Wait until the server has answered everything sent so far (a PING round trip) and every
   * envelope received so far has been opened. Lines the server queued for us before the PONG
   * have arrived by then.
   */
  async sync(ms = 5000): Promise<void> {
    const marker = `sync-${++markers}`;
    const from = this.raw.lines.length;
    this.raw.send(`PING :${marker}`);
    await this.raw.waitLine(new RegExp(` PONG \\S+ :?${marker}$`), ms, from);
    this.drain();
    await this.opening;
  }

  /** Lines from `from` on that satisfy `pred`. */
  since(from: number, pred: (l: Line) => boolean = () => true): Line[] {
    return this.lines.slice(from).filter(pred);
  }

  /** Wait for a line (after index `from`) that satisfies `pred`. */
  waitFor(pred: (l: Line) => boolean, what: string, from = 0, ms = 8000): Promise<Line> {
    return until(() => this.lines.slice(from).find(pred), () => `${this.name} to receive ${what}; got:\n${this.lines.slice(from).map((l) => l.raw).join('\n')}`, ms);
  }

  /** The newest key this account holds for `room`. */
  latestKey(room: string): EnvelopePayload | undefined {
    const mine = this.keys.filter((k) => casefold(k.room) === casefold(room));
    return mine.sort((a, b) => b.epoch - a.epoch)[0];
  }

  /**
   * Seal a room message the way a hostile client would: any plaintext (no sanitising, no
   * splitting), under the newest key held for the room unless `key` is given, claiming `sender`
   * (default: this account), with the next sequence number unless `seq` is given, signed with
   * this account's own key unless `signer` is given.
   */
  seal(room: string, plaintext: string, o: { sender?: string; seq?: number; key?: EnvelopePayload; signer?: PrivateKeyHandle } = {}): string[] {
    const key = o.key ?? this.latestKey(room);
    if (!key) throw new Error(`${this.name} holds no key for ${room}`);
    const slot = `${casefold(room)} ${key.epoch}`;
    const seq = o.seq ?? (this.seqs.get(slot) ?? 0) + 1;
    this.seqs.set(slot, Math.max(seq, this.seqs.get(slot) ?? 0));
    const r = encryptRoomMessage({ roomKey: key.key, room, epoch: key.epoch, sender: o.sender ?? this.name, seq, plaintext, signer: o.signer ?? this.user.party.priv });
    if (r.status !== MessageStatus.OK) throw new Error(`seal: ${r.status}`);
    return r.lines;
  }

  close(): void {
    if (!this.raw.closed) this.raw.send('QUIT :done');
    this.raw.close();
  }

  private drain(): void {
    while (this.processed < this.raw.lines.length) {
      const i = this.processed++;
      const raw = this.raw.lines[i]!;
      const p = parseLine(raw);
      if (!p.ok) continue;
      const { source, command, params } = p.message;
      const bang = source?.indexOf('!') ?? -1;
      const line: Line = { i, raw, source, command, params, ...(source && bang > 0 ? { nick: source.slice(0, bang) } : {}) };
      this.lines.push(line);
      if (command !== 'NOTICE' || casefold(line.nick ?? '') !== 'keybot') continue;
      const text = params[1] ?? '';
      if (classifyLine(text) === 'proposal-part' && !(params[0] ?? '').startsWith('#')) {
        const answer = this.operations.proposalPart(text, (room) => this.latestKey(room)?.members, Date.now());
        for (const l of answer?.lines ?? []) this.say('keybot', l);
        if (answer?.refused !== undefined) this.refusedProposals.push(answer.refused);
        continue;
      }
      if (classifyLine(text) === 'envelope-part') {
        if ((params[0] ?? '').startsWith('#')) this.noticePart(params[0]!, text);
        else this.envelopePart(text);
      } else if (text.startsWith('SC1K ')) this.keyLine(text);
    }
  }

  private envelopePart(text: string): void {
    const part = parsePart(text);
    if (!part) return;
    let env = this.envelopes.find((e) => e.id === part.id && e.lines.length < part.count && e.status === undefined);
    if (!env) {
      env = { id: part.id, lines: [] };
      this.envelopes.push(env);
    }
    env.lines.push(text);
    const r = this.parts.accept({ sender: 'keybot', line: text, now: Date.now() });
    if (r.status !== PartStatus.COMPLETE) return;
    const done = env;
    this.opening = this.opening.then(async () => {
      const j = await openJoinEnvelope({ data: r.data!, decryptionKey: this.user.party.priv, keybotKey: this.keybotPub, expectedAccount: this.name, now: Date.now() });
      if (j.status === EnvelopeStatus.OK && j.payload) {
        const p = j.payload;
        this.memberKeys.set(casefold(p.room), p.memberKey);
        done.status = j.status;
        done.payload = { room: p.room, epoch: p.epoch, key: p.key, members: p.roster, issuedAt: p.issuedAt };
        this.keys.push(done.payload);
        return;
      }
      if (!j.legacy) {
        done.status = j.status;
        return;
      }
      const o = await openEnvelope({ data: r.data!, decryptionKey: this.user.party.priv, signerKey: this.keybotPub, expectedAccount: this.name, now: Date.now() });
      done.status = o.status;
      if (o.payload) {
        done.payload = o.payload;
        this.keys.push(o.payload);
      }
    });
  }

  /** An epoch notice (envelope version 3): followed from the newest key we hold, as a companion does. */
  private noticePart(room: string, text: string): void {
    const r = this.noticeParts.accept({ sender: `keybot ${casefold(room)}`, line: text, now: Date.now() });
    if (r.status !== PartStatus.COMPLETE || !isEpochNotice(r.data!)) return;
    const data = r.data!;
    this.opening = this.opening.then(() => {
      const v = verifyEpochNotice({ data, keybotKey: this.keybotPub, now: Date.now() });
      if (v.status !== EnvelopeStatus.OK || !v.notice) return;
      const n = v.notice;
      const held = this.latestKey(n.room);
      if (!held || held.epoch !== n.prev) return;
      const adv = advanceRoster({ roster: held.members, notice: n });
      if (adv.status === RoomOpStatus.OK) this.notices.set(casefold(n.room), { epoch: n.epoch, digest: v.digest!, roster: adv.roster!, issuedAt: n.issuedAt });
    });
  }

  private keyLine(text: string): void {
    this.opening = this.opening.then(() => {
      const peek = peekKeyLine(text);
      if (!peek) return;
      const n = this.notices.get(casefold(peek.room));
      const mk = this.memberKeys.get(casefold(peek.room));
      if (!n || !mk || n.epoch !== peek.epoch) return;
      const k = unwrapEpochKey({ line: text, memberKey: mk, account: this.name, digest: n.digest });
      if (k) this.keys.push({ room: k.room, epoch: k.epoch, key: k.key, members: n.roster, issuedAt: n.issuedAt });
    });
  }
}

/** Ask keybot for a room with `invitees` on behalf of `requester`; returns the room's name. */
export async function openRoom(requester: SealClient, invitees: string[]): Promise<string> {
  const reply = await requester.invite(invitees);
  const opened = reply.find((l) => l.startsWith('opened '));
  if (!opened) throw new Error(`keybot did not open a room: ${reply.join(' | ')}`);
  return /#sc-[a-z2-7]{10}/.exec(opened)![0];
}

/** Wait until every SealClient holds the same current epoch (> `after`) of `room` with exactly `members`. */
export async function sameEpoch(room: string, clients: SealClient[], members: string[], after = 0, ms = 10_000): Promise<number> {
  const want = [...members].sort().join();
  return until(
    () => {
      const infos = clients.map((c) => c.crypto!.roomInfo(room));
      const e = infos[0]?.epoch;
      if (e === undefined || e <= after) return undefined;
      return infos.every((i) => i?.epoch === e && [...i.members].sort().join() === want) ? e : undefined;
    },
    () => `${clients.map((c) => c.nick).join(', ')} on one epoch (> ${after}) of ${room} for ${want}; have ${JSON.stringify(clients.map((c) => c.crypto!.roomInfo(room)))}`,
    ms,
  );
}

/** Wait until the insider holds a key of `room` with epoch `epoch`. */
export function insiderHas(i: Insider, room: string, epoch: number, ms = 10_000): Promise<EnvelopePayload> {
  return until(() => i.keys.find((k) => casefold(k.room) === casefold(room) && k.epoch === epoch), `${i.name}'s key of epoch ${epoch} of ${room}`, ms);
}

/** AES-GCM with `key` on a one-line Ed25519 room message, as an attacker would: no signature check. */
export function gcmOpen(key: Uint8Array, room: string, sender: string, payload: string): string | undefined {
  if (!payload.startsWith('SC1M ')) return undefined;
  const rec = Buffer.from(payload.slice(5), 'base64');
  const header = rec.subarray(0, 10);
  const nonce = rec.subarray(10, 22);
  const sealed = rec.subarray(22, rec.length - 64);
  const r = Buffer.from(casefold(room));
  const s = Buffer.from(casefold(sender));
  const aad = Buffer.concat([Buffer.from('SC1M'), header, Buffer.of(r.length), r, Buffer.of(s.length), s]);
  try {
    const d = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
    d.setAAD(aad);
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    return Buffer.concat([d.update(sealed.subarray(0, sealed.length - 16)), d.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

/** What `keys` open of `lines` (every key against every line). */
export function readable(keys: EnvelopePayload[], lines: Line[]): string[] {
  const out: string[] = [];
  for (const l of lines) {
    for (const k of keys) {
      const text = gcmOpen(k.key, l.params[0]!, l.nick!, l.params[1]!);
      if (text !== undefined) out.push(text);
    }
  }
  return out;
}
