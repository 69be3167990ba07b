// GET /health: every service this port answers for and its dependencies
// (Postgres `select 1`, Redis PING), each with status and latency; 200 when
// all are up, 503 otherwise. watchDependencies probes the same two in the
// background and turns grpc.health.v1 NOT_SERVING while one is down. Services hosted elsewhere (when the embedded edge
// fronts remote ones) are asked with grpc.health.v1 Check. The probes are not
// traced: a scrape every few seconds would bury the real traces.
// The message broker and each outbox's lag are reported too: a broker down or an
// outbox lagging makes the report "degraded" (200), not "down": the API keeps
// working and the events wait in the outboxes (docs/events.md).
import { suppressTracing } from "@opentelemetry/core";
import { context } from "@opentelemetry/api";
import { createClient, type Transport } from "@connectrpc/connect";
import { sql } from "kysely";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/health/v1/health_pb.js";
import type { Database } from "../db.js";
import type { HealthState } from "../health.js";
import type { KeyValueStore } from "../kv.js";
import type { Logger } from "../logger.js";
import { int } from "../config.js";
import type { HttpHandler } from "../server.js";

export interface Check {
  status: "up" | "down";
  latency_ms: number;
  /** Why it is down (a short, non-sensitive reason). */
  error?: string;
  [extra: string]: unknown;
}

export interface ServiceHealth extends Check {
  /** Hosted in this process ("local") or asked over gRPC ("remote"). */
  where: "local" | "remote";
  dependencies: Record<string, Check>;
  /** Age in ms of the oldest event its outbox has not published yet (0: all published). */
  outbox_lag_ms?: number;
}

export interface HealthReport {
  /** "degraded": everything serves, but the broker is down or an outbox lags (events wait). */
  status: "up" | "degraded" | "down";
  time: string;
  services: Record<string, ServiceHealth>;
  dependencies: Record<string, Check>;
}

export interface HealthSources {
  db: Database;
  kv: KeyValueStore;
  state: HealthState;
  /** Services hosted here: name -> gRPC service type names. Read on each probe. */
  local: () => ReadonlyArray<{ name: string; services: readonly string[] }>;
  /** Services elsewhere that this port fronts: name -> transport to ask. */
  remote?: () => ReadonlyArray<{ name: string; transport: Transport }>;
  /** The message bus (its outage degrades, it stops no service). */
  bus?: { readonly kind: string; healthy(): Promise<boolean> };
  /** Hosted services with an outbox, and the age of its oldest unsent event. */
  outboxes?: () => ReadonlyArray<{ name: string; lagMs(): Promise<number> }>;
  /** An outbox lag above this degrades the report (HEALTH_OUTBOX_LAG_MAX_MS, default 60000). */
  maxOutboxLagMs?: number;
  /** Per check, default 1000 ms. */
  timeoutMs?: number;
}

/** HEALTH_OUTBOX_LAG_MAX_MS, default 60 s. */
export const maxOutboxLagMs = (env: Record<string, string | undefined> = process.env) => int(env, "HEALTH_OUTBOX_LAG_MAX_MS", 60_000, 100, 86_400_000);

const round = (ms: number) => Math.round(ms * 100) / 100;

async function timed(fn: (signal: AbortSignal) => Promise<unknown>, timeoutMs: number, extra: Record<string, unknown> = {}): Promise<Check> {
  const t = performance.now();
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      fn(ac.signal),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { status: "up", latency_ms: round(performance.now() - t), ...extra };
  } catch (err) {
    ac.abort();
    return { status: "down", latency_ms: round(performance.now() - t), error: reason(err), ...extra };
  } finally {
    clearTimeout(timer);
  }
}

/** A reason safe to show: error code or class and a short message, no connection strings. */
function reason(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; name?: unknown };
  const code = typeof e?.code === "string" ? e.code : undefined;
  const msg = typeof e?.message === "string" ? e.message.replace(/\b\w+:\/\/\S+/g, "<url>").slice(0, 120) : "error";
  return code ? `${code}: ${msg}` : msg;
}

/** Postgres `select 1` and Redis PING, each bounded by timeoutMs, untraced. */
function probeDependencies(src: Pick<HealthSources, "db" | "kv">, timeoutMs: number): Promise<{ postgres: Check; redis: Check }> {
  return context.with(suppressTracing(context.active()), async () => {
    const [postgres, redis] = await Promise.all([
      timed(() => sql`select 1`.execute(src.db.db), timeoutMs, { kind: src.db.kind }),
      timed(() => src.kv.ping(), timeoutMs, { kind: src.kv.kind }),
    ]);
    return { postgres, redis };
  });
}

export interface DependencyWatchOptions {
  db: Database;
  kv: KeyValueStore;
  state: HealthState;
  log: Logger;
  /** HEALTH_PROBE_INTERVAL_MS: time between two probes (default 1000 ms). */
  intervalMs?: number;
  /** Per probe, default 1000 ms. */
  timeoutMs?: number;
}

