// The real edge for the bench: the stack of `npm run stack` (scripts/stack,
// started through startStack as `npm run stack` and the tests start it) on free
// ports, on the bench's Postgres (a database of its own) and Redis, with rate
// limits raised out of the way but still evaluated (every request still asks
// envoyproxy/ratelimit, which counts in Redis), trace export off (services:
// OTEL_SDK_DISABLED; Envoy: sampling 0 %) and Envoy's local backstop raised.
//
// Cores: startStack spawns its programs from this process, so they inherit the
// load core the harness pinned itself to; Envoy and the three services are then
// moved to the server core (taskset -a: every thread), where the product runs
// in the direct scenarios. envoyproxy/ratelimit and Jaeger stay on the load
// core, beside Redis and Postgres.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePorts, startStack, type Stack } from "../../scripts/stack/index.js";
import { registerUser } from "./scenarios.js";

/** The processes whose CPU the Envoy scenarios report. */
export interface EdgePids {
  envoy: number;
  auth: number;
  user: number;
  order: number;
  ratelimit: number;
}

export interface BenchEdge {
  readonly stack: Stack;
  /** http://127.0.0.1:<envoy listener> */
  readonly url: string;
  /** An access token of a user registered through Envoy (REST POST /v1/auth/register). */
  readonly token: string;
  readonly pids: EdgePids;
  /** Envoy's request and rate-limit counters now (admin /stats: live counters), to diff against. */
  mark(): Promise<EdgeMark>;
  /** Requests Envoy received since the mark and what its rate-limit filters did with them. */
  since(m: EdgeMark): Promise<EdgeCounts>;
  /**
   * Stop Envoy (it writes out the access log it buffers) and tally its access
   * log (one JSON line per request) by request path; then close() the rest.
   */
  stopAndReadAccessLog(): Promise<Map<string, PathTally>>;
  close(): Promise<void>;
}

export type EdgeMark = Record<string, number>;

export interface EdgeCounts {
  /** Requests Envoy received (http.edge.downstream_rq_total), those cut off at the end of a run included. */
  requests: number;
  /** Checks envoyproxy/ratelimit answered (ok + over_limit). */
  limitChecks: number;
  limitOverLimit: number;
  /** Checks without an answer (error, failure_mode_allowed: Envoy failed open). */
  limitErrors: number;
  /** Refusals of Envoy's local token bucket. */
  localLimited: number;
}

export interface PathTally {
  answered: number;
  /** Still in flight when the load generator closed its connections (flag DC): not errors. */
  cutOff: number;
  /** Answered with an HTTP status other than 200 or a gRPC status other than OK (Envoy's own refusals included). */
  failed: number;
  /** Why, e.g. "429 ResourceExhausted request_rate_limited": count. */
  reasons: Record<string, number>;
}

/** The rate-limit config of the Envoy scenarios: the product's descriptors with generous numbers. */
export const BENCH_EDGE_LIMITS = `domain: acme
descriptors:
  - key: remote_address
    rate_limit: { unit: second, requests_per_unit: 100000 }
  - key: user_per_second
    rate_limit: { unit: second, requests_per_unit: 100000 }
  - key: user_per_minute
    rate_limit: { unit: minute, requests_per_unit: 6000000 }
  - key: rate_class
    value: auth
    descriptors:
      - key: remote_address
        rate_limit: { unit: second, requests_per_unit: 100000 }
`;

export interface BenchEdgeOptions {
  /** The bench's Postgres (a database is created on it). */
  postgresUrl: string;
  /** The bench's Redis (the stack uses its logical database 1). */
  redisUrl: string;
  /** Core for Envoy and the services. */
  serverCore: string;
  log: (line: string) => void;
}

interface ProcInfo {
  pid: number;
  ppid: number;
  args: string[];
}

