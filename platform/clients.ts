// Service-to-service calls: gRPC clients with a service token (client
// credentials, cached until shortly before expiry) and a default deadline.
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { audienceOf } from "./policy.js";
import { clientObservability } from "./telemetry/tracing.js";

export interface ClientCredentials {
  clientId: string;
  clientSecret: string;
}

export interface TokenSource {
  token(audience: string): Promise<string>;
  /** Forget a cached token the callee refused (e.g. its signing key was retired early). */
  invalidate?(audience: string, token: string): void;
}

/** A client-credentials grant: a token for `audience` and its lifetime in seconds (the host calls its token service). */
export type IssueToken = (audience: string) => Promise<{ accessToken: string; expiresIn: number }>;

/** Client-credentials tokens, cached per audience until 80% of their life. */
export function serviceTokens(issue: IssueToken): TokenSource {
  const cache = new Map<string, { token: string; until: number }>();
  const pending = new Map<string, Promise<string>>();
  return {
    async token(audience) {
      const hit = cache.get(audience);
      if (hit && hit.until > Date.now()) return hit.token;
      let p = pending.get(audience);
      if (!p) {
        p = issue(audience)
          .then((r) => {
            // Refresh at 80% of the lifetime.
            cache.set(audience, { token: r.accessToken, until: Date.now() + r.expiresIn * 800 });
            return r.accessToken;
          })
          .finally(() => pending.delete(audience));
        pending.set(audience, p);
      }
      return p;
    },
    invalidate(audience, token) {
      if (cache.get(audience)?.token === token) cache.delete(audience);
    },
  };
}

/**
 * Adds "authorization: Bearer <service token>" for the target service's audience. A call
 * the callee refuses as UNAUTHENTICATED with a cached token (refused before any handler
 * ran) is sent once more with a new token.
 */
export function serviceTokenInterceptor(tokens: TokenSource): Interceptor {
  return (next) => async (req) => {
    if (req.header.has("authorization")) return next(req);
    const audience = audienceOf(req.service.typeName);
    const token = await tokens.token(audience);
    req.header.set("authorization", `Bearer ${token}`);
    try {
      return await next(req);
    } catch (err) {
      if (!tokens.invalidate || !(err instanceof ConnectError) || err.code !== Code.Unauthenticated || req.stream) throw err;
      tokens.invalidate(audience, token);
      const fresh = await tokens.token(audience);
      if (fresh === token) throw err;
      req.header.set("authorization", `Bearer ${fresh}`);
      return next(req);
    }
  };
}

export interface ServiceClientOptions {
  baseUrl: string;
  tokens?: TokenSource;
  /** Default deadline per call. */
  timeoutMs?: number;
  interceptors?: Interceptor[];
}

export function grpcTransport(baseUrl: string, interceptors: Interceptor[] = [], timeoutMs?: number): Transport {
  // Tracing innermost: the client span covers the call, not the token fetch before it.
  return createGrpcTransport({ baseUrl, interceptors: [...interceptors, clientObservability()], defaultTimeoutMs: timeoutMs });
}

/** A transport whose calls get a deadline when the caller set none. */
export function withDefaultTimeout(t: Transport, timeoutMs: number | undefined): Transport {
  if (timeoutMs === undefined) return t;
  return {
    unary: (method, signal, timeout, ...rest) => t.unary(method, signal, timeout ?? timeoutMs, ...rest),
    stream: (method, signal, timeout, ...rest) => t.stream(method, signal, timeout ?? timeoutMs, ...rest),
  };
}

/** A transport created on first use (for URLs known only once the server listens). */
export function lazyTransport(make: () => Transport): Transport {
  let t: Transport | undefined;
  return {
    unary: (...args) => (t ??= make()).unary(...args),
    stream: (...args) => (t ??= make()).stream(...args),
  };
}

export function serviceClient<S extends DescService>(service: S, opts: ServiceClientOptions): Client<S> {
  const interceptors = [...(opts.interceptors ?? [])];
  if (opts.tokens) interceptors.push(serviceTokenInterceptor(opts.tokens));
  return createClient(service, grpcTransport(opts.baseUrl, interceptors, opts.timeoutMs ?? 3000));
}
