// The direct reads again through the real Envoy of `npm run stack`
// (bench/lib/edge.ts), with the CPU each program of the stack spends per request.
import { processCpuMs } from "./cpu.js";
import { startBenchEdge, type BenchEdge, type EdgeCounts, type EdgePids } from "./edge.js";
import { h2load, wrk } from "./load.js";
import { SERVER_CORE } from "./procs.js";
import type { Row } from "./report.js";
import { emptyRequest, grpcHeaders, IN_FLIGHT, log, repeat, SECONDS, WARMUP } from "./run-settings.js";
import { median as med, type RunResult } from "./stats.js";

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

/** The row under a read through Envoy: CPU us/req of each program, and what the rate limits did. */
function breakdown(edge: BenchEdge, m: ReturnType<typeof edgeCpuPerRequest>, what: string): Row {
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
}

/**
 * GET /v1/users/me (wrk) and GetMe (h2load) through the real Envoy of `npm
 * run stack` (bench/lib/edge.ts: Envoy, envoyproxy/ratelimit, auth/user/order
 * as processes), the same loads as the direct rows, reported as ratios to them.
 * Errors: h2load/wrk's, and every request Envoy's access log shows answered
 * with another HTTP status than 200 or another gRPC status than OK (Envoy
 * answers gRPC calls, its own refusals included, with HTTP 200).
 */
export async function throughEnvoy(postgresUrl: string, redisUrl: string, direct: { getMe: RunResult; rest: RunResult }): Promise<Row[]> {
  log("stack: Envoy, envoyproxy/ratelimit, Jaeger, auth/user/order (scripts/stack) on the bench's Postgres and Redis");
  const edge = await startBenchEdge({ postgresUrl, redisUrl, serverCore: SERVER_CORE, log });
  const rows: Row[] = [];
  try {
    const auth = { authorization: `Bearer ${edge.token}` };

    log("scenario: GetMe through Envoy, 50 in flight");
    const getMePath = "/acme.user.v1.UserService/GetMe";
    const grpcCpu = edgeCpuPerRequest(edge);
    const getMe = await repeat(() =>
      grpcCpu.measure(() => h2load({ url: `${edge.url}${getMePath}`, body: emptyRequest, headers: { ...grpcHeaders, ...auth }, ...IN_FLIGHT, seconds: SECONDS, warmupSeconds: WARMUP })),
    );
    const getMeRow: Row = { scenario: "authenticated gRPC read via Envoy: GetMe through Envoy's listener, 50 in flight", ...getMe, cpuUs: grpcCpu.serverCore(), ratio: getMe.rps / direct.getMe.rps, ratioOf: "direct GetMe" };
    rows.push(getMeRow, breakdown(edge, grpcCpu, "GetMe"));

    log("scenario: REST read through Envoy (GET /v1/users/me)");
    const restPath = "/v1/users/me";
    await wrk({ url: `${edge.url}${restPath}`, headers: auth, connections: 50, seconds: WARMUP }); // warm-up (wrk has no warm-up of its own)
    const restCpu = edgeCpuPerRequest(edge);
    const rest = await repeat(() => restCpu.measure(() => wrk({ url: `${edge.url}${restPath}`, headers: auth, connections: 50, seconds: SECONDS })));
    const restRow: Row = { scenario: "REST read via Envoy: GET /v1/users/me (transcoded to GetMe), 50 connections", ...rest, cpuUs: restCpu.serverCore(), ratio: rest.rps / direct.rest.rps, ratioOf: "direct REST read" };
    rows.push(restRow, breakdown(edge, restCpu, "REST read"));

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
  return rows;
}
