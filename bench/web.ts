/**
 * `npm run bench:web`: the web companion in Chromium (issue 17), against its targets.
 *
 *   bundle     app.js of the page as `npm run build` makes it (src/web/build.ts), gzipped (level 9).
 *   load       navigation start to the page showing the user logged in (`.conn.online`: the
 *              server's welcome read and the companion core started), in a fresh browser context
 *              each time (no cache, no IndexedDB), median of --loads cold loads after one warm-up
 *              of the daemon. Two journeys: the first visit (paste the armored key, passphrase:
 *              the key is unlocked, sealed and stored) and a returning visit (a fresh context
 *              holding only the sealed key in IndexedDB: passphrase, unseal, unlock). The form is
 *              filled by one script call at once (a person's typing is not the page's time).
 *   crypto     encrypt+sign and verify+decrypt messages/s in the page's thread, through the
 *              functions the companion core calls, bundled as the page is (bench/web-crypto.ts).
 *
 * The daemon runs as shipped: `sealchatd serve` in its own process (keybot its child), with a
 * plain IRC listener and a WebSocket listener serving the page built here. Chromium is Debian's
 * (/usr/bin/chromium, or CHROMIUM), driven by playwright-core. Exit 1 when something fails;
 * a missed target is printed, not an error. Options: --loads N (default 7), --crypto-ms MS
 * (default 2000), --profile DIR (a Chromium trace of one first-visit load).
 */
/// <reference lib="dom" />
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { generateUserKey } from '../src/crypto/index.js';
import { buildBrowserModule, buildWebPage } from '../src/web/build.js';
import type { Rate } from './web-crypto.js';
import { readdirSync, readFileSync } from 'node:fs';
import { cpuMsOf, machineInfo, sealchatd, until } from './lib/proc.js';

/** `root` and every process below it (/proc/<pid>/stat's parent field), for CPU totals. */
function processTree(root: number): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'latin1');
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, pp] of parent) if (pp === out[i]) out.push(pid);
  return out;
}

/** CPU ms of a process tree so far (processes that ended are not counted: take deltas over a span they live through). */
function treeCpuMs(root: number): Map<number, number> {
  const m = new Map<number, number>();
  for (const pid of processTree(root)) {
    try {
      m.set(pid, cpuMsOf(pid));
    } catch {
      // gone meanwhile
    }
  }
  return m;
}
const cpuSince = (before: Map<number, number>, root: number): number => {
  let sum = 0;
  for (const [pid, ms] of treeCpuMs(root)) sum += ms - (before.get(pid) ?? 0);
  return sum;
};

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'src/cli/sealchatd.ts');
const { values: opts } = parseArgs({ options: { loads: { type: 'string' }, 'crypto-ms': { type: 'string' }, profile: { type: 'string' } } });
const LOADS = Number(opts.loads ?? 7);
const CRYPTO_MS = Number(opts['crypto-ms'] ?? 2000);
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const TARGETS = { bundleKB: 400, loadMs: 1500, msgsPerS: 1000 };
const PASSWORD = 'bench-web-password-1';
const PASSPHRASE = 'correct horse battery staple';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

const log = (s: string): void => void process.stderr.write(s + '\n');


const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const range = (xs: number[]): string => `${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)}`;
const verdict = (ok: boolean): string => (ok ? 'MET' : 'MISSED');

/** Times the page reached, in ms from navigation start (performance.now() in the page). */
interface LoadTimes {
  /** app.js fetched (resource timing responseEnd). */
  script: number;
  /** The form drawn (the page's script ran). */
  form: number;
  /** The form submitted (after the page knew whether this browser holds a key). */
  submit: number;
  /** `.conn.online`: logged in. */
  online: number;
  /** keybot's key pinned (not part of the target). */
  pinned?: number;
  /** CPU ms of every Chromium process (browser, renderer, network, GPU) over the load. */
  chromiumCpu: number;
  /** CPU ms of sealchatd serve and keybot over the load. */
  daemonCpu: number;
}

