// Naming the span of a plain HTTP (edge) request: after its REST route
// template when the edge says it (setHttpRoute), otherwise after the first RPC
// it makes, which also labels its metrics. Kept in requestStore, not in the
// OpenTelemetry context, so the metrics do not depend on tracing being on.
import { requestStore, type RequestInfo } from "./context.js";

/** Let the edge name the current request's span by its route template ("/v1/orders/{id}"). No-op outside traceHttp. */
export function setHttpRoute(route: string): void {
  const edge = requestStore.getStore()?.edge;
  if (!edge) return;
  edge.route = route;
  edge.span.setAttribute("http.route", route);
  edge.span.updateName(`${edge.method} ${route}`);
}

/** The first RPC made (or served in process) for an edge request names its span, unless a route did. */
export function noteEdgeRpc(info: RequestInfo | undefined, rpc: string): void {
  const edge = info?.edge;
  if (!edge || edge.rpc) return;
  edge.rpc = rpc;
  edge.span.setAttribute("acme.edge.rpc", rpc);
  if (!edge.route) edge.span.updateName(`${edge.method} ${rpc}`);
}
