// `npm run bench`: baselines and product scenarios measured in the same run
// on the same machine, reported as ratios (absolute numbers drift on shared
// machines; ratios hold). Writes bench/results/latest.{md,json}.
// Cores: the process under test is pinned to core BENCH_SERVER_CORE (0), the
// load generator (h2load/wrk) to BENCH_LOAD_CORE (1); Postgres and Redis float.
import { mkdtempSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { freePort, startPostgres, startRedis } from "../test/support/servers.js";
import { bcryptRate, jwtRates } from "./lib/inproc.js";
import { grpcFrame, h2load, hasCommand, wrk } from "./lib/load.js";
import { pidOf, rssMb, startBaseline, startSystem } from "./lib/procs.js";
import { loginStorm, orderLoad, registerUser } from "./lib/scenarios.js";
import { summarise, type RunResult } from "./lib/stats.js";

const QUICK = process.argv.includes("--quick");
const RUNS = QUICK ? 1 : 3;
const SECONDS = QUICK ? 3 : 5;
const WARMUP = QUICK ? 1 : 2;
const IN_FLIGHT = { connections: 2, streams: 25 }; // 50 in flight

type Row = { scenario: string; rps?: number; p50Ms?: number; p99Ms?: number; spreadPct?: number; errors?: number; ratio?: string; target?: string; met?: boolean; note?: string };
const rows: Row[] = [];
const log = (s: string) => console.error(`[bench] ${s}`);

async function repeat(fn: () => Promise<RunResult>) {
  const runs: RunResult[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await fn());
  return summarise(runs);
}

const healthCheck = grpcFrame(new Uint8Array());
const grpcHeaders = { "content-type": "application/grpc", te: "trailers" };

async function main() {
  for (const cmd of ["h2load", "wrk", "taskset"]) {
    if (!(await hasCommand(cmd))) throw new Error(`${cmd} not found: apt-get install -y nghttp2-client wrk util-linux`);
  }
  const t0 = Date.now();

  log("baseline: bare grpc-js");
  const g = await startBaseline("bench/baselines/grpc-echo.ts");
  const grpcJs = await repeat(() => h2load({ url: `http://127.0.0.1:${g.port}/grpc.health.v1.Health/Check`, body: healthCheck, headers: grpcHeaders, ...IN_FLIGHT, seconds: SECONDS, warmupSeconds: WARMUP }));
  await g.stop();
  rows.push({ scenario: "baseline: bare grpc-js unary", ...grpcJs });

  log("baseline: bare connect-node");
  const c = await startBaseline("bench/baselines/connect-echo.ts");
  const connect = await repeat(() => h2load({ url: `http://127.0.0.1:${c.port}/grpc.health.v1.Health/Check`, body: healthCheck, headers: grpcHeaders, ...IN_FLIGHT, seconds: SECONDS, warmupSeconds: WARMUP }));
  await c.stop();
  rows.push({ scenario: "baseline: bare connect-node unary (our server)", ...connect, ratio: `${(connect.rps / grpcJs.rps).toFixed(2)}x grpc-js` });

  log("baseline: bare node:http JSON");
  const h = await startBaseline("bench/baselines/http-json.ts");
  const httpJson = await repeat(() => wrk({ url: `http://127.0.0.1:${h.port}/`, connections: 50, seconds: SECONDS }));
  await h.stop();
  rows.push({ scenario: "baseline: bare node:http JSON", ...httpJson });

  log("baseline: bcrypt-12 compare rate, crypto.verify ES256");
  const bcryptRaw = await bcryptRate(12, cpus().length, QUICK ? 3 : 6);
  rows.push({ scenario: "baseline: raw bcrypt cost 12 compares/s", rps: bcryptRaw });
  const jwt = await jwtRates(QUICK ? 1 : 3);
  rows.push({ scenario: "baseline: raw crypto.verify ES256/s", rps: jwt.raw });
  rows.push({ scenario: "JWT check per request (platform/auth/verifier.ts)", rps: jwt.ours, ratio: `${(jwt.raw / jwt.ours).toFixed(2)}x raw cost`, target: "<= 1.5x", met: jwt.raw / jwt.ours <= 1.5 });

  log("system: Postgres + Redis + services/main.ts");
  const [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
  const dataDir = mkdtempSync(join(tmpdir(), "bench-data-"));
  const rlConfig = join(dataDir, "ratelimit.yaml");
  writeFileSync(rlConfig, benchRateLimits());
  const env = { DATABASE_URL: pg.url, REDIS_URL: redis.url, DATA_DIR: dataDir, RATELIMIT_CONFIG: rlConfig, LOG_LEVEL: "warn", BCRYPT_COST: "12", HOST: "127.0.0.1" };
  const sys = await startSystem(await freePort(), env);
  const base = `http://127.0.0.1:${sys.port}`;
  try {
    const rssRest = rssMb(pidOf(sys));
    const user = await registerUser(base);
    const auth = { authorization: `Bearer ${user.accessToken}` };

    log("scenario: authenticated gRPC read (GetMe)");
    const getMe = () => h2load({ url: `${base}/acme.user.v1.UserService/GetMe`, body: grpcFrame(new Uint8Array()), headers: { ...grpcHeaders, ...auth }, ...IN_FLIGHT, seconds: SECONDS, warmupSeconds: WARMUP });
    const read = await repeat(getMe);
    const rssLoad = rssMb(pidOf(sys));
    rows.push({ scenario: "authenticated gRPC read (JWT + Postgres point read)", ...read, ratio: `${(read.rps / grpcJs.rps).toFixed(2)}x grpc-js`, target: ">= 0.5x", met: read.rps / grpcJs.rps >= 0.5 });
    const half = Math.max(1, Math.floor(read.rps / 2 / IN_FLIGHT.connections));
    const halfLoad = await repeat(() => h2load({ url: `${base}/acme.user.v1.UserService/GetMe`, body: grpcFrame(new Uint8Array()), headers: { ...grpcHeaders, ...auth }, connections: IN_FLIGHT.connections, streams: 1, seconds: SECONDS, warmupSeconds: WARMUP, rps: half }));
    rows.push({ scenario: `  at half load (${half * IN_FLIGHT.connections} req/s offered)`, ...halfLoad, target: "p99 < 10 ms", met: halfLoad.p99Ms < 10 });

    log("scenario: REST read through the embedded edge");
    const rest = await repeat(() => wrk({ url: `${base}/v1/users/me`, headers: auth, connections: 50, seconds: SECONDS }));
    rows.push({ scenario: "REST read via embedded edge (GET /v1/users/me)", ...rest, ratio: `${(rest.rps / httpJson.rps).toFixed(2)}x node:http`, target: ">= 0.6x", met: rest.rps / httpJson.rps >= 0.6 });

    log("scenario: create order");
    const orders = await orderLoad(base, user.accessToken, QUICK ? 3 : SECONDS, 20);
    rows.push({ scenario: "create order (user-service check + insert), 20 in flight", ...orders });

    log("scenario: login storm with concurrent reads");
    const storm = await loginStorm(base, user, QUICK ? 4 : 10, () =>
      h2load({ url: `${base}/acme.user.v1.UserService/GetMe`, body: grpcFrame(new Uint8Array()), headers: { ...grpcHeaders, ...auth }, connections: 2, streams: 1, seconds: QUICK ? 3 : 8, rps: 100 }),
    );
    const idle = await h2load({ url: `${base}/acme.user.v1.UserService/GetMe`, body: grpcFrame(new Uint8Array()), headers: { ...grpcHeaders, ...auth }, connections: 2, streams: 1, seconds: QUICK ? 3 : 8, rps: 100 });
    rows.push({ scenario: "login storm: logins/s (bcrypt 12)", rps: storm.loginsPerSec, ratio: `${(storm.loginsPerSec / bcryptRaw).toFixed(2)}x raw bcrypt`, target: ">= 0.9x", met: storm.loginsPerSec / bcryptRaw >= 0.9, errors: storm.loginErrors });
    rows.push({ scenario: "  reads during the storm (200 req/s offered)", ...storm.reads, ratio: `p99 ${(storm.reads.p99Ms / idle.p99Ms).toFixed(2)}x idle (${idle.p99Ms.toFixed(1)} ms)`, target: "< 3x idle", met: storm.reads.p99Ms / idle.p99Ms < 3 });

    rows.push({ scenario: "RSS at rest / under load (MB)", note: `${rssRest.toFixed(0)} / ${rssLoad.toFixed(0)}`, target: "< 250 MB", met: rssLoad < 250 });
  } finally {
    await sys.stop();
    await Promise.all([pg.stop(), redis.stop()]);
  }

  log("scenario: embedded start to first answer (PGlite, fresh data dir)");
  const fresh = mkdtempSync(join(tmpdir(), "bench-embedded-"));
  const e1 = await startSystem(await freePort(), { DATA_DIR: fresh, LOG_LEVEL: "warn", HOST: "127.0.0.1" });
  await e1.stop();
  const e2 = await startSystem(await freePort(), { DATA_DIR: fresh, LOG_LEVEL: "warn", HOST: "127.0.0.1" });
  await e2.stop();
  rows.push({ scenario: "embedded start to first answer: first / second start (ms)", note: `${e1.startMs.toFixed(0)} / ${e2.startMs.toFixed(0)}`, target: "< 4000 ms", met: e2.startMs < 4000 });

  report(Date.now() - t0);
}

function benchRateLimits(): string {
  // The product's limits would throttle a benchmark; same shape, huge numbers.
  const big = "{unit: second, requests_per_unit: 100000000}";
  return `domain: acme\ndescriptors:\n  - key: remote_address\n    rate_limit: ${big}\n  - key: user_per_second\n    rate_limit: ${big}\n  - key: user_per_minute\n    rate_limit: ${big}\n  - key: rate_class\n    value: auth\n    descriptors:\n      - key: remote_address\n        rate_limit: ${big}\n`;
}

function report(ms: number) {
  const machine = `${cpus().length} cores (${cpus()[0]?.model}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${new Date().toISOString()}`;
  const fmt = (n?: number, d = 0) => (n === undefined || Number.isNaN(n) ? "" : n.toFixed(d));
  const lines = [
    `# Benchmark results`,
    ``,
    `Machine: ${machine}. Runs per scenario: ${RUNS} x ${SECONDS}s after ${WARMUP}s warm-up (median; spread = (max-min)/median). Server pinned to core ${process.env.BENCH_SERVER_CORE ?? "0"}, load generator (h2load/wrk) to core ${process.env.BENCH_LOAD_CORE ?? "1"}; Postgres and Redis unpinned. Total ${(ms / 1000).toFixed(0)} s.`,
    ``,
    `| scenario | req/s | p50 ms | p99 ms | spread % | errors | ratio | target | met |`,
    `| --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |`,
    ...rows.map((r) => `| ${r.scenario} | ${r.note ?? fmt(r.rps)} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${fmt(r.spreadPct, 0)} | ${r.errors ?? ""} | ${r.ratio ?? ""} | ${r.target ?? ""} | ${r.met === undefined ? "" : r.met ? "yes" : "**no**"} |`),
  ];
  const md = lines.join("\n") + "\n";
  const dir = new URL("./results/", import.meta.url).pathname;
  writeFileSync(join(dir, "latest.md"), md);
  writeFileSync(join(dir, "latest.json"), JSON.stringify({ machine, runs: RUNS, seconds: SECONDS, rows }, null, 2) + "\n");
  console.log(md);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
