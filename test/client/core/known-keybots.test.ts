import { expect } from 'chai';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { KnownKeybots, decideKeybotTrust } from '../../../src/client/core/known-keybots.js';
import { normalizeFingerprint } from '../../../src/protocol/fingerprint.js';
import { ArmorCollector } from '../../../src/client/core/keybot.js';
import { readPublicKey } from '../../../src/crypto/index.js';
import { party } from '../fixtures.js';

const FP_A = 'a'.repeat(40);
const FP_B = 'b'.repeat(40);

describe('src/client/core/known-keybots.ts', function () {
  let dir: string;
  beforeEach(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-pin-'));
  });
  afterEach(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  it('normalises fingerprints as people write them', function () {
    expect(normalizeFingerprint('AAAA AAAA AAAA AAAA AAAA  AAAA AAAA AAAA AAAA AAAA')).to.equal(FP_A);
    expect(normalizeFingerprint(`0x${FP_A.toUpperCase()}`)).to.equal(FP_A);
    expect(normalizeFingerprint('aa:bb')).to.equal(undefined);
  });

  it('trusts a configured fingerprint only for that key', function () {
    expect(decideKeybotTrust({ offered: FP_A, configured: FP_A.toUpperCase() })).to.deep.equal({ status: 'trusted', fingerprint: FP_A, source: 'configured' });
    expect(decideKeybotTrust({ offered: FP_B, configured: FP_A })).to.deep.equal({ status: 'mismatch', expected: FP_A, got: FP_B, source: 'configured' });
  });

  it('trusts on first use, then only the remembered key', function () {
    expect(decideKeybotTrust({ offered: FP_A })).to.deep.equal({ status: 'trusted', fingerprint: FP_A, source: 'first-use' });
    const known = { fingerprint: FP_A, firstSeen: 'then' };
    expect(decideKeybotTrust({ offered: FP_A, known })).to.include({ status: 'trusted', source: 'known' });
    expect(decideKeybotTrust({ offered: FP_B, known })).to.deep.equal({ status: 'mismatch', expected: FP_A, got: FP_B, source: 'known' });
  });

  it('remembers keybots per server in an owner-only file', async function () {
    const file = path.join(dir, 'sub', 'known_keybots.json');
    const store = new KnownKeybots(file);
    expect(await store.get('h:1')).to.equal(undefined);
    await store.set('h:1', { fingerprint: FP_A, firstSeen: 'now' });
    await store.set('h:2', { fingerprint: FP_B, firstSeen: 'now' });
    expect(await new KnownKeybots(file).get('h:1')).to.include({ fingerprint: FP_A });
    expect(await new KnownKeybots(file).get('h:2')).to.include({ fingerprint: FP_B });
    expect((await stat(file)).mode & 0o777).to.equal(0o600);
    expect(JSON.parse(await readFile(file, 'utf8'))).to.have.keys('h:1', 'h:2');
  });

  it('refuses to guess from a corrupt file', async function () {
    const file = path.join(dir, 'known_keybots.json');
    await writeFile(file, '{"h:1": {"fingerprint": "nope"}}');
    let err: Error | undefined;
    await new KnownKeybots(file).get('h:1').catch((e: Error) => (err = e));
    expect(err?.message).to.match(/no valid fingerprint/);
  });

  it('refuses a file that is not one JSON object, and an entry whose fingerprint is not text, naming the file and the server', async function () {
    const file = path.join(dir, 'known_keybots.json');
    const failure = async (text: string): Promise<string | undefined> => {
      await writeFile(file, text);
      return new KnownKeybots(file).get('h:1').then(() => undefined, (e: Error) => e.message);
    };
    for (const text of ['null', '[]', '[{"fingerprint": "' + FP_A + '"}]', '42', '"h:1"', 'true']) {
      expect(await failure(text), text).to.equal(`${file}: expected a JSON object`);
    }
    expect(await failure(`{"h:1": {"fingerprint": ${JSON.stringify(FP_A.length)}}}`)).to.equal(`${file}: the entry for h:1 has no valid fingerprint`);
    expect(await failure('{"h:1": null}')).to.equal(`${file}: the entry for h:1 has no valid fingerprint`);
    // A 64-digit fingerprint (OpenPGP v6) is valid; 63 or 41 digits are not.
    expect(await failure(`{"h:1": {"fingerprint": "${'c'.repeat(64)}"}}`)).to.equal(undefined);
    expect(await failure(`{"h:1": {"fingerprint": "${'c'.repeat(41)}"}}`)).to.match(/no valid fingerprint/);
  });

  it('refuses to decide trust on something that is not a fingerprint, saying which one', function () {
    expect(() => decideKeybotTrust({ offered: 'nope' })).to.throw(TypeError, 'decideKeybotTrust: offered is not a fingerprint');
    expect(() => decideKeybotTrust({ offered: FP_A, configured: 'nope' })).to.throw(TypeError, 'decideKeybotTrust: the configured keybot fingerprint is not a fingerprint');
  });
});

describe('src/client/core/keybot.ts (ArmorCollector)', function () {
  it('rebuilds an armored key sent one line per NOTICE without its blank line', async function () {
    const keybot = await party('keybot');
    const c = new ArmorCollector();
    const lines = keybot.publicArmored.split('\n').filter((l) => l.trim() !== '');
    let last;
    for (const l of lines) last = c.push(l);
    expect(last!.status).to.equal('done');
    const r = await readPublicKey({ armored: (last as { armored: string }).armored });
    expect(r.key?.fingerprint).to.equal(keybot.fingerprint);
  });

  it('says so when the reply is not a key', function () {
    expect(new ArmorCollector().push('unknown command "pubkey"; send "help" for the list')).to.include({ status: 'not-armor' });
  });
});
