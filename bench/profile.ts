// `node --import tsx bench/profile.ts [getme|rest] [seconds] [--no-prof] [--rps=N]`: start the product
// as the bench does (real Postgres and Redis, pinned to the server core) with
// --cpu-prof, drive one read scenario, stop, and print the heaviest functions
// (self time) of the product's CPU profile. For finding what bounds a scenario.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, startPostgres, startRedis } from "../test/support/servers.js";
import { cpuTimes, processCpuMs, type CpuCounters } from "./lib/cpu.js";
import { grpcFrame, h2load, LOAD_CORE, wrk } from "./lib/load.js";
import { registerUser } from "./lib/scenarios.js";

const [scenario = "getme", secondsArg = "8"] = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const seconds = Number(secondsArg);
/** --rps=N: open loop at N req/s in total (as the half-load scenario), instead of 50 in flight. */
const rps = Number(process.argv.find((a) => a.startsWith("--rps="))?.slice(6) ?? 0);
const WARMUP = 2;
const profDir = mkdtempSync(join(tmpdir(), "bench-prof-"));
const profile = !process.argv.includes("--no-prof");
if (profile) process.env.BENCH_NODE_FLAGS = `${process.env.BENCH_NODE_FLAGS ?? ""} --cpu-prof --cpu-prof-dir=${profDir}`;
// procs.ts reads BENCH_NODE_FLAGS when it loads: import it after setting them.
const { startSystem } = await import("./lib/procs.js");

execFileSync("taskset", ["-a", "-p", "-c", LOAD_CORE, String(process.pid)], { stdio: "ignore" });
const [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
const dataDir = mkdtempSync(join(tmpdir(), "bench-data-"));
const rl = join(dataDir, "ratelimit.yaml");
const big = "{unit: second, requests_per_unit: 100000000}";
writeFileSync(rl, `domain: acme\ndescriptors:\n  - key: remote_address\n    rate_limit: ${big}\n  - key: user_per_second\n    rate_limit: ${big}\n  - key: user_per_minute\n    rate_limit: ${big}\n`);
const sys = await startSystem(await freePort(), { DATABASE_URL: pg.url, REDIS_URL: redis.url, DATA_DIR: dataDir, RATELIMIT_CONFIG: rl, LOG_LEVEL: "warn", BCRYPT_COST: "10", HOST: "127.0.0.1" });
const base = `http://127.0.0.1:${sys.port}`;
try {
  const user = await registerUser(base);
  const auth = { authorization: `Bearer ${user.accessToken}` };
  const before = cpuTimes().slice(1);
  const cpu0 = processCpuMs(sys.child.pid!);
  const r =
    scenario === "rest"
      ? await wrk({ url: `${base}/v1/users/me`, headers: auth, connections: 50, seconds })
      : await h2load({ url: `${base}/acme.user.v1.UserService/GetMe`, body: grpcFrame(new Uint8Array()), headers: { "content-type": "application/grpc", te: "trailers", ...auth }, connections: 2, streams: rps ? 64 : 25, seconds, warmupSeconds: WARMUP, ...(rps ? { rps: Math.max(1, Math.round(rps / 2)) } : {}) });
  const after = cpuTimes().slice(1);
  const cpuMs = processCpuMs(sys.child.pid!) - cpu0;
  const total = (c: CpuCounters) => c.busy + c.idle + c.steal;
  const busy = after.map((c, i) => `${c.name} ${(((c.busy - before[i].busy) / (total(c) - total(before[i]))) * 100).toFixed(0)}% busy`).join(", ");
  console.log(`${busy} during the load`);
  console.log(`${scenario}: ${r.rps.toFixed(0)} req/s p50 ${r.p50Ms.toFixed(2)} ms p99 ${r.p99Ms.toFixed(2)} ms errors ${r.errors}; product CPU ${((cpuMs * 1000) / (r.rps * (seconds + (scenario === "rest" ? 0 : WARMUP)))).toFixed(0)} us per request`);
} finally {
  const t = performance.now();
  sys.child.once("exit", (code, sig) => console.error(`[profile] product exited ${code ?? sig} after ${(performance.now() - t).toFixed(0)} ms`));
  await sys.stop();
  await Promise.all([pg.stop(), redis.stop()]);
  rmSync(dataDir, { recursive: true, force: true });
}

if (!profile) process.exit(0);

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount: number; children?: number[] }
const file = readdirSync(profDir).find((f) => f.endsWith(".cpuprofile"));
if (!file) throw new Error(`no profile in ${profDir}`);
const prof = JSON.parse(readFileSync(join(profDir, file), "utf8")) as { nodes: Node[] };
const self = new Map<string, number>();
let total = 0;
for (const n of prof.nodes) {
  const url = n.callFrame.url.replace(/^.*\/(node_modules|\.build)\//, "$1/");
  const key = `${n.callFrame.functionName || "(anonymous)"} ${url}:${n.callFrame.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + n.hitCount);
  total += n.hitCount;
}
const byFile = new Map<string, number>();
for (const [k, v] of self) {
  const f = k.split(" ").slice(1).join(" ").replace(/:\d+$/, "").replace(/^(node_modules\/(@[^/]+\/)?[^/]+).*/, "$1");
  byFile.set(f, (byFile.get(f) ?? 0) + v);
}
const top = (m: Map<string, number>, n: number) =>
  [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}`).join("\n");
console.log(`profile: ${join(profDir, file)}\n\n-- self time by function --\n${top(self, 40)}\n\n-- self time by file/package --\n${top(byFile, 30)}`);
