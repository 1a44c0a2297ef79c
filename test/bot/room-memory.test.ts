import { expect } from 'chai';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ControlSocketDirectory } from '../../src/bot/directory.js';
import {
  loadRoomMemory,
  parseRoomMemory,
  ROOM_MEMORY_VERSION,
  RoomMemoryWriter,
  serializeRoomMemory,
} from '../../src/bot/room-memory.js';
import { ROOM_MEMORY_FILE } from '../../src/protocol/files.js';
import { startTestDaemon } from '../helpers/daemon.js';
import { restartDaemon } from '../faults/helpers.js';
import { captureWarnings } from './helpers.js';

const FP = 'a'.repeat(40);
const ROOM = { name: '#sc-abcdefghij', members: ['alice', 'bob'], fingerprints: { alice: FP, bob: 'b'.repeat(64) }, pending: [] };

describe('src/bot/room-memory.ts', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-rooms-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('writes names, members and fingerprints only, and reads them back', () => {
    const withExtra = { ...ROOM, key: new Uint8Array([1, 2, 3]), current: { key: 'secret' } };
    const text = serializeRoomMemory({ daemonInstance: 'abc', rooms: [withExtra] });
    expect(text).to.not.include('key').and.not.include('secret');
    const doc = JSON.parse(text) as Record<string, unknown>;
    expect(doc.version).to.equal(ROOM_MEMORY_VERSION);
    expect(parseRoomMemory(doc)).to.deep.equal({ daemonInstance: 'abc', rooms: [ROOM] });
  });

  it('keeps pending invites with their signed operation, and refuses a malformed one', () => {
    const op = new Uint8Array([123, 34, 118, 34, 0, 1, 2, 255]);
    const invite = { account: 'carol', fingerprint: 'c'.repeat(40), by: 'alice', op, at: 1764100000123 };
    const text = serializeRoomMemory({ daemonInstance: 'abc', rooms: [{ ...ROOM, pending: [invite] }] });
    const doc = JSON.parse(text) as { rooms: Array<{ pending: Array<Record<string, unknown>> }> };
    expect(doc.rooms[0]!.pending[0]!.op).to.equal(Buffer.from(op).toString('base64'));
    expect(parseRoomMemory(doc)).to.deep.equal({ daemonInstance: 'abc', rooms: [{ ...ROOM, pending: [invite] }] });
    const bad = (p: Record<string, unknown>): unknown => parseRoomMemory({ version: 1, rooms: [{ ...ROOM, pending: [{ ...invite, op: 'e3YiAAEC/w==', ...p }] }] });
    expect(bad({})).to.not.be.a('string');
    expect(bad({ by: 'a b' })).to.match(/pending\[0\]/);
    expect(bad({ fingerprint: 'nothex' })).to.match(/pending\[0\]/);
    expect(bad({ op: 'not base64!' })).to.match(/pending\[0\]/);
    expect(parseRoomMemory({ version: 1, rooms: [{ ...ROOM, pending: 'carol' }] })).to.match(/pending is not a list/);
    // A file from before issue 13 (a restore mark, no pending invites) is still read.
    expect(parseRoomMemory({ version: 1, rooms: [{ name: ROOM.name, members: ROOM.members, fingerprints: ROOM.fingerprints, restorePending: true }] })).to.deep.equal({ daemonInstance: undefined, rooms: [ROOM] });
  });

  it('refuses a file from a newer keybot, and one whose rooms are not keybot rooms or accounts', () => {
    expect(parseRoomMemory({ version: ROOM_MEMORY_VERSION + 1, rooms: [] })).to.match(/newer keybot/);
    expect(parseRoomMemory({ version: 1, rooms: [{ ...ROOM, name: '#general' }] })).to.match(/not a keybot room/);
    expect(parseRoomMemory({ version: 1, rooms: [{ ...ROOM, members: ['a b'] }] })).to.match(/account names/);
    expect(parseRoomMemory({ version: 1, rooms: [{ ...ROOM, fingerprints: { alice: 'nothex' } }] })).to.match(/fingerprint/);
    expect(parseRoomMemory([])).to.match(/not a JSON object/);
  });

  it('writes the file atomically with mode 0600, after a change and on demand', async () => {
    let rooms = [ROOM];
    const writer = new RoomMemoryWriter(dir, () => ({ daemonInstance: 'i1', rooms }), 10);
    writer.changed();
    const file = path.join(dir, ROOM_MEMORY_FILE);
    for (let i = 0; i < 500 && !(await stat(file).catch(() => null)); i++) await new Promise((r) => setTimeout(r, 10));
    await writer.settled();
    expect((await stat(file)).mode & 0o777).to.equal(0o600);
    expect(await loadRoomMemory(dir)).to.deep.equal({ daemonInstance: 'i1', rooms: [ROOM] });
    rooms = [];
    await writer.write({ daemonInstance: 'i2', rooms });
    expect(await loadRoomMemory(dir)).to.deep.equal({ daemonInstance: 'i2', rooms: [] });
    expect((await readFile(file, 'utf8')).endsWith('\n')).to.equal(true);
  });

  it('warns about a future-version or unreadable file and ignores it', async () => {
    const file = path.join(dir, ROOM_MEMORY_FILE);
    await writeFile(file, JSON.stringify({ version: 99, daemonInstance: 'x', rooms: [] }), { mode: 0o600 });
    const lines = await captureWarnings(async () => {
      expect(await loadRoomMemory(dir)).to.equal(undefined);
      await rm(file);
      await mkdir(file);
      expect(await loadRoomMemory(dir)).to.equal(undefined);
      await rm(file, { recursive: true });
      expect(await loadRoomMemory(dir)).to.equal(undefined);
    });
    expect(lines).to.have.length(2);
    expect(lines[0]).to.match(/refused \(written by a newer keybot \(layout version 99; this one reads up to 1\)\): ignoring it/);
    expect(lines[1]).to.match(/cannot read .*keybot\.rooms\.json .*: ignoring it/);
  });

  it('tells a restarted daemon by its server.info instance', async () => {
    const t = await startTestDaemon();
    try {
      const first = await ControlSocketDirectory.connect(t.daemon.controlPath);
      const a = await first.serverInstance();
      expect(a).to.match(/^[0-9a-f]{32}$/);
      expect(await first.serverInstance()).to.equal(a);
      first.close();
      await restartDaemon(t);
      const second = await ControlSocketDirectory.connect(t.daemon.controlPath);
      expect(await second.serverInstance()).to.match(/^[0-9a-f]{32}$/).and.not.equal(a);
      second.close();
    } finally {
      await t.daemon.close();
      await t.stop();
    }
  });
});
