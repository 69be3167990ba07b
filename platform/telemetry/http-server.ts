// Plain HTTP requests (the embedded edge's REST routes, JWKS...): a SERVER
// span per request that continues an incoming W3C trace context or starts a
// trace, the request id decided at this entry, the handlers run in both so the
// backend calls they make are the span's children and carry the id,
// acme_http_server_* metrics and one access-log line. gRPC/Connect paths are
// left to the RPC interceptors.
import { context, SpanKind, SpanStatusCode, trace, type Context, type Span } from "@opentelemetry/api";
import type { Logger } from "../logger.js";
import type { HttpHandler, NodeRequest, NodeResponse } from "../server.js";
import { loggablePath, logHttp } from "./access-log.js";
import { requestStore, type EdgeRecord, type RequestInfo } from "./context.js";
import { METRIC, metrics as defaultRegistry, type MetricsRegistry } from "./metrics.js";
import { extractFromNodeHeaders } from "./propagation.js";
import { REQUEST_ID_HEADER, requestIdFrom } from "./request-id.js";
import { tracer } from "./rpc-span.js";

/** "/acme.order.v1.OrderService/CreateOrder": a gRPC/Connect path (traced by the interceptors instead). */
export function isRpcPath(path: string): boolean {
  return /^\/[A-Za-z_][\w]*(\.[\w]+)+\/[A-Za-z_]\w*$/.test(path);
}

function pathOf(req: NodeRequest): string {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}

export interface EdgeSpan {
  /** The request's trace context (the edge span active). */
  readonly context: Context;
  readonly span: Span;
  readonly requestId: string;
  /** Run the request's work (backend calls, logging) in its trace and request context. traceHttp does this. */
  run<T>(fn: () => T): T;
  /** Name the span after the REST route template, e.g. "/v1/orders/{id}". */
  setRoute(route: string): void;
  /** End the span with the response status (called on response close by traceHttp). */
  end(status: number, err?: unknown): void;
}

export interface EdgeSpanOptions {
  log?: Logger;
  registry?: MetricsRegistry;
}

/**
 * Start the SERVER span of a plain HTTP request. The caller runs its work in
 * `run` (or `edge.context`) and calls `end(status)` once the response is written.
 */
export function startEdgeSpan(req: NodeRequest, opts: EdgeSpanOptions = {}): EdgeSpan {
  const registry = opts.registry ?? defaultRegistry;
  const method = (req.method ?? "GET").toUpperCase();
  const path = pathOf(req);
  const parent = extractFromNodeHeaders(req.headers);
  // The request's entry into the process: its id is decided here and written
  // back into the request, where the edge's header handling sees it.
  const requestId = requestIdFrom(req.headers[REQUEST_ID_HEADER]);
  (req.headers as Record<string, string | string[] | undefined>)[REQUEST_ID_HEADER] = requestId;
  const span = tracer().startSpan(
    method,
    {
      kind: SpanKind.SERVER,
      attributes: {
        "http.request.method": method,
        "url.path": loggablePath(path),
        "url.scheme": "http",
        "network.protocol.version": req.httpVersionMajor === 2 ? "2" : "1.1",
        "user_agent.original": String(req.headers["user-agent"] ?? "").slice(0, 256),
      },
    },
    parent,
  );
  const record: EdgeRecord = { span, method };
  const ctx = trace.setSpan(parent, span);
  const info: RequestInfo = { requestId, edge: record };
  const started = performance.now();
  let ended = false;
  return {
    context: ctx,
    span,
    requestId,
    run: (fn) => context.with(ctx, () => requestStore.run(info, fn)),
    setRoute(route) {
      record.route = route;
      span.setAttribute("http.route", route);
      span.updateName(`${method} ${route}`);
    },
    end(status, err) {
      if (ended) return;
      ended = true;
      const seconds = (performance.now() - started) / 1000;
      const route = record.route ?? record.rpc ?? "unmatched";
      registry.counter(METRIC.httpRequests, { method, route, status });
      registry.observe(METRIC.httpSeconds, { method, route }, seconds);
      span.setAttribute("http.response.status_code", status);
      if (status >= 500 || err) {
        if (err) span.recordException(err instanceof Error ? err : String(err));
        span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : `HTTP ${status}` });
      }
      span.end();
      if (opts.log) logHttp(opts.log, { span, requestId, rpc: record.rpc, method, path, route, status, seconds });
    },
  };
}

export interface TraceHttpOptions extends EdgeSpanOptions {
  /** Paths answered without a span (probes, scrapes). */
  skip?: (path: string) => boolean;
}

/**
 * One HttpHandler that runs `handlers` in order inside an HTTP server span
 * (for everything but gRPC/Connect paths). The span ends when the response
 * closes, whoever answered it.
 */
export function traceHttp(handlers: readonly HttpHandler[], opts: TraceHttpOptions = {}): HttpHandler {
  const runAll = async (req: NodeRequest, res: NodeResponse) => {
    for (const h of handlers) if (await h(req, res)) return true;
    return false;
  };
  return async (req, res) => {
    const path = pathOf(req);
    if (isRpcPath(path) || opts.skip?.(path)) return runAll(req, res);
    const edge = startEdgeSpan(req, opts);
    // 499 (nginx's "client closed request") when the client went away before the response was complete.
    res.once("close", () => edge.end(res.writableEnded ? res.statusCode : 499));
    try {
      return await edge.run(() => runAll(req, res));
    } catch (err) {
      edge.span.recordException(err instanceof Error ? err : String(err));
      throw err;
    }
  };
}
