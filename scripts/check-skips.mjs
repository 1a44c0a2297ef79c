#!/usr/bin/env node
// Fails CI when a suite was skipped whose tools CI itself installs (.ci/run: tmux, irssi, WeeChat
// and its Python plugin, gpg, openssl, InspIRCd and Atheme, ngIRCd). Those suites skip themselves on a developer machine that
// lacks the tool; in CI a skip means the detection or the install broke (a misdetected WeeChat
// Python plugin silently dropped three suites once), and the run must not pass as green.
//
// Usage: SEALCHAT_SKIPS_JSON=FILE mocha ...; then  node scripts/check-skips.mjs FILE [--ci]
// Enforced when CI=true or --ci is given; otherwise it only lists what was skipped.
import { readFileSync } from 'node:fs';

/** Files whose skipped tests mean a tool CI installs was not found. */
const NEEDS_TOOLS = [
  { re: /^test\/realclients\/irssi\.test\.ts$/, tools: 'tmux, irssi' },
  { re: /^test\/realclients\/weechat\.test\.ts$/, tools: 'tmux, weechat' },
  { re: /^test\/companions\/(plugin|proxy)-irssi\.test\.ts$/, tools: 'tmux, irssi' },
  { re: /^test\/companions\/(plugin|proxy)-weechat\.test\.ts$/, tools: 'tmux, weechat, weechat-python' },
  { re: /^test\/companions\/plugin-(cross|events|failclosed|table)\.test\.ts$/, tools: 'tmux, irssi, weechat, weechat-python' },
  { re: /^test\/faults\/companions-restart\.test\.ts$/, tools: 'tmux, irssi' },
  { re: /^test\/crypto\/keys\.test\.ts$/, tools: 'gpg' },
  { re: /^test\/client\/proxy\/proxy\.test\.ts$/, tools: 'openssl' },
  { re: /^test\/realclients\/tls-pin\.test\.ts$/, tools: 'tmux, irssi, weechat' },
  { re: /^test\/network\/(inspircd-atheme|cli|pacing)\.test\.ts$/, tools: 'inspircd, atheme-services' },
  { re: /^test\/network\/inspircd-(irssi|plugin)\.test\.ts$/, tools: 'inspircd, atheme-services, tmux, irssi' },
  { re: /^test\/network\/ngircd-irssi\.test\.ts$/, tools: 'ngircd, tmux, irssi' },
  { re: /^test\/network\/ngircd(-[a-z]+)?\.test\.ts$/, tools: 'ngircd' },
  { re: /^test\/web\/browser(-keys)?\.test\.ts$/, tools: 'chromium' },
  { re: /^test\/web\/browser-irssi\.test\.ts$/, tools: 'chromium, tmux, irssi' },
  // Runs whenever CI=true: a skip there means the CI detection broke.
  { re: /^test\/package\/install\.test\.ts$/, tools: 'npm (CI=true runs the package test)' },
];

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith('--'));
if (!file) {
  console.error('usage: node scripts/check-skips.mjs SKIPS.json [--ci]   (write it with SEALCHAT_SKIPS_JSON=SKIPS.json mocha)');
  process.exit(2);
}
const enforce = process.env.CI === 'true' || args.includes('--ci');

let report;
try {
  report = JSON.parse(readFileSync(file, 'utf8'));
} catch (err) {
  // No file means the reporter never finished: that is a failure, not a pass.
  console.error(`check-skips: cannot read ${file}: ${err.message}`);
  process.exit(2);
}
if (!Array.isArray(report.skipped)) {
  console.error(`check-skips: ${file} has no "skipped" list`);
  process.exit(2);
}

const bad = [];
for (const t of report.skipped) {
  const file = (t.file ?? '').replace(/\\/g, '/');
  const rule = NEEDS_TOOLS.find((r) => r.re.test(file));
  if (rule) bad.push(`${file}: ${t.title} (needs ${rule.tools})`);
}
const other = report.skipped.length - bad.length;
if (bad.length === 0) {
  console.log(`check-skips: no suite that needs a CI-installed tool was skipped (${other} other skipped test${other === 1 ? '' : 's'})`);
  process.exit(0);
}
console.log(`check-skips: ${bad.length} test${bad.length === 1 ? '' : 's'} skipped that CI installs the tools for:`);
for (const b of bad) console.log(`  ${b}`);
if (!enforce) {
  console.log('check-skips: not enforced (CI is not "true"; pass --ci to enforce)');
  process.exit(0);
}
process.exit(1);
