/**
 * The web companion and a real IRC client in one room: alice in Chromium (the page sealchatd
 * serves), bob in unmodified irssi through `sealchat proxy` (src/client/proxy). alice pins keybot
 * to the fingerprint given in the page's address (no first-use warning), invites bob, both read
 * each other (non-ASCII, and a text longer than an IRC line), bob is shown online, and when bob
 * leaves in irssi alice's page shows the new key. An offline invitee is reported.
 */
import { expect } from 'chai';
import { access, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { LocalProxy } from '../../src/client/proxy/proxy.js';
import { unlockPrivateKey } from '../../src/crypto/index.js';
import { buildWebPage } from '../../src/web/build.js';
import { ROOT, ROOM_RE, startWorld, type World } from '../helpers/companions.js';
import { escapeRe, haveIrssi, startIrssi, type RealClient } from '../helpers/realclients.js';
import { haveCommand } from '../helpers/tmux.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const available =
  (await access(CHROMIUM).then(
    () => true,
    () => false,
  )) &&
  (await haveIrssi()) &&
  (await haveCommand('tmux'));
const describeIf = available ? describe : describe.skip;

describeIf(`web companion in Chromium with irssi through sealchat proxy${available ? '' : ' (SKIPPED: chromium, irssi or tmux is not installed)'}`, function () {
  this.timeout(120_000);
  let w: World;
  let browser: Browser;
  let page: Page;
  let pageDir: string;
  let proxy: LocalProxy;
  let irssi: RealClient;
  const pageErrors: string[] = [];

  before(async () => {
    pageDir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-page-'));
    await buildWebPage(pageDir);
    w = await startWorld(['alice', 'bob', 'carol'], {
      listen: [
        { host: '127.0.0.1', port: 0 },
        { host: '127.0.0.1', port: 0, websocket: { origins: [], page: pageDir } },
      ],
    });
    proxy = await LocalProxy.start({
      listen: { host: '127.0.0.1', port: 0 },
      upstream: { host: '127.0.0.1', port: w.t.port },
      privateKey: (await unlockPrivateKey({ armored: w.users.bob!.privateKey })).key!,
      account: 'bob',
      keybotFingerprint: w.bot.fingerprint,
      knownKeybotsFile: false,
    });
    irssi = await startIrssi({ port: proxy.address.port, nick: 'bob' });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 420, height: 800 } }); // a phone's width
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  after(async () => {
    await irssi?.stop();
    await proxy?.close();
    await browser?.close();
    await w?.stop();
    await rm(pageDir, { recursive: true, force: true });
  });

  async function type(text: string): Promise<void> {
    await page.locator('textarea.input').fill(text);
    await page.locator('textarea.input').press('Enter');
  }

  async function waitLine(re: RegExp, ms = 15_000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const all = await page.locator('.lines li').allInnerTexts();
      const found = all.find((l) => re.test(l));
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no line ${re} in the page; lines:\n${all.slice(-12).join('\n')}\npage errors: ${pageErrors.join('; ')}`);
      await page.waitForTimeout(50);
    }
  }

  it('alice (browser) and bob (irssi) read each other; presence; bob leaves and alice sees the new key', async () => {
    await irssi.connect(w.users.bob!.password);
    await irssi.waitForText(/end-to-end encryption is on; keybot's key [0-9a-f]{40} is pinned/, 15_000);

    const port = w.t.daemon.listeners.find((l) => l.websocket)!.port;
    await page.goto(`http://127.0.0.1:${port}/?keybot=${w.bot.fingerprint}`);
    await page.fill('input[name=account]', 'alice');
    await page.fill('input[name=password]', w.users.alice!.password);
    await page.fill('textarea[name=armored]', w.users.alice!.privateKey);
    await page.fill('input[name=passphrase]', 'correct horse battery staple');
    await page.click('button.primary');
    await page.locator('.keybot.pinned').waitFor({ timeout: 15_000 });
    // Pinned to the fingerprint given: no first-use warning.
    expect(await page.locator('.tofu').count()).to.equal(0);

    await type('/invite bob');
    const room = ROOM_RE.exec(await waitLine(/key: #sc-\S+ epoch \d+ \(first key\), members alice, bob/))![0];
    await irssi.showChannel(room);
    await irssi.waitForText(new RegExp(`key: ${escapeRe(room)} epoch \\d+ \\(first key\\), members alice, bob; verified`), 15_000);
    await page.locator('.members li.online', { hasText: 'bob' }).waitFor();
    // carol has an account but is not online: keybot says so (she joins at her next login), the page shows it.
    await type(`/invite ${room} carol`);
    await waitLine(/keybot\s*carol is offline: they join #sc-\S+ when they next log in/);

    const hello = `grüße an irssi ✓ ${Date.now() % 10_000}`;
    await type(hello);
    await irssi.waitForText(new RegExp(`<[@+ ]?alice> ${escapeRe(hello)}`));

    const long = Array.from({ length: 120 }, (_, i) => `wört${i}`).join(' ') + ' — ende ✓';
    expect(Buffer.byteLength(long)).to.be.greaterThan(512);
    await irssi.send(long);
    await waitLine(/wört119 — ende ✓/);
    const fromBob = (await page.locator('.lines li.message').allInnerTexts()).filter((l) => /bob/.test(l));
    const words = fromBob.join(' ');
    for (const word of ['wört0 ', 'wört60 ', 'wört119 ']) expect(words).to.contain(word);
    for (const l of fromBob) expect(l).to.contain('✓');
    const dir = process.env.SEALCHAT_ARTIFACTS ?? path.join(ROOT, 'reports', 'web');
    await mkdir(dir, { recursive: true });
    await page.screenshot({ path: path.join(dir, 'room-phone.png') });

    await irssi.send(`/part ${room}`);
    await waitLine(new RegExp(`key: ${escapeRe(room)} epoch \\d+, members alice(, carol)?;`));
    await page.locator('.members li.online', { hasText: 'bob' }).waitFor({ state: 'detached' });
    expect(pageErrors).to.deep.equal([]);
  });
});
