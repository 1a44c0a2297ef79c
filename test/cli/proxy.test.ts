/**
 * `sealchat proxy` as a child process: it unlocks the key once, listens on loopback, relays a
 * client's login, and stops cleanly on SIGTERM; bad command lines are refused.
 */
import { expect } from 'chai';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { generateUserKey } from '../../src/crypto/index.js';
import { RawClient } from '../helpers/daemon.js';
import { CliProcess, startWorld, tempDir, type World } from '../helpers/companions.js';

describe('src/cli/sealchat.ts proxy (src/cli/proxy.ts)', function () {
  this.timeout(30_000);
  let w: World;
  let dir: string;
  let remove: () => Promise<void>;
  let keyFile: string;

  before(async () => {
    w = await startWorld(['alice']);
    ({ dir, remove } = await tempDir('sc-cliproxy-'));
    // alice's registered key, protected with a passphrase as keygen writes it.
    const k = await generateUserKey({ name: 'alice2', passphrase: 'open sesame' });
    keyFile = path.join(dir, 'alice2.key.asc');
    await writeFile(keyFile, k.privateArmored, { mode: 0o600 });
  });
  after(async () => {
    await w?.stop();
    await remove?.();
  });

  it('listens on loopback, relays a login, and exits 0 on SIGTERM', async () => {
    const p = CliProcess.start(
      ['proxy', '--listen', '0', '--server', `127.0.0.1:${w.t.port}`, '--key', keyFile, '--passphrase-env', 'SC_PP', '--keybot-fingerprint', w.bot.fingerprint],
      { env: { SC_PP: 'open sesame', SEALCHAT_LOG: 'silent' }, home: dir },
    );
    try {
      const m = await p.waitOut(/listening on 127\.0\.0\.1:(\d+), relaying to 127\.0\.0\.1:\d+ \(no TLS\)/, 15_000);
      await p.waitOut(/connect your IRC client to 127\.0\.0\.1 port \d+/);
      const c = await RawClient.connect(Number(m[1]));
      try {
        c.send(`PASS ${w.users.alice!.password}`, 'NICK alice', 'USER alice 0 * :alice');
        await c.waitLine(/ 001 alice /);
        await c.waitLine(/^:\*sealchat!\S+ NOTICE alice :end-to-end encryption is on/);
      } finally {
        c.close();
      }
      p.child.kill('SIGTERM');
      expect(await p.exit()).to.equal(0);
      expect(p.stderr).to.equal('');
    } finally {
      p.kill();
    }
  });

  it('refuses a listener other machines can reach, a wrong passphrase, and a missing --server', async () => {
    const [remote, badPass, noServer, noKey] = await Promise.all([
      CliProcess.run(['proxy', '--listen', '0.0.0.0:0', '--server', 'example.org:6697', '--key', keyFile]),
      CliProcess.run(['proxy', '--listen', '0', '--server', '127.0.0.1:1', '--key', keyFile, '--passphrase-env', 'SC_PP'], { env: { SC_PP: 'wrong' } }),
      CliProcess.run(['proxy', '--key', keyFile]),
      CliProcess.run(['proxy', '--server', '127.0.0.1:1']),
    ]);
    expect(remote.code).to.equal(2);
    expect(remote.stderr).to.match(/^sealchat: --listen 0\.0\.0\.0 is reachable from other machines/);
    expect(badPass.code).to.equal(1);
    expect(badPass.stderr).to.equal(`sealchat: wrong passphrase for ${keyFile}\n`);
    expect(noServer.code).to.equal(2);
    expect(noServer.stderr).to.equal('sealchat: --server HOST:PORT is required (the sealchat server)\n');
    expect(noKey.code).to.equal(2);
    expect(noKey.stderr).to.match(/^sealchat: --key FILE is required/);
  });
});
