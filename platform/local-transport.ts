// Calls to handlers in this process: one transport (no serialisation,
// platform/rpc.ts runs the interceptors and the handler on the very request
// message) shared by every caller, each caller's own interceptors in front.
import { type DescMessage, type DescMethodUnary, type MessageShape, create } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  createRouterTransport,
  type ContextValues,
  type Interceptor,
  type StreamRequest,
  type StreamResponse,
  type Transport,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { endCall, handlerContext, invokeUnary, unaryMethods, type Routes, type UnarySpec } from "./rpc.js";

/** `p`, or a rejection with the signal's reason (as a ConnectError) if it aborts first. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(ConnectError.from(signal.reason, Code.Canceled));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(ConnectError.from(signal.reason, Code.Canceled));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}


export interface LocalTransportOptions {
  /** The unary method table of `routes`, when the host built it already (it is built once per process). */
  methods?: ReadonlyMap<string, UnarySpec>;
  /** Server-side interceptors (as connect router options). */
  router?: { interceptors?: Interceptor[] };
  /** Client-side interceptors (as connect transport options). */
  transport?: { interceptors?: Interceptor[] };
}

/**
 * A Transport to handlers in this process, with createRouterTransport's
 * options and behaviour for unary calls but without serialising anything:
 * client interceptors, then the server's interceptors and the handler on the
 * very request message. Errors come back as ConnectErrors carrying the
 * response headers and trailers as metadata, as over a wire. Streaming calls
 * go through a connect router transport.
 */
export function localTransport(routes: Routes, opts: LocalTransportOptions = {}): Transport {
  const methods = opts.methods ?? unaryMethods(routes);
  const serverInterceptors = opts.router?.interceptors ?? [];
  const clientInterceptors = opts.transport?.interceptors ?? [];
  let streams: Transport | undefined;
  return {
    async unary(method, signal, timeoutMs, header, input, contextValues) {
      const spec = methods.get(`/${method.parent.typeName}/${method.name}`);
      if (!spec) {
        return ((streams ??= createRouterTransport(routes, opts)).unary as Transport["unary"])(method, signal, timeoutMs, header, input, contextValues) as never;
      }
      const call = async (req: UnaryRequest | StreamRequest): Promise<UnaryResponse | StreamResponse> => {
        const h = new Headers(req.header);
        // What a Connect client sends: the services see the same request as through a router transport.
        h.set("content-type", "application/proto");
        h.set("connect-protocol-version", "1");
        if (timeoutMs !== undefined) h.set("connect-timeout-ms", String(timeoutMs));
        const ctx = handlerContext({
          spec,
          protocolName: "connect",
          requestMethod: "POST",
          url: req.url,
          timeoutMs,
          requestSignal: req.signal,
          requestHeader: h,
          contextValues: req.contextValues,
        });
        try {
          // Like a client, give up when the caller aborts or the deadline passes, whatever the handler does.
          const message = await untilAborted(invokeUnary(spec, ctx, req.message as MessageShape<DescMessage>, serverInterceptors), ctx.signal);
          return { stream: false, service: method.parent, method, message, header: ctx.responseHeader, trailer: ctx.responseTrailer } as UnaryResponse;
        } catch (err) {
          const e = ConnectError.from(err);
          const metadata = new Headers(ctx.responseHeader);
          ctx.responseTrailer.forEach((v, k) => metadata.append(k, v));
          e.metadata.forEach((v, k) => metadata.set(k, v));
          const copy = new ConnectError(e.rawMessage, e.code, metadata, undefined, e.cause);
          copy.details = e.details;
          throw copy;
        } finally {
          endCall(ctx);
        }
      };
      const res = await intercepted(clientInterceptors, call)(unaryRequest(method, signal, header, create(method.input, input as never), contextValues));
      return res as never;
    },
    stream(...args) {
      return (streams ??= createRouterTransport(routes, opts)).stream(...args);
    },
  };
}

/**
 * `transport` with client interceptors in front of its unary calls (the
 * caller's own: breaker, retry, identity), so one transport serves every
 * caller. Streaming calls pass straight through.
 */
export function withInterceptors(transport: Transport, interceptors: readonly Interceptor[]): Transport {
  if (!interceptors.length) return transport;
  return {
    unary(method, signal, timeoutMs, header, input, contextValues) {
      const call = async (req: UnaryRequest | StreamRequest): Promise<UnaryResponse | StreamResponse> =>
        transport.unary(method, req.signal, timeoutMs, req.header, (req as UnaryRequest).message as never, req.contextValues);
      return intercepted(interceptors, call)(unaryRequest(method, signal, header, input, contextValues)) as never;
    },
    stream: (...args) => transport.stream(...args),
  };
}

type Call = (req: UnaryRequest | StreamRequest) => Promise<UnaryResponse | StreamResponse>;

/** `call` behind `interceptors`, the first one outermost (as connect orders them). */
function intercepted(interceptors: readonly Interceptor[], call: Call): Call {
  let c = call;
  for (let i = interceptors.length - 1; i >= 0; i--) c = interceptors[i](c);
  return c;
}

/** The request a client interceptor sees for a unary call in this process. */
function unaryRequest(
  method: DescMethodUnary,
  signal: AbortSignal | undefined,
  header: HeadersInit | undefined,
  message: unknown,
  contextValues: ContextValues | undefined,
): UnaryRequest {
  return {
    stream: false,
    service: method.parent,
    method,
    requestMethod: "POST",
    url: `https://in-memory/${method.parent.typeName}/${method.name}`,
    signal: signal ?? new AbortController().signal,
    header: new Headers(header),
    contextValues: contextValues ?? createContextValues(),
    message,
  } as UnaryRequest;
}
