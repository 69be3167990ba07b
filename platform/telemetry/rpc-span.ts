// What RPC spans and access lines say about a call: rpc.system, the status
// code's names, and how a span ends (OpenTelemetry RPC semantic conventions:
// ERROR on CLIENT spans for any non-OK code, on SERVER spans for the codes that
// mean a server fault; an exception event with every ERROR).
import { SpanKind, SpanStatusCode, trace, type Span, type Tracer } from "@opentelemetry/api";
import { Code, ConnectError } from "@connectrpc/connect";

export const tracer = (): Tracer => trace.getTracer("acme");

/** Codes that make a SERVER span an error. */
export const SERVER_FAULTS: ReadonlySet<Code> = new Set<Code>([Code.Unknown, Code.DeadlineExceeded, Code.Unimplemented, Code.Internal, Code.Unavailable, Code.DataLoss]);

/** Services whose calls are not traced and are logged at debug level (probes, tooling). */
export const QUIET = /^grpc\.(health|reflection)\./;

/** "OK", "NotFound", ... as go-grpc-prometheus labels them. */
export function codeName(code: Code | 0): string {
  return code === 0 ? "OK" : (Code[code] ?? String(code));
}

/** rpc.system from the request content type. */
export function rpcSystem(contentType: string | null): "grpc" | "connect_rpc" {
  return contentType?.startsWith("application/grpc") ? "grpc" : "connect_rpc";
}

/** The code of a failure (0 for success). */
export function codeOf(err: unknown): Code | 0 {
  return err === undefined ? 0 : ConnectError.from(err).code;
}

/** Connect's snake_case code strings ("not_found"). */
function connectCodeString(code: Code): string {
  return (Code[code] ?? "unknown").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

export function finishSpan(span: Span, kind: SpanKind, code: Code | 0, system: string, err: unknown): void {
  span.setAttribute("rpc.grpc.status_code", code);
  if (code !== 0 && system === "connect_rpc") span.setAttribute("rpc.connect_rpc.error_code", connectCodeString(code));
  const isError = code !== 0 && (kind === SpanKind.CLIENT || SERVER_FAULTS.has(code));
  if (isError) {
    const e = ConnectError.from(err);
    span.recordException({ name: e.name, message: e.rawMessage, stack: err instanceof Error ? err.stack : undefined });
    span.setStatus({ code: SpanStatusCode.ERROR, message: e.rawMessage });
  }
  span.end();
}
