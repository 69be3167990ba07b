// Service clients (OAuth client credentials): the built-in clients of the
// five services, their audiences and scopes (the terms the contract's
// policy uses: each internal RPC names the scopes it needs), stored with a
// SHA-256 of the secret only and checked in constant time. Also the auth service's own
// TokenSource, which mints its service tokens directly instead of calling itself.
import { createHash, timingSafeEqual } from "node:crypto";
import type { Kysely, Selectable } from "kysely";
import type { TokenSource } from "../../platform/clients.js";
import { withDbRetry } from "../../platform/db.js";
import type { AuthDb, ServiceClientTable } from "./store.js";
import type { TokenMinter } from "./tokens.js";

export interface ClientDefinition {
  clientId: string;
  audiences: string[];
  /** Scopes granted ((acme.edge.v1.policy).scopes of the internal RPCs this client calls). */
  scopes: string[];
  /** Requests per minute, per receiving instance (the rate_limit claim; platform/auth/client-limit.ts). */
  rateLimit: number;
}

/** The built-in clients, by the name of the service that uses them. */
export const BUILTIN_CLIENTS: Readonly<Record<string, ClientDefinition>> = {
  auth: {
    clientId: "auth-service",
    audiences: ["acme-user"],
    scopes: ["users.profiles.create", "users.check"],
    rateLimit: 60_000,
  },
  user: {
    clientId: "user-service",
    audiences: ["acme-auth", "acme-order"],
    scopes: ["auth.sessions.revoke", "auth.accounts.delete", "orders.owner.mark"],
    rateLimit: 60_000,
  },
  order: {
    clientId: "order-service",
    audiences: ["acme-user", "acme-catalogue"],
    scopes: ["users.check", "catalogue.reserve"],
    rateLimit: 60_000,
  },
  // Calls no other service (its addresses come with the events it consumes).
  notification: {
    clientId: "notification-service",
    audiences: [],
    scopes: [],
    rateLimit: 60_000,
  },
  // The order service calls it (Reserve, Hold, Release, Commit); its reservation sweeper asks
  // the order service to settle an expired reservation before releasing it.
  catalogue: {
    clientId: "catalogue-service",
    audiences: ["acme-order"],
    scopes: ["orders.reservations.settle"],
    rateLimit: 60_000,
  },
};

export type ServiceClient = Selectable<ServiceClientTable>;

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest();
/** Compared against when the client is unknown, so both paths cost the same. */
const NO_CLIENT = sha256("no such client");

export class ServiceClients {
  constructor(private readonly db: Kysely<AuthDb>) {}

  /** Upsert the built-in clients with the current secrets (idempotent; every instance may run it). */
  async sync(secrets: Readonly<Record<string, string>>): Promise<void> {
    for (const [name, def] of Object.entries(BUILTIN_CLIENTS)) {
      const row = {
        client_id: def.clientId,
        secret_hash: sha256(secrets[name]),
        audiences: def.audiences,
        scopes: def.scopes,
        rate_limit: def.rateLimit,
      };
      await withDbRetry(() =>
        this.db
          .insertInto("auth.service_clients")
          .values(row)
          .onConflict((oc) =>
            oc.column("client_id").doUpdateSet({
              secret_hash: row.secret_hash,
              audiences: row.audiences,
              scopes: row.scopes,
              rate_limit: row.rate_limit,
              updated_at: new Date(),
            }),
          )
          .execute(),
      );
    }
  }

  /** The client when id and secret match an active client; undefined otherwise (same work either way). */
  async authenticate(clientId: string, secret: string): Promise<ServiceClient | undefined> {
    const row = clientId
      ? await withDbRetry(() =>
          this.db.selectFrom("auth.service_clients").selectAll().where("client_id", "=", clientId).where("active", "=", true).executeTakeFirst(),
        )
      : undefined;
    const expected = row ? Buffer.from(row.secret_hash) : NO_CLIENT;
    const ok = expected.length === 32 && timingSafeEqual(expected, sha256(secret));
    return ok && row ? row : undefined;
  }
}

/**
 * Service tokens of the auth service's own client, minted in process and
 * cached to 80% of their life by `now` (the service clock, which also decides
 * when a key stops being published).
 */
export function localTokenSource(minter: TokenMinter, now: () => number, def: ClientDefinition = BUILTIN_CLIENTS.auth): TokenSource {
  const cache = new Map<string, { token: string; until: number }>();
  return {
    async token(audience) {
      const hit = cache.get(audience);
      if (hit && hit.until > now()) return hit.token;
      if (!def.audiences.includes(audience)) throw new Error(`${def.clientId} may not call ${audience}`);
      const t = await minter.serviceToken({
        clientId: def.clientId,
        audience,
        scopes: def.scopes,
        rateLimit: def.rateLimit,
      });
      cache.set(audience, { token: t.token, until: now() + t.expiresIn * 800 });
      return t.token;
    },
    invalidate(audience, token) {
      if (cache.get(audience)?.token === token) cache.delete(audience);
    },
  };
}
