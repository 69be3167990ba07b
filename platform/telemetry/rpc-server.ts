// The server interceptor: a SERVER span per RPC (parent from the caller's W3C
// trace context or, for in-process calls, the active context), the request id
// (decided here when the RPC is the request's entry into the process), RED
// metrics and one access-log line per RPC. Put it first, before auth, errors
// and rate limits, so every outcome is traced, counted and logged.
import { context, SpanKind, trace, type Span } from "@opentelemetry/api";
import type { Interceptor, StreamResponse, UnaryResponse } from "@connectrpc/connect";
import type { Logger } from "../logger.js";
import { logRpc } from "./access-log.js";
import { requestStore, type RequestInfo } from "./context.js";
import { noteEdgeRpc } from "./edge-naming.js";
import { metrics as defaultRegistry, type MetricsRegistry } from "./metrics.js";
import { extractFromHeaders } from "./propagation.js";
import { REQUEST_ID_HEADER, requestIdFrom } from "./request-id.js";
import { grpcTypeOf, rpcMetrics } from "./rpc-metrics.js";
import { codeOf, finishSpan, QUIET, rpcSystem, tracer } from "./rpc-span.js";
import { tracedStream } from "./traced-stream.js";

export interface ServerObservabilityOptions {
  log: Logger;
  registry?: MetricsRegistry;
}

export function serverObservability(opts: ServerObservabilityOptions): Interceptor {
  const log = opts.log;
  const handlesFor = rpcMetrics(opts.registry ?? defaultRegistry, "server");
  return (next) => async (req) => {
    const service = req.service.typeName;
    const method = req.method.name;
    const rpc = `${service}/${method}`;
    const m = handlesFor(service, method, grpcTypeOf(req.method.methodKind));
    const system = rpcSystem(req.header.get("content-type"));
    const quiet = QUIET.test(service);
    const outer = requestStore.getStore();
    if (!quiet) noteEdgeRpc(outer, rpc);
    // Inside a request of this process (an in-process call) its id stands; at the entry it is decided here.
    const requestId = outer?.requestId ?? requestIdFrom(req.header.get(REQUEST_ID_HEADER));
    const info: RequestInfo = { requestId, rpc };

    const parent = extractFromHeaders(req.header);
    let ctx = parent;
    let span: Span | undefined;
    if (!quiet) {
      span = tracer().startSpan(rpc, { kind: SpanKind.SERVER, attributes: { "rpc.system": system, "rpc.service": service, "rpc.method": method } }, parent);
      ctx = trace.setSpan(parent, span);
    }

    m.started.inc();
    m.inFlight.add(1);
    const started = performance.now();
    const done = (err?: unknown) => {
      const seconds = (performance.now() - started) / 1000;
      const code = codeOf(err);
      m.inFlight.add(-1);
      m.handled(code).inc();
      m.seconds.observe(seconds);
      if (span) finishSpan(span, SpanKind.SERVER, code, system, err);
      logRpc(log, { span, requestId, rpc, protocol: system, code, seconds, quiet });
    };

    try {
      const res = await context.with(ctx, () => requestStore.run(info, () => next(req)));
      if (res.stream) return { ...res, message: tracedStream((res as StreamResponse).message, ctx, info, done) } as typeof res;
      done();
      return res as UnaryResponse;
    } catch (err) {
      done(err);
      throw err;
    }
  };
}
