/**
 * The web companion's key handling in Chromium (src/client/web/key-store.ts): a key made in the
 * browser, with the public key and the exact `sealchatd user add` line for the administrator; a
 * too-short passphrase refused before anything is stored; the login once the administrator added
 * the account; "Forget this browser" leaves nothing in IndexedDB.
 */
import { expect } from 'chai';
import { access, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { inspectPublicKey } from '../../src/crypto/index.js';
import { buildWebPage } from '../../src/web/build.js';
import { startWorld, type World } from '../helpers/companions.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const available = await access(CHROMIUM).then(
  () => true,
  () => false,
);
const describeIf = available ? describe : describe.skip;

describeIf(`web companion keys in Chromium${available ? '' : ' (SKIPPED: chromium is not installed)'}`, function () {
  this.timeout(120_000);
  let w: World;
  let browser: Browser;
  let page: Page;
  let pageDir: string;
  let url: string;
  const pageErrors: string[] = [];

  before(async () => {
    pageDir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-page-'));
    await buildWebPage(pageDir);
    w = await startWorld([], {
      listen: [
        { host: '127.0.0.1', port: 0 },
        { host: '127.0.0.1', port: 0, websocket: { origins: [], page: pageDir } },
      ],
    });
    url = `http://127.0.0.1:${w.t.daemon.listeners.find((l) => l.websocket)!.port}/?keybot=${w.bot.fingerprint}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    page = await browser.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('dialog', (d) => void d.accept());
  });

  after(async () => {
    await browser?.close();
    await w?.stop();
    await rm(pageDir, { recursive: true, force: true });
  });

  function storedDocuments(): Promise<string[]> {
    return page.evaluate(
      () =>
        new Promise<string[]>((resolve) => {
          const req = indexedDB.open('sealchat');
          req.onupgradeneeded = () => req.result.createObjectStore('documents');
          req.onsuccess = () => {
            const all = req.result.transaction('documents').objectStore('documents').getAllKeys();
            all.onsuccess = () => {
              req.result.close();
              resolve(all.result.map(String));
            };
          };
        }),
    );
  }

  it('makes a key in the browser and shows the public key and the line for the administrator; a short passphrase is refused', async () => {
    await page.goto(url);
    await page.fill('input[name=account]', 'dave');
    await page.fill('input[name=password]', 'pw-dave-secret');
    await page.click('button:has-text("Make a key here")');
    await page.fill('input[name=passphrase]', 'short');
    await page.click('button.primary');
    await page.locator('.error', { hasText: 'at least 8 characters' }).waitFor();
    expect(await storedDocuments()).to.deep.equal([]);

    await page.fill('input[name=passphrase]', 'a long passphrase for dave');
    await page.click('button.primary');
    await page.locator('.made').waitFor({ timeout: 20_000 });
    expect(await page.locator('.useradd').innerText()).to.equal('sealchatd user add dave --key dave.pub.asc');
    const publicArmored = await page.locator('.pubkey').innerText();
    const info = await inspectPublicKey({ armored: publicArmored });
    expect(info.status).to.equal('ok');
    expect(await page.locator('.made code').innerText()).to.equal(info.fingerprint);
    expect(await page.locator('a[download="dave.pub.asc"]').count()).to.equal(1);
    const docs = await storedDocuments();
    expect(docs.filter((d) => d.includes('web-keys'))).to.have.length(1);

    // The administrator adds dave with that key; dave logs in with the password and the passphrase.
    await w.t.daemon.accounts.add({ name: 'dave', password: 'pw-dave-secret', publicKey: publicArmored });
    await page.fill('input[name=password]', 'pw-dave-secret');
    await page.fill('input[name=passphrase]', 'a long passphrase for dave');
    await page.click('button.primary');
    await page.locator('.conn.online').waitFor({ timeout: 15_000 });
    await page.locator('.keybot.pinned').waitFor({ timeout: 15_000 });
  });

  it('"Forget this browser" deletes the key and the pins, and asks for a key again', async () => {
    await page.click('header .forget');
    await page.locator('.login').waitFor();
    await page.locator('button:has-text("Import my key")').waitFor();
    expect(await storedDocuments()).to.deep.equal([]);
    expect(pageErrors).to.deep.equal([]);
  });
});
