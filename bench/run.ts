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
// test, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { toolPath } from "../scripts/tools/index.js";
import { freePort, startPostgres, startRedis } from "../test/support/servers.js";
import { cpuTimes, processCpuMs } from "./lib/cpu.js";
import { startBenchEdge, type BenchEdge, type EdgeCounts, type EdgePids } from "./lib/edge.js";
import { grpcFrame, h2load, hasCommand, LOAD_CORE, wrk } from "./lib/load.js";
import { peakRssMb, pidOf, rssMb, runPinned, SERVER_CORE, startBaseline, startSystem } from "./lib/procs.js";
import { loginLoad, loginStorm, orderLoad, registerUser, rpcErrors } from "./lib/scenarios.js";
import { median as med, summarise, type RunResult } from "./lib/stats.js";

const QUICK = process.argv.includes("--quick");
const RUNS = QUICK ? 1 : Number(process.env.BENCH_RUNS ?? 3);
const SECONDS = QUICK ? 3 : Number(process.env.BENCH_SECONDS ?? 5);
const WARMUP = QUICK ? 1 : 2;
const IN_FLIGHT = { connections: 2, streams: 25 }; // 50 in flight
/** Offered load of the latency-under-login-storm check. */
const STORM_READ_RPS = 200;

interface Row {
  scenario: string;
  rps?: number;
  p50Ms?: number;
  p99Ms?: number;
  spreadPct?: number;
  runs?: number;
  errors?: number;
  ratio?: number;
  ratioOf?: string;
  target?: string;
  met?: boolean;
  note?: string;
  /** CPU time of the process under test per request (or per operation), microseconds. */
  cpuUs?: number;
  /** Through Envoy: CPU per request of each program of the stack, microseconds. */
  cpuByProcessUs?: Partial<Record<keyof EdgePids, number>>;
  /** Through Envoy: share of answered requests envoyproxy/ratelimit answered a check for (the rest failed open). */
  limitsCheckedPct?: number;
}
const rows: Row[] = [];
const log = (s: string) => console.error(`[bench] ${s}`);

async function repeat(fn: () => Promise<RunResult>) {
  const runs: RunResult[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await fn());
  return summarise(runs);
}

const grpcHeaders = { "content-type": "application/grpc", te: "trailers" };
const emptyRequest = grpcFrame(new Uint8Array());

/**
 * CPU of the product per request over runs of a load (the warm-up's requests
 * counted at the measured rate): steadier than req/s on a shared machine.
 */
function cpuPerRequest(pid: number) {
  const perRun: number[] = [];
  return {
    async measure(run: () => Promise<RunResult>, warmupSeconds: number): Promise<RunResult> {
      const c0 = processCpuMs(pid);
      const r = await run();
      perRun.push(((processCpuMs(pid) - c0) * 1000) / (r.rps * (SECONDS + warmupSeconds)));
      return r;
    },
    median: () => med(perRun),
  };
}

