/**
 * Room keys never reach a disk or a log. After a session with the real daemon (accounts in
 * sqlite, with its WAL), the real keybot (its room memory and key file in the same data dir) and
 * three kinds of companion, each with a home of its own (SealClient with a known-keybots file,
 * `sealchat chat` with SEALCHAT_HOME, the agent with its socket and known-keybots file), every
 * file under the data dir and the homes, and every log line of the session at debug level, is
 * searched for the bytes of every room key the session used: raw, hex and base64 (at each of
 * the three alignments it can have inside a longer base64 text).
 *
 * The keys come from a tap, a second session of bob's account that opens the envelopes keybot
 * sends bob: the same keys every companion held.
 */
import { expect } from 'chai';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startAgent, type Agent } from '../../src/client/agent/server.js';
import { SealClient } from '../../src/client/client.js';
import { unlockPrivateKey } from '../../src/crypto/index.js';
import { setLogLevel } from '../../src/util/log.js';
import { PluginDouble } from '../helpers/agent.js';
import { CliProcess, tempDir } from '../helpers/companions.js';
import { insiderHas, openRoom, sameEpoch, startSecWorld, until, type Insider, type SecWorld } from './world.js';

/** Every file under `dir` (recursively), with its bytes. */
async function filesUnder(dir: string): Promise<Array<{ file: string; bytes: Buffer }>> {
  const out: Array<{ file: string; bytes: Buffer }> = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue; // sockets and directories have no bytes to read
    const file = path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name);
    const bytes = await readFile(file).catch(() => undefined); // a file may vanish mid-scan (sqlite's -journal)
    if (bytes) out.push({ file, bytes });
  }
  return out;
}