/**
 * Installed before the page's own script in every context (instrumentation of the bench, not of
 * the page): notes when the form, the logged-in state and keybot's pin first show, and fills and
 * submits the form the moment the page can take it (a first visit: the import form; a returning
 * visit: once the page has read this browser's IndexedDB and asks only the passphrase), as a
 * person typing instantly would, with no round trip to the bench in the measured time.
 */
const WATCH = `(o) => {
  const t = {};
  window.__bench = t;
  const look = () => {
    const now = performance.now();
    if (t.form === undefined && document.querySelector('button.primary')) t.form = now;
    if (t.submit === undefined && document.querySelector(o.returning ? '.stored' : 'textarea[name=armored]')) {
      for (const [name, value] of Object.entries(o.fields)) {
        const el = document.querySelector('[name=' + name + ']');
        el.value = value;
        el.dispatchEvent(new Event('input', { bubbles: true }));
      }
      t.submit = performance.now();
      document.querySelector('form').requestSubmit();
    }
    if (t.online === undefined && document.querySelector('.conn.online')) t.online = now;
    if (t.pinned === undefined && document.querySelector('.keybot.pinned')) t.pinned = now;
  };
  new MutationObserver(look).observe(document, { subtree: true, childList: true, attributes: true });
}`;
// A string, not a function: tsx's helpers (__name) do not exist in the page.
const watch = (o: { fields: Record<string, string>; returning: boolean }): { content: string } => ({ content: `(${WATCH})(${JSON.stringify(o)});` });

async function oneLoad(browser: Browser, url: string, pids: { chromium: number; daemon: number }, o: { storageState?: Awaited<ReturnType<BrowserContext['storageState']>>; fields: Record<string, string>; returning: boolean; trace?: string }): Promise<LoadTimes> {
  const context = await browser.newContext({ ...(o.storageState ? { storageState: o.storageState } : {}) });
  try {
    await context.addInitScript(watch({ fields: o.fields, returning: o.returning }));
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    if (o.trace) await browser.startTracing(page, { path: o.trace, screenshots: false, categories: ['devtools.timeline', 'v8.execute', 'disabled-by-default-devtools.timeline', 'disabled-by-default-v8.cpu_profiler', 'blink.user_timing'] });
    const cpu0 = { chromium: treeCpuMs(pids.chromium), daemon: treeCpuMs(pids.daemon) };
    await page.goto(url, { waitUntil: 'commit' });
    await page.locator('.conn.online').waitFor({ timeout: 30_000 });
    const chromiumCpu = cpuSince(cpu0.chromium, pids.chromium);
    const daemonCpu = cpuSince(cpu0.daemon, pids.daemon);
    await page.locator('.keybot.pinned').waitFor({ timeout: 30_000 }).catch(() => undefined);
    if (o.trace) await browser.stopTracing();
    const t = await page.evaluate(() => {
      const w = (window as unknown as { __bench: { form: number; submit: number; online: number; pinned?: number } }).__bench;
      const js = performance.getEntriesByType('resource').find((e) => e.name.endsWith('/app.js')) as PerformanceResourceTiming | undefined;
      return { ...w, script: js?.responseEnd ?? NaN };
    });
    if (errors.length > 0) throw new Error(`page errors: ${errors.join('; ')}`);
    return { ...t, chromiumCpu, daemonCpu };
  } finally {
    await context.close();
  }
}

