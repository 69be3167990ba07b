// Prometheus metrics through prom-client (its registry and text exposition),
// behind a small facade that declares each family on first use from the
// table below and bounds its series. Served at GET /metrics on the
// operator's listener (metrics-server.ts); independent of tracing.
//
//   import { metrics, METRIC } from "../platform/telemetry/metrics.js";
//   metrics.counter(METRIC.lockouts, { scope: "account" });
//   metrics.counter(METRIC.rateLimitRejections, { source: "edge", descriptor: "login" });
//
// Label values must come from a small fixed set (codes, reasons, method
// names): never user input, ids or emails. A family keeps at most
// MAX_SERIES label combinations; further ones are dropped and counted in
// acme_metrics_dropped_series_total.
import client from "prom-client";
import type { NodeRequest, NodeResponse, HttpHandler } from "../server.js";

export type Labels = Readonly<Record<string, string | number | boolean | undefined>>;
export type MetricKind = "counter" | "gauge" | "histogram";

/** Latency buckets in seconds (1 ms .. 10 s). */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Names of the product's metrics, with their help text below. */
export const METRIC = {
  // RPC RED, named as go-grpc-prometheus does so existing dashboards work.
  rpcServerStarted: "grpc_server_started_total",
  rpcServerHandled: "grpc_server_handled_total",
  rpcServerSeconds: "grpc_server_handling_seconds",
  rpcServerInFlight: "grpc_server_in_flight",
  rpcClientHandled: "grpc_client_handled_total",
  rpcClientSeconds: "grpc_client_handling_seconds",
  // REST/HTTP requests through the embedded edge (and other plain HTTP).
  httpRequests: "acme_http_server_requests_total",
  httpSeconds: "acme_http_server_request_duration_seconds",
  // Database pool.
  dbPoolTotal: "acme_db_pool_connections",
  dbPoolIdle: "acme_db_pool_idle_connections",
  dbPoolWaiting: "acme_db_pool_waiting_clients",
  // Security events, incremented by the auth service and the rate limiters.
  loginFailures: "acme_auth_login_failures_total",
  lockouts: "acme_auth_lockouts_total",
  tokenRejections: "acme_auth_token_rejections_total",
  rateLimitRejections: "acme_ratelimit_rejections_total",
  droppedSeries: "acme_metrics_dropped_series_total",
  // Events: the outbox relays and the consumers (platform/outbox.ts, platform/bus/).
  eventsPublished: "acme_events_published_total",
  eventsPublishFailures: "acme_events_publish_failures_total",
  eventsConsumed: "acme_events_consumed_total",
  outboxLag: "acme_outbox_lag_seconds",
} as const;

const HELP: Record<string, [MetricKind, string]> = {
  [METRIC.rpcServerStarted]: ["counter", "RPCs started on the server."],
  [METRIC.rpcServerHandled]: ["counter", "RPCs completed on the server, by gRPC status code."],
  [METRIC.rpcServerSeconds]: ["histogram", "Server-side RPC latency in seconds, until the response (or the last message) is produced."],
  [METRIC.rpcServerInFlight]: ["gauge", "RPCs being handled right now."],
  [METRIC.rpcClientHandled]: ["counter", "RPCs completed by this process's clients, by gRPC status code."],
  [METRIC.rpcClientSeconds]: ["histogram", "Client-side RPC latency in seconds."],
  [METRIC.httpRequests]: ["counter", "Plain HTTP (REST) requests, by method, RPC they were transcoded to and status."],
  [METRIC.httpSeconds]: ["histogram", "Plain HTTP (REST) request latency in seconds."],
  [METRIC.dbPoolTotal]: ["gauge", "Open database connections (pool size in use or idle)."],
  [METRIC.dbPoolIdle]: ["gauge", "Idle database connections in the pool."],
  [METRIC.dbPoolWaiting]: ["gauge", "Queries waiting for a database connection."],
  [METRIC.loginFailures]: ["counter", "Failed logins (no reason: it would tell who has an account; the audit log has it)."],
  [METRIC.lockouts]: ["counter", "Accounts or clients locked out after repeated failures."],
  [METRIC.tokenRejections]: ["counter", "Access tokens refused by the auth interceptor, by reason."],
  [METRIC.rateLimitRejections]: ["counter", "Requests rejected by a rate limit, by source and descriptor."],
  [METRIC.droppedSeries]: ["counter", "Label combinations dropped because a family reached its series limit."],
  [METRIC.eventsPublished]: ["counter", "Events the outbox relays published (confirmed by the bus), by exchange."],
  [METRIC.eventsPublishFailures]: ["counter", "Publishes the bus refused or did not confirm (the events wait in the outbox), by exchange."],
  [METRIC.eventsConsumed]: ["counter", "Deliveries handled by consumers, by queue and outcome (ok, retried, dead_lettered)."],
  [METRIC.outboxLag]: ["gauge", "Age of the oldest unsent event of an outbox, in seconds (0 when empty)."],
};

