// Tracing, RED metrics and the access log for connect RPCs and plain HTTP.
//
// No OpenTelemetry instrumentation covers node:http2 or connect-node, so this
// is done with connect interceptors:
//   serverObservability  span (kind SERVER) per RPC, parent from the W3C
//                        traceparent/tracestate request headers or, for
//                        in-process calls, the caller's active context;
//                        grpc_server_* metrics; one access-log line per RPC.
//   clientObservability  span (kind CLIENT) per outgoing RPC, traceparent
//                        injected into the request headers; grpc_client_*.
//   traceHttp            span (kind SERVER) around plain HTTP requests (the
//                        embedded edge's REST routes): continues an incoming
//                        traceparent or starts a trace, and runs the handlers
//                        in it so the backend calls they make are its children.
//   startEdgeSpan        the same for code that handles a request itself.
//
// Spans are named "package.Service/Method" with rpc.system (grpc or
// connect_rpc), rpc.service, rpc.method and rpc.grpc.status_code. Status is
// ERROR on client spans for any non-OK code and on server spans for the codes
// that mean a server fault (semantic conventions: UNKNOWN, DEADLINE_EXCEEDED,
// UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS); errors are recorded as
// exception events on spans with ERROR status. With tracing off (no SDK
// started) the API is a no-op and only metrics and logs remain.
import {
  context,
  defaultTextMapGetter,
  isSpanContextValid,
  propagation,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
} from "@opentelemetry/api";
import { Code, ConnectError, type Interceptor, type StreamResponse, type UnaryResponse } from "@connectrpc/connect";
import { maskEmail, type Level, type Logger } from "../../logger.js";
import type { HttpHandler, NodeRequest, NodeResponse } from "../../server.js";
import { REQUEST_ID_HEADER, requestIdFrom, requestStore, type EdgeRecord, type RequestInfo } from "./context.js";
import { METRIC, metrics as defaultRegistry, type MetricsRegistry, type SeriesHandle } from "./metrics.js";

const TRACER = "acme";
const tracer = () => trace.getTracer(TRACER);

const headerGetter: TextMapGetter<Headers> = {
  keys: (h) => [...h.keys()],
  get: (h, k) => h.get(k) ?? undefined,
};
const headerSetter: TextMapSetter<Headers> = {
  set: (h, k, v) => h.set(k, v),
};

/** Codes that make a SERVER span an error (OpenTelemetry RPC semantic conventions). */
const SERVER_FAULTS = new Set<Code>([Code.Unknown, Code.DeadlineExceeded, Code.Unimplemented, Code.Internal, Code.Unavailable, Code.DataLoss]);

/** "OK", "NotFound", ... as go-grpc-prometheus labels them. */
export function codeName(code: Code | 0): string {
  return code === 0 ? "OK" : (Code[code] ?? String(code));
}

/** rpc.system from the request content type. */
export function rpcSystem(contentType: string | null): "grpc" | "connect_rpc" {
  return contentType?.startsWith("application/grpc") ? "grpc" : "connect_rpc";
}

/** Services whose calls are not traced and are logged at debug level (probes, tooling). */
const QUIET = /^grpc\.(health|reflection)\./;

/**
 * The first RPC made for an edge request names the edge span after it (unless
 * the edge set a route) and labels its metrics. Kept in requestStore, not in
 * the OpenTelemetry context, so the metrics do not depend on tracing being on.
 */
function noteEdgeRpc(info: RequestInfo | undefined, rpc: string): void {
  const edge = info?.edge;
  if (!edge || edge.rpc) return;
  edge.rpc = rpc;
  edge.span.setAttribute("acme.edge.rpc", rpc);
  if (!edge.route) edge.span.updateName(`${edge.method} ${rpc}`);
}

