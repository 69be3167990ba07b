// Calls from the user service to the auth and order services (the host
// carries our identity; deadline, bounded retry on UNAVAILABLE; every call made here is
// idempotent). Clients are built on first use: in the all-in-one process the
// services' own URL is known only once the server listens.
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { AuthInternalService } from "../../gen/acme/auth/v1/auth_pb.js";
import { OrderInternalService } from "../../gen/acme/order/v1/order_pb.js";
import { retryInterceptor } from "../../platform/breaker.js";
import type { Logger } from "../../platform/logger.js";
import type { ServiceContext } from "../../platform/service.js";

export interface Downstream {
  auth(): Client<typeof AuthInternalService>;
  orders(): Client<typeof OrderInternalService>;
}

export function downstream(ctx: ServiceContext, timeoutMs = 3000): Downstream {
  const lazy = <S extends DescService>(service: S, name: string) => {
    let c: Client<S> | undefined;
    return () => (c ??= createClient(service, ctx.transportTo(name, [retryInterceptor()], timeoutMs)));
  };
  return {
    auth: lazy(AuthInternalService, "auth"),
    orders: lazy(OrderInternalService, "order"),
  };
}

/**
 * What a failed downstream call becomes for our caller: UNAVAILABLE (retry
 * later) when the dependency is down or slow, INTERNAL otherwise. Logged with
 * the code only, never the request.
 */
export function downstreamError(log: Logger, what: string, err: unknown): ConnectError {
  const ce = ConnectError.from(err);
  log.warn("downstream call failed", { call: what, code: Code[ce.code] });
  if (ce.code === Code.Unavailable || ce.code === Code.DeadlineExceeded || ce.code === Code.ResourceExhausted) {
    return new ConnectError(`${what} is unavailable; retry later`, Code.Unavailable);
  }
  return new ConnectError("internal error", Code.Internal);
}
