// The RED metrics of one RPC (go-grpc-prometheus names): started, in flight,
// handled by code, handling seconds. Series handles are resolved once per
// method (and code) and kept, so recording an RPC hashes no labels.
import type { Code } from "@connectrpc/connect";
import { codeName } from "./rpc-span.js";
import { METRIC, type MetricsRegistry, type SeriesHandle } from "./metrics.js";

export interface RpcMetrics {
  readonly started: SeriesHandle;
  readonly inFlight: SeriesHandle;
  readonly seconds: SeriesHandle;
  handled(code: Code | 0): SeriesHandle;
}

/** "unary", "server_stream", ... as go-grpc-prometheus labels grpc_type. */
export function grpcTypeOf(kind: string): string {
  return kind === "unary" ? "unary" : kind === "server_streaming" ? "server_stream" : kind === "client_streaming" ? "client_stream" : "bidi_stream";
}

/** Per-method handles of the server or client families of `registry`. */
export function rpcMetrics(registry: MetricsRegistry, side: "server" | "client"): (service: string, method: string, grpcType: string) => RpcMetrics {
  const cache = new Map<string, RpcMetrics>();
  return (service, method, grpcType) => {
    const key = `${service}/${method}`;
    let m = cache.get(key);
    if (m) return m;
    const labels = { grpc_service: service, grpc_method: method, grpc_type: grpcType };
    const byCode = new Map<number, SeriesHandle>();
    const handledName = side === "server" ? METRIC.rpcServerHandled : METRIC.rpcClientHandled;
    m = {
      started: registry.handle(METRIC.rpcServerStarted, "counter", labels),
      inFlight: registry.handle(METRIC.rpcServerInFlight, "gauge", { grpc_service: service, grpc_method: method }),
      seconds: registry.handle(side === "server" ? METRIC.rpcServerSeconds : METRIC.rpcClientSeconds, "histogram", labels),
      handled(code) {
        let h = byCode.get(code);
        if (!h) {
          h = registry.handle(handledName, "counter", { ...labels, grpc_code: codeName(code) });
          byCode.set(code, h);
        }
        return h;
      },
    };
    cache.set(key, m);
    return m;
  };
}
