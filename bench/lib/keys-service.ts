/**
 * `npm run bench:keys -- --service [--sizes 50,500,2000]` (bench/keys.ts runs this file in a
 * process of its own; formerly bench/keys-v3.ts): what envelope version 3 costs keybot and
 * each member (docs/PROTOCOL.md "Envelope version 3"; figures in docs/PERFORMANCE.md, keys).
 *
 * keybot's key service (src/bot: epochs, delivery, invites, as shipped) runs in this process
 * against a directory that answers at once and a transport that records every line it writes;
 * NOT through the daemon and NOT with members in processes of their own (bench/keys.ts does that,
 * for v2-sized rooms): this measures keybot's CPU and the bytes and lines it addresses to each
 * member, which is what the daemon relays. Members have real Ed25519 OpenPGP keys; each one's
 * companion core (RoomCryptoEngine) reads exactly the lines it would receive (its own, and the
 * room's while present) to check it holds the key.
 *
 * Per size N: the room opens (alice's signed `create` names the first MAX_OP_TARGETS, then signed
 * `add`s of up to MAX_OP_TARGETS each, each after the previous epoch), then one member leaves.
 * Targets (issue 11): a one-member change in a 2,000-member room <= 1 s keybot CPU and <= 2 KB read
 * per remaining member; the 500-member room opens with every member holding the key.
 */
import { randomBytes } from 'node:crypto';
import type { DirectoryRoom, DirectoryUser, Placement, UserDirectory } from '../../src/bot/directory.js';
import type { Transport } from '../../src/bot/delivery.js';
import { KeyService } from '../../src/bot/service.js';
import { RoomCryptoEngine } from '../../src/client/index.js';
import {
  MAX_OP_TARGETS, ROOM_OP_NONCE_BYTES, generateUserKey, rosterHash, signRoomOp, unlockPrivateKey, type PrivateKeyHandle,
} from '../../src/crypto/index.js';
import { setLogLevel } from '../../src/util/log.js';

setLogLevel('warn');
const SIZES = (process.env.BENCH_V3_SIZES ?? '50,500,2000').split(',').map(Number);
const ROOM = '#sc-benchv3room';
const TARGET = { changeCpuMs: 1000, changeBytes: 2048 };

class Directory implements UserDirectory {
  readonly persistentRooms = true;
  users = new Map<string, DirectoryUser>();
  rooms: DirectoryRoom[] = [];
  async lookupUser(name: string): Promise<DirectoryUser | null> { return this.users.get(name.toLowerCase()) ?? null; }
  async listOnline(): Promise<string[]> { return [...this.users.keys()]; }
  async putInRoom(): Promise<void> {}
  async putManyInRoom(_room: string, nicks: string[]): Promise<Placement[]> { return nicks.map((nick) => ({ nick, ok: true as const })); }
  /** The daemon's KICK echo of a removal, as keybot sees it on IRC. */
  onRemove: (room: string, nick: string) => void = () => undefined;
  async removeFromRoom(room: string, nick: string): Promise<void> { setImmediate(() => this.onRemove(room, nick)); }
  async listRooms(): Promise<DirectoryRoom[]> { return this.rooms; }
  async publishServiceKey(): Promise<DirectoryUser> { throw new Error('not used'); }
  onPresence(): void {}
  onClose(): void {}
  close(): void {}
}

class Recorder implements Transport {
  readonly nick = 'keybot';
  lines: Array<{ target: string; text: string }> = [];
  notice(target: string, text: string): void { this.lines.push({ target, text }); }
  notices(lines: ReadonlyArray<{ target: string; text: string }>): void { this.lines.push(...lines); }
  setModes(): void {}
  requestNames(): void {}
  part(): void {}
}

interface Member { name: string; key: PrivateKeyHandle; armored: string }
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const cpuMs = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
/** The bytes a member's client reads for one line: `:keybot!keybot@host NOTICE <target> :<text>\r\n`. */
const wire = (l: { target: string; text: string }): number => `:keybot!keybot@sealchat NOTICE ${l.target} :${l.text}\r\n`.length;

async function makeMembers(n: number): Promise<Member[]> {
  const out: Member[] = [];
  for (let i = 0; i < n; i++) {
    const name = `m${String(i).padStart(4, '0')}`;
    const k = await generateUserKey({ name });
    out.push({ name, armored: k.publicArmored, key: (await unlockPrivateKey({ armored: k.privateArmored })).key! });
  }
  return out;
}

async function until(check: () => boolean, what: string, ms = 600_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(5);
  }
}

