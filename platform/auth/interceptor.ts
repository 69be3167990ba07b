// The one auth check of the system, as a connect interceptor. Every service
// (and the embedded edge, whose REST and RPC calls end here) runs it: it
// learns who calls (a bearer token, or the identity of a service calling in
// process) and asks the contract's policy (platform/policy.ts `authorize`)
// whether that principal may call this method.
import { Code, ConnectError, createContextKey, type ContextValues, type Interceptor } from "@connectrpc/connect";
import { Access, authorize, ownerCheckKey, policyOfCall, type PolicyTable } from "../policy.js";
import { clientRateLimiter } from "./client-limit.js";
import { principalKey, type Principal, type ServicePrincipal } from "./principal.js";
import { TokenError, type TokenVerifier } from "./verifier.js";

export interface AuthInterceptorOptions {
  verifier: TokenVerifier;
  /** The policy of every RPC this host serves. */
  policies: PolicyTable;
  /** Called on every refused token (metrics, logs); never given the token. */
  onRejected?: (path: string, reason: string) => void;
  /** Clock of the per-client rate limit (tests). */
  now?: () => number;
}

/**
 * A bearer token that an earlier step of the same request (the embedded
 * edge) already verified with the same verifier, and its principal: the auth
 * interceptor takes it instead of verifying the token a second time. Context
 * values stay in the process, so a call that crosses the network is always
 * verified by the service that receives it.
 */
export const verifiedTokenKey = createContextKey<{ readonly token: string; readonly principal: Principal } | undefined>(undefined, {
  description: "token verified earlier in this request",
});

/**
 * The service calling, for a call made inside this process by another
 * service hosted here (set by the host's in-process transport, app/). No
 * token is minted or sent: context values never leave the process, so no
 * remote client can claim it.
 */
export const inProcessCallerKey = createContextKey<ServicePrincipal | undefined>(undefined, { description: "in-process calling service" });

/** "Bearer xyz" -> "xyz"; undefined when absent or not a bearer credential. */
export function bearerToken(header: string | null | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer[ ]+([^ ]+)[ ]*$/i.exec(header);
  return m?.[1];
}

export function authInterceptor(opts: AuthInterceptorOptions): Interceptor {
  const limiter = clientRateLimiter(opts.now);
  const verify = (token: string, values: ContextValues): Promise<Principal> => {
    const earlier = values.get(verifiedTokenKey);
    return earlier && earlier.token === token ? Promise.resolve(earlier.principal) : opts.verifier.verify(token);
  };
  return (next) => async (req) => {
    const policy = policyOfCall(opts.policies, req);
    // Health and reflection are not part of the product's policy: open.
    if (!policy) return next(req);
    const raw = req.header.get("authorization");
    const token = bearerToken(raw);
    let principal: Principal | undefined = raw ? undefined : req.contextValues.get(inProcessCallerKey);
    if (token) {
      try {
        principal = await verify(token, req.contextValues);
      } catch (err) {
        // A public RPC may still learn its caller, but a bad token is never an error there.
        if (policy.access === Access.PUBLIC) return next(req);
        // The revocation list could not be read (store down, or not loaded): UNAVAILABLE, so the
        // client retries; never 401 (its token may be fine) and never accepted.
        if (err instanceof ConnectError && err.code === Code.Unavailable) throw err;
        opts.onRejected?.(policy.path, err instanceof TokenError ? err.reason : "error");
        throw new ConnectError("invalid access token", Code.Unauthenticated);
      }
    } else if (raw && policy.access !== Access.PUBLIC) {
      throw new ConnectError("malformed authorization header", Code.Unauthenticated);
    }
    const decision = authorize(policy, principal);
    if (!decision.allow) throw new ConnectError(decision.message, decision.code);
    // Each client's own limit (the rate_limit its tokens carry), per instance.
    if (principal?.kind === "service" && policy.access === Access.SERVICE) {
      const retryAfter = limiter.take(principal.clientId, principal.rateLimit);
      if (retryAfter) {
        throw new ConnectError("client rate limit exceeded", Code.ResourceExhausted, { "retry-after": String(retryAfter) });
      }
    }
    if (principal) req.contextValues.set(principalKey, principal);
    if (!policy.owner) return next(req);
    // Owner-only: the handler must have asked requireOwner (platform/policy.ts) before answering.
    const check = { done: false };
    req.contextValues.set(ownerCheckKey, check);
    const res = await next(req);
    if (!check.done) throw new ConnectError(`${policy.path} answered without its owner check`, Code.Internal);
    return res;
  };
}
