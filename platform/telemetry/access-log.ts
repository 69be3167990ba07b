// The access log: one line per RPC served (msg "rpc") and per plain HTTP
// request (msg "http"), with the trace and span ids when tracing is on and the
// request id always. Levels: info; warn for server faults and 5xx; debug for
// health and reflection calls.
import { isSpanContextValid, type Span } from "@opentelemetry/api";
import type { Code } from "@connectrpc/connect";
import { maskEmail, type Fields, type Level, type Logger } from "../logger.js";
import { codeName, SERVER_FAULTS } from "./rpc-span.js";

function traceFields(span: Span | undefined): Fields {
  const sc = span?.spanContext();
  return sc && isSpanContextValid(sc) ? { trace_id: sc.traceId, span_id: sc.spanId } : {};
}

const ms = (seconds: number) => Math.round(seconds * 1e5) / 100;

export function logRpc(log: Logger, e: { span?: Span; requestId: string; rpc: string; protocol: string; code: Code | 0; seconds: number; quiet: boolean }): void {
  const level: Level = e.quiet ? "debug" : e.code !== 0 && SERVER_FAULTS.has(e.code) ? "warn" : "info";
  log[level]("rpc", {
    ...traceFields(e.span),
    request_id: e.requestId,
    rpc: e.rpc,
    protocol: e.protocol,
    code: codeName(e.code),
    grpc_code: e.code,
    duration_ms: ms(e.seconds),
  });
}

export function logHttp(log: Logger, e: { span: Span; requestId: string; rpc?: string; method: string; path: string; route: string; status: number; seconds: number }): void {
  log[e.status >= 500 ? "warn" : "info"]("http", {
    ...traceFields(e.span),
    request_id: e.requestId,
    ...(e.rpc ? { rpc: e.rpc } : {}),
    method: e.method,
    path: loggablePath(e.path),
    route: e.route,
    status: e.status,
    duration_ms: ms(e.seconds),
  });
}

/** A request path for logs and span attributes: no query, emails masked, bounded length. */
export function loggablePath(path: string): string {
  return path
    .split("/")
    .map((seg) => (seg.includes("@") || seg.includes("%40") ? maskEmail(decodeURIComponent(seg)) : seg))
    .join("/")
    .slice(0, 200);
}
