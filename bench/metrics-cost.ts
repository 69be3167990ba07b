// CPU cost of recording one RPC's metrics (what the server interceptor records
// per call: grpc_server_started_total +1, grpc_server_in_flight +1 then -1,
// grpc_server_handled_total{grpc_code="OK"} +1, one grpc_server_handling_seconds
// observation), with each way of doing it, in the same run:
//   - prom-client, label objects passed on every call (its simplest use);
//   - prom-client, labelled children resolved once and kept (counter.labels(...));
//   - OpenTelemetry sdk-metrics + exporter-prometheus (attributes per call: its
//     API has no bound instruments), the versions that fit @opentelemetry/api
//     1.9 / core 2.12 (sdk-metrics 2.12.0, exporter-prometheus 0.223.0);
//   - the product's facade (platform/telemetry/metrics.ts) as the interceptor uses it.
// One process, one thread, no I/O: microseconds of CPU per recorded RPC.
//
//   node --import tsx bench/metrics-cost.ts          (table)
//   node --import tsx bench/metrics-cost.ts --json   (JSON, for bench/lib/scenarios-product.ts)
import client from "prom-client";
import { LATENCY_BUCKETS, METRIC, MetricsRegistry } from "../platform/telemetry/metrics.js";
import { rpcMetrics } from "../platform/telemetry/rpc-metrics.js";

export interface MetricsCost {
  option: string;
  usPerRpc: number;
}

type Recorder = (seconds: number) => void;

const SERVICE = "acme.user.v1.UserService";
const METHOD = "GetMe";
const labels = { grpc_service: SERVICE, grpc_method: METHOD, grpc_type: "unary" };
const flightLabels = { grpc_service: SERVICE, grpc_method: METHOD };
const handledLabels = { ...labels, grpc_code: "OK" };

function promFamilies() {
  const register = new client.Registry();
  const names = ["grpc_service", "grpc_method", "grpc_type"];
  return {
    register,
    started: new client.Counter({ name: METRIC.rpcServerStarted, help: "x", labelNames: names, registers: [register] }),
    handled: new client.Counter({ name: METRIC.rpcServerHandled, help: "x", labelNames: [...names, "grpc_code"], registers: [register] }),
    inFlight: new client.Gauge({ name: METRIC.rpcServerInFlight, help: "x", labelNames: ["grpc_service", "grpc_method"], registers: [register] }),
    seconds: new client.Histogram({ name: METRIC.rpcServerSeconds, help: "x", labelNames: names, buckets: LATENCY_BUCKETS, registers: [register] }),
  };
}

function promPerCall(): Recorder {
  const f = promFamilies();
  return (s) => {
    f.started.inc(labels);
    f.inFlight.inc(flightLabels);
    f.inFlight.dec(flightLabels);
    f.handled.inc(handledLabels);
    f.seconds.observe(labels, s);
  };
}

function promChildren(): Recorder {
  const f = promFamilies();
  const started = f.started.labels(labels);
  const inFlight = f.inFlight.labels(flightLabels);
  const handled = f.handled.labels(handledLabels);
  const seconds = f.seconds.labels(labels);
  return (s) => {
    started.inc();
    inFlight.inc();
    inFlight.dec();
    handled.inc();
    seconds.observe(s);
  };
}

async function otelSdk(): Promise<Recorder> {
  const { MeterProvider, AggregationType } = await import("@opentelemetry/sdk-metrics");
  const { PrometheusExporter } = await import("@opentelemetry/exporter-prometheus");
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({
    readers: [exporter],
    views: [{ instrumentName: METRIC.rpcServerSeconds, aggregation: { type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM, options: { boundaries: LATENCY_BUCKETS } } }],
  });
  const meter = provider.getMeter("acme");
  const started = meter.createCounter(METRIC.rpcServerStarted);
  const handled = meter.createCounter(METRIC.rpcServerHandled);
  const inFlight = meter.createUpDownCounter(METRIC.rpcServerInFlight);
  const seconds = meter.createHistogram(METRIC.rpcServerSeconds, { unit: "s" });
  return (s) => {
    started.add(1, labels);
    inFlight.add(1, flightLabels);
    inFlight.add(-1, flightLabels);
    handled.add(1, handledLabels);
    seconds.record(s, labels);
  };
}

function productFacade(): Recorder {
  const handlesFor = rpcMetrics(new MetricsRegistry(), "server");
  return (s) => {
    const m = handlesFor(SERVICE, METHOD, "unary");
    m.started.inc();
    m.inFlight.add(1);
    m.inFlight.add(-1);
    m.handled(0).inc();
    m.seconds.observe(s);
  };
}

function cost(record: Recorder, n: number): number {
  for (let i = 0; i < 20_000; i++) record((i % 200) / 10_000);
  const u0 = process.cpuUsage();
  for (let i = 0; i < n; i++) record((i % 200) / 10_000);
  const u = process.cpuUsage(u0);
  return (u.user + u.system) / n;
}

export async function measureMetricsCost(n = 300_000, rounds = 3): Promise<MetricsCost[]> {
  const options: [string, Recorder][] = [
    ["prom-client, label objects on every call", promPerCall()],
    ["prom-client, labelled children kept", promChildren()],
    ["OpenTelemetry sdk-metrics 2.12 + exporter-prometheus 0.223, attributes on every call", await otelSdk()],
    ["the product's facade (platform/telemetry/metrics.ts, as rpc-metrics.ts records an RPC)", productFacade()],
  ];
  // Interleaved rounds, median of each: a noisy neighbour hits every option alike.
  const got = options.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) options.forEach(([, rec], i) => got[i].push(cost(rec, n)));
  return options.map(([option], i) => ({ option, usPerRpc: got[i].sort((a, b) => a - b)[Math.floor(rounds / 2)] }));
}

if (process.argv[1]?.endsWith("metrics-cost.ts")) {
  const rows = await measureMetricsCost();
  if (process.argv.includes("--json")) console.log(JSON.stringify(rows));
  else for (const r of rows) console.log(`${r.option.padEnd(90)} ${r.usPerRpc.toFixed(2).padStart(6)} us CPU/RPC`);
}
