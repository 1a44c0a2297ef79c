/** The `history` section of the config (docs/OPERATIONS.md "History and the mailbox"). */
import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, DEFAULT_HISTORY, loadConfig } from '../../../src/ircd/config.js';

describe('src/ircd/config/parse.ts: history', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sc-cfg-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const load = async (content: unknown) => {
    const file = path.join(dir, 'sealchatd.json');
    await writeFile(file, JSON.stringify(content));
    return loadConfig({ file, cwd: dir });
  };
  const errorOf = async (content: unknown): Promise<string> => {
    const err = await load(content).then(() => null, (e: unknown) => e);
    expect(err, 'expected a ConfigError').to.be.instanceOf(ConfigError);
    return (err as Error).message;
  };

  it('defaults to 10000 messages per room, 30 days and 2000 mailbox lines', async () => {
    expect(DEFAULT_HISTORY).to.deep.equal({ maxMessages: 10_000, maxAgeDays: 30, mailboxMax: 2000 });
    expect((await loadConfig({ cwd: dir })).history).to.deep.equal(DEFAULT_HISTORY);
  });

  it('takes each key on its own, keeping the defaults of the others', async () => {
    expect((await load({ history: { maxAgeDays: 7 } })).history).to.deep.equal({ ...DEFAULT_HISTORY, maxAgeDays: 7 });
    expect((await load({ history: { maxMessages: 50, mailboxMax: 5 } })).history).to.deep.equal({ maxMessages: 50, maxAgeDays: 30, mailboxMax: 5 });
  });

  it('refuses bad values and unknown keys with the key path named', async () => {
    expect(await errorOf({ history: { maxMessages: 0 } })).to.equal('config: history.maxMessages must be a positive integer (got 0)');
    expect(await errorOf({ history: { maxAgeDays: 1.5 } })).to.match(/^config: history\.maxAgeDays must be a positive integer/);
    expect(await errorOf({ history: { mailboxMax: '10' } })).to.match(/^config: history\.mailboxMax must be a positive integer \(got "10"\)/);
    expect(await errorOf({ history: { maxMessages: 2_000_000 } })).to.equal('config: history.maxMessages must be at most 1000000 (got 2000000)');
    expect(await errorOf({ history: { maxage: 3 } })).to.match(/unknown key "history\.maxage"/);
    expect(await errorOf({ history: 5 })).to.match(/^config: history must be an object/);
  });
});