async function main() {
  for (const cmd of ["h2load", "wrk", "taskset"]) {
    if (!(await hasCommand(cmd))) throw new Error(`${cmd} not found: apt-get install -y nghttp2-client wrk util-linux`);
  }
  if (cpus().length < 2) throw new Error("the bench needs 2 cores: one for the process under test, one for the load");
  // The Envoy rows need the stack's programs (`npm run tools`): fail now rather than minutes in.
  for (const tool of ["envoy", "ratelimit", "jaeger"] as const) toolPath(tool);
  // Everything this process starts from now on (h2load, wrk, Postgres, Redis) inherits the load core.
  execFileSync("taskset", ["-a", "-p", "-c", LOAD_CORE, String(process.pid)], { stdio: "ignore" });
  const t0 = Date.now();
  const loadBefore = loadavg();
  const cpu0 = cpuTimes()[0];

  // --- Baselines -----------------------------------------------------------
  const healthCheck = (port: number) => () =>
    h2load({ url: `http://127.0.0.1:${port}/grpc.health.v1.Health/Check`, body: emptyRequest, headers: grpcHeaders, ...IN_FLIGHT, seconds: SECONDS, warmupSeconds: WARMUP });

  log("baseline: bare grpc-js");
  const g = await startBaseline("bench/baselines/grpc-echo.ts");
  const grpcJs = await repeat(healthCheck(g.port)).finally(() => g.stop());
  rows.push({ scenario: "baseline: bare @grpc/grpc-js unary (Health/Check)", ...grpcJs });

  log("baseline: bare connect-node");
  const c = await startBaseline("bench/baselines/connect-echo.ts");
  const connect = await repeat(healthCheck(c.port)).finally(() => c.stop());
  rows.push({ scenario: "baseline: bare connect-node gRPC (Health/Check)", ...connect, ratio: connect.rps / grpcJs.rps, ratioOf: "grpc-js" });

  log("our server: platform/server.ts, no interceptors");
  const o = await startBaseline("bench/baselines/server-echo.ts");
  const ours = await repeat(healthCheck(o.port)).finally(() => o.stop());
  rows.push({ scenario: "platform/server.ts gRPC, no interceptors (Health/Check)", ...ours, ratio: ours.rps / grpcJs.rps, ratioOf: "grpc-js" });

  log("baseline: bare node:http JSON");
  const h = await startBaseline("bench/baselines/http-json.ts");
  const httpJson = await repeat(() => wrk({ url: `http://127.0.0.1:${h.port}/`, connections: 50, seconds: SECONDS })).finally(() => h.stop());
  rows.push({ scenario: "baseline: bare node:http JSON", ...httpJson });

  log("baseline: bcrypt-12 compares/s and crypto.verify ES256/s on the server core");
  const raw = JSON.parse(await runPinned("bench/baselines/crypto-rates.ts", [String(QUICK ? 3 : 6)])) as { bcrypt: number; bcryptConcurrency: number; raw: number; ours: number; remembered: number };
  rows.push({ scenario: `baseline: raw bcrypt cost 12 compares/s (${raw.bcryptConcurrency} in flight)`, rps: raw.bcrypt });
  rows.push({ scenario: "baseline: raw crypto.verify ES256/s", rps: raw.raw });
  const jwtCost = raw.raw / raw.ours;
  rows.push({ scenario: "JWT check per request, platform/auth/verifier.ts, signature checked every time (checks/s)", rps: raw.ours, ratio: jwtCost, ratioOf: "raw cost", target: "<= 1.5x", met: jwtCost <= 1.5 });
  rows.push({ scenario: "  the same verifier on a token it has verified before (remembered; expiry, key, revocation rechecked)", rps: raw.remembered, ratio: raw.raw / raw.remembered, ratioOf: "raw cost" });

  // --- The product ---------------------------------------------------------
  log("system: Postgres + Redis + npm start (services/main.ts)");
  const [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
  const dataDir = mkdtempSync(join(tmpdir(), "bench-data-"));
  const rlConfig = join(dataDir, "ratelimit.yaml");
  writeFileSync(rlConfig, benchRateLimits());
  const env = { DATABASE_URL: pg.url, REDIS_URL: redis.url, DATA_DIR: dataDir, RATELIMIT_CONFIG: rlConfig, LOG_LEVEL: "warn", BCRYPT_COST: "12", HOST: "127.0.0.1", OTEL_SDK_DISABLED: "true" };
  const sys = await startSystem(await freePort(), env);
  let halfRate = 0;
  const base = `http://127.0.0.1:${sys.port}`;
  try {
    const rssRest = rssMb(pidOf(sys));
    const user = await registerUser(base);
    const auth = { authorization: `Bearer ${user.accessToken}` };
    const getMeUrl = `${base}/acme.user.v1.UserService/GetMe`;
    const getMe = (o: { connections: number; streams: number; seconds: number; rps?: number; warmupSeconds?: number }) =>
      h2load({ url: getMeUrl, body: emptyRequest, headers: { ...grpcHeaders, ...auth }, ...o });
    const failedGetMe = () => rpcErrors(sys.metricsUrl, "acme.user.v1.UserService", "GetMe");
    // Open loop at `rps` in total: h2load's rate mode on 2 connections (its timers fire all of a
    // connection's due requests together, every ~10 ms: small bursts, as in real arrivals).
    const getMeAt = (rps: number, seconds: number, warmupSeconds = 0) =>
      getMe({ connections: 2, streams: 64, seconds, warmupSeconds, rps: Math.max(1, Math.round(rps / 2)) });

    const pid = pidOf(sys);
    log("scenario: authenticated gRPC read (GetMe), 50 in flight");
    let e0 = await failedGetMe();
    const readCpu = cpuPerRequest(pid);
    const read = await repeat(() => readCpu.measure(() => getMe({ ...IN_FLIGHT, seconds: SECONDS, warmupSeconds: WARMUP }), WARMUP));
    read.errors += (await failedGetMe()) - e0;
    const readRatio = read.rps / grpcJs.rps;
    rows.push({ scenario: "authenticated gRPC read: GetMe (JWT + revocation + Postgres), 50 in flight", ...read, cpuUs: readCpu.median(), ratio: readRatio, ratioOf: "grpc-js", target: ">= 0.5x", met: readRatio >= 0.5 });

    // Open loop at half the measured maximum.
    const half = Math.max(1, Math.round(read.rps / 2));
    halfRate = half;
    log(`scenario: GetMe at half load (${half} req/s offered)`);
    e0 = await failedGetMe();
    const halfLoad = await repeat(() => getMeAt(half, SECONDS, WARMUP));
    halfLoad.errors += (await failedGetMe()) - e0;
    rows.push({ scenario: `  GetMe at half load (${half} req/s offered, open loop)`, ...halfLoad, target: "p99 < 10 ms", met: halfLoad.p99Ms < 10 });

    log("scenario: REST read through the embedded edge (GET /v1/users/me)");
    const restCpu = cpuPerRequest(pid);
    const rest = await repeat(() => restCpu.measure(() => wrk({ url: `${base}/v1/users/me`, headers: auth, connections: 50, seconds: SECONDS }), 0));
    const restRatio = rest.rps / httpJson.rps;
    rows.push({ scenario: "REST read via embedded edge: GET /v1/users/me, 50 connections", ...rest, cpuUs: restCpu.median(), ratio: restRatio, ratioOf: "node:http", target: ">= 0.6x", met: restRatio >= 0.6 });

    // The same two reads through the real Envoy, compared with the direct rows above.
    await throughEnvoy(pg.url, redis.url, { getMe: read, rest });

    log("scenario: create order");
    const orders = await orderLoad(base, user.accessToken, QUICK ? 3 : SECONDS, 20);
    rows.push({ scenario: "create order (user-service check + insert), 20 in flight, Node client", ...orders, runs: 1 });

    log("scenario: login throughput (bcrypt 12), 4 clients");
    const logins = await loginLoad(base, user, QUICK ? 4 : 10, 4);
    const loginRatio = logins.rps / raw.bcrypt;
    rows.push({ scenario: "login throughput: logins/s (bcrypt 12), 4 clients, nothing else running", ...logins, runs: 1, ratio: loginRatio, ratioOf: "raw bcrypt", target: ">= 0.9x", met: loginRatio >= 0.9 });

    // Tail latency here is noisy (CPU steal, GC): alternate idle and storm
    // periods RUNS times and compare the medians.
    log("scenario: read latency idle, then during a login storm (alternating)");
    const stormSeconds = QUICK ? 4 : 8;
    await getMeAt(STORM_READ_RPS, 2); // warm-up
    const idles: RunResult[] = [];
    const storms: RunResult[] = [];
    const stormLogins: RunResult[] = [];
    for (let i = 0; i < RUNS; i++) {
      idles.push(await getMeAt(STORM_READ_RPS, stormSeconds));
      const s = await loginStorm(base, user, stormSeconds, () => getMeAt(STORM_READ_RPS, stormSeconds));
      storms.push(s.reads);
      stormLogins.push({ rps: s.loginsPerSec, p50Ms: NaN, p99Ms: NaN, errors: s.loginErrors });
    }
    const idle = summarise(idles);
    const stormReads = summarise(storms);
    const stormLogin = summarise(stormLogins);
    rows.push({ scenario: `  GetMe idle (${STORM_READ_RPS} req/s offered, open loop)`, ...idle });
    // Met only if the offered reads were also served (h2load delays requests a slow server cannot take).
    const stormRatio = stormReads.p99Ms / idle.p99Ms;
    const served = stormReads.rps >= 0.95 * STORM_READ_RPS;
    rows.push({
      scenario: `  GetMe during a login storm (${STORM_READ_RPS} req/s offered, open loop)`,
      ...stormReads,
      ratio: stormRatio,
      ratioOf: "idle p99",
      target: "p99 < 3x idle, all served",
      met: stormRatio < 3 && served,
    });
    rows.push({ scenario: "  logins/s during those storms (4 clients)", rps: stormLogin.rps, errors: stormLogin.errors, runs: RUNS, ratio: stormLogin.rps / raw.bcrypt, ratioOf: "raw bcrypt" });

    const peak = peakRssMb(pidOf(sys));
    rows.push({ scenario: "RSS after start / peak over all scenarios (MB)", note: `${rssRest.toFixed(0)} / ${peak.toFixed(0)}`, target: "< 250 MB", met: peak < 250 });

    // What an authenticated read is made of: each piece alone on the server core (bench/micro.ts).
    log("pieces of an authenticated read, each alone (bench/micro.ts)");
    const pieces = JSON.parse(await runPinned("bench/micro.ts", [pg.url, redis.url])) as { piece: string; usPerOp: number; opsPerSec: number }[];
    for (const p of pieces) rows.push({ scenario: `  piece: ${p.piece}`, rps: p.opsPerSec, cpuUs: p.usPerOp });
  } finally {
    await sys.stop();
    await Promise.all([pg.stop(), redis.stop()]);
    rmSync(dataDir, { recursive: true, force: true });
  }

  // What the machine itself adds at that offered load: the bare grpc-js server under the same open loop.
  if (halfRate) {
    log(`reference: bare grpc-js at ${halfRate} req/s offered`);
    const g2 = await startBaseline("bench/baselines/grpc-echo.ts");
    const floor = await repeat(() =>
      h2load({ url: `http://127.0.0.1:${g2.port}/grpc.health.v1.Health/Check`, body: emptyRequest, headers: grpcHeaders, connections: 2, streams: 64, seconds: SECONDS, warmupSeconds: WARMUP, rps: Math.max(1, Math.round(halfRate / 2)) }),
    ).finally(() => g2.stop());
    const at = rows.findIndex((r) => r.scenario.startsWith("  GetMe at half load"));
    rows.splice(at + 1, 0, { scenario: `  reference: bare grpc-js at the same ${halfRate} req/s, same load generator`, ...floor });
  }

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
  rows.push({
    scenario: "embedded start (npm start, PGlite, all cores) to first answer, ms: fresh data dir / existing data dir",
    note: `${med(firsts).toFixed(0)} / ${med(seconds).toFixed(0)}`,
    runs: firsts.length,
    target: "< 4000 ms",
    // Both: the first start in a new data dir (copied from the install's initdb template) and a restart.
    met: med(firsts) < 4000 && med(seconds) < 4000,
  });

  const cpu1 = cpuTimes()[0];
  const total = cpu1.busy + cpu1.idle + cpu1.steal - (cpu0.busy + cpu0.idle + cpu0.steal);
  report(Date.now() - t0, loadBefore, loadavg(), ((cpu1.steal - cpu0.steal) / total) * 100);
}

/**
 * CPU per request of each program of the stack over runs of a load (warm-up
 * included), the requests counted by Envoy itself (http.edge.downstream_rq_total,
 * warm-up included, as the CPU is); and what its rate-limit filters did.
 */
function edgeCpuPerRequest(edge: BenchEdge) {
  const perRun: Record<keyof EdgePids, number>[] = [];
  const counts: EdgeCounts[] = [];
  const names = Object.keys(edge.pids) as (keyof EdgePids)[];
  const total = (k: keyof EdgeCounts) => counts.reduce((a, c) => a + c[k], 0);
  return {
    async measure(run: () => Promise<RunResult>): Promise<RunResult> {
      const c0 = names.map((n) => processCpuMs(edge.pids[n]));
      const mark = await edge.mark();
      const r = await run();
      const c = await edge.since(mark);
      counts.push(c);
      perRun.push(Object.fromEntries(names.map((n, i) => [n, ((processCpuMs(edge.pids[n]) - c0[i]) * 1000) / Math.max(1, c.requests)])) as Record<keyof EdgePids, number>);
      return r;
    },
    median: (n: keyof EdgePids) => med(perRun.map((p) => p[n])),
    /** The four programs on the server core (what the direct rows' CPU us/req compares with). */
    serverCore: () => ["envoy", "auth", "user", "order"].reduce((a, n) => a + med(perRun.map((p) => p[n as keyof EdgePids])), 0),
    /** Share of requests whose rate limits envoyproxy/ratelimit answered (the rest failed open). */
    limitsCheckedPct: () => (100 * total("limitChecks")) / Math.max(1, total("requests")),
    total,
  };
}

/**
 * GET /v1/users/me (wrk) and GetMe (h2load) through the real Envoy of `npm
 * run stack` (bench/lib/edge.ts: Envoy, envoyproxy/ratelimit, auth/user/order
 * as processes), the same loads as the direct rows, reported as ratios to them.
 * Errors: h2load/wrk's, and every request Envoy's access log shows answered
 * with another HTTP status than 200 or another gRPC status than OK (Envoy
 * answers gRPC calls, its own refusals included, with HTTP 200).
 */
async function throughEnvoy(postgresUrl: string, redisUrl: string, direct: { getMe: RunResult; rest: RunResult }) {
  log("stack: Envoy, envoyproxy/ratelimit, Jaeger, auth/user/order (scripts/stack) on the bench's Postgres and Redis");
  const edge = await startBenchEdge({ postgresUrl, redisUrl, serverCore: SERVER_CORE, log });
  try {
    const auth = { authorization: `Bearer ${edge.token}` };
    const breakdown = (m: ReturnType<typeof edgeCpuPerRequest>, what: string): Row => {
      const services = m.median("auth") + m.median("user") + m.median("order");
      const checked = m.limitsCheckedPct();
      const refused = m.total("limitOverLimit") + m.total("localLimited");
      const unanswered = m.total("limitErrors");
      return {
        scenario: `  ${what} through Envoy, CPU us/req: Envoy / services (auth+user+order) / envoyproxy/ratelimit (load core); requests whose limits were checked`,
        note:
          `${m.median("envoy").toFixed(0)} / ${services.toFixed(0)} / ${m.median("ratelimit").toFixed(0)}; ${checked.toFixed(0)} %` +
          (refused || unanswered ? ` (${refused} refused, ${unanswered} failed open)` : ""),
        cpuByProcessUs: Object.fromEntries((Object.keys(edge.pids) as (keyof EdgePids)[]).map((n) => [n, m.median(n)])),
        limitsCheckedPct: checked,
      };
    };

    log("scenario: GetMe through Envoy, 50 in flight");
    const getMePath = "/acme.user.v1.UserService/GetMe";
    const grpcCpu = edgeCpuPerRequest(edge);
    const getMe = await repeat(() =>
      grpcCpu.measure(() => h2load({ url: `${edge.url}${getMePath}`, body: emptyRequest, headers: { ...grpcHeaders, ...auth }, ...IN_FLIGHT, seconds: SECONDS, warmupSeconds: WARMUP })),
    );
    const getMeRow: Row = { scenario: "authenticated gRPC read via Envoy: GetMe through Envoy's listener, 50 in flight", ...getMe, cpuUs: grpcCpu.serverCore(), ratio: getMe.rps / direct.getMe.rps, ratioOf: "direct GetMe" };
    rows.push(getMeRow, breakdown(grpcCpu, "GetMe"));

    log("scenario: REST read through Envoy (GET /v1/users/me)");
    const restPath = "/v1/users/me";
    await wrk({ url: `${edge.url}${restPath}`, headers: auth, connections: 50, seconds: WARMUP }); // warm-up (wrk has no warm-up of its own)
    const restCpu = edgeCpuPerRequest(edge);
    const rest = await repeat(() => restCpu.measure(() => wrk({ url: `${edge.url}${restPath}`, headers: auth, connections: 50, seconds: SECONDS })));
    const restRow: Row = { scenario: "REST read via Envoy: GET /v1/users/me (transcoded to GetMe), 50 connections", ...rest, cpuUs: restCpu.serverCore(), ratio: rest.rps / direct.rest.rps, ratioOf: "direct REST read" };
    rows.push(restRow, breakdown(restCpu, "REST read"));

    // Envoy writes its access log out when it stops; warm-ups included (errors there count too).
    const tally = await edge.stopAndReadAccessLog();
    for (const [row, path] of [[getMeRow, getMePath], [restRow, restPath]] as const) {
      const t = tally.get(path);
      if (!t) throw new Error(`bench: no request to ${path} in Envoy's access log`);
      row.errors = Math.max(row.errors ?? 0, t.failed);
      if (t.failed) log(`errors through Envoy on ${path}: ${JSON.stringify(t.reasons)}`);
    }
  } finally {
    await edge.close();
  }
}

function benchRateLimits(): string {
  // The product's limits would throttle a benchmark; same shape, huge numbers.
  const big = "{unit: second, requests_per_unit: 100000000}";
  return `domain: acme\ndescriptors:\n  - key: remote_address\n    rate_limit: ${big}\n  - key: user_per_second\n    rate_limit: ${big}\n  - key: user_per_minute\n    rate_limit: ${big}\n  - key: rate_class\n    value: auth\n    descriptors:\n      - key: remote_address\n        rate_limit: ${big}\n`;
}

function report(ms: number, loadBefore: number[], loadAfter: number[], stealPct: number) {
  const cpu = cpus();
  const machine = {
    cores: cpu.length,
    model: cpu[0]?.model,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    date: new Date().toISOString(),
    serverCore: SERVER_CORE,
    loadCore: LOAD_CORE,
    loadAverageBefore: loadBefore.map((x) => Number(x.toFixed(2))),
    loadAverageAfter: loadAfter.map((x) => Number(x.toFixed(2))),
    cpuStealPct: Number(stealPct.toFixed(1)),
  };
  const fmt = (n?: number, d = 0) => (n === undefined || Number.isNaN(n) ? "" : n.toFixed(d));
  const lines = [
    `# Benchmark results`,
    ``,
    `Machine: ${machine.cores} cores (${machine.model}), ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.date}.`,
    `Load average before ${machine.loadAverageBefore.join(" ")}, after ${machine.loadAverageAfter.join(" ")}; CPU steal during the run ${machine.cpuStealPct}%.`,
    ``,
    `Cores: every process under test (baseline servers, the product, the raw bcrypt/crypto loops) alone on core ${SERVER_CORE}; ` +
      `h2load/wrk, the Node clients of the order and login scenarios, Postgres and Redis on core ${LOAD_CORE}. ` +
      `Rows "via Envoy": the stack of npm run stack (scripts/stack) with Envoy and the auth, user and order processes on core ${SERVER_CORE} ` +
      `(their CPU us/req is the sum of those four), envoyproxy/ratelimit and Jaeger on core ${LOAD_CORE}; trace export off on both paths ` +
      `(services: OTEL_SDK_DISABLED; Envoy: sampling 0 %), rate limits raised but still checked on every request. ` +
      `The embedded start runs on all cores, as npm start does (nothing else runs then).`,
    ``,
    `Runs: ${RUNS} x ${SECONDS} s per scenario (after ${WARMUP} s warm-up for h2load), median of the runs; spread = (max - min) / median of req/s. Total ${(ms / 1000).toFixed(0)} s.`,
    ``,
    `| scenario | req/s | p50 ms | p99 ms | spread % | runs | errors | CPU us/req | ratio | target | met |`,
    `| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |`,
    ...rows.map(
      (r) =>
        `| ${r.scenario} | ${r.note ?? fmt(r.rps)} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${fmt(r.spreadPct, 0)} | ${r.runs ?? ""} | ${r.errors ?? ""} | ${fmt(r.cpuUs)} | ${r.ratio === undefined ? "" : `${r.ratio.toFixed(2)}x ${r.ratioOf}`} | ${r.target ?? ""} | ${r.met === undefined ? "" : r.met ? "yes" : "**no**"} |`,
    ),
  ];
  const missed = rows.filter((r) => r.met === false).map((r) => r.scenario.trim());
  if (missed.length) {
    lines.push("", `Missed: ${missed.join("; ")}. What bounds each, measured: bench/README.md, "What bounds the targets still missed".`);
  }
  const md = lines.join("\n") + "\n";
  const dir = new URL("./results/", import.meta.url).pathname;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "latest.md"), md);
  writeFileSync(join(dir, "latest.json"), JSON.stringify({ machine, runs: RUNS, seconds: SECONDS, warmupSeconds: WARMUP, quick: QUICK, totalSeconds: Math.round(ms / 1000), rows }, null, 2) + "\n");
  console.log(md);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