function finishSpan(span: Span, kind: SpanKind, code: Code | 0, system: string, err: unknown): void {
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

/** Connect's snake_case code strings ("not_found"). */
function connectCodeString(code: Code): string {
  return (Code[code] ?? "unknown").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

function codeOf(err: unknown): Code {
  return ConnectError.from(err).code;
}

/**
 * Wrap a streamed response so the span ends with the stream, and the handler's
 * generator (which runs while the router pulls it) runs in the request's context.
 */
function traceStream<T>(iterable: AsyncIterable<T>, ctx: Context, info: RequestInfo | undefined, done: (err?: unknown) => void): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      const it = iterable[Symbol.asyncIterator]();
      let finished = false;
      const finish = (err?: unknown) => {
        if (finished) return;
        finished = true;
        done(err);
      };
      const inCtx = <R>(fn: () => R): R => context.with(ctx, () => (info ? requestStore.run(info, fn) : fn()));
      return {
        async next() {
          try {
            const r = await inCtx(() => it.next());
            if (r.done) finish();
            return r;
          } catch (err) {
            finish(err);
            throw err;
          }
        },
        async return(value?: unknown) {
          finish(new ConnectError("stream closed early", Code.Canceled));
          return (await it.return?.(value)) ?? { done: true as const, value: undefined as never };
        },
        async throw(e?: unknown) {
          finish(e);
          if (it.throw) return it.throw(e);
          throw e;
        },
      };
    },
  };
}

/** Per-RPC metric handles, resolved on first use (label sorting once, not per call). */
function rpcMetrics(registry: MetricsRegistry, side: "server" | "client") {
  interface Handles {
    started: SeriesHandle;
    inFlight: SeriesHandle;
    seconds: SeriesHandle;
    handled: Map<number, SeriesHandle>;
    labels: Record<string, string>;
  }
  const cache = new Map<string, Handles>();
  return (service: string, method: string, grpcType: string) => {
    const key = `${service}/${method}`;
    let h = cache.get(key);
    if (!h) {
      const labels = { grpc_service: service, grpc_method: method, grpc_type: grpcType };
      h = {
        labels,
        started: registry.handle(METRIC.rpcServerStarted, "counter", labels),
        inFlight: registry.handle(METRIC.rpcServerInFlight, "gauge", { grpc_service: service, grpc_method: method }),
        seconds: registry.handle(side === "server" ? METRIC.rpcServerSeconds : METRIC.rpcClientSeconds, "histogram", labels),
        handled: new Map(),
      };
      cache.set(key, h);
    }
    const handles = h;
    return {
      started: handles.started,
      inFlight: handles.inFlight,
      seconds: handles.seconds,
      handled(code: Code | 0): SeriesHandle {
        let c = handles.handled.get(code);
        if (!c) {
          c = registry.handle(side === "server" ? METRIC.rpcServerHandled : METRIC.rpcClientHandled, "counter", { ...handles.labels, grpc_code: codeName(code) });
          handles.handled.set(code, c);
        }
        return c;
      },
    };
  };
}

function grpcTypeOf(kind: string): string {
  return kind === "unary" ? "unary" : kind === "server_streaming" ? "server_stream" : kind === "client_streaming" ? "client_stream" : "bidi_stream";
}

export interface ServerObservabilityOptions {
  log: Logger;
  registry?: MetricsRegistry;
}

/**
 * Server interceptor: put it first, before auth, errors and rate limits, so
 * every outcome is traced, counted and logged.
 */
