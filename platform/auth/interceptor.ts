// The one auth check of the system, as a connect interceptor. Every service
// (and the embedded edge) runs it: the RPC's (acme.edge.v1.policy) from the
// contract decides whether a user token, a service token or nothing is needed.
import { Code, ConnectError, createContextKey, type ContextValues, type Interceptor } from "@connectrpc/connect";
import { Access, policyFor } from "../policy.js";
import { principalKey, routeAllowed, type Principal } from "./principal.js";
import { TokenError, type TokenVerifier } from "./verifier.js";

export interface AuthInterceptorOptions {
  verifier: TokenVerifier;
  /** Service-token audience of each service hosted here, by service type name. */
  serviceAudience: (serviceTypeName: string) => string;
  /** Called on every refused token (metrics, logs); never given the token. */
  onRejected?: (path: string, reason: string) => void;
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

/** "Bearer xyz" -> "xyz"; undefined when absent or not a bearer credential. */
export function bearerToken(header: string | null | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer[ ]+([^ ]+)[ ]*$/i.exec(header);
  return m?.[1];
}

export function authInterceptor(opts: AuthInterceptorOptions): Interceptor {
  const verify = (token: string, values: ContextValues): Promise<Principal> => {
    const earlier = values.get(verifiedTokenKey);
    return earlier && earlier.token === token ? Promise.resolve(earlier.principal) : opts.verifier.verify(token);
  };
  return (next) => async (req) => {
    const path = `/${req.service.typeName}/${req.method.name}`;
    const policy = policyFor(path);
    // Health and reflection are not part of the product's policy: open.
    if (!policy || policy.access === Access.PUBLIC) {
      const token = bearerToken(req.header.get("authorization"));
      if (token && policy) {
        // A public RPC may still learn its caller, but a bad token is never an error here.
        const p = await verify(token, req.contextValues).catch(() => undefined);
        if (p) req.contextValues.set(principalKey, p);
      }
      return next(req);
    }
    const raw = req.header.get("authorization");
    const token = bearerToken(raw);
    if (!token) {
      throw new ConnectError(raw ? "malformed authorization header" : "missing bearer token", Code.Unauthenticated);
    }
    let principal: Principal;
    try {
      principal = await verify(token, req.contextValues);
    } catch (err) {
      // The revocation list could not be read (store down, or not loaded): UNAVAILABLE, so the
      // client retries; never 401 (its token may be fine) and never accepted.
      if (err instanceof ConnectError && err.code === Code.Unavailable) throw err;
      const reason = err instanceof TokenError ? err.reason : "error";
      opts.onRejected?.(path, reason);
      throw new ConnectError("invalid access token", Code.Unauthenticated);
    }
    if (policy.access === Access.SERVICE) {
      if (principal.kind !== "service") throw new ConnectError("a service token is required", Code.PermissionDenied);
      const audience = opts.serviceAudience(req.service.typeName);
      if (!principal.audience.includes(audience)) {
        throw new ConnectError("service token audience does not match", Code.PermissionDenied);
      }
      if (!routeAllowed(principal.allowedRoutes, path)) {
        throw new ConnectError("route not allowed for this client", Code.PermissionDenied);
      }
    } else {
      if (principal.kind !== "user") throw new ConnectError("a user access token is required", Code.PermissionDenied);
      if (policy.roles.length && !policy.roles.some((r) => principal.roles.includes(r))) {
        throw new ConnectError("permission denied", Code.PermissionDenied);
      }
    }
    req.contextValues.set(principalKey, principal);
    return next(req);
  };
}
