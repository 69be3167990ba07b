// Unary RPCs without connect's protocol machinery: the implementations
// registered on a ConnectRouter (handlers are written once, against the
// generated service types), called directly with the same interceptor chain
// connect runs (errors, auth, telemetry, edge limits stay one implementation).
// Two users:
//   platform/grpc.ts   unary gRPC on the port (h2c): bytes -> message -> here
//   local-transport.ts calls to services in the same process (the embedded
//                      edge's, and one service's to another): the request
//                      message goes straight to the handler, no protobuf
//                      round trip through a router transport.
// Streaming RPCs (health Watch, reflection) stay with connect.
import { create, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  createMethodImplSpec,
  createRouterTransport,
  createServiceImplSpec,
  type ConnectRouter,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type StreamRequest,
  type StreamResponse,
  type Transport,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";

export type Routes = (router: ConnectRouter) => void;
export type UnarySpec = Extract<MethodImplSpec, { kind: "unary" }>;

/** Path of a method on the wire: "/acme.user.v1.UserService/GetMe". */
export const pathOf = (spec: MethodImplSpec) => `/${spec.method.parent.typeName}/${spec.method.name}`;

/**
 * The unary implementations `routes` registers, by path. Services registered
 * with their own handler options are left out (connect serves them).
 */
export function unaryMethods(routes: Routes): Map<string, UnarySpec> {
  const out = new Map<string, UnarySpec>();
  const add = (spec: MethodImplSpec) => {
    if (spec.kind === "unary") out.set(pathOf(spec), spec);
  };
  const recorder = {
    handlers: [],
    service(service, impl, options) {
      if (!options) for (const spec of Object.values(createServiceImplSpec(service, impl).methods)) add(spec);
      return recorder;
    },
    rpc(method, impl, options) {
      if (!options) add(createMethodImplSpec(method, impl as never));
      return recorder;
    },
  } as ConnectRouter;
  routes(recorder);
  return out;
}

/** Reason the context signal carries once the call is over (no DOMException per call). */
const CALL_ENDED = new ConnectError("call ended", Code.Canceled);

export interface CallInit {
  spec: UnarySpec;
  protocolName: string;
  requestMethod: string;
  url: string;
  timeoutMs?: number;
  /** Aborts the call (the caller went away); its reason becomes the context's. */
  requestSignal?: AbortSignal;
  /** Taken as is (not copied). */
  requestHeader: Headers;
  responseHeader?: HeadersInit;
  responseTrailer?: HeadersInit;
  contextValues?: ContextValues;
}

/** A HandlerContext plus what ends it. */
export interface CallContext extends HandlerContext {
  /** Abort the call: the handler's signal fires with `reason`. */
  abort(reason?: unknown): void;
}

/**
 * The HandlerContext connect's createHandlerContext builds, with one
 * AbortController per call instead of three linked ones, and a deadline
 * timer only when the call has a deadline.
 */
export function handlerContext(init: CallInit): CallContext {
  const ctrl = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let deadline: number | undefined;
  const { requestSignal } = init;
  const onRequestAbort = () => abort(requestSignal!.reason);
  const abort = (reason?: unknown) => {
    if (timer) clearTimeout(timer);
    requestSignal?.removeEventListener("abort", onRequestAbort);
    if (!ctrl.signal.aborted) ctrl.abort(reason);
  };
  if (init.timeoutMs !== undefined) {
    deadline = Date.now() + init.timeoutMs;
    const expire = () => abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
    if (init.timeoutMs <= 0) expire();
    else timer = setTimeout(expire, init.timeoutMs);
  }
  if (requestSignal) {
    if (requestSignal.aborted) abort(requestSignal.reason);
    else requestSignal.addEventListener("abort", onRequestAbort);
  }
  return {
    service: init.spec.method.parent,
    method: init.spec.method,
    protocolName: init.protocolName,
    requestMethod: init.requestMethod,
    url: init.url,
    signal: ctrl.signal,
    timeoutMs: () => (deadline === undefined ? undefined : deadline - Date.now()),
    requestHeader: init.requestHeader,
    responseHeader: new Headers(init.responseHeader),
    responseTrailer: new Headers(init.responseTrailer),
    values: init.contextValues ?? createContextValues(),
    abort,
  };
}

function copyHeaders(from: Headers, to: Headers): void {
  if (from === to) return;
  to.forEach((_, k) => to.delete(k));
  from.forEach((v, k) => to.set(k, v));
}

/**
 * Run the interceptors and the implementation of a unary method, as connect's
 * handlers do (same request and response objects, same header merging).
 * Returns the normalised output message; the context's responseHeader and
 * responseTrailer hold what to send with it. The caller ends the context
 * (endCall) once the call is over.
 */
export async function invokeUnary(
  spec: UnarySpec,
  ctx: HandlerContext,
  input: MessageShape<DescMessage>,
  interceptors: readonly Interceptor[],
): Promise<MessageShape<DescMessage>> {
  const { method } = spec;
  const service = method.parent;
  let next = async (req: UnaryRequest | StreamRequest): Promise<UnaryResponse | StreamResponse> => {
    const out = await spec.impl(req.message as never, { ...ctx, service: req.service, requestHeader: req.header, signal: req.signal, values: req.contextValues });
    return { stream: false, service, method, message: create(method.output, out as never), header: ctx.responseHeader, trailer: ctx.responseTrailer };
  };
  for (let i = interceptors.length - 1; i >= 0; i--) next = interceptors[i](next);
  const res = await next({
    stream: false,
    service,
    method,
    message: input,
    requestMethod: ctx.requestMethod,
    url: ctx.url,
    signal: ctx.signal,
    header: ctx.requestHeader,
    contextValues: ctx.values,
  });
  copyHeaders(res.header, ctx.responseHeader);
  copyHeaders(res.trailer, ctx.responseTrailer);
  return res.message as MessageShape<DescMessage>;
}

/**
 * The call is over: abort the context's signal (as connect does, so work tied
 * to it stops and its listeners go) and clear its deadline timer.
 */
export function endCall(ctx: CallContext): void {
  ctx.abort(CALL_ENDED);
}
