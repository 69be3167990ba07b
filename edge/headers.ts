// Header hygiene shared by the REST path and the RPC interceptor:
// - client-sent headers only an edge may set are dropped before anything
//   reads them (x-jwt-*, x-envoy-*, x-forwarded-*, x-acme-*);
// - x-envoy-external-address is set to the client IP (the TCP peer: clients
//   connect directly, as Envoy's use_remote_address with no trusted hops);
// - x-request-id is kept when the client sent a sane one, generated otherwise,
//   and echoed in the response;
// - every response carries x-content-type-options and x-frame-options;
//   credential endpoints cache-control: no-store whatever the service says, and
//   every other answer no-store unless the service set its own cache-control
//   (the JWKS is the one that does): personal data is never cached by default.
import { REQUEST_ID_HEADER, requestIdFrom } from "../platform/telemetry/request-id.js";
import type { MethodPolicy } from "../platform/policy.js";
import { EXTERNAL_ADDRESS_HEADER, normaliseIp } from "../platform/request.js";
import type { RequestPrelude } from "../platform/server.js";

export const STRIPPED_PREFIXES = ["x-jwt-", "x-envoy-", "x-forwarded-", "x-acme-"] as const;

export function isStripped(name: string): boolean {
  const n = name.toLowerCase();
  return STRIPPED_PREFIXES.some((p) => n.startsWith(p));
}

/** Headers of the REST request passed on to the backend call (besides those the edge sets). */
export const FORWARDED_REQUEST_HEADERS = ["authorization", "user-agent", "traceparent", "tracestate"] as const;

/** The default cache-control of routed answers (Envoy: the virtual host adds it if absent). */
export const DEFAULT_CACHE_CONTROL = "no-store";

/** Credential endpoints (rate class "auth"): no-store even if the service said otherwise. */
export const isCredentialEndpoint = (p: Pick<MethodPolicy, "rateLimit">) => p.rateLimit === "auth";

/**
 * Content types a request body may have on the port: JSON (REST, Connect), and the
 * gRPC, gRPC-Web and Connect binary types. Anything else (text/plain, forms) is 415:
 * a JSON body sent as text/plain is a cross-site request a browser sends without a
 * CORS preflight. Envoy's header filter applies the same list (scripts/envoy-config).
 */
export const ACCEPTED_BODY_TYPES = ["application/json", "application/grpc", "application/proto", "application/connect+"] as const;

/** True when the request has no body, or a body of an accepted type. */
export function isAcceptedBodyType(headers: Record<string, string | string[] | undefined>): boolean {
  const length = headers["content-length"];
  const hasBody = (length !== undefined && length !== "0") || headers["transfer-encoding"] !== undefined;
  if (!hasBody) return true;
  const type = String(headers["content-type"] ?? "").toLowerCase();
  return ACCEPTED_BODY_TYPES.some((t) => type.startsWith(t));
}

/** A request header as one string (repeated ones joined with ", "). */
export function headerValue(req: { headers: Record<string, string | string[] | undefined> }, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(", ") : v;
}

// The request id is decided here, first thing for every request on the port, by the one rule
// (platform/telemetry/request-id.ts); everything after reads the header this sets.
export { REQUEST_ID_HEADER } from "../platform/telemetry/request-id.js";

export function clientIpOf(req: Parameters<RequestPrelude>[0]): string {
  return normaliseIp(req.socket?.remoteAddress ?? "") || "unknown";
}

/**
 * Strict-Transport-Security, on every answer over TLS and never over plain HTTP (RFC 6797
 * §7.2): one year, subdomains too. Both edges send this value (Envoy's HTTPS listener,
 * scripts/envoy-config). docs/tls.md.
 */
export const HSTS = "max-age=31536000; includeSubDomains";
export const HSTS_HEADER = "strict-transport-security";

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
};

/**
 * First step for every request on the port: decide the request id (written
 * back into the request so the RPC router and the services see it), drop
 * edge-only headers, set the client address, and put the id and the security
 * headers on the response. `hygiene` is false for calls to internal services:
 * no edge routes those; in the all-in-one process they are the services'
 * own calls to each other through the port, left as sent.
 */
export function prepareRequest(req: Parameters<RequestPrelude>[0], res: Parameters<RequestPrelude>[1], hygiene = true): { requestId: string; clientIp: string } {
  const requestId = requestIdFrom(req.headers[REQUEST_ID_HEADER]);
  const clientIp = clientIpOf(req);
  const headers = req.headers as Record<string, string | string[] | undefined>;
  if (hygiene) {
    for (const name of Object.keys(headers)) if (isStripped(name)) delete headers[name];
    headers[EXTERNAL_ADDRESS_HEADER] = clientIp;
  }
  headers[REQUEST_ID_HEADER] = requestId;
  res.setHeader(REQUEST_ID_HEADER, requestId);
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
  if ((req.socket as { encrypted?: boolean } | undefined)?.encrypted) res.setHeader(HSTS_HEADER, HSTS);
  return { requestId, clientIp };
}
