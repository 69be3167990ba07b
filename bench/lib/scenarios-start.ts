// Embedded start: `npm start` with PGlite, from launch to its first answer, in a
// fresh data dir and again in the same one.
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../test/support/servers.js";
import { startSystem } from "./procs.js";
import type { Row } from "./report.js";
import { log, QUICK } from "./run-settings.js";
import { median as med } from "./stats.js";

export async function embeddedStart(): Promise<Row> {
  // Started as `npm start` runs: not pinned (nothing else runs meanwhile; tsx's
  // loader thread and PGlite's start would otherwise share one core).
  log("scenario: embedded start to first answer (npm start with PGlite: fresh data dir, then again)");
  const allCores = `0-${cpus().length - 1}`;
  const firsts: number[] = [];
  const seconds: number[] = [];
  for (let i = 0; i < (QUICK ? 1 : 3); i++) {
    const fresh = mkdtempSync(join(tmpdir(), "bench-embedded-"));
    const embeddedEnv = { DATA_DIR: fresh, LOG_LEVEL: "warn", HOST: "127.0.0.1", DATABASE_URL: "", REDIS_URL: "" };
    const e1 = await startSystem(await freePort(), embeddedEnv, allCores);
    await e1.stop();
    const e2 = await startSystem(await freePort(), embeddedEnv, allCores);
    await e2.stop();
    firsts.push(e1.startMs);
    seconds.push(e2.startMs);
    rmSync(fresh, { recursive: true, force: true });
  }
  return {
    scenario: "embedded start (npm start, PGlite, all cores) to first answer, ms: fresh data dir / existing data dir",
    note: `${med(firsts).toFixed(0)} / ${med(seconds).toFixed(0)}`,
    runs: firsts.length,
    target: "< 4000 ms",
    // Both: the first start in a new data dir (copied from the install's initdb template) and a restart.
    met: med(firsts) < 4000 && med(seconds) < 4000,
  };
}
