/**
 * Which key a companion takes as keybot's (src/client/core/keybot.ts, through CompanionSession):
 * a configured key or fingerprint wins, else the one remembered for the server, else what keybot
 * sends (trust on first use, remembered); another key is refused, never adopted. keybot's answer
 * to `pubkey` arrives as NOTICE lines, one armor line each; the fetch times out, backs off, and
 * is checked again after a reconnect. Real keys, a real known-keybots file in a temp directory.
 */
import { expect } from 'chai';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CompanionSession, type CompanionAction, type KeybotState } from '../../../src/client/index.js';
import { party, type Party } from '../fixtures.js';

const SERVER = 'test:1';
const asks = (actions: CompanionAction[]): boolean => actions.some((a) => a.type === 'send' && a.target === 'keybot' && a.text === 'pubkey');
const states = (actions: CompanionAction[]): KeybotState[] => actions.flatMap((a) => (a.type === 'keybot' ? [a.state] : []));

describe('src/client/core/keybot.ts: which key is keybot’s', function () {
  this.timeout(30_000);
  let alice: Party;
  let keybot: Party;
  let impostor: Party;
  let dir: string;
  let file: string;

  before(async () => {
    [alice, keybot, impostor] = await Promise.all([party('alice'), party('keybot'), party('impostor')]);
  });
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'sc-keybot-key-'));
    file = path.join(dir, 'known_keybots.json');
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const t0 = 1_000_000;
  function session(over: Partial<ConstructorParameters<typeof CompanionSession>[0]> = {}): CompanionSession {
    return new CompanionSession({ account: 'alice', server: SERVER, privateKey: alice.priv, knownKeybotsFile: file, clock: () => t0, ...over });
  }
  /** keybot's answer to `pubkey`: one NOTICE per armor line (empty lines dropped, as clients do), to `to`. */
  async function answer(s: CompanionSession, armored: string, now = t0, to = 'alice', from = 'keybot'): Promise<CompanionAction[]> {
    const out: CompanionAction[] = [];
    for (const text of armored.split('\n').filter((l) => l.trim() !== '')) {
      const r = await s.received({ from, target: to, command: 'NOTICE', text, now });
      out.push(...r.actions);
    }
    return out;
  }
  const known = async (): Promise<Record<string, { fingerprint: string; publicKey?: string }>> => JSON.parse(await readFile(file, 'utf8'));

  it('pins the key keybot sends when nothing is configured or known, and remembers it with the key itself', async () => {
    const s = session();
    const started = await s.start(t0);
    expect(asks(started)).to.equal(true);
    expect(states(started)).to.deep.equal([{ status: 'fetching' }]);
    const got = await answer(s, keybot.publicArmored);
    expect(states(got)).to.deep.equal([{ status: 'pinned', fingerprint: keybot.fingerprint, source: 'first-use' }]);
    expect((await known())[SERVER]).to.include({ fingerprint: keybot.fingerprint, publicKey: keybot.pub.armored });
  });

  it('adds the key itself to a remembered fingerprint once keybot sends it, and pins nothing else', async () => {
    await writeFile(file, JSON.stringify({ [SERVER]: { fingerprint: keybot.fingerprint, firstSeen: '2026-01-01T00:00:00.000Z' } }));
    const s = session();
    expect(asks(await s.start(t0))).to.equal(true); // a fingerprint alone is no key: ask
    expect(states(await answer(s, keybot.publicArmored))).to.deep.equal([{ status: 'pinned', fingerprint: keybot.fingerprint, source: 'known' }]);
    expect((await known())[SERVER]).to.include({ fingerprint: keybot.fingerprint, publicKey: keybot.pub.armored });
    // Another key for a server remembered by its fingerprint is refused, and the file keeps the first.
    await writeFile(file, JSON.stringify({ [SERVER]: { fingerprint: keybot.fingerprint, firstSeen: '2026-01-01T00:00:00.000Z' } }));
    const again = session();
    expect(asks(await again.start(t0))).to.equal(true);
    const refused = states(await answer(again, impostor.publicArmored));
    expect(refused).to.have.length(1);
    expect(refused[0]).to.include({ status: 'mismatch', expected: keybot.fingerprint, got: impostor.fingerprint, source: 'known' });
    expect((refused[0] as { reason: string }).reason).to.match(/^keybot's key changed! test:1 offered [0-9a-f]+, but you pinned [0-9a-f]+\. It is refused/);
    expect((await known())[SERVER]!.fingerprint).to.equal(keybot.fingerprint);
  });

  it('uses a remembered key without asking keybot, unless the user configured another fingerprint now', async () => {
    await writeFile(file, JSON.stringify({ [SERVER]: { fingerprint: keybot.fingerprint, publicKey: keybot.pub.armored, firstSeen: '2026-01-01T00:00:00.000Z' } }));
    const s = session();
    const started = await s.start(t0);
    expect(asks(started)).to.equal(false);
    expect(states(started)).to.deep.equal([{ status: 'pinned', fingerprint: keybot.fingerprint, source: 'known' }]);
    // The same fingerprint configured (spaced, upper case): still no need to ask.
    const spaced = keybot.fingerprint.toUpperCase().replace(/(.{4})/g, '$1 ').trim();
    expect(asks(await session({ keybotFingerprint: spaced }).start(t0))).to.equal(false);
    // Another fingerprint configured: the remembered key does not stand in; keybot is asked, and its key refused.
    const other = session({ keybotFingerprint: impostor.fingerprint });
    expect(asks(await other.start(t0))).to.equal(true);
    const refused = states(await answer(other, keybot.publicArmored));
    expect(refused[0]).to.include({ status: 'mismatch', expected: impostor.fingerprint, got: keybot.fingerprint, source: 'configured' });
    expect((refused[0] as { reason: string }).reason).to.match(/but you configured /);
  });

  it('takes a key the user gave as it is, without asking keybot or writing the file', async () => {
    const s = session({ keybotPublicKey: keybot.publicArmored });
    const started = await s.start(t0);
    expect(asks(started)).to.equal(false);
    expect(states(started)).to.deep.equal([{ status: 'pinned', fingerprint: keybot.fingerprint, source: 'option-key' }]);
    expect(await readFile(file, 'utf8').catch(() => 'none')).to.equal('none');
  });

  it('refuses a key the user gave that is not the fingerprint the user also gave', async () => {
    const started = states(await session({ keybotPublicKey: impostor.publicArmored, keybotFingerprint: keybot.fingerprint }).start(t0));
    expect(started).to.have.length(1);
    expect(started[0]).to.include({ status: 'mismatch', expected: keybot.fingerprint, got: impostor.fingerprint, source: 'configured' });
    const same = states(await session({ keybotPublicKey: keybot.publicArmored, keybotFingerprint: keybot.fingerprint }).start(t0));
    expect(same).to.deep.equal([{ status: 'pinned', fingerprint: keybot.fingerprint, source: 'configured' }]);
  });

  it('refuses a configured fingerprint that is not one, and asks keybot nothing', async () => {
    const started = await session({ keybotFingerprint: 'xyz' }).start(t0);
    expect(asks(started)).to.equal(false);
    expect(states(started)).to.deep.equal([{ status: 'unavailable', reason: '"xyz" is not a key fingerprint' }]);
  });

  it("takes only keybot's NOTICEs to us: another nick's or a line to someone else does not pin", async () => {
    const s = session();
    await s.start(t0);
    expect(states(await answer(s, keybot.publicArmored, t0, 'bob'))).to.deep.equal([]);
    expect(states(await answer(s, impostor.publicArmored, t0, 'alice', 'mallory'))).to.deep.equal([]);
    expect(s.keybot).to.deep.equal({ status: 'fetching' });
    expect(states(await answer(s, keybot.publicArmored, t0, 'ALICE'))).to.deep.equal([{ status: 'pinned', fingerprint: keybot.fingerprint, source: 'first-use' }]);
  });

  it("leaves keybot's other replies to the user before the key starts, and fails the fetch on an unknown-command answer or a broken key", async () => {
    const s = session();
    await s.start(t0);
    // A reply to the user's own command, before the key: shown to the user, the fetch goes on.
    const other = await s.received({ from: 'keybot', target: 'alice', command: 'NOTICE', text: 'You are in no rooms.', now: t0 });
    expect(other.result.kind).to.not.equal('hidden');
    expect(states(other.actions)).to.deep.equal([]);
    const unknown = await s.received({ from: 'keybot', target: 'alice', command: 'NOTICE', text: 'unknown command "pubkey" (try help)', now: t0 });
    expect(unknown.result).to.deep.equal({ kind: 'hidden' });
    expect(states(unknown.actions)).to.deep.equal([{ status: 'unavailable', reason: 'keybot answered: unknown command "pubkey" (try help)' }]);

    const t = session();
    await t.start(t0);
    const begun = await t.received({ from: 'keybot', target: 'alice', command: 'NOTICE', text: '-----BEGIN PGP PUBLIC KEY BLOCK-----', now: t0 });
    expect(begun.result).to.deep.equal({ kind: 'hidden' });
    const broken = await t.received({ from: 'keybot', target: 'alice', command: 'NOTICE', text: 'this is not armor!', now: t0 });
    expect(states(broken.actions)).to.deep.equal([{ status: 'unavailable', reason: "keybot's key was interrupted (a line of the key is not armor)" }]);
    expect(broken.result.kind).to.not.equal('hidden');
  });

  it('gives up after the fetch timeout (not a millisecond before), asks again after the retry delay, and backs off', async () => {
    const s = session({ keyFetchTimeoutMs: 10_000, keyRetryMs: 30_000 });
    await s.start(t0);
    expect(s.sweep(t0 + 10_000)).to.deep.equal([]);
    expect(states(s.sweep(t0 + 10_001))).to.deep.equal([{ status: 'unavailable', reason: 'keybot did not send its key (is it online?)' }]);
    const failed1 = t0 + 10_001;
    expect(asks(s.sweep(failed1 + 30_000 - 1))).to.equal(false);
    const retry = s.sweep(failed1 + 30_000);
    expect(asks(retry)).to.equal(true);
    expect(retry.find((a) => a.type === 'keybot')).to.deep.include({ retry: true });
    // The second failure waits twice as long.
    const failed2 = failed1 + 30_000 + 10_001;
    expect(states(s.sweep(failed2))).to.have.length(1);
    expect(asks(s.sweep(failed2 + 60_000 - 1))).to.equal(false);
    expect(asks(s.sweep(failed2 + 60_000))).to.equal(true);
  });

  it('asks again exactly 5 s after a failure when a line from keybot comes, and at once when keybot is certainly online', async () => {
    const s = session();
    await s.start(t0);
    expect(s.keybotOffline(t0).taken).to.equal(true);
    expect(asks(s.keybotHeard(false, t0 + 4_999))).to.equal(false);
    expect(asks(s.keybotHeard(false, t0 + 5_000))).to.equal(true);
    // While that fetch is in flight, nothing more is asked.
    expect(asks(s.keybotHeard(true, t0 + 5_001))).to.equal(false);
  });

  it('after a reconnect, checks once keybot is certainly online that it still offers the pinned key, and says so loudly when it does not', async () => {
    const s = session();
    await s.start(t0);
    await answer(s, keybot.publicArmored);
    s.connectionLost(t0 + 1);
    // Offline, nothing is asked.
    expect(asks(s.keybotHeard(true, t0 + 2))).to.equal(false);
    s.reconnected(t0 + 3);
    expect(asks(s.keybotHeard(false, t0 + 60_000))).to.equal(false); // a line is not certainty
    expect(asks(s.keybotHeard(true, t0 + 60_001))).to.equal(true);
    // The same key: nothing changes, and no second check on this connection.
    expect(states(await answer(s, keybot.publicArmored, t0 + 60_002))).to.deep.equal([]);
    expect(asks(s.keybotHeard(true, t0 + 60_003))).to.equal(false);
    // Next connection: keybot offers another key. Refused; the pin stays as the expected key.
    s.connectionLost(t0 + 70_000);
    s.reconnected(t0 + 70_001);
    expect(asks(s.keybotHeard(true, t0 + 70_002))).to.equal(true);
    const changed = states(await answer(s, impostor.publicArmored, t0 + 70_003));
    expect(changed).to.have.length(1);
    expect(changed[0]).to.include({ status: 'mismatch', expected: keybot.fingerprint, got: impostor.fingerprint, source: 'known' });
    expect((await known())[SERVER]!.fingerprint).to.equal(keybot.fingerprint);
  });

  it('fails a fetch cut by the connection closing, and one keybot is not online for', async () => {
    const s = session();
    await s.start(t0);
    expect(states(s.connectionLost(t0 + 1))).to.deep.equal([{ status: 'unavailable', reason: 'the connection closed' }]);
    const t = session();
    await t.start(t0);
    const offline = t.keybotOffline(t0 + 1);
    expect(offline.taken).to.equal(true);
    expect(states(offline.actions)).to.deep.equal([{ status: 'unavailable', reason: "cannot get keybot's key: keybot is not online" }]);
    // Once the key has started to arrive, "not online" is not the fetch's answer.
    const u = session();
    await u.start(t0);
    await u.received({ from: 'keybot', target: 'alice', command: 'NOTICE', text: '-----BEGIN PGP PUBLIC KEY BLOCK-----', now: t0 });
    expect(u.keybotOffline(t0 + 1).taken).to.equal(false);
  });

  it('refuses to guess from a corrupt known-keybots file, and says why', async () => {
    await writeFile(file, '{ not json');
    const started = states(await session().start(t0));
    expect(started).to.have.length(1);
    expect(started[0]!.status).to.equal('unavailable');
    expect((started[0] as { reason: string }).reason).to.match(/^cannot read the known-keybots file: /);
  });
});