/** The forms a 32-byte key can take in a file: raw, hex (both cases), base64 and base64url at each alignment. */
function forms(key: Uint8Array): Array<{ form: string; needle: Buffer }> {
  const k = Buffer.from(key);
  const out = [
    { form: 'raw', needle: k },
    { form: 'hex', needle: Buffer.from(k.toString('hex')) },
    { form: 'HEX', needle: Buffer.from(k.toString('hex').toUpperCase()) },
  ];
  for (let pad = 0; pad < 3; pad++) {
    // Inside a longer base64 text the key's bytes start at any of 3 offsets: take the characters
    // that depend only on the key's own bytes (skip the first and the last group it shares).
    const b64 = Buffer.concat([Buffer.alloc(pad), k, Buffer.alloc(3)]).toString('base64');
    const inner = b64.slice(Math.ceil((pad * 4) / 3) + 1, Math.floor(((pad + 32) * 4) / 3) - 1);
    out.push({ form: `base64@${pad}`, needle: Buffer.from(inner) });
    out.push({ form: `base64url@${pad}`, needle: Buffer.from(inner.replace(/\+/g, '-').replace(/\//g, '_')) });
  }
  return out;
}

describe('security: room keys on disk and in logs', function () {
  this.timeout(60_000);
  let w: SecWorld;
  let tap: Insider;
  let homes: { dir: string; remove: () => Promise<void> };
  let agent: Agent | undefined;
  let carol: PluginDouble | undefined;
  let bob: CliProcess | undefined;
  let alice: SealClient | undefined;
  const logs: string[] = [];
  let restoreStderr: (() => void) | undefined;

  before(async function () {
    // Every log line of the session, at debug level, as the daemon or keybot would print it.
    setLogLevel('debug');
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array) => {
      logs.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      return true;
    }) as typeof process.stderr.write;
    restoreStderr = () => {
      process.stderr.write = write;
      setLogLevel((process.env.SEALCHAT_LOG as 'silent') ?? 'info');
    };
    w = await startSecWorld(['alice', 'bob', 'carol', 'dave']);
    homes = await tempDir('sc-keys-home-');
    tap = await w.insider('bob');
  });
  after(async () => {
    restoreStderr?.();
    bob?.kill();
    await alice?.quit().catch(() => undefined);
    carol?.close();
    await agent?.close();
    await w?.stop();
    await homes?.remove();
  });

  it('finds no room key in the data dir (sqlite, WAL, keybot files), the companions\' homes or the logs', async function () {
    const home = (n: string) => path.join(homes.dir, n);
    // alice: SealClient, keybot's key pinned in a known-keybots file in her home.
    await mkdir(home('alice'), { recursive: true, mode: 0o700 });
    alice = new SealClient();
    alice.on('error', () => undefined);
    const r = await alice.connect({
      host: '127.0.0.1',
      port: w.t.port,
      nick: 'alice',
      password: w.users.alice!.password,
      privateKey: w.users.alice!.party.priv,
      keybotFingerprint: w.bot.fingerprint,
      knownKeybotsFile: path.join(home('alice'), 'known_keybots.json'),
    });
    expect(r.keybot.status).to.equal('pinned');
    // bob: `sealchat chat` with SEALCHAT_HOME.
    await mkdir(home('bob'), { recursive: true, mode: 0o700 });
    const bobKey = path.join(home('bob'), 'bob.key.asc');
    await writeFile(bobKey, w.users.bob!.privateKey, { mode: 0o600 });
    bob = CliProcess.start(
      ['chat', '--server', `127.0.0.1:${w.t.port}`, '--user', 'bob', '--key', bobKey, '--password-env', 'SC_PW'],
      { env: { SC_PW: w.users.bob!.password }, home: home('bob') },
    );
    await bob.waitOut(/keybot's key [0-9A-F ]+ is pinned/, 15_000);
    // carol: the agent (socket and known-keybots file in her home), driven by a plugin double.
    await mkdir(path.join(home('carol'), '.sealchat'), { recursive: true, mode: 0o700 });
    agent = await startAgent({
      account: 'carol',
      privateKey: (await unlockPrivateKey({ armored: w.users.carol!.privateKey })).key!,
      socketPath: path.join(home('carol'), '.sealchat', 'agent-carol.sock'),
      knownKeybotsFile: path.join(home('carol'), '.sealchat', 'known_keybots.json'),
    });
    carol = await PluginDouble.connect({ port: w.t.port, name: 'carol', password: w.users.carol!.password, socketPath: agent.socketPath });
    await carol.pumpUntil(() => carol!.eventsOf('notice').some((e) => /keybot's key \S+ is pinned/.test(e.text)), "carol's keybot pin");

    // A room, talk, a rekey (dave joins), more talk: two epochs.
    const room = await openRoom(alice, ['bob', 'carol']);
    await carol.pumpUntil(() => carol!.eventsOf('key').some((k) => k.room === room), "carol's key");
    const e1 = await sameEpoch(room, [alice], ['alice', 'bob', 'carol']);
    await insiderHas(tap, room, e1);
    await bob.waitOut(new RegExp(`key for ${room}: epoch ${e1}`), 15_000);
    await alice.send(room, 'first epoch');
    await bob.waitOut(/first epoch/);
    await w.member('dave');
    expect(await alice.inviteTo(room, ['dave'])).to.include(`added dave to ${room}`);
    const e2 = await sameEpoch(room, [alice], ['alice', 'bob', 'carol', 'dave'], e1);
    await insiderHas(tap, room, e2);
    await carol.pumpUntil(() => carol!.eventsOf('key').some((k) => k.room === room && k.text.includes(`epoch ${e2}`)), "carol's second key");
    bob.send('second epoch from bob');
    await until(() => tap.lines.some((l) => l.nick === 'bob' && l.command === 'PRIVMSG') || undefined, "bob's line");
    const said = await carol.say(room, 'second epoch from carol');
    expect(said.action).to.equal('send');
    await tap.sync();

    const keys = tap.keys.filter((k) => k.room.toLowerCase() === room.toLowerCase());
    expect(keys.map((k) => k.epoch)).to.include(e1).and.to.include(e2);
    // The precondition of a search that can find something: the keys are real 32-byte keys.
    for (const k of keys) expect(k.key).to.have.length(32);

    const scan = async (when: string): Promise<string[]> => {
      const files = [...(await filesUnder(w.t.dataDir)), ...(await filesUnder(homes.dir))];
      const found: string[] = [];
      for (const { file, bytes } of [...files, { file: '(logs)', bytes: Buffer.from(logs.join('')) }]) {
        for (const k of keys) for (const f of forms(k.key)) if (bytes.includes(f.needle)) found.push(`${when}: epoch ${k.epoch} ${f.form} in ${file}`);
      }
      return found;
    };
    const live = await scan('while running');
    const names = (await filesUnder(w.t.dataDir)).map((f) => path.basename(f.file));
    console.log(`      [figure] files searched in the data dir: ${names.sort().join(', ')}; log bytes: ${logs.join('').length}`);
    expect(names.some((n) => /\.sqlite(-wal)?$|\.db(-wal)?$/.test(n)), 'the sqlite database is among the files').to.equal(true);

    // And after everything has stopped (sqlite checkpoints its WAL into the database).
    bob.kill();
    await alice.quit();
    carol.close();
    await agent.close();
    await w.bot.close();
    await w.t.daemon.close();
    const stopped = await scan('after stop');
    expect([...live, ...stopped]).to.deep.equal([]);
  });
});
