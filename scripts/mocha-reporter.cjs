// mocha's spec reporter, plus the plain closing line CI reads: "N passed, N failed"
// (mocha's own "N passing" is not a line CI recognises). With SEALCHAT_SKIPS_JSON=FILE it also
// writes every skipped test there ({file, title} each), for scripts/check-skips.mjs.
const fs = require('node:fs');
const path = require('node:path');
const Mocha = require('mocha');

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const skipped = [];
    runner.on('pending', (test) => {
      skipped.push({ file: test.file ? path.relative(process.cwd(), test.file) : null, title: test.fullTitle() });
    });
    runner.once('end', () => {
      const s = this.stats;
      console.log(`${s.passes} passed, ${s.failures} failed${s.pending ? `, ${s.pending} skipped` : ''}`);
      const out = process.env.SEALCHAT_SKIPS_JSON;
      if (out) fs.writeFileSync(out, JSON.stringify({ passes: s.passes, failures: s.failures, skipped }, null, 2) + '\n');
    });
  }
}

module.exports = SummaryReporter;
