// `npm start` (and `node scripts/start.mjs auth|user|order`): bundle the
// TypeScript sources with esbuild into .build/ (about 0.5 s; again only when
// a source changed; `--build-only`, run by npm ci, stops there), then run
// them on plain node: the telemetry preload first, then app/main.
// Chunk names carry a content hash, so processes started from one checkout
// at once never load each other's half-written output. The code run is the same as
// `node --import tsx --import ./platform/telemetry/register.ts app/main.ts`
// (tests and the Docker image run that), without tsx's loader: its hooks
// answer every module import from a separate thread, which cost ~1.4 s of the
// embedded start on this project's 2-core machines (kysely alone is 279
// modules) and ~30 MB of memory for the loader thread (bench/: embedded start,
// RSS).
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

// A signal before app/main takes signals over (it does first thing, and
// sets this flag) means nothing has started yet: exit at once, a clean stop.
// This listener stays registered: removing a signal's last listener would
// drop a signal already received but not yet delivered.
const TAKEN = Symbol.for("acme.signals.taken");
const early = (signal) => {
  if (globalThis[TAKEN]) return;
  console.log(`${signal}: stopped before starting`);
  process.exit(0);
};
process.on("SIGTERM", early);
process.on("SIGINT", early);
const root = new URL("..", import.meta.url).pathname;
const out = join(root, ".build");
const ENTRIES = ["app/main", "platform/telemetry/register", "platform/config", "platform/pglite"];

const OPTIONS = {
  // Each entry point bundled with what it imports (our sources and the
  // pure-JS packages: kysely alone is 279 modules): loading a few large files
  // is much faster than resolving and compiling hundreds of small ones.
  // Modules both use (and those this script imports first) are shared chunks.
  entryPoints: Object.fromEntries(ENTRIES.map((e) => [e, join(root, `${e}.ts`)])),
  outdir: out,
  bundle: true,
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  // Left to node: packages with native code or files of their own (bcrypt,
  // PGlite's wasm), and those OpenTelemetry instruments by hooking their
  // import (pg, ioredis) or that must stay one copy (@opentelemetry/*).
  external: ["bcrypt", "@electric-sql/pglite", "pg", "ioredis", "@opentelemetry/*", "import-in-the-middle", "esbuild"],
  format: "esm",
  platform: "node",
  target: "node20",
  sourcemap: "linked",
  logLevel: "warning",
  // Bundled CommonJS packages may call require() for node builtins.
  banner: { js: 'import { createRequire as __acmeCreateRequire } from "node:module"; const require = __acmeCreateRequire(import.meta.url);' },
};

// Built again only when an input changed (a source file, a bundled package,
// these options): the inputs of the last build and their size and mtime are
// in .build/inputs.json. ~10 ms to check against ~0.5 s to bundle.
const STAMP = join(out, "inputs.json");
const optionsKey = JSON.stringify(OPTIONS);
const stat = (f) => {
  const s = statSync(join(root, f));
  return [s.mtimeMs, s.size];
};
function upToDate() {
  try {
    const { key, inputs } = JSON.parse(readFileSync(STAMP, "utf8"));
    if (key !== optionsKey || !ENTRIES.every((e) => existsSync(join(out, `${e}.js`)))) return false;
    return Object.entries(inputs).every(([f, [mtime, size]]) => {
      const [m, sz] = stat(f);
      return m === mtime && sz === size;
    });
  } catch {
    return false;
  }
}
if (!upToDate()) {
  const { build } = await import("esbuild");
  const { metafile } = await build({ ...OPTIONS, absWorkingDir: root, metafile: true });
  writeFileSync(STAMP, JSON.stringify({ key: optionsKey, inputs: Object.fromEntries(Object.keys(metafile.inputs).filter((f) => existsSync(join(root, f))).map((f) => [f, stat(f)])) }));
}
// Files the code reads next to itself (import.meta.url).
mkdirSync(join(out, "gen"), { recursive: true });
copyFileSync(join(root, "gen/openapi.json"), join(out, "gen/openapi.json"));
if (process.argv.includes("--build-only")) process.exit(0); // npm ci (postinstall)

// npm start (the all-in-one process, no arguments) is the quick start: a fresh catalogue gets demo
// products to order (services/catalogue/seed.ts); CATALOGUE_SEED=off starts it empty. One service per
// process (`start.mjs <name>`: the stack, compose) and the tests seed nothing unless told.
if (process.argv.length <= 2) process.env.CATALOGUE_SEED ??= "demo";
// Stack traces in TypeScript terms, as under tsx.
process.setSourceMapsEnabled(true);
// A new embedded data dir is copied from the install's initdb template
// (platform/pglite.ts) while the application loads; the database opens on it.
const { loadConfig } = await import(pathToFileURL(join(out, "platform/config.js")).href);
const config = (() => {
  try {
    return loadConfig();
  } catch {
    return undefined; // app/main reports configuration errors
  }
})();
if (config && !config.databaseUrl && process.argv.length <= 2) {
  const { seedFromTemplate } = await import(pathToFileURL(join(out, "platform/pglite.js")).href);
  seedFromTemplate(join(config.dataDir, "pglite")).catch(() => {}); // openDatabase awaits the same copy and sees its error
}
// What app/main.ts and the telemetry preload see as the script.
const main = join(out, "app/main.js");
process.argv[1] = main;
await import(pathToFileURL(join(out, "platform/telemetry/register.js")).href);
await import(pathToFileURL(main).href);
