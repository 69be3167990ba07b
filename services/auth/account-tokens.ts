// Single-use mailed tokens (auth.account_tokens, migration 008): email
// verification, email change, password reset. A token is 256 random bits,
// base64url (43 characters); only its SHA-256 is stored, so a lookup by hash
// compares nothing secret and a database dump mails nobody a working link.
// A new token of a purpose retires the user's earlier unused ones of it.
// Spending is one conditional UPDATE (unused, unexpired, of an accepted
// purpose): two concurrent uses cannot both succeed. Every caller passes the
// transaction the token goes with (the account change, the outbox event).
import { createHash, randomBytes } from "node:crypto";
import { Code, ConnectError, invalidArgument } from "../../platform/errors.js";
import type { Kysely } from "kysely";
import type { AuthConfig } from "./config.js";
import type { AccountTokenPurpose, AuthDb } from "./tables.js";
import { retrySeconds } from "./throttled.js";

/** Tokens we issue are exactly this; anything else is refused before it is hashed. */
export const ACCOUNT_TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

/** The one answer to an expired, used, unknown, malformed or tampered token, whatever the RPC. */
export const INVALID_TOKEN = "is invalid or expired";
export const invalidToken = () => invalidArgument([{ field: "token", description: INVALID_TOKEN }]);

/**
 * Thrown inside a transaction that spent a token the account no longer
 * matches (its address changed since the mail, or the new address was taken
 * meanwhile): rolls everything back; the caller answers invalidToken().
 */
export class StaleTokenError extends Error {
  constructor() {
    super("token no longer applies to its account");
  }
}

/** RESOURCE_EXHAUSTED with Retry-After (moved to a response header by withRetryAfter). */
export function tooSoon(message: string, retryAfterMs: number): ConnectError {
  return new ConnectError(message, Code.ResourceExhausted, new Headers({ "retry-after": String(retrySeconds(retryAfterMs)) }));
}

const sha256 = (token: string) => createHash("sha256").update(token, "utf8").digest();

/** What goes in the mail (the event); the token itself is never stored. */
export interface IssuedToken {
  token: string;
  expiresAt: Date;
}

export interface SpentToken {
  userId: string;
  purpose: AccountTokenPurpose;
  /** The address it was mailed to (change_email: the new address). */
  email: string;
}

/** A database handle or an open transaction (the caller's). */
type Db = Kysely<AuthDb>;

export class AccountTokens {
  constructor(private readonly cfg: Pick<AuthConfig, "verifyTokenSeconds" | "resetTokenSeconds">) {}

  private lifetimeMs(purpose: AccountTokenPurpose): number {
    return (purpose === "reset_password" ? this.cfg.resetTokenSeconds : this.cfg.verifyTokenSeconds) * 1000;
  }

  /**
   * A new token, not stored yet, and the writes that store it: for a caller
   * whose transaction is opened elsewhere (registration: store.createAccount).
   */
  prepare(userId: string, purpose: AccountTokenPurpose, email: string, now: Date): IssuedToken & { store(trx: Db): Promise<void> } {
    const token = randomBytes(32).toString("base64url");
    const expiresAt = new Date(now.getTime() + this.lifetimeMs(purpose));
    const store = async (trx: Db) => {
      await this.retire(trx, userId, purpose, now);
      await trx
        .insertInto("auth.account_tokens")
        .values({ token_hash: sha256(token), user_id: userId, purpose, email, created_at: now, expires_at: expiresAt, used_at: null })
        .execute();
    };
    return { token, expiresAt, store };
  }

  /** Store a new token in `trx`, retiring the user's earlier unused ones of the purpose. */
  async issue(trx: Db, userId: string, purpose: AccountTokenPurpose, email: string, now: Date): Promise<IssuedToken> {
    const { store, ...issued } = this.prepare(userId, purpose, email, now);
    await store(trx);
    return issued;
  }

  /** Mark the user's unused tokens of `purpose` used: a link mailed earlier stops working. */
  async retire(trx: Db, userId: string, purpose: AccountTokenPurpose, now: Date): Promise<void> {
    await trx
      .updateTable("auth.account_tokens")
      .set({ used_at: now })
      .where("user_id", "=", userId)
      .where("purpose", "=", purpose)
      .where("used_at", "is", null)
      .execute();
  }

  /**
   * Spend a token of one of `purposes`: one UPDATE ... WHERE used_at IS NULL
   * AND expires_at > now RETURNING, so of two concurrent uses one wins.
   * Undefined for anything that is not a live token of those purposes
   * (malformed ones are never hashed nor looked up).
   */
  async spend(trx: Db, token: string, purposes: readonly AccountTokenPurpose[], now: Date): Promise<SpentToken | undefined> {
    if (!ACCOUNT_TOKEN_SHAPE.test(token)) return undefined;
    const row = await trx
      .updateTable("auth.account_tokens")
      .set({ used_at: now })
      .where("token_hash", "=", sha256(token))
      .where("purpose", "in", purposes)
      .where("used_at", "is", null)
      .where("expires_at", ">", now)
      .returning(["user_id", "purpose", "email"])
      .executeTakeFirst();
    return row && { userId: row.user_id, purpose: row.purpose, email: row.email };
  }

  /** True when the token is live for one of `purposes` now (a cheap check before expensive work; spend decides). */
  async isLive(db: Db, token: string, purposes: readonly AccountTokenPurpose[], now: Date): Promise<boolean> {
    if (!ACCOUNT_TOKEN_SHAPE.test(token)) return false;
    const row = await db
      .selectFrom("auth.account_tokens")
      .select("user_id")
      .where("token_hash", "=", sha256(token))
      .where("purpose", "in", purposes)
      .where("used_at", "is", null)
      .where("expires_at", ">", now)
      .executeTakeFirst();
    return row !== undefined;
  }

  /** When the newest token of `purpose` for the user was issued, if after `since` (resend limits). */
  async issuedSince(trx: Db, userId: string, purpose: AccountTokenPurpose, since: Date): Promise<Date | undefined> {
    const row = await trx
      .selectFrom("auth.account_tokens")
      .select((eb) => eb.fn.max("created_at").as("latest"))
      .where("user_id", "=", userId)
      .where("purpose", "=", purpose)
      .where("created_at", ">", since)
      .executeTakeFirst();
    return row?.latest ?? undefined;
  }
}