interface Step { what: string; cpuMs: number; wroteBytes: number; wroteLines: number; readBytesMax: number; readLinesMax: number; readBytesMedian: number; privateMessages: number; privateTo: number }

async function run(all: Member[], n: number): Promise<{ steps: Step[]; opened: number; holding: number; change?: Step; note?: string }> {
  const members = all.slice(0, n);
  const dir = new Directory();
  for (const m of members) dir.users.set(m.name, { name: m.name, fingerprint: m.key.fingerprint, publicKey: m.armored, online: true, service: false });
  const keybotKey = (await unlockPrivateKey({ armored: (await generateUserKey({ name: 'keybot' })).privateArmored })).key!;
  const tx = new Recorder();
  const svc = new KeyService({ directory: dir, transport: tx, signer: keybotKey, rotateAfterMessages: 0, rotateAfterMs: 0, settleMs: 5, maxSettleMs: 50, minEpochIntervalMs: 0 });
  dir.onRemove = (room, nick) => svc.memberLeft(room, nick, true);
  // The room as the daemon keeps it, with its opener alone: the first epoch keys alice (m0000).
  const alice = members[0]!;
  dir.rooms = [{ name: ROOM, modes: '+is', members: ['keybot', alice.name], accounts: [{ account: alice.name, state: 'joined' }] }];
  await svc.recover([]);
  svc.namesReceived(ROOM, ['keybot', alice.name]);
  const room = (): NonNullable<ReturnType<typeof svc.rooms.get>> => svc.rooms.get(ROOM)!;
  await until(() => room().current !== undefined, 'the first epoch');
  const steps: Step[] = [];
  const measure = async (what: string, act: () => Promise<void>, done: () => boolean): Promise<Step> => {
    const from = tx.lines.length;
    // The bench's own heap (every line keybot wrote, every member's engine after the opening) is
    // collected here, not inside keybot's measured work (run with --expose-gc; npm run bench:keys does).
    (globalThis as { gc?: () => void }).gc?.();
    const c0 = cpuMs();
    await act();
    await until(done, what);
    const cpu = cpuMs() - c0;
    const lines = tx.lines.slice(from);
    const present = new Set(room().present);
    const per = new Map<string, { bytes: number; lines: number }>();
    for (const m of room().members.keys()) per.set(m, { bytes: 0, lines: 0 });
    for (const l of lines) {
      const to = l.target.startsWith('#') ? [...present].filter((p) => per.has(p)) : per.has(l.target.toLowerCase()) ? [l.target.toLowerCase()] : [];
      for (const t of to) { const p = per.get(t)!; p.bytes += wire(l); p.lines++; }
    }
    const bytes = [...per.values()].map((p) => p.bytes).sort((a, b) => a - b);
    // Private SC1E messages: join envelopes and the roster pages sent to a joiner alone (both are
    // framed alike), counted by message id; and how many members got any.
    const privateSc1e = lines.filter((l) => !l.target.startsWith('#') && l.text.startsWith('SC1E '));
    return {
      what, cpuMs: Math.round(cpu),
      wroteBytes: lines.reduce((s, l) => s + wire(l), 0), wroteLines: lines.length,
      readBytesMax: bytes.at(-1) ?? 0, readBytesMedian: bytes[bytes.length >> 1] ?? 0,
      readLinesMax: Math.max(0, ...[...per.values()].map((p) => p.lines)),
      privateMessages: new Set(privateSc1e.map((l) => l.text.split(' ')[1])).size,
      privateTo: new Set(privateSc1e.map((l) => l.target.toLowerCase())).size,
    };
  };
  // Open: signed adds of up to MAX_OP_TARGETS each, each after the previous epoch.
  let note: string | undefined;
  for (let at = 1; at < n; at += MAX_OP_TARGETS) {
    const batch = members.slice(at, at + MAX_OP_TARGETS);
    const before = room().current!.epoch;
    const op = signRoomOp({
      signer: alice.key,
      op: {
        action: 'add', room: ROOM, roster: rosterHash(room().current!.members),
        actor: { account: alice.name, fingerprint: alice.key.fingerprint },
        targets: batch.map((m) => ({ account: m.name, fingerprint: m.key.fingerprint })),
        issuedAt: Date.now(), nonce: randomBytes(ROOM_OP_NONCE_BYTES),
      },
    });
    const auth = { fingerprints: new Map(batch.map((m) => [m.name, m.key.fingerprint])), op };
    const step = await measure(`invite ${batch.length} (room of ${at + batch.length})`, async () => {
      const adding = svc.addToRoom(alice.name, ROOM, batch.map((m) => m.name), auth);
      await until(() => batch.every((m) => room().expectedJoins.has(m.name)), 'placements');
      for (const m of batch) svc.memberJoined(ROOM, m.name);
      await adding;
    }, () => (room().current?.epoch ?? 0) > before && !room().rekeying || room().members.size < at + batch.length);
    steps.push(step);
    if (room().members.size < at + batch.length) {
      await until(() => !room().rekeying && room().keyedVersion === room().version, 'the room to settle after the evictions');
      note = `the room stopped at ${room().members.size} members: a join envelope listing the roster did not fit IRC (${MAX_OP_TARGETS} invitees evicted)`;
      break;
    }
  }
  const opened = room().members.size;
  // Every member's companion core reads what it would have received, in order.
  let holding = 0;
  if (!note) {
    const present = new Set(room().present);
    for (const m of members) {
      const e = new RoomCryptoEngine({ account: m.name, privateKey: m.key, keybotKey: keybotKey.publicKey });
      for (const l of tx.lines) {
        if (l.target.toLowerCase() !== m.name && !(l.target === ROOM && present.has(m.name))) continue;
        await e.handleIncoming({ from: 'keybot', target: l.target, command: 'NOTICE', text: l.text });
      }
      if (e.roomInfo(ROOM)?.epoch === room().current!.epoch) holding++;
    }
  }
  // One member leaves. The opening's recorded lines (hundreds of MiB at 2,000 members) are counted:
  // let them go, so that collecting them is not counted as keybot's work on the departure.
  tx.lines.length = 0;
  // The last member still in the room (invitees past a limit were evicted).
  const leaver = members.filter((m) => room().members.has(m.name)).at(-1)!;
  const before = room().current!.epoch;
  const change = await measure('one member leaves', async () => { svc.memberLeft(ROOM, leaver.name, false); }, () => (room().current?.epoch ?? 0) > before && !room().rekeying);
  svc.shutdown();
  return { steps, opened, holding, change, ...(note ? { note } : {}) };
}

