// Prometheus metrics without the OpenTelemetry SDK: a small in-process
// registry (counters, gauges, histograms with labels) rendered in the text
// exposition format (version 0.0.4) at GET /metrics. It works whether or not
// tracing is configured.
//
//   import { metrics, METRIC } from "../platform/telemetry/metrics.js";
//   metrics.counter(METRIC.lockouts, { scope: "account" });
//   metrics.counter(METRIC.rateLimitRejections, { source: "edge", descriptor: "login" });
//
// Label values must come from a small fixed set (codes, reasons, method
// names): never user input, ids or emails. A family keeps at most
// MAX_SERIES label combinations; further ones are dropped and counted in
// acme_metrics_dropped_series_total.
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
};

const MAX_SERIES = 2000;
const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

interface Series {
  labels: [string, string][];
  value: number;
  /** Histograms: cumulative-at-render counts per bucket, and the sum. */
  counts?: number[];
  sum?: number;
}

interface Family {
  name: string;
  kind: MetricKind;
  help: string;
  buckets?: number[];
  series: Map<string, Series>;
}

const sanitize = (name: string, re: RegExp) => (re.test(name) ? name : name.replace(/[^a-zA-Z0-9_]/g, "_").replace(/^([0-9])/, "_$1"));

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function formatNumber(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}

/** One series, resolved once (for hot paths: no label sorting per call). */
export interface SeriesHandle {
  inc(by?: number): void;
  add(by: number): void;
  set(value: number): void;
  observe(value: number): void;
}

export class MetricsRegistry {
  private readonly families = new Map<string, Family>();
  private readonly collectors = new Set<() => void>();

  /** Declare a family's kind and help text (optional: undeclared ones get an empty help). */
  describe(name: string, kind: MetricKind, help: string, buckets?: number[]): void {
    const fam = this.family(name, kind);
    fam.kind = kind;
    fam.help = help;
    if (kind === "histogram") fam.buckets = [...(buckets ?? fam.buckets ?? LATENCY_BUCKETS)].sort((a, b) => a - b);
  }