async function main(): Promise<void> {
  const m0 = machineInfo();
  log(`bench:web: ${m0.cores} cores (${m0.cpu}), load average ${m0.load}`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sealchat-bench-web-'));
  const pageDir = path.join(dir, 'page');
  const dataDir = path.join(dir, 'data');
  let daemon: ChildProcess | undefined;
  let browser: Browser | undefined;
  try {
    // The page as `npm run build` makes it, and the crypto module bundled the same way.
    const built = await buildWebPage(pageDir);
    await buildBrowserModule(path.join(root, 'bench', 'web-crypto.ts'), path.join(pageDir, 'bench-crypto.js'));
    const appJs = await readFile(path.join(pageDir, 'app.js'));
    const gz = gzipSync(appJs, { level: 9 }).length;

    // Accounts: alice's key is passphrase-protected, as a key made by `sealchat keygen` or GnuPG is.
    const alice = await generateUserKey({ name: 'alice', passphrase: PASSPHRASE });
    await writeFile(path.join(dir, 'alice.pub.asc'), alice.publicArmored);
    await sealchatd(['user', 'add', 'alice', '--key', path.join(dir, 'alice.pub.asc'), '--password-stdin', '--data', dataDir], `${PASSWORD}\n`);

    const config = path.join(dir, 'sealchat.json');
    await writeFile(config, JSON.stringify({ listen: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 0, websocket: true, page: pageDir }] }));
    daemon = spawn(process.execPath, ['--import', 'tsx', cli, 'serve', '--config', config, '--data', dataDir], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, SEALCHAT_LOG: 'warn' },
    });
    let out = '';
    daemon.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const wsPort = await until(() => /listening on 127\.0\.0\.1:(\d+) \(WebSocket/.exec(out)?.[1], 'the WebSocket listener', 30_000);
    await until(() => (/keybot started/.test(out) ? true : undefined), 'keybot to start', 30_000);
    const url = `http://127.0.0.1:${wsPort}/`;

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    // playwright-core's launch() gives no pid: the Chromium whose parent is this process.
    const chromiumPid = processTree(process.pid).find((p) => p !== process.pid && /chrom/.test(readFileSync(`/proc/${p}/comm`, 'latin1')));
    if (chromiumPid === undefined) throw new Error('cannot find the Chromium process');
    const pids = { chromium: chromiumPid, daemon: daemon.pid! };
    const first = { account: 'alice', password: PASSWORD, armored: alice.privateArmored, passphrase: PASSPHRASE };
    const again = { account: 'alice', password: PASSWORD, passphrase: PASSPHRASE };

    // Warm-up (not counted): the daemon's and keybot's first login, and a context that stores
    // the sealed key, whose IndexedDB the returning visits start from.
    let stored: Awaited<ReturnType<BrowserContext['storageState']>> | undefined;
    const warmUpUntil = Date.now() + 60_000;
    while (!stored) {
      const context = await browser.newContext();
      await context.addInitScript(watch({ fields: first, returning: false }));
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(url);
      await page.locator('.conn.online').waitFor({ timeout: 30_000 }).catch(async (err: Error) => {
        throw new Error(`${err.message}\nthe page: ${await page.locator('body').innerText()}\npage errors: ${errors.join('; ')}`);
      });
      // keybot may still be logging in when the daemon has just started: try again until it answers.
      const pinned = await page.locator('.keybot.pinned').waitFor({ timeout: 10_000 }).then(() => true, () => false);
      if (pinned) stored = await context.storageState({ indexedDB: true });
      else if (Date.now() > warmUpUntil) throw new Error(`keybot did not come online: ${await page.locator('.keybot').innerText()}`);
      await context.close();
      if (!stored) await new Promise((r) => setTimeout(r, 1000));
    }

    const firstVisits: LoadTimes[] = [];
    const returning: LoadTimes[] = [];
    for (let i = 0; i < LOADS; i++) {
      firstVisits.push(await oneLoad(browser, url, pids, { fields: first, returning: false }));
      returning.push(await oneLoad(browser, url, pids, { storageState: stored, fields: again, returning: true }));
    }
    if (opts.profile) {
      await mkdir(opts.profile, { recursive: true });
      await oneLoad(browser, url, pids, { fields: first, returning: false, trace: path.join(opts.profile, 'first-visit.json') });
      await oneLoad(browser, url, pids, { storageState: stored, fields: again, returning: true, trace: path.join(opts.profile, 'returning.json') });
      log(`traces in ${opts.profile} (chrome://tracing or the DevTools Performance panel)`);
    }

    // Crypto in the page's thread, on the page's origin.
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(url);
    type Mod = typeof import('./web-crypto.js');
    await page.evaluate(
      async (a) => ((await import(`${location.origin}/bench-crypto.js`)) as Mod).prepare(a),
      { privateArmored: alice.privateArmored, publicArmored: alice.publicArmored, passphrase: PASSPHRASE },
    );
    // Each loop's CPU (Chromium's processes, the page's thread nearly all of it) beside its wall
    // rate: messages per CPU second is the rate a core of its own would give on this loaded machine.
    const loop = async (which: 'encryptFor' | 'decryptFor'): Promise<Rate & { perCpuSecond: number }> => {
      const cpu0 = treeCpuMs(pids.chromium);
      const r = await page.evaluate(
        async (a) => ((await import(`${location.origin}/bench-crypto.js`)) as Mod)[a.which]({ account: 'alice', ms: a.ms }),
        { which, ms: CRYPTO_MS },
      );
      return { ...r, perCpuSecond: r.messages / (cpuSince(cpu0, pids.chromium) / 1000) };
    };
    const enc = await loop('encryptFor');
    const dec = await loop('decryptFor');
    await context.close();

    const m1 = machineInfo();
    const row = (name: string, xs: LoadTimes[]): string => {
      const f = (k: keyof LoadTimes): string => `${median(xs.map((x) => x[k] ?? NaN)).toFixed(0)}`;
      const online = xs.map((x) => x.online);
      const afterSubmit = xs.map((x) => x.online - x.submit);
      return `| ${name} | ${median(online).toFixed(0)} [${range(online)}] | ${f('script')} | ${f('form')} | ${f('submit')} | ${median(afterSubmit).toFixed(0)} | ${f('pinned')} | ${f('chromiumCpu')} | ${f('daemonCpu')} |`;
    };
    console.log(`\nweb companion in Chromium (${enc.userAgent.match(/Chrome\/[\d.]+/)?.[0] ?? 'chromium'}); load average ${m0.load} before, ${m1.load} after`);
    console.log(`\n| page load, ms from navigation start (median of ${LOADS} cold loads [range]) | logged in | app.js fetched | form drawn | form submitted | submit to logged in | keybot pinned | Chromium CPU ms | daemon + keybot CPU ms |`);
    console.log('|---|---|---|---|---|---|---|---|---|');
    console.log(row('first visit (import the key)', firstVisits));
    console.log(row('returning visit (passphrase only)', returning));
    console.log(`\n| figure | value | target | |`);
    console.log('|---|---|---|---|');
    console.log(`| bundle: app.js gzipped | ${(gz / 1024).toFixed(0)} KiB (${(built.bytes / 1024).toFixed(0)} KiB raw) | <= ${TARGETS.bundleKB} KB | ${verdict(gz <= TARGETS.bundleKB * 1000)} |`);
    const loadFirst = median(firstVisits.map((x) => x.online));
    const loadAgain = median(returning.map((x) => x.online));
    console.log(`| page load to logged in, first visit (median) | ${loadFirst.toFixed(0)} ms | <= ${TARGETS.loadMs} ms | ${verdict(loadFirst <= TARGETS.loadMs)} |`);
    console.log(`| page load to logged in, returning visit (median) | ${loadAgain.toFixed(0)} ms | <= ${TARGETS.loadMs} ms | ${verdict(loadAgain <= TARGETS.loadMs)} |`);
    console.log(`| encrypt + sign in the browser (120-byte messages) | ${enc.perSecond.toFixed(0)} msg/s | >= ${TARGETS.msgsPerS} | ${verdict(enc.perSecond >= TARGETS.msgsPerS)} |`);
    console.log(`| verify + decrypt in the browser | ${dec.perSecond.toFixed(0)} msg/s | >= ${TARGETS.msgsPerS} | ${verdict(dec.perSecond >= TARGETS.msgsPerS)} |`);
    console.log(`\nPer CPU second of Chromium (a core of its own): encrypt + sign ${enc.perCpuSecond.toFixed(0)}, verify + decrypt ${dec.perCpuSecond.toFixed(0)} messages/s.`);
  } finally {
    await browser?.close().catch(() => undefined);
    if (daemon && daemon.exitCode === null) {
      const gone = new Promise<void>((r) => daemon!.once('exit', () => r()));
      daemon.kill('SIGTERM');
      const t = setTimeout(() => daemon!.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(t);
    }
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error('bench:web FAILED:', err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
