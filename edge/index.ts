// The embedded edge: what `npm start` serves in front of the services on its
// one port, with the same contract as envoy/envoy.yaml.
import type { Interceptor, Transport } from "@connectrpc/connect";
import type { TokenVerifier } from "../platform/auth/verifier.js";
import type { Config } from "../platform/config.js";
import type { KeyValueStore } from "../platform/kv.js";
import type { Logger } from "../platform/logger.js";
import type { HttpHandler } from "../platform/server.js";

export interface EdgeDeps {
  config: Config;
  kv: KeyValueStore;
  log: Logger;
  verifier: TokenVerifier;
  /** Transport to the backend serving a service type name (in process or over gRPC). */
  transportFor(serviceTypeName: string): Transport;
}

export interface Edge {
  /** REST/JSON transcoding, CORS, JWKS passthrough... tried before the RPC router. */
  readonly httpHandlers: readonly HttpHandler[];
  /** Applied to gRPC, gRPC-Web and Connect calls arriving on the port (rate limits, header hygiene). */
  readonly rpcInterceptors: readonly Interceptor[];
  close?(): Promise<void>;
}

export async function createEdge(_deps: EdgeDeps): Promise<Edge> {
  return { httpHandlers: [], rpcInterceptors: [] };
}
