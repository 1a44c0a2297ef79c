#!/usr/bin/env node
// Mutation scores per file and per folder from StrykerJS JSON reports (mutation-testing-report-schema),
// as docs/SECURITY.md "Mutation testing" tabulates them. Several reports may be given (one per slice,
// oldest first): for a file whose code is the same, a later report's mutants replace the same mutants
// of an earlier one (a re-run of some lines after new tests); for changed code the later file wins.
//
//   node scripts/mutation-scores.mjs reports/mutation/crypto-B.json reports/mutation/crypto-C.json
//   node scripts/mutation-scores.mjs --survivors reports/mutation/crypto-B.json   # list what survived
//
// Score = (killed + timed out) / (killed + timed out + survived + no coverage), Stryker's own
// definition; compile errors and Ignored (static mutants, ignoreStatic) are outside it.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const survivors = args.includes('--survivors');
const reports = args.filter((a) => !a.startsWith('--'));
if (reports.length === 0) {
  console.error('usage: node scripts/mutation-scores.mjs [--survivors] <stryker json report>...');
  process.exit(2);
}

/** @type {Map<string, {source: string, mutants: any[]}>} */
const files = new Map();
for (const path of reports) {
  let report;
  try {
    report = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    console.error(`mutation-scores: cannot read ${path}: ${err.message}`);
    process.exit(1);
  }
  if (!report || typeof report.files !== 'object') {
    console.error(`mutation-scores: ${path} is not a Stryker JSON report (no "files")`);
    process.exit(1);
  }
  for (const [name, file] of Object.entries(report.files)) {
    const earlier = files.get(name);
    if (!earlier || earlier.source !== file.source) {
      files.set(name, file);
      continue;
    }
    // Same code: a re-run of some lines (--force --mutate file:lines) decides the mutants it ran.
    const key = (m) => JSON.stringify([m.mutatorName, m.replacement, m.location]);
    const rerun = new Map(file.mutants.map((m) => [key(m), m]));
    const kept = earlier.mutants.map((m) => rerun.get(key(m)) ?? m);
    const known = new Set(earlier.mutants.map(key));
    files.set(name, { ...earlier, mutants: [...kept, ...file.mutants.filter((m) => !known.has(key(m)))] });
  }
}

const COLUMNS = ['Killed', 'Timeout', 'Survived', 'NoCoverage', 'CompileError', 'RuntimeError', 'Ignored'];
const count = (mutants) => {
  const c = Object.fromEntries(COLUMNS.map((k) => [k, 0]));
  for (const m of mutants) c[m.status] = (c[m.status] ?? 0) + 1;
  c.total = mutants.length;
  c.detected = c.Killed + c.Timeout;
  c.valid = c.detected + c.Survived + c.NoCoverage;
  c.score = c.valid === 0 ? NaN : (100 * c.detected) / c.valid;
  return c;
};
const pct = (x) => (Number.isNaN(x) ? 'n/a' : `${x.toFixed(1)} %`);
const row = (name, c) =>
  `| ${name} | ${c.total} | ${c.CompileError} | ${c.Ignored} | ${c.valid} | ${c.Killed} | ${c.Timeout} | ${c.Survived} | ${c.NoCoverage} | ${pct(c.score)} |`;

console.log('| file | mutants | compile errors | ignored (static) | counted | killed | timeout | survived | no coverage | score |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
const byFolder = new Map();
for (const name of [...files.keys()].sort()) {
  const mutants = files.get(name).mutants;
  console.log(row(`\`${name}\``, count(mutants)));
  const folder = name.split('/').slice(0, -1).join('/');
  byFolder.set(folder, [...(byFolder.get(folder) ?? []), ...mutants]);
}
for (const [folder, mutants] of byFolder) console.log(row(`**\`${folder}\`** (these files)`, count(mutants)));

if (survivors) {
  for (const name of [...files.keys()].sort()) {
    const { source, mutants } = files.get(name);
    const lines = source.split('\n');
    for (const m of mutants) {
      if (m.status !== 'Survived' && m.status !== 'NoCoverage') continue;
      const { line, column } = m.location.start;
      const code = (lines[line - 1] ?? '').trim();
      console.log(`\n${name}:${line}:${column} ${m.status} ${m.mutatorName} -> ${JSON.stringify(m.replacement ?? '')}\n    ${code}`);
    }
  }
}
