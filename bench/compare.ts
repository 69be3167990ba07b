// CPU per request of this tree against another commit, in the same run, on
// the same Postgres and Redis, alternating: GetMe over gRPC, GET /v1/users/me
// through the embedded edge, and CreateOrder (which checks the user service in
// process). The other commit is checked out beside this one (git worktree,
// sharing node_modules) and started as `npm start` starts it.
//   npm run bench:compare -- <commit>       e.g. the commit before a change
// Writes bench/results/compare.md. BENCH_RUNS (default 5) rounds of BENCH_SECONDS (default 5).
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePort, startPostgres, startRedis } from "../test/support/servers.js";
import { processCpuMs } from "./lib/cpu.js";
import { h2load, LOAD_CORE, wrk } from "./lib/load.js";
import { pidOf, startSystem } from "./lib/procs.js";
import { emptyRequest, grpcHeaders, IN_FLIGHT, log } from "./lib/run-settings.js";
import { orderLoad, productInStock, registerUser } from "./lib/scenarios.js";
import { median } from "./lib/stats.js";

const root = new URL("..", import.meta.url).pathname;
const rev = process.argv[2];
if (!rev) {
  console.error("usage: npm run bench:compare -- <commit>");
  process.exit(2);
}
const ROUNDS = Number(process.env.BENCH_RUNS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
execFileSync("taskset", ["-p", "-c", LOAD_CORE, String(process.pid)], { stdio: "ignore" });

const sha = execFileSync("git", ["rev-parse", "--short", rev], { cwd: root, encoding: "utf8" }).trim();
const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim();
const before = join(tmpdir(), `acme-bench-${sha}`);
if (!existsSync(before)) {
  execFileSync("git", ["worktree", "add", "--detach", before, sha], { cwd: root, stdio: "ignore" });
  symlinkSync(join(root, "node_modules"), join(before, "node_modules"));
}

const [postgres, redis] = await Promise.all([startPostgres(), startRedis()]);
const big = "{unit: second, requests_per_unit: 100000000}";
const limits = `domain: acme\ndescriptors:\n  - key: remote_address\n    rate_limit: ${big}\n  - key: user_per_second\n    rate_limit: ${big}\n  - key: user_per_minute\n    rate_limit: ${big}\n`;

async function system(cwd: string, db: string, redisDb: number) {
  const dataDir = mkdtempSync(join(tmpdir(), "bench-compare-"));
  writeFileSync(join(dataDir, "ratelimit.yaml"), limits);
  const admin = new pg.Client({ connectionString: postgres.url });
  await admin.connect();
  await admin.query(`create database ${db}`);
  await admin.end();
  const databaseUrl = new URL(postgres.url);
  databaseUrl.pathname = `/${db}`;
  const env = {
    DATABASE_URL: databaseUrl.toString(), REDIS_URL: `${redis.url.replace(/\/\d*$/, "")}/${redisDb}`, DATA_DIR: dataDir, RATELIMIT_CONFIG: join(dataDir, "ratelimit.yaml"),
    LOG_LEVEL: "warn", BCRYPT_COST: "10", HOST: "127.0.0.1", OTEL_SDK_DISABLED: "true",
    // This tree's orders name catalogue products (demo ones); an older tree ignores both.
    CATALOGUE_SEED: "demo", VERIFIED_EMAIL_POLICY: "off",
  };
  const sys = await startSystem(await freePort(), env, undefined, cwd);
  const base = `http://127.0.0.1:${sys.port}`;
  const user = await registerUser(base);
  // An older tree has no catalogue: it gets the old request (orderLoad without a product).
  const productId = cwd === root ? await productInStock(base) : undefined;
  return { sys, base, user, productId, pid: pidOf(sys) };
}

log(`compare: ${sha} (before) and ${head} (this tree), ${ROUNDS} rounds of ${SECONDS} s`);
const systems = { before: await system(before, "compare_before", 1), after: await system(root, "compare_after", 2) };
type Name = keyof typeof systems;
const scenarios: Record<string, (s: (typeof systems)[Name]) => Promise<number>> = {
  "GetMe (gRPC, 50 in flight)": (s) =>
    h2load({ url: `${s.base}/acme.user.v1.UserService/GetMe`, body: emptyRequest, headers: { ...grpcHeaders, authorization: `Bearer ${s.user.accessToken}` }, ...IN_FLIGHT, seconds: SECONDS }).then((r) => r.rps),
  "REST me (GET /v1/users/me, embedded edge, 50 connections)": (s) =>
    wrk({ url: `${s.base}/v1/users/me`, headers: { authorization: `Bearer ${s.user.accessToken}` }, connections: 50, seconds: SECONDS }).then((r) => r.rps),
  "CreateOrder (gRPC, user checked in process, 20 in flight)": (s) => orderLoad(s.base, s.user.accessToken, SECONDS, 20, s.productId).then((r) => r.rps),
};

const results: Record<string, Record<Name, number[]>> = {};
for (const [name, run] of Object.entries(scenarios)) {
  results[name] = { before: [], after: [] };
  for (const s of Object.values(systems)) await run(s); // warm-up: JIT, pools, caches
  for (let i = 0; i < ROUNDS; i++) {
    for (const which of (i % 2 ? ["after", "before"] : ["before", "after"]) as Name[]) {
      const s = systems[which];
      const c0 = processCpuMs(s.pid);
      const rps = await run(s);
      results[name][which].push(((processCpuMs(s.pid) - c0) * 1000) / (rps * SECONDS));
    }
  }
  log(`${name}: before ${median(results[name].before).toFixed(0)} us, after ${median(results[name].after).toFixed(0)} us`);
}
await Promise.all([systems.before.sys.stop(), systems.after.sys.stop()]);
await Promise.all([postgres.stop(), redis.stop()]);

const lines = [
  `# CPU per request: ${sha} (before) vs ${head} (after)`,
  "",
  `Same run, same Postgres and Redis, the product on core ${process.env.BENCH_SERVER_CORE ?? "0"}, load on core ${LOAD_CORE}; ${ROUNDS} alternating rounds of ${SECONDS} s; median of the rounds. ${new Date().toISOString()}.`,
  "",
  "| scenario | before us/req | after us/req | after / before |",
  "| --- | ---: | ---: | ---: |",
  ...Object.entries(results).map(([name, r]) => {
    const b = median(r.before);
    const a = median(r.after);
    return `| ${name} | ${b.toFixed(0)} | ${a.toFixed(0)} | ${(a / b).toFixed(2)} |`;
  }),
];
writeFileSync(join(root, "bench/results/compare.md"), lines.join("\n") + "\n");
console.log(lines.join("\n"));
