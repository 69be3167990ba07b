// `npm run bench` (`-- --quick` for a short smoke run): baselines and product
// scenarios measured in the same run on the same machine, reported as ratios
// (absolute numbers drift on shared machines; ratios hold better). Writes
// bench/results/latest.{md,json}.
//
// Cores: every process under test (baseline servers, the product, the raw
// bcrypt/crypto loops) runs alone on core BENCH_SERVER_CORE (default 0); this
// harness pins itself to BENCH_LOAD_CORE (default 1) first, so the load
// generators (h2load, wrk), the Node clients of the order/login scenarios,
// Postgres and Redis all share that other core. The Envoy scenarios start the
// stack of `npm run stack` (bench/lib/edge.ts) and move Envoy and the three
// services to the server core; envoyproxy/ratelimit and Jaeger stay on the
// load core with Redis and Postgres.
//
// Environment: BENCH_RUNS (runs per scenario, default 3), BENCH_SECONDS
// (default 5), BENCH_NODE_FLAGS (extra node flags for the processes under
// test, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"), BENCH_ONLY (some parts
// only, e.g. "orders,search": run-settings.ts).
//
// The parts, in bench/lib/: run-settings.ts (run lengths, load shape),
// scenarios-baselines.ts, scenarios-product.ts (with scenarios-envoy.ts, the
// reads through Envoy, and scenarios-catalogue.ts, orders and search),
// scenarios-start.ts, scenarios-events.ts (outbox -> RabbitMQ -> consumer
// against amqplib alone), report.ts (the table and JSON).
import { execFileSync } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { toolPath } from "../scripts/tools/index.js";
import { cpuTimes } from "./lib/cpu.js";
import { hasCommand, LOAD_CORE } from "./lib/load.js";
import { wants } from "./lib/run-settings.js";
import { writeReport, type Row } from "./lib/report.js";
import { bareGrpcAtRate, baselines } from "./lib/scenarios-baselines.js";
import { productScenarios } from "./lib/scenarios-product.js";
import { embeddedStart } from "./lib/scenarios-start.js";
import { eventScenarios } from "./lib/scenarios-events.js";

async function main() {
  for (const cmd of ["h2load", "wrk", "taskset"]) {
    if (!(await hasCommand(cmd))) throw new Error(`${cmd} not found: apt-get install -y nghttp2-client wrk util-linux`);
  }
  if (cpus().length < 2) throw new Error("the bench needs 2 cores: one for the process under test, one for the load");
  // The Envoy rows need the stack's programs (`npm run tools`): fail now rather than minutes in.
  if (wants("reads")) for (const tool of ["envoy", "ratelimit", "jaeger"] as const) toolPath(tool);
  // Everything this process starts from now on (h2load, wrk, Postgres, Redis) inherits the load core.
  execFileSync("taskset", ["-a", "-p", "-c", LOAD_CORE, String(process.pid)], { stdio: "ignore" });
  const t0 = Date.now();
  const loadBefore = loadavg();
  const cpu0 = cpuTimes()[0];

  const base = wants("baselines", "reads", "logins") ? await baselines() : undefined;
  const product = wants("reads", "orders", "search", "logins", "pieces") ? await productScenarios(base) : { rows: [], halfRate: 0 };
  const rows: Row[] = [...(base?.rows ?? []), ...product.rows];
  // What the machine itself adds at the half-load rate, right under that row.
  if (product.halfRate) {
    const reference = await bareGrpcAtRate(product.halfRate);
    rows.splice(rows.findIndex((r) => r.scenario.startsWith("  GetMe at half load")) + 1, 0, reference);
  }
  if (wants("start")) rows.push(await embeddedStart());
  if (wants("events")) rows.push(...(await eventScenarios()));

  const cpu1 = cpuTimes()[0];
  const total = cpu1.busy + cpu1.idle + cpu1.steal - (cpu0.busy + cpu0.idle + cpu0.steal);
  writeReport(rows, { ms: Date.now() - t0, loadBefore, loadAfter: loadavg(), stealPct: ((cpu1.steal - cpu0.steal) / total) * 100 });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