  /** Add `by` (default 1) to a counter. */
  counter(name: string, labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) return; // counters only go up
    const s = this.series(this.family(name, "counter"), labels);
    if (s) s.value += by;
  }

  /** Set a gauge. */
  gauge(name: string, labels: Labels, value: number): void {
    const s = this.series(this.family(name, "gauge"), labels);
    if (s) s.value = value;
  }

  /** Add to a gauge (negative to subtract). */
  add(name: string, labels: Labels, by: number): void {
    const s = this.series(this.family(name, "gauge"), labels);
    if (s) s.value += by;
  }

  /** Record one observation in a histogram. */
  observe(name: string, labels: Labels, value: number): void {
    const fam = this.family(name, "histogram");
    const s = this.series(fam, labels);
    if (s) this.record(fam, s, value);
  }

  private record(fam: Family, s: Series, value: number): void {
    const buckets = fam.buckets!;
    s.counts ??= new Array(buckets.length).fill(0);
    s.sum = (s.sum ?? 0) + value;
    s.value += 1; // count
    for (let i = 0; i < buckets.length; i++) {
      if (value <= buckets[i]) {
        s.counts[i]++;
        break;
      }
    }
  }

  /** A handle on one series of a family, for code that records it on every request. */
  handle(name: string, kind: MetricKind, labels: Labels = {}): SeriesHandle {
    const fam = this.family(name, kind);
    const pairs = this.labelPairs(labels);
    const key = this.key(pairs);
    const get = () => fam.series.get(key) ?? this.series(fam, labels);
    return {
      inc: (by = 1) => {
        const s = by >= 0 ? get() : undefined;
        if (s) s.value += by;
      },
      add: (by) => {
        const s = get();
        if (s) s.value += by;
      },
      set: (v) => {
        const s = get();
        if (s) s.value = v;
      },
      observe: (v) => {
        const s = get();
        if (s) this.record(fam, s, v);
      },
    };
  }

  /** Run `fn` before every render (to set gauges from pools etc.). Returns an unregister function. */
  collect(fn: () => void): () => void {
    this.collectors.add(fn);
    return () => this.collectors.delete(fn);
  }

  /** Current value of one series (counters, gauges; histograms: the count). Tests and health. */
  value(name: string, labels: Labels = {}): number | undefined {
    const fam = this.families.get(name);
    return fam?.series.get(this.key(this.labelPairs(labels)))?.value;
  }

  /** Sum over every series of a family whose labels include `match`. */
  sum(name: string, match: Labels = {}): number {
    const fam = this.families.get(name);
    if (!fam) return 0;
    const want = this.labelPairs(match);
    let total = 0;
    for (const s of fam.series.values()) {
      if (want.every(([k, v]) => s.labels.some(([k2, v2]) => k === k2 && v === v2))) total += s.value;
    }
    return total;
  }

  /** Prometheus text exposition format 0.0.4. */
  render(): string {
    for (const c of this.collectors) {
      try {
        c();
      } catch {
        // a broken collector must not break the scrape
      }
    }
    const out: string[] = [];
    for (const fam of [...this.families.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      if (fam.series.size === 0) continue;
      out.push(`# HELP ${fam.name} ${fam.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
      out.push(`# TYPE ${fam.name} ${fam.kind}`);
      for (const s of fam.series.values()) {
        if (fam.kind !== "histogram") {
          out.push(`${fam.name}${this.fmtLabels(s.labels)} ${formatNumber(s.value)}`);
          continue;
        }
        let cumulative = 0;
        fam.buckets!.forEach((le, i) => {
          cumulative += s.counts?.[i] ?? 0;
          out.push(`${fam.name}_bucket${this.fmtLabels(s.labels, ["le", formatNumber(le)])} ${cumulative}`);
        });
        out.push(`${fam.name}_bucket${this.fmtLabels(s.labels, ["le", "+Inf"])} ${s.value}`);
        out.push(`${fam.name}_sum${this.fmtLabels(s.labels)} ${formatNumber(s.sum ?? 0)}`);
        out.push(`${fam.name}_count${this.fmtLabels(s.labels)} ${s.value}`);
      }
    }
    return out.join("\n") + "\n";
  }

  /** Forget every series (tests). Declarations and collectors stay. */
  reset(): void {
    for (const f of this.families.values()) f.series.clear();
  }

  private family(rawName: string, kind: MetricKind): Family {
    const name = sanitize(rawName, NAME_RE);
    let fam = this.families.get(name);
    if (!fam) {
      const known = HELP[name];
      fam = {
        name,
        kind: known?.[0] ?? kind,
        help: known?.[1] ?? "",
        buckets: (known?.[0] ?? kind) === "histogram" ? LATENCY_BUCKETS : undefined,
        series: new Map(),
      };
      this.families.set(name, fam);
    }
    return fam;
  }

  private labelPairs(labels: Labels): [string, string][] {
    const pairs: [string, string][] = [];
    for (const k of Object.keys(labels).sort()) {
      const v = labels[k];
      if (v === undefined) continue;
      pairs.push([sanitize(k, LABEL_RE), String(v)]);
    }
    return pairs;
  }

  private key(pairs: [string, string][]): string {
    return pairs.map(([k, v]) => `${k}\u0000${v}`).join("\u0001");
  }

  private series(fam: Family, labels: Labels): Series | undefined {
    const pairs = this.labelPairs(labels);
    const key = this.key(pairs);
    let s = fam.series.get(key);
    if (!s) {
      if (fam.series.size >= MAX_SERIES) {
        if (fam.name !== METRIC.droppedSeries) this.counter(METRIC.droppedSeries, { metric: fam.name });
        return undefined;
      }
      s = { labels: pairs, value: 0 };
      fam.series.set(key, s);
    }
    return s;
  }

  private fmtLabels(pairs: [string, string][], extra?: [string, string]): string {
    const all = extra ? [...pairs, extra] : pairs;
    if (all.length === 0) return "";
    return `{${all.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`;
  }
}

/** The process-wide registry every part of the product records into. */
export const metrics = new MetricsRegistry();

/** Node process gauges (memory, CPU, event loop delay, uptime). Idempotent. */
let processCollector: (() => void) | undefined;
export function collectProcessMetrics(registry: MetricsRegistry = metrics): void {
  if (processCollector) return;
  const start = Date.now() / 1000 - process.uptime();
  let loop: { percentile(p: number): number; reset(): void } | undefined;
  import("node:perf_hooks").then(({ monitorEventLoopDelay }) => {
    const h = monitorEventLoopDelay({ resolution: 20 });
    h.enable();
    loop = h;
  });
  registry.describe("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
  registry.describe("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  registry.describe("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
  registry.describe("nodejs_heap_used_bytes", "gauge", "V8 heap in use in bytes.");
  registry.describe("nodejs_eventloop_delay_p99_seconds", "gauge", "99th percentile of the event loop delay since the last scrape, in seconds.");
  processCollector = () => {
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    registry.gauge("process_cpu_seconds_total", {}, (cpu.user + cpu.system) / 1e6);
    registry.gauge("process_resident_memory_bytes", {}, mem.rss);
    registry.gauge("process_start_time_seconds", {}, Math.round(start));
    registry.gauge("nodejs_heap_used_bytes", {}, mem.heapUsed);
    if (loop) {
      registry.gauge("nodejs_eventloop_delay_p99_seconds", {}, loop.percentile(99) / 1e9);
      loop.reset();
    }
  };
  registry.collect(processCollector);
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
    const body = registry.render();
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8", "cache-control": "no-store" });
    if (req.method === "HEAD") res.end();
    else res.end(body);
    return true;
  };
}
