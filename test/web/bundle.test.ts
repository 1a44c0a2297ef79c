/**
 * src/web/build.ts: the web companion's bundle holds the browser twins (Web Crypto primitives,
 * IndexedDB storage), no Node built-in and no Node-only module, and stays under the size target.
 */
import { expect } from 'chai';
import { readFile, rm, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { buildWebPage, type WebBuild } from '../../src/web/build.js';

describe('src/web/build.ts', function () {
  this.timeout(60_000);
  let dir: string;
  let b: WebBuild;
  let js: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-bundle-'));
    b = await buildWebPage(dir);
    js = await readFile(path.join(dir, 'app.js'), 'utf8');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('bundles the browser twins and no Node built-in, file backend or Node-only module', () => {
    expect(b.inputs.filter((i) => i.startsWith('node:'))).to.deep.equal([]);
    expect(b.inputs).to.include('src/crypto/primitives.browser.ts');
    expect(b.inputs).to.include('src/client/core/storage.browser.ts');
    expect(b.inputs).to.not.include('src/crypto/primitives.ts');
    expect(b.inputs).to.not.include('src/client/core/storage.ts');
    expect(b.inputs.filter((i) => /node_modules\/(irc-framework|ws|net-ipc|keyv)\//.test(i))).to.deep.equal([]);
    expect(js).to.not.match(/from\s*["']node:|require\(["']node:/);
  });

  it('is at most 400 KB gzipped (issue 17)', () => {
    const gz = gzipSync(js, { level: 9 }).length;
    console.log(`      (app.js: ${(b.bytes / 1024).toFixed(0)} KiB, ${(gz / 1024).toFixed(0)} KiB gzipped)`);
    expect(gz).to.be.at.most(400 * 1000);
  });
});
