// The preload (platform/telemetry/register.ts) in a real ESM process: pg and
// ioredis are imported as ES modules by the product's own db/kv modules, and
// their spans must reach an OTLP receiver through import-in-the-middle's
// loader hook. Without an endpoint nothing starts and nothing is printed.
import assert from "node:assert/strict";
import { freshDatabaseUrl, freshRedisUrl } from "../support/fresh.js";
import { runScript } from "./support/child.js";
import { SpanKind, startOtlpReceiver, type OtlpReceiver } from "./support/otlp.js";

const PROBE = "test/observability/fixtures/probe.ts";

describe("observability: OpenTelemetry preload (ESM, pg, ioredis)", function () {
  let otlp: OtlpReceiver;
  before(async () => {
    otlp = await startOtlpReceiver();
  });
  after(async () => {
    await otlp?.close();
  });

  it("exports pg and ioredis spans as children of the active span, over OTLP/HTTP protobuf", async () => {
    const run = await runScript(PROBE, {
      DATABASE_URL: await freshDatabaseUrl(),
      REDIS_URL: await freshRedisUrl(),
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      OTEL_SERVICE_NAME: "acme-probe",
      OTEL_BSP_SCHEDULE_DELAY: "50",
    });
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout.trim().split("\n").pop()!);
    assert.equal(out.enabled, true);
    assert.equal(run.stderr, "", "no noise on stderr");

    const spans = await otlp.waitFor((s) => s.some((x) => x.name === "probe" && x.traceId === out.traceId));
    const trace = spans.filter((s) => s.traceId === out.traceId);
    const root = trace.find((s) => s.name === "probe")!;
    assert.equal(root.service, "acme-probe");

    const pgSpans = trace.filter((s) => s.scope === "@opentelemetry/instrumentation-pg" && s.name.startsWith("pg.query:"));
    const select = pgSpans.find((s) => s.attributes["db.query.text"] === "select 1 as one" || s.attributes["db.statement"] === "select 1 as one");
    assert.ok(select, `a pg span for "select 1 as one"; got:\n${trace.map((s) => `${s.name} ${JSON.stringify(s.attributes)}`).join("\n")}`);
    assert.equal(select.kind, SpanKind.CLIENT);
    assert.equal(select.parentSpanId, root.spanId, "pg span is a child of the active span");
    assert.match(select.name, /^pg\.query:SELECT/);

    const redisSpans = trace.filter((s) => s.scope === "@opentelemetry/instrumentation-ioredis");
    const names = redisSpans.map((s) => s.name).sort();
    assert.ok(names.includes("set") && names.includes("get"), `redis set and get spans, got ${names.join(", ")}`);
    assert.ok(names.some((n) => n === "eval" || n === "evalsha"), `redis eval span, got ${names.join(", ")}`);
    for (const s of redisSpans) {
      assert.equal(s.parentSpanId, root.spanId);
      assert.equal(s.kind, SpanKind.CLIENT);
    }

    // Values and full keys are never exported; key namespaces are.
    const everything = JSON.stringify(spans.map((s) => s.attributes));
    assert.ok(!everything.includes("secret-value"), "a Redis value leaked into span attributes");
    assert.ok(!everything.includes("probe:key") && !everything.includes("probe:counter"), "a full Redis key leaked");
    assert.ok(everything.includes("probe:*"), "the key namespace is recorded");

    // requireParentSpan: queries outside a trace make no spans.
    assert.ok(!spans.some((s) => s.attributes["db.query.text"] === "select 2" || s.attributes["db.statement"] === "select 2"));
    assert.deepEqual(otlp.other, [], "no metrics/logs exports to the trace endpoint");
  });

  it("starts nothing and prints nothing without an OTLP endpoint", async () => {
    const before = otlp.spans.length;
    const run = await runScript(PROBE, {
      DATABASE_URL: await freshDatabaseUrl(),
      REDIS_URL: await freshRedisUrl(),
      OTEL_SERVICE_NAME: "acme-probe-off",
    });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout.trim()).enabled, false);
    assert.equal(run.stderr, "");
    assert.equal(run.stdout.trim().split("\n").length, 1, "only the probe's own line");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(otlp.spans.length, before);
  });

  it("OTEL_SDK_DISABLED=true wins over a configured endpoint", async () => {
    const run = await runScript(PROBE, {
      DATABASE_URL: await freshDatabaseUrl(),
      REDIS_URL: await freshRedisUrl(),
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      OTEL_SDK_DISABLED: "true",
    });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout.trim()).enabled, false);
    assert.equal(run.stderr, "");
  });
});
