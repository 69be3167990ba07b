// How one service of this process reaches another: in process when the
// callee is hosted here (one local transport for every caller; the caller's
// identity as a context value, no token), over gRPC with the caller's
// client-credentials token otherwise.
import { createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { AuthService } from "../gen/acme/auth/v1/auth_pb.js";
import { inProcessCallerKey } from "../platform/auth/interceptor.js";
import { grpcTransport, lazyTransport, serviceTokenInterceptor, serviceTokens, withDefaultTimeout, type TokenSource } from "../platform/clients.js";
import { withInterceptors } from "../platform/local-transport.js";
import { clientObservability } from "../platform/telemetry/tracing.js";
import { BUILTIN_CLIENTS } from "../services/auth/clients.js";
import { inProcessIdentity, type ServiceName } from "./services.js";

export interface CallsOptions {
  /** Services hosted by this process. */
  hosted: readonly ServiceName[];
  /** Base URL of every service (this process's own for the hosted ones). */
  urls: Readonly<Record<ServiceName, string>>;
  /** Client secret of each service's built-in client. */
  clientSecrets: Readonly<Record<string, string>>;
  /** Service-token sources a module brought (the token service mints its own). */
  ownTokens: Partial<Record<ServiceName, TokenSource>>;
  /** The one in-process transport, once the modules exist. */
  local: () => Transport | undefined;
}

export type TransportTo = (name: ServiceName, interceptors?: Interceptor[], timeoutMs?: number) => Transport;

/** `transportTo` of the module `caller`, for its ServiceContext. */
export function callsFrom(caller: ServiceName, opts: CallsOptions): TransportTo {
  const principal = inProcessIdentity(caller);
  const identity: Interceptor = (next) => (req) => {
    req.contextValues.set(inProcessCallerKey, principal);
    return next(req);
  };
  let tokens: TokenSource | undefined;
  const tokenSource = () => {
    if (tokens) return tokens;
    if (opts.ownTokens[caller]) return (tokens = opts.ownTokens[caller]);
    // One client (one connection) to the token service for every grant of this caller.
    const auth = createClient(AuthService, grpcTransport(opts.urls.auth));
    const credentials = { clientId: BUILTIN_CLIENTS[caller].clientId, clientSecret: opts.clientSecrets[caller] };
    return (tokens = serviceTokens((audience) => auth.issueServiceToken({ ...credentials, audience }, { timeoutMs: 5000 })));
  };
  return (name, interceptors = [], timeoutMs) =>
    lazyTransport(() => {
      const local = opts.hosted.includes(name) ? opts.local() : undefined;
      if (local) return withDefaultTimeout(withInterceptors(local, [...interceptors, identity, clientObservability()]), timeoutMs);
      return grpcTransport(opts.urls[name], [...interceptors, serviceTokenInterceptor(tokenSource())], timeoutMs);
    });
}
