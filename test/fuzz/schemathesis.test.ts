// schemathesis (PyPI, pinned in scripts/tools/versions.json) driven by
// gen/openapi.json through the embedded edge and through Envoy: its examples,
// coverage and fuzzing phases with a fixed seed and a bounded number of examples
// per operation, signed in as a registered user. Its exit code is the assertion; its summary and failures (each with a curl reproducer)
// are the message. docs/fuzz.md.
import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toolPath } from "../../scripts/tools/index.js";
import { EDGE_KINDS, startTarget, type Target } from "../edge/conformance/target.js";
import { signedInUser } from "./accounts.js";
import { FUZZ_SEED } from "./random.js";

const ROOT = new URL("../..", import.meta.url).pathname;
const MAX_EXAMPLES = Number(process.env.FUZZ_ST_MAX_EXAMPLES ?? 25);
/** What every answer must satisfy (schemathesis' names). */
const CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance", "response_headers_conformance", "response_schema_conformance", "ignored_auth"];

const REVOKING_PATHS = "^/v1/auth/(logout|logout-all|password|sessions/\\{id\\})$";

/**
 * gen/openapi.json with dotted path parameters renamed ({order.id} -> {order_id}): schemathesis
 * formats paths with Python's str.format, where a dot is attribute access. The URLs are the same.
 */
function schemaFile(dir: string): string {
  const text = readFileSync(join(ROOT, "gen/openapi.json"), "utf8").replace(/\{(\w+)\.(\w+)\}/g, "{$1_$2}").replace(/"name": "(\w+)\.(\w+)"(,\s*"in": "path")/g, '"name": "$1_$2"$3');
  const file = join(dir, "openapi.json");
  writeFileSync(file, text);
  return file;
}

/** Runs in `cwd` (schemathesis keeps its cache in ./.schemathesis: the run's temp folder). */
function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd, env: { ...process.env, NO_COLOR: "1", COLUMNS: "160" } });
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (out += d));
    const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

for (const kind of EDGE_KINDS) {
  describe(`schemathesis through the ${kind} edge (gen/openapi.json, seed ${FUZZ_SEED}, ${MAX_EXAMPLES} examples per operation)`, function () {
    this.timeout(600_000);
    let t: Target;
    let dir: string;
    before(async () => {
      t = await startTarget(kind);
      dir = mkdtempSync(join(tmpdir(), "acme-st-"));
    });
    after(async () => {
      await t?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    /** Run schemathesis on the operations a path regex selects (or leaves out), as `token`'s owner. */
    async function st(label: string, token: string, filter: string[]): Promise<void> {
      const args = [
        "-m", "schemathesis.cli", "--no-color", "run", schemaFile(dir),
        "--url", t.url,
        "--header", `Authorization: Bearer ${token}`,
        ...filter,
        "--checks", CHECKS.join(","),
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", String(MAX_EXAMPLES),
        "--seed", String(FUZZ_SEED),
        "--generation-database", "none",
        "--workers", "2",
        "--request-timeout", "15",
        "--suppress-health-check", "all",
      ];
      const started = Date.now();
      const r = await run(toolPath("schemathesis"), args, dir, 540_000);
      const file = join(tmpdir(), `acme-schemathesis-${kind}-${label}.txt`);
      writeFileSync(file, r.out);
      const summary = r.out.split("\n").filter((l) => /\d+ generated|Errored|Failed:|Seed:/.test(l)).map((l) => l.trim()).join("\n");
      console.log(`      schemathesis ${kind} (${label}): exit ${r.code} in ${Math.round((Date.now() - started) / 1000)} s (${file})\n${summary.replace(/^/gm, "        ")}`);
      assert.equal(r.code, 0, `schemathesis exited ${r.code} (full output: ${file}):\n${r.out.slice(-12_000)}`);
    }

    // Logging out or changing the password revokes the caller's token: those operations run as
    // a user of their own, so that the others keep a valid token to the end (signing in again
    // mid-run would meet the login throttle the fuzzing itself set off for this address).
    it(`every operation but those that revoke the caller's token: no failure of ${CHECKS.join(", ")}`, async () => {
      await st("main", (await signedInUser(t, "st")).access, ["--exclude-path-regex", REVOKING_PATHS]);
    });

    it(`logout, logout-all, password, session deletion, as a user of their own: no failure of the same checks`, async () => {
      await st("revoking", (await signedInUser(t, "st-victim")).access, ["--include-path-regex", REVOKING_PATHS]);
    });
  });
}
