// Who is calling: set by the auth interceptor, read by handlers.
import { Code, ConnectError, createContextKey, type HandlerContext } from "@connectrpc/connect";

export interface UserPrincipal {
  readonly kind: "user";
  /** User id (JWT sub). */
  readonly userId: string;
  /** Session id (JWT sid). */
  readonly sessionId: string;
  readonly roles: readonly string[];
  /** The token's email_verified claim is true (policy verified_email). */
  readonly emailVerified?: boolean;
  readonly tokenId: string;
  /** Expiry, seconds since epoch. */
  readonly expiresAt: number;
}

export interface ServicePrincipal {
  readonly kind: "service";
  readonly clientId: string;
  /** Scopes granted to this client (the token's "scope" claim); the policy names the scopes each RPC needs. */
  readonly scopes: readonly string[];
  /** Requests per minute granted to this client (0 = no own limit). */
  readonly rateLimit: number;
  readonly audience: readonly string[];
  readonly tokenId: string;
  readonly expiresAt: number;
}

export type Principal = UserPrincipal | ServicePrincipal;

export const principalKey = createContextKey<Principal | undefined>(undefined, { description: "principal" });

/** The calling user, or UNAUTHENTICATED (handlers of ACCESS_AUTHENTICATED RPCs). */
export function requireUser(ctx: HandlerContext): UserPrincipal {
  const p = ctx.values.get(principalKey);
  if (p?.kind !== "user") throw new ConnectError("a user access token is required", Code.Unauthenticated);
  return p;
}

export function isAdmin(p: Principal | undefined): boolean {
  return p?.kind === "user" && p.roles.includes("admin");
}
