// `npm start` (and `node scripts/start.mjs auth|user|order`): compile the
// TypeScript sources with esbuild, one .js per .ts in the same layout under
// .build/ (about 0.1-0.2 s), then run them on plain node: the telemetry
// preload first, then services/main. The code run is the same as
// `node --import tsx --import ./platform/telemetry/register.ts services/main.ts`
// (tests and the Docker image run that), without tsx's loader: its hooks
// answer every module import from a separate thread, which cost ~1.4 s of the
// embedded start on this project's 2-core machines (kysely alone is 279
// modules) and ~30 MB of memory for the loader thread (bench/: embedded start,
// RSS).
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";

const root = new URL("..", import.meta.url).pathname;
const out = join(root, ".build");
const SOURCES = ["platform", "services", "edge", "gen"];

function tsFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(p);
    return e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [p] : [];
  });
}

await build({
  entryPoints: SOURCES.flatMap((d) => tsFiles(join(root, d))),
  outdir: out,
  outbase: root,
  format: "esm",
  platform: "node",
  target: "node20",
  sourcemap: "inline",
  logLevel: "warning",
});
// Files the code reads next to itself (import.meta.url).
mkdirSync(join(out, "gen"), { recursive: true });
copyFileSync(join(root, "gen/openapi.json"), join(out, "gen/openapi.json"));

// Stack traces in TypeScript terms, as under tsx.
process.setSourceMapsEnabled(true);
// What services/main.ts and the telemetry preload see as the script.
const main = join(out, "services/main.js");
process.argv[1] = main;
await import(pathToFileURL(join(out, "platform/telemetry/register.js")).href);
await import(pathToFileURL(main).href);