export function serverObservability(opts: ServerObservabilityOptions): Interceptor {
  const registry = opts.registry ?? defaultRegistry;
  const log = opts.log;
  const handlesFor = rpcMetrics(registry, "server");
  return (next) => async (req) => {
    const service = req.service.typeName;
    const method = req.method.name;
    const rpc = `${service}/${method}`;
    const m = handlesFor(service, method, grpcTypeOf(req.method.methodKind));
    const system = rpcSystem(req.header.get("content-type"));
    const quiet = QUIET.test(service);
    const outer = requestStore.getStore();
    if (!quiet) noteEdgeRpc(outer, rpc);
    const info: RequestInfo = { requestId: requestIdFrom(req.header.get(REQUEST_ID_HEADER) ?? outer?.requestId), rpc };

    const parent = propagation.extract(context.active(), req.header, headerGetter);
    let ctx = parent;
    let span: Span | undefined;
    if (!quiet) {
      span = tracer().startSpan(
        rpc,
        { kind: SpanKind.SERVER, attributes: { "rpc.system": system, "rpc.service": service, "rpc.method": method } },
        parent,
      );
      ctx = trace.setSpan(parent, span);
    }

    m.started.inc();
    m.inFlight.add(1);
    const started = performance.now();
    const done = (err?: unknown) => {
      const seconds = (performance.now() - started) / 1000;
      const code: Code | 0 = err === undefined ? 0 : codeOf(err);
      m.inFlight.add(-1);
      m.handled(code).inc();
      m.seconds.observe(seconds);
      const sc = span?.spanContext();
      if (span) finishSpan(span, SpanKind.SERVER, code, system, err);
      const level: Level = quiet ? "debug" : code !== 0 && SERVER_FAULTS.has(code) ? "warn" : "info";
      log[level]("rpc", {
        ...(sc && isSpanContextValid(sc) ? { trace_id: sc.traceId, span_id: sc.spanId } : {}),
        request_id: info.requestId,
        rpc,
        protocol: system,
        code: codeName(code),
        grpc_code: code,
        duration_ms: Math.round(seconds * 1e5) / 100,
      });
    };

    try {
      const res = await context.with(ctx, () => requestStore.run(info, () => next(req)));
      if (res.stream) {
        return { ...res, message: traceStream((res as StreamResponse).message, ctx, info, done) } as typeof res;
      }
      done();
      return res as UnaryResponse;
    } catch (err) {
      done(err);
      throw err;
    }
  };
}

const servers = new Map<string, Attributes>();
/** server.address / server.port of a request URL (parsed once per URL). */
function serverOf(url: string): Attributes {
  let a = servers.get(url);
  if (!a) {
    a = {};
    try {
      const u = new URL(url);
      a = { "server.address": u.hostname, "server.port": Number(u.port || (u.protocol === "https:" ? 443 : 80)) };
    } catch {
      // not a URL: leave the address out
    }
    if (servers.size < 1000) servers.set(url, a);
  }
  return a;
}

export interface ClientObservabilityOptions {
  registry?: MetricsRegistry;
  /** rpc.system of the transport (default "grpc"). */
  system?: "grpc" | "connect_rpc";
}

/**
 * Client interceptor: put it last (innermost), so the span covers the network
 * call and not e.g. fetching a service token (which is its own RPC).
 */
export function clientObservability(opts: ClientObservabilityOptions = {}): Interceptor {
  const registry = opts.registry ?? defaultRegistry;
  const system = opts.system ?? "grpc";
  const handlesFor = rpcMetrics(registry, "client");
  return (next) => async (req) => {
    const service = req.service.typeName;
    const method = req.method.name;
    const rpc = `${service}/${method}`;
    const m = handlesFor(service, method, grpcTypeOf(req.method.methodKind));
    const parent = context.active();
    const info = requestStore.getStore();
    noteEdgeRpc(info, rpc);
    const attributes: Attributes = { "rpc.system": system, "rpc.service": service, "rpc.method": method, ...serverOf(req.url) };
    const span = tracer().startSpan(rpc, { kind: SpanKind.CLIENT, attributes }, parent);
    const ctx = trace.setSpan(parent, span);
    propagation.inject(ctx, req.header, headerSetter);
    if (info && !req.header.has(REQUEST_ID_HEADER)) req.header.set(REQUEST_ID_HEADER, info.requestId);

    const started = performance.now();
    const done = (err?: unknown) => {
      const code: Code | 0 = err === undefined ? 0 : codeOf(err);
      m.handled(code).inc();
      m.seconds.observe((performance.now() - started) / 1000);
      finishSpan(span, SpanKind.CLIENT, code, system, err);
    };
    try {
      const res = await context.with(ctx, () => next(req));
      if (res.stream) return { ...res, message: traceStream((res as StreamResponse).message, ctx, info, done) } as typeof res;
      done();
      return res;
    } catch (err) {
      done(err);
      throw err;
    }
  };
}