const MAX_SERIES = 2000;
const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

const sanitize = (name: string, re: RegExp) => (re.test(name) ? name : name.replace(/[^a-zA-Z0-9_]/g, "_").replace(/^([0-9])/, "_$1"));

/** One series, resolved once (for hot paths: no label sorting or lookup per call). */
export interface SeriesHandle {
  inc(by?: number): void;
  add(by: number): void;
  set(value: number): void;
  observe(value: number): void;
}

type Metric = client.Counter | client.Gauge | client.Histogram;

interface Family {
  readonly name: string;
  readonly kind: MetricKind;
  readonly labelNames: readonly string[];
  readonly metric: Metric;
  /** Its series, by label values (at most MAX_SERIES): prom-client's labelled children, kept. */
  readonly series: Map<string, SeriesHandle>;
}

const nothing = () => {};
const NOOP: SeriesHandle = { inc: nothing, add: nothing, set: nothing, observe: nothing };

/** A handle on prom-client's child for one label set (the family itself when it has no labels). */
function seriesOf(fam: Family, values: Record<string, string>): SeriesHandle {
  const labelled = fam.labelNames.length > 0;
  if (fam.kind === "counter") {
    const c = labelled ? (fam.metric as client.Counter).labels(values) : (fam.metric as client.Counter);
    const inc = (by = 1) => {
      if (by >= 0) c.inc(by);
    };
    return { inc, add: inc, set: nothing, observe: nothing };
  }
  if (fam.kind === "gauge") {
    const g = labelled ? (fam.metric as client.Gauge).labels(values) : (fam.metric as client.Gauge);
    return { inc: (by = 1) => g.inc(by), add: (by) => g.inc(by), set: (v) => g.set(v), observe: nothing };
  }
  const h = labelled ? (fam.metric as client.Histogram).labels(values) : (fam.metric as client.Histogram);
  return { inc: nothing, add: nothing, set: nothing, observe: (v) => h.observe(v) };
}

export class MetricsRegistry {
  /** prom-client's registry: what GET /metrics renders. */
  readonly prom = new client.Registry();
  private readonly families = new Map<string, Family>();
  private readonly declared = new Map<string, { kind: MetricKind; help: string; buckets?: number[] }>();
  private readonly collectors = new Set<() => void>();

  /** Declare a family's kind and help text before its first use (optional: undeclared ones take the table's or none). */
  describe(name: string, kind: MetricKind, help: string, buckets?: number[]): void {
    this.declared.set(sanitize(name, NAME_RE), { kind, help, buckets });
  }

  /** Add `by` (default 1) to a counter. */
  counter(name: string, labels: Labels = {}, by = 1): void {
    if (by >= 0) this.series(name, "counter", labels).inc(by);
  }

  /** Set a gauge. */
  gauge(name: string, labels: Labels, value: number): void {
    this.series(name, "gauge", labels).set(value);
  }

  /** Add to a gauge (negative to subtract). */
  add(name: string, labels: Labels, by: number): void {
    this.series(name, "gauge", labels).add(by);
  }

  /** Record one observation in a histogram. */
  observe(name: string, labels: Labels, value: number): void {
    this.series(name, "histogram", labels).observe(value);
  }

  /** A handle on one series of a family, for code that records it on every request. */
  handle(name: string, kind: MetricKind, labels: Labels = {}): SeriesHandle {
    return this.series(name, kind, labels);
  }

  /** Run `fn` before every render (to set gauges from pools etc.). Returns an unregister function. */
  collect(fn: () => void): () => void {
    this.collectors.add(fn);
    return () => this.collectors.delete(fn);
  }

  /** Current value of one series (counters, gauges; histograms: the count). Tests and health. */
  async value(name: string, labels: Labels = {}): Promise<number | undefined> {
    const want = this.labelValues(labels);
    const found = (await this.samples(name)).find((v) => sameLabels(v.labels, want));
    return found?.value;
  }

  /** Sum over every series of a family whose labels include `match` (histograms: counts). */
  async sum(name: string, match: Labels = {}): Promise<number> {
    const want = this.labelValues(match);
    let total = 0;
    for (const v of await this.samples(name)) if (Object.entries(want).every(([k, x]) => String(v.labels[k]) === x)) total += v.value;
    return total;
  }

