// The tracing entry points, for importers outside platform/telemetry (the
// edge, platform/clients.ts, app/system.ts). Each lives in a module of
// its own:
//   rpc-server.ts   serverObservability: SERVER span, request id, RED metrics, access log per RPC
//   rpc-client.ts   clientObservability (CLIENT span, grpc_client_*), propagateContext (in-process)
//   http-server.ts  traceHttp / startEdgeSpan: SERVER span around plain HTTP (the edge's REST routes)
//   edge-naming.ts  setHttpRoute: name the edge span after its route template
//   propagation.ts  W3C trace context in and out of headers (OpenTelemetry's propagation API)
//   request-id.ts   x-request-id: decided once per request, carried, forwarded
//   access-log.ts   the "rpc" and "http" log lines
export { serverObservability, type ServerObservabilityOptions } from "./rpc-server.js";
export { clientObservability, propagateContext, type ClientObservabilityOptions } from "./rpc-client.js";
export { isRpcPath, startEdgeSpan, traceHttp, type EdgeSpan, type EdgeSpanOptions, type TraceHttpOptions } from "./http-server.js";
export { setHttpRoute } from "./edge-naming.js";
export { codeName, rpcSystem } from "./rpc-span.js";