function processes(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const args = readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0").filter(Boolean);
      out.push({ pid: Number(d), ppid, args });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * The pids of the stack's programs, from /proc (the Stack interface does not
 * expose its processes): Envoy by its config path (under the stack's dir), the
 * others as children of this process by their command line.
 */
export function findEdgePids(stackDir: string): EdgePids {
  const all = processes();
  const config = join(stackDir, "logs", "envoy.yaml");
  const mine = all.filter((p) => p.ppid === process.pid);
  const one = (what: string, list: ProcInfo[]) => {
    if (list.length !== 1) throw new Error(`bench: expected one ${what} process, found ${list.length} (${list.map((p) => p.pid).join(", ")})`);
    return list[0].pid;
  };
  const service = (name: string) =>
    one(name, mine.filter((p) => p.args.at(-1) === name && p.args.some((a) => a.endsWith("scripts/start.mjs"))));
  return {
    envoy: one("envoy", all.filter((p) => p.args.includes(config))),
    auth: service("auth"),
    user: service("user"),
    order: service("order"),
    ratelimit: one("ratelimit", mine.filter((p) => p.args[0]?.endsWith("/bin/ratelimit"))),
  };
}

/** Move a process, every thread, to a core. */
export function pin(pid: number, core: string): void {
  execFileSync("taskset", ["-a", "-cp", core, String(pid)], { stdio: "ignore" });
}

/** The cores a process may run on (/proc/<pid>/status Cpus_allowed_list). */
export function coresOf(pid: number): string {
  return /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? "?";
}

export async function createDatabase(serverUrl: string, name: string): Promise<string> {
  const c = new pg.Client(serverUrl);
  await c.connect();
  try {
    await c.query(`create database ${name}`);
  } finally {
    await c.end();
  }
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

export async function dropDatabase(serverUrl: string, name: string): Promise<void> {
  const c = new pg.Client(serverUrl);
  await c.connect();
  try {
    await c.query(`drop database if exists ${name} with (force)`);
  } finally {
    await c.end();
  }
}

/** Counters of Envoy's admin /stats (live values) whose names match a regular expression. */
async function envoyCounters(adminUrl: string, filter: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${adminUrl}/stats?filter=${encodeURIComponent(filter)}`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = /^(\S+): (\d+)$/.exec(line.trim());
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** Envoy's access log (stdout, in its log file) tallied by path (the REST path for REST calls). */
export function tallyAccessLog(file: string): Map<string, PathTally> {
  const out = new Map<string, PathTally>();
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.startsWith("{")) continue; // Envoy's own log lines
    let e: { path?: string; status?: number | string; grpc_status?: string | null; flags?: string; details?: string };
    try {
      e = JSON.parse(line);
    } catch {
      continue;
    }
    const path = e.path ?? "?";
    let t = out.get(path);
    if (!t) out.set(path, (t = { answered: 0, cutOff: 0, failed: 0, reasons: {} }));
    if (e.flags?.split(",").includes("DC")) {
      t.cutOff++;
      continue;
    }
    t.answered++;
    const grpc = e.grpc_status ?? "-";
    if (String(e.status) !== "200" || !(grpc === "OK" || grpc === "0" || grpc === "-" || grpc === "")) {
      t.failed++;
      const why = `${e.status} ${grpc} ${e.details ?? ""}`.trim();
      t.reasons[why] = (t.reasons[why] ?? 0) + 1;
    }
  }
  return out;
}

/** Start the stack for the bench; closed by close() (also when anything after the start fails). */
export async function startBenchEdge(o: BenchEdgeOptions): Promise<BenchEdge> {
  const dir = mkdtempSync(join(tmpdir(), "bench-stack-"));
  const limits = join(dir, "ratelimit.yaml");
  writeFileSync(limits, BENCH_EDGE_LIMITS);
  const dbName = `bench_envoy_${process.pid}_${Date.now().toString(36)}`;
  const redis = new URL(o.redisUrl);
  if (redis.pathname === "" || redis.pathname === "/") redis.pathname = "/1";
  let stack: Stack | undefined;
  let dbCreated = false;
  const close = async () => {
    try {
      await stack?.close();
    } finally {
      stack = undefined;
      if (dbCreated) await dropDatabase(o.postgresUrl, dbName).catch(() => {});
      dbCreated = false;
      rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    const databaseUrl = await createDatabase(o.postgresUrl, dbName);
    dbCreated = true;
    stack = await startStack({
      dir: join(dir, "stack"),
      ports: await freePorts(),
      databaseUrl,
      redisUrl: redis.toString(),
      ratelimitConfig: limits,
      env: {
        BCRYPT_COST: "10",
        LOG_LEVEL: "warn",
        // No trace export from the services (Envoy: sampling 0 below), as the direct scenarios.
        OTEL_SDK_DISABLED: "true",
        ORDER_SWEEP_INTERVAL_MS: "0",
        SHUTDOWN_GRACE_MS: "2000",
      },
      edge: (s) => ({
        ...s,
        tracing: { ...s.tracing, sampling_percent: 0 },
        // The per-instance backstop (400 tokens, 200/s) would refuse the load.
        local_rate_limit: { max_tokens: 1000000, tokens_per_fill: 1000000, fill_interval: "1s" },
      }),
      envoyLogLevel: "warn",
      progress: (l) => o.log(`stack: ${l.trim()}`),
    });
    const s = stack;
    const pids = findEdgePids(s.dir);
    for (const name of ["envoy", "auth", "user", "order"] as const) pin(pids[name], o.serverCore);
    o.log(`stack: cores: ${Object.entries(pids).map(([n, p]) => `${n} (${p}) ${coresOf(p)}`).join(", ")}`);
    const user = await registerUser(s.edgeUrl);
    const counters = () => envoyCounters(s.adminUrl, "^http\\.edge\\.downstream_rq_total$|rate_?limit");
    return {
      stack: s,
      url: s.edgeUrl,
      token: user.accessToken,
      pids,
      mark: counters,
      since: async (m) => {
        const now = await counters();
        const sum = (suffix: string) =>
          Object.entries(now)
            .filter(([k]) => k.endsWith(suffix))
            .reduce((a, [k, v]) => a + v - (m[k] ?? 0), 0);
        return {
          requests: sum("http.edge.downstream_rq_total"),
          limitChecks: sum(".ratelimit.ok") + sum(".ratelimit.over_limit"),
          limitOverLimit: sum(".ratelimit.over_limit"),
          limitErrors: sum(".ratelimit.error") + sum(".ratelimit.failure_mode_allowed"),
          localLimited: sum(".http_local_rate_limit.rate_limited"),
        };
      },
      stopAndReadAccessLog: async () => {
        await s.stop("envoy");
        return tallyAccessLog(join(s.dir, "logs", "envoy.log"));
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
