// `npm test`: contract lint, type check, generated-code freshness, breaking
// changes against main, then every mocha suite (unit + integration on real
// Postgres and Redis). Ends with the line CI reads: "N passed, M failed".
//   npm test -- test/auth          only suites under test/auth (checks still run)
//   npm run test:edge              the edge conformance suite against EDGE_URL
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const bin = (name: string) => join(root, "node_modules/.bin", name);
const args = process.argv.slice(2);
const edgeOnly = args.includes("--edge");
const specs = args.filter((a) => !a.startsWith("--"));

let passed = 0;
let failed = 0;

function check(name: string, fn: () => string | undefined) {
  const t = Date.now();
  let problem: string | undefined;
  try {
    problem = fn();
  } catch (err) {
    problem = (err as Error).message;
  }
  if (problem) {
    failed++;
    console.log(`  ✗ ${name}\n${problem.replace(/^/gm, "      ")}`);
  } else {
    passed++;
    console.log(`  ✓ ${name} (${Date.now() - t} ms)`);
  }
}

function run(cmd: string, cmdArgs: string[]): string | undefined {
  const r = spawnSync(cmd, cmdArgs, { cwd: root, encoding: "utf8" });
  if (r.status === 0) return undefined;
  return `${cmd.split("/").pop()} ${cmdArgs.join(" ")} exited ${r.status}\n${r.stdout}${r.stderr}`.trim();
}

if (!edgeOnly) {
  console.log("checks");
  check("buf lint (STANDARD)", () => run(bin("buf"), ["lint", "proto"]));
  check("tsc --noEmit", () => run(bin("tsc"), ["--noEmit", "-p", "."]));
  check("gen/ is up to date with proto/ (npm run generate)", () => {
    const out = mkdtempSync(join(tmpdir(), "acme-gen-"));
    try {
      const gen = run(process.execPath, ["--import", "tsx", "scripts/generate.ts", "--out", out]);
      if (gen) return gen;
      const diff = run("diff", ["-r", "-q", "gen", join(out, "gen")]);
      return diff && `gen/ is stale; run \`npm run generate\` and commit:\n${diff}`;
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
  check("envoy/envoy.yaml is up to date with the contract", () =>
    run(process.execPath, ["--import", "tsx", "scripts/envoy-config.ts", "--check"]),
  );
  const hasMain = spawnSync("git", ["rev-parse", "--verify", "-q", "main:proto"], { cwd: root }).status === 0;
  if (hasMain) {
    check("buf breaking against main", () => {
      // main's protos import googleapis from node_modules, which git does not
      // hold: rebuild main's module beside our node_modules, then compare.
      const dir = mkdtempSync(join(tmpdir(), "acme-main-"));
      try {
        const tar = spawnSync("sh", ["-c", `git archive main proto buf.yaml | tar -x -C ${dir}`], { cwd: root, encoding: "utf8" });
        if (tar.status !== 0) return `git archive main failed: ${tar.stderr}`;
        symlinkSync(join(root, "node_modules"), join(dir, "node_modules"));
        const image = join(dir, "main.binpb");
        const built = run(bin("buf"), ["build", join(dir, "proto"), "-o", image]);
        return built ?? run(bin("buf"), ["breaking", "proto", "--against", image]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
}

const stats = join(mkdtempSync(join(tmpdir(), "acme-stats-")), "stats.json");
const specArgs = edgeOnly ? ["test/edge/conformance/**/*.test.ts"] : specs.length ? specs.map((s) => (s.endsWith(".ts") ? s : `${s}/**/*.test.ts`)) : ["test/**/*.test.ts"];
const mocha = spawnSync(process.execPath, ["--import", "tsx", bin("mocha"), ...specArgs], {
  cwd: root,
  stdio: "inherit",
  env: { ...process.env, ACME_TEST_STATS: stats },
});
if (existsSync(stats)) {
  const s = JSON.parse(readFileSync(stats, "utf8")) as { passes: number; failures: number };
  passed += s.passes;
  failed += s.failures;
} else {
  console.log(`mocha exited ${mocha.status} without results`);
  failed++;
}
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
