// mocha's spec reporter, plus the plain closing line CI reads: "N passed, N failed"
// (mocha's own "N passing" is not a line CI recognises).
const Mocha = require('mocha');

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once('end', () => {
      const s = this.stats;
      console.log(`${s.passes} passed, ${s.failures} failed${s.pending ? `, ${s.pending} skipped` : ''}`);
    });
  }
}

module.exports = SummaryReporter;
