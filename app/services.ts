// The services this product is made of, and how each is known to the others:
// its module, its built-in client (identity, scopes, rate limit) and the
// principal it calls with when the callee runs in the same process.
import type { ServicePrincipal } from "../platform/auth/principal.js";
import { audienceOf } from "../platform/policy.js";
import type { ServiceDefinition } from "../platform/service.js";
import { authService } from "../services/auth/index.js";
import { BUILTIN_CLIENTS } from "../services/auth/clients.js";
import { catalogueService } from "../services/catalogue/index.js";
import { notificationService } from "../services/notification/index.js";
import { orderService } from "../services/order/index.js";
import { userService } from "../services/user/index.js";

export type ServiceName = "auth" | "user" | "order" | "notification" | "catalogue";

export const SERVICE_NAMES: readonly ServiceName[] = ["auth", "user", "order", "notification", "catalogue"];

export const definitions: Readonly<Record<ServiceName, ServiceDefinition>> = {
  auth: authService,
  user: userService,
  order: orderService,
  notification: notificationService,
  catalogue: catalogueService,
};

/** Service-token audience of each service ("acme-user"): the policy's rule, on the service's package. */
export const audienceOfService = (name: ServiceName) => audienceOf(`acme.${name}`);

/**
 * Who `name` is when it calls a service hosted in the same process: its
 * built-in client, exactly as a token of that client would say (same scopes,
 * audiences and rate limit), without a token.
 */
export function inProcessIdentity(name: ServiceName): ServicePrincipal {
  const def = BUILTIN_CLIENTS[name];
  return {
    kind: "service",
    clientId: def.clientId,
    scopes: def.scopes,
    audience: def.audiences,
    rateLimit: def.rateLimit,
    tokenId: "in-process",
    expiresAt: Number.POSITIVE_INFINITY,
  };
}