  /** Prometheus text exposition format 0.0.4. */
  async render(): Promise<string> {
    for (const c of this.collectors) {
      try {
        c();
      } catch {
        // a broken collector must not break the scrape
      }
    }
    return this.prom.metrics();
  }

  /** Forget every series (tests). Declarations and collectors stay. */
  reset(): void {
    this.prom.resetMetrics();
    for (const f of this.families.values()) f.series.clear();
  }

  private async samples(rawName: string): Promise<{ labels: Record<string, string | number>; value: number }[]> {
    const fam = this.families.get(sanitize(rawName, NAME_RE));
    if (!fam) return [];
    const got = await fam.metric.get();
    const suffix = fam.kind === "histogram" ? `${fam.name}_count` : undefined;
    return (got.values as { labels: Record<string, string | number>; value: number; metricName?: string }[]).filter((v) => !suffix || v.metricName === suffix);
  }

  private labelValues(labels: Labels): Record<string, string> {
    const out: Record<string, string> = {};
    for (const k of Object.keys(labels)) if (labels[k] !== undefined) out[sanitize(k, LABEL_RE)] = String(labels[k]);
    return out;
  }

  private family(rawName: string, kind: MetricKind, labelNames: readonly string[]): Family {
    const name = sanitize(rawName, NAME_RE);
    let fam = this.families.get(name);
    if (fam) return fam;
    const decl = this.declared.get(name) ?? (HELP[name] ? { kind: HELP[name][0], help: HELP[name][1] } : undefined);
    const k = decl?.kind ?? kind;
    const config = { name, help: decl?.help || name, labelNames: [...labelNames], registers: [this.prom] };
    const metric =
      k === "counter"
        ? new client.Counter(config)
        : k === "gauge"
          ? new client.Gauge(config)
          : new client.Histogram({ ...config, buckets: [...((decl as { buckets?: number[] })?.buckets ?? LATENCY_BUCKETS)] });
    fam = { name, kind: k, labelNames, metric, series: new Map() };
    this.families.set(name, fam);
    return fam;
  }

  /** The series for these labels, or a no-op past the family's series limit or with another label set. */
  private series(name: string, kind: MetricKind, labels: Labels): SeriesHandle {
    const unsorted = this.labelValues(labels);
    const names = Object.keys(unsorted).sort();
    const fam = this.family(name, kind, names);
    if (names.length !== fam.labelNames.length || names.some((n, i) => n !== fam.labelNames[i])) return this.dropped(fam);
    const key = names.map((n) => unsorted[n]).join("\u0001");
    let s = fam.series.get(key);
    if (!s) {
      if (fam.series.size >= MAX_SERIES) return this.dropped(fam);
      // Sorted, so every series of a family renders its labels in one order.
      const values: Record<string, string> = {};
      for (const n of names) values[n] = unsorted[n];
      s = seriesOf(fam, values);
      fam.series.set(key, s);
    }
    return s;
  }

  private dropped(fam: Family): SeriesHandle {
    if (fam.name !== METRIC.droppedSeries) this.counter(METRIC.droppedSeries, { metric: fam.name });
    return NOOP;
  }
}

const sameLabels = (got: Record<string, string | number>, want: Record<string, string>) =>
  Object.keys(got).length === Object.keys(want).length && Object.entries(want).every(([k, v]) => String(got[k]) === v);

/** The process-wide registry every part of the product records into. */
export const metrics = new MetricsRegistry();

/** Node process metrics (CPU, memory, heap, event loop lag, start time): prom-client's defaults. Idempotent. */
const withProcessMetrics = new WeakSet<MetricsRegistry>();
export function collectProcessMetrics(registry: MetricsRegistry = metrics): void {
  if (withProcessMetrics.has(registry)) return;
  withProcessMetrics.add(registry);
  client.collectDefaultMetrics({ register: registry.prom, eventLoopMonitoringPrecision: 20 });
}

/** GET /metrics on the port this handler is mounted on. */
export function metricsHandler(registry: MetricsRegistry = metrics, path = "/metrics"): HttpHandler {
  return (req: NodeRequest, res: NodeResponse) => {
    const url = req.url ?? "";
    const p = url.indexOf("?") === -1 ? url : url.slice(0, url.indexOf("?"));
    if (p !== path) return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" });
      res.end("method not allowed\n");
      return true;
    }
    return registry.render().then((body) => {
      res.writeHead(200, { "content-type": registry.prom.contentType, "cache-control": "no-store" });
      if (req.method === "HEAD") res.end();
      else res.end(body);
      return true;
    });
  };
}
