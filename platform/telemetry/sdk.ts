// Starts the OpenTelemetry Node SDK (traces over OTLP, pg and ioredis
// instrumentation) from the standard OTEL_* environment. Loaded by
// register.ts before the application, because the instrumentations must be in
// place before `pg` and `ioredis` are first imported.
//
// On when an exporter is configured:
//   OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (e.g. http://jaeger:4318),
//   or OTEL_TRACES_EXPORTER=console|zipkin.
// Off (nothing loaded, no hooks, no log lines) otherwise, or with OTEL_SDK_DISABLED=true
// or OTEL_TRACES_EXPORTER=none.
// Also read, by the SDK: OTEL_SERVICE_NAME (default: acme, or acme-<service> for
// `app/main.ts <service>`), OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG),
// OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL (http/protobuf default, grpc, http/json),
// OTEL_EXPORTER_OTLP_HEADERS, OTEL_PROPAGATORS (tracecontext,baggage), OTEL_BSP_*,
// OTEL_LOG_LEVEL (the SDK's own diagnostics, silent unless set).
// Metrics are served as Prometheus text at /metrics (metrics.ts), so the
// SDK's metric and log exporters stay off unless OTEL_METRICS_EXPORTER /
// OTEL_LOGS_EXPORTER ask for them explicitly.

type Env = Record<string, string | undefined>;

interface Running {
  shutdown(): Promise<void>;
  forceFlush(): Promise<void>;
}

const KEY = Symbol.for("acme.telemetry.sdk");
const g = globalThis as { [KEY]?: Running };

const list = (v: string | undefined) =>
  (v ?? "")
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);

/** Whether the environment asks for trace export. */
export function telemetryEnabled(env: Env = process.env): boolean {
  if ((env.OTEL_SDK_DISABLED ?? "").trim().toLowerCase() === "true") return false;
  const exporters = list(env.OTEL_TRACES_EXPORTER);
  if (exporters.includes("none")) return false;
  if (exporters.some((e) => e === "console" || e === "zipkin")) return true;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/** Default service.name: from the command line of app/main.ts when OTEL_SERVICE_NAME is unset. */
export function defaultServiceName(env: Env = process.env, argv: string[] = process.argv): string | undefined {
  if (env.OTEL_SERVICE_NAME) return undefined;
  if (/(^|,)\s*service\.name\s*=/.test(env.OTEL_RESOURCE_ATTRIBUTES ?? "")) return undefined;
  const script = argv[1] ?? "";
  if (!/app[\\/]main\.[cm]?[tj]s$/.test(script)) return undefined;
  const names = argv.slice(2).filter((a) => !a.startsWith("-"));
  return names.length ? `acme-${names.join("-")}` : "acme";
}

/**
 * db.query.text of a Redis command: the command and the namespace of its key
 * ("GET auth:login:fail:*" for "auth:login:fail:<hash>"), never the rest of
 * the key (ids, hashes, addresses) nor any value. For EVAL/EVALSHA the key is
 * the first KEYS argument, not the script.
 */
export function redisStatement(cmd: string, args: unknown[]): string {
  const isEval = /^eval(sha)?(_ro)?$/i.test(cmd);
  const first = isEval ? (Number(args[1]) >= 1 ? args[2] : undefined) : args[0];
  if (typeof first !== "string" && !Buffer.isBuffer(first)) return cmd;
  const segments = String(first).split(":");
  const ns: string[] = [];
  for (const seg of segments.slice(0, -1)) {
    if (!/^[a-z_]{1,24}$/.test(seg) || ns.length === 3) break;
    ns.push(seg);
  }
  return ns.length ? `${cmd} ${ns.join(":")}:*` : cmd;
}

/**
 * Start the SDK if configured. Returns whether it started. Idempotent.
 * Must run before `pg` / `ioredis` are imported (see register.ts).
 */
export async function startTelemetry(env: Env = process.env): Promise<boolean> {
  if (g[KEY]) return true;
  if (!telemetryEnabled(env)) return false;

  // ESM: pg and ioredis are imported, not required; import-in-the-middle's
  // loader hook lets the instrumentations patch them. Only modules an
  // instrumentation asks for are wrapped (the message channel tells the hook).
  const { register } = await import("node:module");
  const { createAddHookMessageChannel } = await import("import-in-the-middle");
  const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel();
  register("import-in-the-middle/hook.mjs", import.meta.url, registerOptions);

  const [{ NodeSDK }, { PgInstrumentation }, { IORedisInstrumentation }] = await Promise.all([
    import("@opentelemetry/sdk-node"),
    import("@opentelemetry/instrumentation-pg"),
    import("@opentelemetry/instrumentation-ioredis"),
  ]);

  const sdk = new NodeSDK({
    serviceName: defaultServiceName(env),
    instrumentations: [
      // Only inside a request's trace: no root spans for pool housekeeping or migrations.
      new PgInstrumentation({ requireParentSpan: true, enhancedDatabaseReporting: false }),
      new IORedisInstrumentation({ requireParentSpan: true, dbStatementSerializer: redisStatement }),
    ],
    // Prometheus text at /metrics carries the metrics; OTLP metrics/logs only when asked for.
    ...(env.OTEL_METRICS_EXPORTER ? {} : { metricReaders: [] }),
    ...(env.OTEL_LOGS_EXPORTER ? {} : { logRecordProcessors: [] }),
  });
  sdk.start();
  await waitForAllMessagesAcknowledged();

  const { trace } = await import("@opentelemetry/api");
  const provider = trace.getTracerProvider() as unknown as { getDelegate?: () => { forceFlush?: () => Promise<void> } };
  g[KEY] = {
    shutdown: () => sdk.shutdown(),
    forceFlush: async () => {
      await provider.getDelegate?.().forceFlush?.();
    },
  };
  return true;
}

/** Export what is buffered and stop (on SIGTERM, after the server drained). No-op when off. */
export async function shutdownTelemetry(timeoutMs = 5000): Promise<void> {
  const running = g[KEY];
  if (!running) return;
  g[KEY] = undefined;
  await Promise.race([running.shutdown().catch(() => {}), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
}

/** Export what is buffered now (tests). */
export async function flushTelemetry(): Promise<void> {
  await g[KEY]?.forceFlush();
}

export function telemetryRunning(): boolean {
  return Boolean(g[KEY]);
}