/** HEALTH_PROBE_INTERVAL_MS, default 1000 ms. */
export const probeIntervalMs = (env: Record<string, string | undefined> = process.env) => int(env, "HEALTH_PROBE_INTERVAL_MS", 1000, 100, 60_000);

/**
 * Probe Postgres and Redis every intervalMs and keep the health state in
 * step: a dependency down makes every service of this process NOT_SERVING in
 * grpc.health.v1 (Envoy's active health checks see it), back up makes them
 * SERVING again. Each change is logged once. A probe of a dependency whose
 * circuit is open (platform/dependency.ts) is its half-open probe: the one
 * that closes the circuit when the dependency is back.
 */
export function watchDependencies(opts: DependencyWatchOptions): { stop(): Promise<void> } {
  const intervalMs = opts.intervalMs ?? 1000;
  const timeoutMs = opts.timeoutMs ?? 1000;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const round = async () => {
    const checks = await probeDependencies(opts, timeoutMs);
    if (stopped) return;
    for (const [name, check] of Object.entries(checks)) {
      const wasDown = name in opts.state.degraded();
      opts.state.setDependency(name, check.status === "up", check.error);
      if (check.status === "down" && !wasDown) opts.log.warn("dependency down: services NOT_SERVING until it answers", { dependency: name, reason: check.error });
      if (check.status === "up" && wasDown) opts.log.info("dependency back up: services SERVING", { dependency: name });
    }
  };
  const loop = () => {
    if (stopped) return;
    running = round().catch((err) => opts.log.error("dependency probe failed", { err }));
    void running.finally(() => {
      if (!stopped) timer = setTimeout(loop, intervalMs).unref();
    });
  };
  loop();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

export async function checkHealth(src: HealthSources): Promise<HealthReport> {
  const timeoutMs = src.timeoutMs ?? 1000;
  // Probes run with tracing suppressed (no pg/redis spans for them).
  return context.with(suppressTracing(context.active()), async () => {
    const [{ postgres, redis }, broker, lags] = await Promise.all([
      probeDependencies(src, timeoutMs),
      src.bus &&
        timed(async () => {
          if (!(await src.bus!.healthy())) throw new Error("not connected");
        }, timeoutMs, { kind: src.bus.kind }),
      Promise.all((src.outboxes?.() ?? []).map(async (o) => [o.name, await o.lagMs().catch(() => undefined)] as const)),
    ]);
    const dependencies: Record<string, Check> = { postgres, redis, ...(broker ? { broker } : {}) };
    const lagOf = new Map(lags);
    const services: Record<string, ServiceHealth> = {};
    for (const { name, services: typeNames } of src.local()) {
      const t = performance.now();
      const notServing = typeNames.filter((s) => src.state.base(s) !== Status.SERVING);
      const deps = { postgres, redis };
      const depsDown = Object.entries(deps).filter(([, c]) => c.status === "down").map(([n]) => n);
      const problems = [...notServing.map((s) => `${s} not serving`), ...depsDown.map((d) => `${d} down`)];
      services[name] = {
        status: problems.length ? "down" : "up",
        latency_ms: round(performance.now() - t),
        where: "local",
        ...(problems.length ? { error: problems.join("; ") } : {}),
        dependencies: deps,
        ...(lagOf.get(name) !== undefined ? { outbox_lag_ms: Math.round(lagOf.get(name)!) } : {}),
      };
    }
    const remote = src.remote?.() ?? [];
    await Promise.all(
      remote.map(async ({ name, transport }) => {
        const client = createClient(Health, transport);
        let status: Status | undefined;
        const check = await timed(async (signal) => {
          status = (await client.check({ service: "" }, { signal, timeoutMs })).status;
          if (status !== Status.SERVING) throw new Error(`status ${Status[status]}`);
        }, timeoutMs);
        services[name] = { ...check, where: "remote", dependencies: {} };
      }),
    );
    const all = [...Object.values(services), postgres, redis];
    const maxLag = src.maxOutboxLagMs ?? 60_000;
    const lagging = [...lagOf.values()].some((ms) => ms !== undefined && ms > maxLag);
    const status: HealthReport["status"] = !all.every((c) => c.status === "up") ? "down" : broker?.status === "down" || lagging ? "degraded" : "up";
    return {
      status,
      time: new Date().toISOString(),
      services,
      dependencies,
    };
  });
}

/** GET /health (and HEAD): the report as JSON, 200 when everything is up, 503 otherwise. */
export function healthHandler(src: HealthSources, path = "/health"): HttpHandler {
  return async (req, res) => {
    const url = req.url ?? "";
    const q = url.indexOf("?");
    if ((q === -1 ? url : url.slice(0, q)) !== path) return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" });
      res.end("method not allowed\n");
      return true;
    }
    const report = await checkHealth(src);
    res.writeHead(report.status === "down" ? 503 : 200, { "content-type": "application/json", "cache-control": "no-store" });
    if (req.method === "HEAD") res.end();
    else res.end(JSON.stringify(report));
    return true;
  };
}
