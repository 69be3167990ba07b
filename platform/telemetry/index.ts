// Observability of one serving process, assembled for the composition root
// (app/system.ts): the RPC interceptor (spans, RED metrics, access log),
// /metrics and /health, the HTTP span around the edge's REST handlers, pool
// gauges and trace ids in every log line.
//
// The OpenTelemetry SDK itself is started earlier, by the preload
// (register.ts); without it everything here still works, minus the spans.
import type { Interceptor, Transport } from "@connectrpc/connect";
import type { Database } from "../db.js";
import type { HealthState } from "../health.js";
import type { KeyValueStore } from "../kv.js";
import type { Logger } from "../logger.js";
import type { HttpHandler } from "../server.js";
import { installLogContext } from "./context.js";
import { healthHandler, type HealthSources } from "./health.js";
import { collectProcessMetrics, METRIC, metrics, metricsHandler, type MetricsRegistry } from "./metrics.js";
import { traceHttp } from "./http-server.js";
import { serverObservability } from "./rpc-server.js";

export { metrics, METRIC } from "./metrics.js";
export { serverObservability } from "./rpc-server.js";
export { clientObservability, propagateContext } from "./rpc-client.js";
export { startEdgeSpan, traceHttp } from "./http-server.js";
export { setHttpRoute } from "./edge-naming.js";
export { REQUEST_ID_HEADER, requestIdFrom, currentRequestId } from "./request-id.js";
export { tracedDialect } from "./kysely.js";

export interface ObservabilityOptions {
  log: Logger;
  db: Database;
  kv: KeyValueStore;
  health: HealthState;
  /** Services hosted in this process, with their gRPC service type names (read per /health probe). */
  local: () => ReadonlyArray<{ name: string; services: readonly string[] }>;
  /** Services elsewhere that this port fronts (the edge), asked with grpc.health.v1. */
  remote?: () => ReadonlyArray<{ name: string; transport: Transport }>;
  /** The message bus and the hosted outboxes, reported by /health (platform/telemetry/health.ts). */
  events?: Pick<HealthSources, "bus" | "outboxes" | "maxOutboxLagMs">;
  registry?: MetricsRegistry;
}

export interface Observability {
  /** First server interceptor, on the port and on in-process router transports. */
  readonly rpc: Interceptor;
  /** GET /metrics (Prometheus text): put it before the other HTTP handlers. */
  readonly metrics: HttpHandler;
  /** GET /health (aggregated): put it before the other HTTP handlers. */
  readonly health: HttpHandler;
  /** Wrap the plain HTTP handlers (edge REST, JWKS) in a server span per request. */
  traceHttp(handlers: readonly HttpHandler[]): HttpHandler;
  /** For authInterceptor's onRejected: counts refused tokens by reason. */
  onTokenRejected(path: string, reason: string): void;
  close(): void;
}

export function observability(opts: ObservabilityOptions): Observability {
  const registry = opts.registry ?? metrics;
  installLogContext();
  collectProcessMetrics(registry);
  const unregister = registry.collect(() => {
    const s = opts.db.poolStats();
    const labels = { db: opts.db.kind };
    registry.gauge(METRIC.dbPoolTotal, labels, s.total);
    registry.gauge(METRIC.dbPoolIdle, labels, s.idle);
    registry.gauge(METRIC.dbPoolWaiting, labels, s.waiting);
  });
  const probes = new Set(["/metrics", "/health"]);
  return {
    rpc: serverObservability({ log: opts.log, registry }),
    metrics: metricsHandler(registry),
    health: healthHandler({ db: opts.db, kv: opts.kv, state: opts.health, local: opts.local, remote: opts.remote, ...opts.events }),
    traceHttp: (handlers) => traceHttp(handlers, { log: opts.log, registry, skip: (p) => probes.has(p) }),
    onTokenRejected: (_path, reason) => registry.counter(METRIC.tokenRejections, { reason }),
    close: unregister,
  };
}
