/**
 * `npm run bench [-- options]`: the daemon benchmark (bench/run.ts, options passed through, e.g.
 * --quick), then key distribution and client crypto (bench/keys.ts), then a flooder in a busy
 * room under the default limits (bench/flood.ts), then the web companion in Chromium
 * (bench/web.ts: bundle size, page load to logged in, crypto in the page). Each runs in its own
 * process so that neither's heap or JIT state colours the other's figures.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const run = (file: string, args: string[]): number =>
  spawnSync(process.execPath, ['--import', 'tsx', path.join(here, file), ...args], { stdio: 'inherit' }).status ?? 1;

const daemon = run('run.ts', process.argv.slice(2));
const keys = run('keys.ts', []);
const flood = run('flood.ts', process.argv.includes('--quick') ? ['--quick'] : []);
const web = run('web.ts', process.argv.includes('--quick') ? ['--loads', '3', '--crypto-ms', '1000'] : []);
process.exit(daemon || keys || flood || web);