const all = await makeMembers(Math.max(...SIZES));
console.log(`# bench:keys --service (bench/lib/keys-service.ts): ${new Date().toISOString()}, node ${process.version}, ${(await import('node:os')).cpus().length} cores (shared with other jobs)`);
let failed = false;
for (const n of SIZES) {
  const r = await run(all, n);
  const open = r.steps.reduce((a, s) => ({ cpu: a.cpu + s.cpuMs, wrote: a.wrote + s.wroteBytes, readMax: a.readMax + s.readBytesMax, lines: a.lines + s.readLinesMax }), { cpu: 0, wrote: 0, readMax: 0, lines: 0 });
  console.log(`\n## ${n} members`);
  console.log(`open: ${r.steps.length} invites; keybot CPU ${open.cpu} ms, wrote ${(open.wrote / 1024).toFixed(0)} KiB; per member at most ${(open.readMax / 1024).toFixed(1)} KiB, ${open.lines} lines; ${r.note ?? `${r.holding}/${r.opened} members hold the key`}`);
  for (const s of r.steps) console.log(`  ${s.what}: keybot CPU ${s.cpuMs} ms, wrote ${(s.wroteBytes / 1024).toFixed(1)} KiB in ${s.wroteLines} lines (${s.privateMessages} join envelopes and roster pages to ${s.privateTo} members); a member read at most ${s.readBytesMax} B / ${s.readLinesMax} lines (median ${s.readBytesMedian} B)`);
  const c = r.change!;
  console.log(`one member leaves: keybot CPU ${c.cpuMs} ms, wrote ${(c.wroteBytes / 1024).toFixed(1)} KiB in ${c.wroteLines} lines (${c.privateMessages} join envelopes and roster pages to ${c.privateTo} members); each remaining member read at most ${c.readBytesMax} B in ${c.readLinesMax} lines`);
  if (n === 2000) {
    const okCpu = c.cpuMs <= TARGET.changeCpuMs;
    const okBytes = c.readBytesMax <= TARGET.changeBytes;
    console.log(`target: one-member change in 2,000 <= ${TARGET.changeCpuMs} ms keybot CPU: ${okCpu ? 'met' : 'MISSED'}; <= ${TARGET.changeBytes} B per remaining member: ${okBytes ? 'met' : 'MISSED'}${r.note ? ' (measured on the room as far as it opened)' : ''}`);
    failed ||= !okCpu || !okBytes;
  }
  if (n === 500) {
    const ok = !r.note && r.holding === 500;
    console.log(`target: the 500-member room opens with every member holding the key: ${ok ? 'met' : 'MISSED'}`);
    failed ||= !ok;
  }
}
process.exit(failed ? 1 : 0);
