// What a log line needs to know about the request it is written for: the
// active trace and span (from OpenTelemetry's context, when tracing is on) and
// the request id and RPC (kept here, so they are there with tracing off too).
import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import { context, isSpanContextValid, trace, type Span } from "@opentelemetry/api";
import { setLogContext, type Fields } from "../../logger.js";

export interface RequestInfo {
  /** x-request-id of the request (received or made up at the first hop). */
  readonly requestId: string;
  /** "package.Service/Method" of the innermost RPC being handled. */
  readonly rpc?: string;
  /** Set for plain HTTP requests (the edge): their span, named after the first RPC they make. */
  readonly edge?: EdgeRecord;
}

export interface EdgeRecord {
  readonly span: Span;
  readonly method: string;
  route?: string;
  rpc?: string;
}

export const requestStore = new AsyncLocalStorage<RequestInfo>();

export const REQUEST_ID_HEADER = "x-request-id";

/** A received request id if it looks sane (printable, short), else a new one. */
export function requestIdFrom(received: string | null | undefined): string {
  if (received && received.length <= 200 && /^[\x21-\x7e]+$/.test(received)) return received;
  return randomUUID();
}

/** trace_id / span_id of the active span (when tracing is on) and the request's id and RPC. */
export function logContext(): Fields {
  const out: Fields = {};
  const sc = trace.getSpan(context.active())?.spanContext();
  if (sc && isSpanContextValid(sc)) {
    out.trace_id = sc.traceId;
    out.span_id = sc.spanId;
  }
  const info = requestStore.getStore();
  if (info) {
    out.request_id = info.requestId;
    if (info.rpc) out.rpc = info.rpc;
  }
  return out;
}

let installed = false;
/** Make every logger of the process add logContext() to its lines. Idempotent. */
export function installLogContext(): void {
  if (installed) return;
  installed = true;
  setLogContext(logContext);
}
