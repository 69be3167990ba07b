// CORS as Envoy's cors filter applies the virtual host policy: a preflight
// (OPTIONS with Origin and Access-Control-Request-Method) from an allowed
// origin is answered 200 right away, before any JWT check; other requests
// from an allowed origin get access-control-allow-origin (the origin itself)
// and the exposed headers. Requests from other origins pass untouched (the
// browser then refuses them). The allow-list is exact (CORS_ORIGINS; none by
// default; "*" and "null" are refused by the config).
import type { NodeRequest, NodeResponse } from "../platform/server.js";

export interface CorsPolicy {
  /** Exact origins. */
  readonly origins: readonly string[];
  readonly allowMethods: string;
  readonly allowHeaders: string;
  readonly exposeHeaders: string;
  readonly maxAgeSeconds: number;
}

export function corsPolicy(origins: readonly string[]): CorsPolicy {
  return {
    origins,
    allowMethods: "GET, POST, PUT, PATCH, DELETE, OPTIONS",
    // REST (authorization, content-type), tracing, and the gRPC-Web / Connect browser clients.
    allowHeaders: [
      "authorization",
      "content-type",
      "x-request-id",
      "traceparent",
      "tracestate",
      "grpc-timeout",
      "x-grpc-web",
      "x-user-agent",
      "connect-protocol-version",
      "connect-timeout-ms",
    ].join(", "),
    exposeHeaders: [
      "x-request-id",
      "grpc-status",
      "grpc-message",
      "grpc-status-details-bin",
      "x-ratelimit-limit",
      "x-ratelimit-remaining",
      "x-ratelimit-reset",
      "retry-after",
      "www-authenticate",
    ].join(", "),
    maxAgeSeconds: 600,
  };
}

function header(req: NodeRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function originAllowed(policy: CorsPolicy, origin: string): boolean {
  return policy.origins.includes(origin);
}

/**
 * Apply CORS to a request: true when it was a preflight and has been answered.
 * Otherwise sets the response headers for an allowed origin and returns false.
 */
export function applyCors(policy: CorsPolicy, req: NodeRequest, res: NodeResponse): boolean {
  const origin = header(req, "origin");
  if (!origin || !originAllowed(policy, origin)) return false;
  const preflight = req.method === "OPTIONS" && !!header(req, "access-control-request-method");
  res.setHeader("vary", "origin");
  res.setHeader("access-control-allow-origin", origin);
  if (preflight) {
    res.writeHead(200, {
      "access-control-allow-methods": policy.allowMethods,
      "access-control-allow-headers": policy.allowHeaders,
      "access-control-max-age": String(policy.maxAgeSeconds),
      "content-length": "0",
    });
    res.end();
    return true;
  }
  res.setHeader("access-control-expose-headers", policy.exposeHeaders);
  return false;
}
