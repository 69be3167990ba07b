// The embedded edge: what `npm start` serves in front of the services on its
// one port, with the same contract as envoy/envoy.yaml. Everything is read at
// start from the descriptors (routes, access, rate-limit classes: see
// platform/policy.ts, app/contract.ts) and from the same rate-limit config file as Envoy's
// ratelimit service, so changing a .proto or config.yaml changes both edges.
//
//   headers.ts      hygiene, client address, x-request-id, security headers
//   cors.ts         CORS (preflights answered before any JWT check)
//   url.ts          path normalisation, percent-decoding, query parsing
//   routes.ts       the REST routes of the contract, as a path trie
//   transcode.ts    JSON/path/query <-> protobuf messages
//   authn.ts        JWT checks with jwt_authn's answers
//   ratelimit.ts    envoyproxy/ratelimit's algorithm, keys and headers
//   errors.ts       gRPC status -> HTTP (convert_grpc_status), local replies
//   rest.ts         the REST request pipeline
//   body.ts         request bodies (plain or gzip), bounded
//   interceptor.ts  the same limits and hygiene for gRPC / gRPC-Web / Connect
//   openapi.ts      GET /openapi.json (gen/openapi.json)
//   docs.ts         GET /docs/: the API reference page (Swagger UI of /openapi.json)
//
// The header handling (`prelude`) runs first for every request on the port,
// whichever path serves it. Paths the REST routes do not claim (no route
// starts with their first segment: /health, /metrics, gRPC paths) fall
// through to the next handlers and the RPC router, with CORS applied.
// GET /health (aggregated health) is not built here: platform/telemetry
// serves it (and /metrics) in app/system.ts, ahead of these handlers.
import type { Interceptor, Transport } from "@connectrpc/connect";
import type { TokenVerifier } from "../platform/auth/verifier.js";
import type { Config } from "../platform/config.js";
import type { KeyValueStore } from "../platform/kv.js";
import type { Logger } from "../platform/logger.js";
import type { FileRegistry } from "@bufbuild/protobuf";
import type { PolicyTable } from "../platform/policy.js";
import type { HttpHandler, RequestPrelude } from "../platform/server.js";
import { createEdgeAuthn } from "./authn.js";
import { applyCors, corsPolicy } from "./cors.js";
import { clientIpOf, prepareRequest, REQUEST_ID_HEADER } from "./headers.js";
import { edgeInterceptor } from "./interceptor.js";
import { createRateLimiter, loadRateLimitConfig } from "./ratelimit.js";
import { openApiHandler } from "./openapi.js";
import { docsHandler } from "./docs.js";
import { restHandler } from "./rest.js";
import { compileRoutes } from "./routes.js";

export interface EdgeDeps {
  config: Config;
  kv: KeyValueStore;
  log: Logger;
  verifier: TokenVerifier;
  /** The policy (and routes) of every RPC the edge serves. */
  policies: PolicyTable;
  /** Descriptors of those RPCs' messages (JSON codecs, Any, error details). */
  registry: FileRegistry;
  /** Transport to the backend serving a service type name (in process or over gRPC). */
  transportFor(serviceTypeName: string): Transport;
  /** Clock in seconds since the epoch (tests); default Date.now() / 1000. */
  now?: () => number;
}

export interface Edge {
  /** Header hygiene, the request id and security headers: the server runs it first for every request on the port. */
  readonly prelude: RequestPrelude;
  /** REST/JSON transcoding, CORS, JWKS passthrough... tried before the RPC router. */
  readonly httpHandlers: readonly HttpHandler[];
  /** Applied to gRPC, gRPC-Web and Connect calls arriving on the port (rate limits, header hygiene). */
  readonly rpcInterceptors: readonly Interceptor[];
  close?(): Promise<void>;
}

/** Deadline of REST calls to the services (Envoy's default route timeout). */
export const BACKEND_TIMEOUT_MS = 15_000;

export async function createEdge(deps: EdgeDeps): Promise<Edge> {
  const { config, log } = deps;
  const routes = compileRoutes(deps.policies.all());
  const limiter = createRateLimiter({
    config: loadRateLimitConfig(config.rateLimitConfig),
    kv: deps.kv,
    now: deps.now,
    // Like Envoy's ratelimit filter with failure_mode_deny: false: fail open.
    onError: (err) => log.warn("rate limit check failed, request allowed", { err }),
  });
  const authn = createEdgeAuthn({ verifier: deps.verifier, issuer: config.jwt.issuer, audience: config.jwt.audience, now: deps.now });
  const cors = corsPolicy(config.corsOrigins);
  const transports = new Map<string, Transport>();
  const transportFor = (name: string) => {
    let t = transports.get(name);
    if (!t) transports.set(name, (t = deps.transportFor(name)));
    return t;
  };
  const rest = restHandler({
    routes,
    registry: deps.registry,
    authn,
    limiter,
    transportFor,
    maxBodyBytes: config.maxBodyBytes,
    maxJsonDepth: config.limits.maxJsonDepth,
    timeoutMs: BACKEND_TIMEOUT_MS,
    log,
  });
  const internalPrefixes = [...new Set(deps.policies.all().filter((p) => p.internal).map((p) => `/${p.service.typeName}/`))];

  const openApi = openApiHandler();
  const docs = docsHandler();
  const prelude: RequestPrelude = (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    prepareRequest(req, res, !internalPrefixes.some((p) => path.startsWith(p)));
  };
  const handler: HttpHandler = async (req, res) => {
    // The prelude ran first (platform/server.ts): the request id is decided.
    const ctx = { requestId: String(req.headers[REQUEST_ID_HEADER]), clientIp: clientIpOf(req) };
    if (applyCors(cors, req, res)) return true;
    if (await openApi(req, res)) return true;
    if (await docs(req, res)) return true;
    return rest(req, res, ctx);
  };
  return {
    prelude,
    httpHandlers: [handler],
    rpcInterceptors: [edgeInterceptor({ authn, limiter, policies: deps.policies })],
  };
}
