// W3C trace context in and out of headers through OpenTelemetry's propagation
// API (platform/telemetry/propagation.ts): what the interceptors and the HTTP
// span use, and callerTraceId for records that keep the caller's trace id.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { ROOT_CONTEXT, trace, TraceFlags } from "@opentelemetry/api";
import { callerTraceId, extractFromHeaders, extractFromNodeHeaders, injectIntoHeaders } from "../../platform/telemetry/propagation.js";
import { installMemoryTracing, type MemoryTracing } from "./support/memory-otel.js";

const ids = () => ({ traceId: randomBytes(16).toString("hex"), spanId: randomBytes(8).toString("hex") });

describe("observability: W3C trace context propagation", () => {
  it("reads the caller's trace id from traceparent whatever the global propagator, and nothing from a malformed one", () => {
    const { traceId, spanId } = ids();
    assert.equal(callerTraceId(new Headers({ traceparent: `00-${traceId}-${spanId}-01` })), traceId);
    assert.equal(callerTraceId(new Headers({ traceparent: ` 00-${traceId.toUpperCase()}-${spanId}-01` })), "");
    assert.equal(callerTraceId(new Headers({ traceparent: `00-${"0".repeat(32)}-${spanId}-01` })), "");
    assert.equal(callerTraceId(new Headers({ traceparent: `00-${traceId}-${spanId}` })), "");
    assert.equal(callerTraceId(new Headers()), "");
  });

  describe("with the W3C propagator registered (tracing on)", () => {
    let otel: MemoryTracing;
    before(() => (otel = installMemoryTracing()));
    after(() => otel.uninstall());

    it("extracts traceparent and tracestate from fetch and node headers", () => {
      const { traceId, spanId } = ids();
      const tp = `00-${traceId}-${spanId}-01`;
      for (const ctx of [
        extractFromHeaders(new Headers({ traceparent: tp, tracestate: "vendor=x" }), ROOT_CONTEXT),
        extractFromNodeHeaders({ traceparent: tp, tracestate: "vendor=x" }, ROOT_CONTEXT),
        extractFromNodeHeaders({ traceparent: [tp], tracestate: ["vendor=x"] }, ROOT_CONTEXT),
      ]) {
        const sc = trace.getSpanContext(ctx)!;
        assert.equal(sc.traceId, traceId);
        assert.equal(sc.spanId, spanId);
        assert.equal(sc.isRemote, true);
        assert.equal(sc.traceState?.get("vendor"), "x");
      }
    });

    it("injects the context's span, replacing a forwarded traceparent", () => {
      const { traceId, spanId } = ids();
      const ctx = trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId, traceFlags: TraceFlags.SAMPLED });
      const h = new Headers({ traceparent: `00-${ids().traceId}-${ids().spanId}-01` });
      injectIntoHeaders(h, ctx);
      assert.equal(h.get("traceparent"), `00-${traceId}-${spanId}-01`);
    });
  });

  it("with tracing off (no propagator registered) extracts and injects nothing", () => {
    const { traceId, spanId } = ids();
    assert.equal(trace.getSpanContext(extractFromHeaders(new Headers({ traceparent: `00-${traceId}-${spanId}-01` }), ROOT_CONTEXT)), undefined);
    const h = new Headers();
    injectIntoHeaders(h, trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId, traceFlags: TraceFlags.SAMPLED }));
    assert.equal(h.has("traceparent"), false);
  });
});
