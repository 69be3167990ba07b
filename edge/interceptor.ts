// The edge for gRPC, gRPC-Web and Connect calls arriving on the port: the
// same header hygiene and the same rate-limit descriptors as REST requests
// (Envoy applies its filters to both). Authentication itself stays with the
// services' interceptor; the edge only verifies the token of non-public RPCs
// to learn the subject for the per-user limits (as jwt_authn's payload feeds
// Envoy's descriptors), and lets the service refuse bad tokens with its own
// errors. Calls to internal services and to RPCs outside the contract
// (health, reflection) are not routed by any edge and pass untouched.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { bearerToken, verifiedTokenKey } from "../platform/auth/interceptor.js";
import { Access, policyOfCall, type PolicyTable } from "../platform/policy.js";
import { EXTERNAL_ADDRESS_HEADER, normaliseIp, peerAddressKey } from "../platform/request.js";
import type { EdgeAuthn } from "./authn.js";
import { isStripped } from "./headers.js";
import { descriptorsFor, type RateLimiter } from "./ratelimit.js";

export interface EdgeInterceptorOptions {
  authn: EdgeAuthn;
  limiter: RateLimiter;
  policies: PolicyTable;
}

export function edgeInterceptor(opts: EdgeInterceptorOptions): Interceptor {
  return (next) => async (req) => {
    const policy = policyOfCall(opts.policies, req);
    if (!policy || policy.internal) return next(req);
    for (const name of [...req.header.keys()]) if (isStripped(name)) req.header.delete(name);
    const ip = normaliseIp(req.contextValues.get(peerAddressKey)) || "unknown";
    req.header.set(EXTERNAL_ADDRESS_HEADER, ip);

    let subject: string | undefined;
    if (policy.access !== Access.PUBLIC) {
      const authorization = req.header.get("authorization");
      const a = await opts.authn.authenticate(authorization);
      if (a.ok) subject = a.subject;
      // The service's auth interceptor, next in this process, need not verify it again.
      if (a.ok && a.principal) req.contextValues.set(verifiedTokenKey, { token: bearerToken(authorization)!, principal: a.principal });
    }
    const decision = await opts.limiter.check(descriptorsFor(ip, subject, policy.rateLimit));
    if (decision.overLimit) {
      throw new ConnectError("rate limit exceeded", Code.ResourceExhausted, decision.headers);
    }
    try {
      const res = await next(req);
      for (const [k, v] of Object.entries(decision.headers)) res.header.set(k, v);
      return res;
    } catch (err) {
      const ce = ConnectError.from(err);
      for (const [k, v] of Object.entries(decision.headers)) ce.metadata.set(k, v);
      throw ce;
    }
  };
}
