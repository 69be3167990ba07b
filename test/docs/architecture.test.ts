// docs/architecture.md stays true: every file and command it names exists,
// and the structure it describes holds (dependency direction, no import
// cycle, small files).
import { strict as assert } from "node:assert";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "../..");
const doc = readFileSync(join(ROOT, "docs/architecture.md"), "utf8");
const SOURCE_DIRS = ["app", "platform", "services", "edge", "scripts", "bench"];

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) return name === "node_modules" || name === "results" ? [] : sourceFiles(path);
    return /\.(ts|mjs)$/.test(name) ? [path] : [];
  });
}

/** Relative imports of a file, resolved to repository paths (".js" written for ".ts"). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"/gms)) {
    if (/^import\s+type\s/.test(m[0])) continue; // types only: no runtime edge
    out.push(relative(ROOT, resolve(ROOT, dirname(file), m[1])).replace(/\.js$/, ".ts"));
  }
  return out;
}

describe("docs/architecture.md", () => {
  it("names only files and folders that exist", () => {
    const named = [...doc.matchAll(/`([a-z][\w.-]*(?:\/[\w.<>-]+)+\/?)`/g)].map((m) => m[1]).filter((p) => !p.includes("<") && !p.startsWith("/v1/"));
    assert.ok(named.length >= 30, `only ${named.length} paths found`);
    const missing = named.filter((p) => !existsSync(join(ROOT, p.split(" ")[0])));
    assert.deepEqual(missing, []);
  });

  it("names only commands that exist", () => {
    const scripts = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).scripts as Record<string, string>;
    const npm = [...doc.matchAll(/`npm (?:run )?([\w:-]+)/g)].map((m) => m[1]);
    assert.ok(npm.includes("generate") && npm.includes("test") && npm.includes("start"));
    assert.deepEqual(npm.filter((s) => !(s in scripts)), []);
    for (const m of doc.matchAll(/node --import tsx ([\w/.-]+\.ts)/g)) assert.ok(existsSync(join(ROOT, m[1])), m[1]);
  });

  it("describes the policy option as the contract declares it", () => {
    const proto = readFileSync(join(ROOT, "proto/acme/edge/v1/policy.proto"), "utf8");
    for (const field of ["access", "roles", "scopes", "owner", "rate_limit"]) {
      assert.match(proto, new RegExp(`\\s${field} = \\d+;`), field);
      assert.ok(doc.includes(`\`${field}\``), `the page names ${field}`);
    }
    assert.ok((doc.match(/```mermaid/g) ?? []).length >= 2, "a picture of the folders and of a request's path");
  });

  it("holds: platform/ knows no service, services/ imports neither edge/ nor app/", () => {
    const bad: string[] = [];
    for (const f of sourceFiles("platform")) for (const i of importsOf(f)) if (/^(services|edge|app)\//.test(i)) bad.push(`${f} -> ${i}`);
    for (const f of sourceFiles("services")) for (const i of importsOf(f)) if (/^(edge|app)\//.test(i)) bad.push(`${f} -> ${i}`);
    for (const f of sourceFiles("edge")) for (const i of importsOf(f)) if (/^(services|app)\//.test(i)) bad.push(`${f} -> ${i}`);
    assert.deepEqual(bad, []);
  });

  it("holds: no import cycle, no source file over 300 lines (outside gen/ and tests)", () => {
    const files = SOURCE_DIRS.flatMap(sourceFiles);
    const lines = (f: string) => readFileSync(join(ROOT, f), "utf8").replace(/\n$/, "").split("\n").length;
    const long = files.filter((f) => lines(f) > 300);
    assert.deepEqual(long, []);
    const graph = new Map(files.map((f) => [f, importsOf(f).filter((i) => files.includes(i))]));
    const state = new Map<string, "open" | "done">();
    const cycles: string[] = [];
    const visit = (f: string, path: string[]) => {
      if (state.get(f) === "done") return;
      if (state.get(f) === "open") {
        cycles.push([...path.slice(path.indexOf(f)), f].join(" -> "));
        return;
      }
      state.set(f, "open");
      for (const i of graph.get(f) ?? []) visit(i, [...path, f]);
      state.set(f, "done");
    };
    for (const f of files) visit(f, []);
    assert.deepEqual(cycles, []);
  });
});
