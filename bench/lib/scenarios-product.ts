// The product under load: `npm start` against a throwaway Postgres and Redis,
// its authenticated reads (gRPC, REST, and through Envoy), orders and catalogue
// search (scenarios-catalogue.ts), logins, reads during a login storm, memory,
// and the pieces of a read (bench/micro.ts). BENCH_ONLY picks some of them.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, startPostgres, startRedis } from "../../test/support/servers.js";
import { processCpuMs } from "./cpu.js";
import { h2load, wrk } from "./load.js";
import { peakRssMb, pidOf, rssMb, runPinned, startSystem } from "./procs.js";
import type { Row } from "./report.js";
import { emptyRequest, grpcHeaders, IN_FLIGHT, log, QUICK, repeat, RUNS, SECONDS, WARMUP, wants } from "./run-settings.js";
import type { Baselines } from "./scenarios-baselines.js";
import { orderRows, searchRows } from "./scenarios-catalogue.js";
import { throughEnvoy } from "./scenarios-envoy.js";
import { loginLoad, loginStorm, registerUser, rpcErrors } from "./scenarios.js";
import { median as med, summarise, type RunResult } from "./stats.js";

/** Offered load of the latency-under-login-storm check. */
const STORM_READ_RPS = 200;

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

function benchRateLimits(): string {
  // The product's limits would throttle a benchmark; same shape, huge numbers.
  const big = "{unit: second, requests_per_unit: 100000000}";
  return `domain: acme\ndescriptors:\n  - key: remote_address\n    rate_limit: ${big}\n  - key: user_per_second\n    rate_limit: ${big}\n  - key: user_per_minute\n    rate_limit: ${big}\n  - key: rate_class\n    value: auth\n    descriptors:\n      - key: remote_address\n        rate_limit: ${big}\n`;
}

/** The product's rows, and the rate "GetMe at half load" offered (0 if it never ran). Baselines: for the reads and logins. */
export async function productScenarios(b: Baselines | undefined): Promise<{ rows: Row[]; halfRate: number }> {
  const rows: Row[] = [];
  log("system: Postgres + Redis + npm start (app/main.ts)");
  const [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
  const dataDir = mkdtempSync(join(tmpdir(), "bench-data-"));
  const rlConfig = join(dataDir, "ratelimit.yaml");
  writeFileSync(rlConfig, benchRateLimits());
  const env = { DATABASE_URL: pg.url, REDIS_URL: redis.url, DATA_DIR: dataDir, RATELIMIT_CONFIG: rlConfig, LOG_LEVEL: "warn", BCRYPT_COST: "12", HOST: "127.0.0.1", OTEL_SDK_DISABLED: "true",
    // Demo products to order (100,000 units each); the bench user orders without reading its verification mail.
    CATALOGUE_SEED: "demo", VERIFIED_EMAIL_POLICY: "off" };
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
    if (wants("reads")) {
      const { grpcJs, httpJson } = b!;
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
      rows.push(...(await throughEnvoy(pg.url, redis.url, { getMe: read, rest })));
    }

    // So that the RSS row below can be read with and without the catalogue's rows (100,000 products searched).
    log(`product peak RSS before the order and search rows: ${peakRssMb(pid).toFixed(0)} MB`);
    const underTest = { base, pid, token: user.accessToken, pgUrl: pg.url, env };
    if (wants("orders")) rows.push(...(await orderRows(underTest)));
    if (wants("search")) rows.push(...(await searchRows(underTest)));

    if (wants("logins")) {
      const { bcrypt } = b!;
      log("scenario: login throughput (bcrypt 12), 4 clients");
      const logins = await loginLoad(base, user, QUICK ? 4 : 10, 4);
      const loginRatio = logins.rps / bcrypt;
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
      rows.push({ scenario: "  logins/s during those storms (4 clients)", rps: stormLogin.rps, errors: stormLogin.errors, runs: RUNS, ratio: stormLogin.rps / bcrypt, ratioOf: "raw bcrypt" });
    }

    const peak = peakRssMb(pidOf(sys));
    rows.push({ scenario: "RSS after start / peak over all scenarios (MB)", note: `${rssRest.toFixed(0)} / ${peak.toFixed(0)}`, target: "< 250 MB", met: peak < 250 });

    // What an authenticated read is made of: each piece alone on the server core (bench/micro.ts).
    if (wants("pieces")) {
      log("pieces of an authenticated read, each alone (bench/micro.ts)");
      const pieces = JSON.parse(await runPinned("bench/micro.ts", [pg.url, redis.url])) as { piece: string; usPerOp: number; opsPerSec: number }[];
      for (const p of pieces) rows.push({ scenario: `  piece: ${p.piece}`, rps: p.opsPerSec, cpuUs: p.usPerOp });
      // The metrics of one RPC under each library considered (bench/metrics-cost.ts): why prom-client.
      log("metrics per RPC: prom-client vs OpenTelemetry's SDK (bench/metrics-cost.ts)");
      const metricCosts = JSON.parse(await runPinned("bench/metrics-cost.ts", ["--json"])) as { option: string; usPerRpc: number }[];
      for (const m of metricCosts) rows.push({ scenario: `  metrics per RPC: ${m.option}`, cpuUs: m.usPerRpc });
    }
  } finally {
    await sys.stop();
    await Promise.all([pg.stop(), redis.stop()]);
    rmSync(dataDir, { recursive: true, force: true });
  }
  return { rows, halfRate };
}