/**
 * Client interceptor without a span, for in-process transports (the edge's
 * calls to services hosted in the same process): writes the active trace
 * context and request id into the request headers, replacing whatever
 * traceparent was forwarded from the client, so the service's server span is
 * a child of the edge span.
 */
export function propagateContext(): Interceptor {
  return (next) => (req) => {
    propagation.inject(context.active(), req.header, headerSetter);
    const info = requestStore.getStore();
    if (info && !req.header.has(REQUEST_ID_HEADER)) req.header.set(REQUEST_ID_HEADER, info.requestId);
    return next(req);
  };
}

// ---------------------------------------------------------------------------
// Plain HTTP (the embedded edge's REST routes, JWKS...)

/** "/acme.order.v1.OrderService/CreateOrder": a gRPC/Connect path (traced by the interceptors instead). */
export function isRpcPath(path: string): boolean {
  return /^\/[A-Za-z_][\w]*(\.[\w]+)+\/[A-Za-z_]\w*$/.test(path);
}

function pathOf(req: NodeRequest): string {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}

/** Path for logs: no query, emails masked, bounded length. */
function loggablePath(path: string): string {
  return path
    .split("/")
    .map((seg) => (seg.includes("@") || seg.includes("%40") ? maskEmail(decodeURIComponent(seg)) : seg))
    .join("/")
    .slice(0, 200);
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
 * Start the SERVER span of a plain HTTP request: continue the incoming
 * traceparent (W3C) or start a new trace. The caller runs its work in
 * `edge.context` and calls `end(status)` once the response is written.
 */
export function startEdgeSpan(req: NodeRequest, opts: EdgeSpanOptions = {}): EdgeSpan {
  const registry = opts.registry ?? defaultRegistry;
  const method = (req.method ?? "GET").toUpperCase();
  const path = pathOf(req);
  const parent = propagation.extract(context.active(), req.headers, defaultTextMapGetter);
  // One request id for the edge, its log lines and the services: a sane
  // client-sent id is kept, otherwise one is made and written into the request
  // (where the edge's header handling and the backend calls pick it up).
  const rawId = req.headers[REQUEST_ID_HEADER];
  const requestId = requestIdFrom(Array.isArray(rawId) ? rawId[0] : rawId);
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
      const sc = span.spanContext();
      opts.log?.[status >= 500 ? "warn" : "info"]("http", {
        ...(isSpanContextValid(sc) ? { trace_id: sc.traceId, span_id: sc.spanId } : {}),
        request_id: requestId,
        ...(record.rpc ? { rpc: record.rpc } : {}),
        method,
        path: loggablePath(path),
        route,
        status,
        duration_ms: Math.round(seconds * 1e5) / 100,
      });
    },
  };
}

/** Let the edge name the current request's span by its route template ("/v1/orders/{id}"). No-op outside traceHttp. */
export function setHttpRoute(route: string): void {
  const edge = requestStore.getStore()?.edge;
  if (!edge) return;
  edge.route = route;
  edge.span.setAttribute("http.route", route);
  edge.span.updateName(`${edge.method} ${route}`);
}

export interface TraceHttpOptions extends EdgeSpanOptions {
  /** Paths answered without a span (probes, scrapes). */
  skip?: (path: string) => boolean;
}

/**
 * One HttpHandler that runs `handlers` in order inside an HTTP server span
 * (for everything but gRPC/Connect paths, which the interceptors trace). The
 * span ends when the response closes, whoever answered it.
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
