// Mocha reporter: the spec output, then the plain line CI reads:
// "N passed, M failed". With ACME_TEST_STATS=<file> it also writes the counts
// as JSON so scripts/test.ts can add its own checks to the total.
const Mocha = require("mocha");
const { writeFileSync } = require("node:fs");

class Reporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once("end", () => {
      const { passes, failures, pending } = runner.stats ?? this.stats;
      if (process.env.ACME_TEST_STATS) {
        writeFileSync(process.env.ACME_TEST_STATS, JSON.stringify({ passes, failures, pending }));
      } else {
        console.log(`\n${passes} passed, ${failures} failed${pending ? `, ${pending} skipped` : ""}`);
      }
    });
  }
}
module.exports = Reporter;
