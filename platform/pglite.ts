// The embedded database's first start, made fast. PGlite initialises a new
// data dir by running initdb in a second WebAssembly instance and then writing
// the result out file by file: ~4-5 s on a 2-core machine, most of the first
// `npm start`. `npm ci` (postinstall: scripts/pglite-template.ts) does that
// once per install into a template under node_modules/.cache; a new DATA_DIR
// then starts from a copy of it (~0.3 s). The template is keyed by the PGlite
// version and never written after it is made; without it (install scripts
// skipped, ACME_PGLITE_TEMPLATE=off) PGlite runs initdb as before.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { Worker } from "node:worker_threads";

/** Where the template for the installed PGlite version lives (whether or not it exists yet). */
export function pgliteTemplateDir(): string {
  const entry = createRequire(import.meta.url).resolve("@electric-sql/pglite"); // <node_modules>/@electric-sql/pglite/dist/index.cjs
  const pkgDir = dirname(dirname(entry));
  const { version } = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")) as { version: string };
  return join(pkgDir, "..", "..", ".cache", "acme", `pglite-${version}`);
}

const templateOff = () => (process.env.ACME_PGLITE_TEMPLATE ?? "").toLowerCase() === "off";

const isEmptyDir = (dir: string) => !existsSync(dir) || readdirSync(dir).length === 0;

/**
 * Copy a directory tree off the main thread, so the copy goes on while the
 * application loads: `cp -a` (~0.25 s for the template; Linux, macOS), else
 * node's cpSync on a worker thread (~0.6 s).
 */
async function copyTree(from: string, to: string): Promise<void> {
  try {
    await promisify(execFile)("cp", ["-a", from, to]);
  } catch {
    rmSync(to, { recursive: true, force: true });
    await copyOnWorker(from, to);
  }
}

function copyOnWorker(from: string, to: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const w = new Worker(
      `const { cpSync } = require("node:fs");
       const { workerData } = require("node:worker_threads");
       cpSync(workerData.from, workerData.to, { recursive: true });`,
      { eval: true, workerData: { from, to } },
    );
    w.once("error", reject);
    w.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`copying the PGlite template failed (worker exit ${code})`))));
  });
}

const seeding = new Map<string, Promise<boolean>>();

/**
 * Give a new, empty PGlite data dir the template's files (copied to a sibling
 * first and renamed into place, so a crash never leaves half a cluster that
 * PGlite would then try to resume). True when it did. Calls for the same dir
 * share one copy: `npm start` begins it before loading the application
 * (scripts/start.mjs), so the copy's I/O overlaps the module loading.
 */
export function seedFromTemplate(dataDir: string): Promise<boolean> {
  let p = seeding.get(dataDir);
  if (!p) seeding.set(dataDir, (p = seed(dataDir)));
  return p;
}

async function seed(dataDir: string): Promise<boolean> {
  if (templateOff() || !isEmptyDir(dataDir)) return false;
  const template = pgliteTemplateDir();
  if (!existsSync(join(template, "PG_VERSION"))) return false;
  const staging = `${dataDir}.seeding-${process.pid}`;
  // Stopped mid-copy (a signal during start): leave no half copy behind.
  const cleanUp = () => rmSync(staging, { recursive: true, force: true });
  cleanUp();
  process.once("exit", cleanUp);
  try {
    await copyTree(template, staging);
    rmSync(dataDir, { recursive: true, force: true });
    renameSync(staging, dataDir);
  } finally {
    process.off("exit", cleanUp);
  }
  return true;
}

/** Create the template if it is missing (initdb once). Returns its path, or undefined when switched off. */
export async function ensurePgliteTemplate(): Promise<string | undefined> {
  if (templateOff()) return undefined;
  const template = pgliteTemplateDir();
  if (existsSync(join(template, "PG_VERSION"))) return template;
  const parent = dirname(template);
  mkdirSync(parent, { recursive: true });
  const staging = mkdtempSync(join(parent, "tmp-"));
  try {
    const { PGlite } = await import("@electric-sql/pglite");
    const lite = await PGlite.create(staging);
    await lite.close();
    try {
      renameSync(staging, template);
    } catch (err) {
      // Another install made it meanwhile: theirs is as good as ours.
      if (!existsSync(join(template, "PG_VERSION"))) throw err;
    }
    return template;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
