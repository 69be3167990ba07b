// W3C trace context (traceparent, tracestate) in and out of request headers,
// through OpenTelemetry's propagation API: the propagator the SDK registers
// from OTEL_PROPAGATORS (default: W3CTraceContextPropagator, plus baggage).
// Nothing here reads or writes a traceparent by hand. With tracing off no
// propagator is registered and extract/inject do nothing.
import { context, propagation, trace, ROOT_CONTEXT, type Context, type TextMapGetter, type TextMapSetter } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";

/** Node's incoming headers (lower-case names; repeated headers as arrays). */
export type NodeHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** Fetch API Headers (connect's request and response headers). */
export const headersGetter: TextMapGetter<Headers> = {
  keys: (h) => [...h.keys()],
  get: (h, k) => h.get(k) ?? undefined,
};

export const headersSetter: TextMapSetter<Headers> = {
  set: (h, k, v) => h.set(k, v),
};

/** node:http / node:http2 request headers. */
export const nodeHeadersGetter: TextMapGetter<NodeHeaders> = {
  keys: (h) => Object.keys(h),
  get: (h, k) => h[k.toLowerCase()],
};

/** The context of an incoming request: `parent` (default: the active one) plus the caller's trace context. */
export function extractFromHeaders(headers: Headers, parent: Context = context.active()): Context {
  return propagation.extract(parent, headers, headersGetter);
}

export function extractFromNodeHeaders(headers: NodeHeaders, parent: Context = context.active()): Context {
  return propagation.extract(parent, headers, nodeHeadersGetter);
}

/** Write `ctx`'s trace context into outgoing headers, replacing what was there. */
export function injectIntoHeaders(headers: Headers, ctx: Context = context.active()): void {
  propagation.inject(ctx, headers, headersSetter);
}

const w3c = new W3CTraceContextPropagator();

/**
 * The trace id of a request's W3C traceparent, or "" when absent or invalid,
 * whatever propagators are configured and whether tracing is on (for records
 * that keep the caller's trace id, e.g. an audit log).
 */
export function callerTraceId(headers: Headers): string {
  const sc = trace.getSpanContext(w3c.extract(ROOT_CONTEXT, headers, headersGetter));
  return sc && trace.isSpanContextValid(sc) ? sc.traceId : "";
}
