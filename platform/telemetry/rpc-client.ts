// Client interceptors: the caller's trace context and request id go into
// every outgoing call's headers.
//   clientObservability  a CLIENT span per outgoing RPC (server.address/port),
//                        grpc_client_* metrics. Put it last (innermost), so the
//                        span covers the network call and not e.g. fetching a
//                        service token (which is its own RPC).
//   propagateContext     no span, for in-process transports (the edge's calls to
//                        services in the same process): replaces whatever
//                        traceparent was forwarded from the client, so the
//                        service's server span is a child of the edge span.
import { context, SpanKind, trace, type Attributes } from "@opentelemetry/api";
import type { Interceptor, StreamResponse } from "@connectrpc/connect";
import { requestStore } from "./context.js";
import { noteEdgeRpc } from "./edge-naming.js";
import { metrics as defaultRegistry, type MetricsRegistry } from "./metrics.js";
import { injectIntoHeaders } from "./propagation.js";
import { forwardRequestId } from "./request-id.js";
import { grpcTypeOf, rpcMetrics } from "./rpc-metrics.js";
import { codeOf, finishSpan, tracer } from "./rpc-span.js";
import { tracedStream } from "./traced-stream.js";

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

export function clientObservability(opts: ClientObservabilityOptions = {}): Interceptor {
  const system = opts.system ?? "grpc";
  const handlesFor = rpcMetrics(opts.registry ?? defaultRegistry, "client");
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
    injectIntoHeaders(req.header, ctx);
    forwardRequestId(req.header);

    const started = performance.now();
    const done = (err?: unknown) => {
      const code = codeOf(err);
      m.handled(code).inc();
      m.seconds.observe((performance.now() - started) / 1000);
      finishSpan(span, SpanKind.CLIENT, code, system, err);
    };
    try {
      const res = await context.with(ctx, () => next(req));
      if (res.stream) return { ...res, message: tracedStream((res as StreamResponse).message, ctx, info, done) } as typeof res;
      done();
      return res;
    } catch (err) {
      done(err);
      throw err;
    }
  };
}

export function propagateContext(): Interceptor {
  return (next) => (req) => {
    injectIntoHeaders(req.header);
    forwardRequestId(req.header);
    return next(req);
  };
}
