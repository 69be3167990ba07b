// Data access for the auth service: accounts, sessions and refresh tokens.
// The table types are tables.ts; keys, service clients, audit events and
// cleanup have their queries next to their logic (keys.ts, clients.ts,
// audit.ts, cleanup.ts). Every query is parameterised.
import type { Insertable, Kysely } from "kysely";
import { withDbRetry } from "../../platform/db.js";
import { pgCode, PG_UNIQUE_VIOLATION } from "../../platform/errors.js";
import { discardUnsent, enqueue, notifyRelays, type OutboxEvent } from "../../platform/outbox.js";
import { SCHEMA } from "./migrations.js";
import type { Account, AccountTable, AuthDb, RefreshToken, Session } from "./tables.js";

// Importers outside the auth service (index.ts, scripts/admin.ts, tests) name the types here.
export type {
  Account,
  AccountOrigin,
  AccountTable,
  AuthDb,
  AuthEventTable,
  RefreshToken,
  RefreshTokenTable,
  ServiceClientTable,
  Session,
  SessionTable,
  SigningKeyTable,
} from "./tables.js";

export class EmailTakenError extends Error {
  constructor() {
    super("email already registered");
  }
}

export type RotateResult =
  | { kind: "ok"; session: Session }
  /** The token was already spent: a replay, or a retry within the grace window (successorEnc). */
  | { kind: "reuse"; sessionId: string; userId: string; consumedAt: Date; successorEnc: Uint8Array | null }
  | { kind: "invalid" };

export interface NewSession {
  id: string;
  userId: string;
  now: Date;
  expiresAt: Date;
  userAgent: string;
  ip: string;
  refreshHash: Buffer;
  refreshExpiresAt: Date;
}

const earlier = (a: Date, b: Date) => (a.getTime() <= b.getTime() ? a : b);

export class AuthStore {
  constructor(readonly db: Kysely<AuthDb>) {}

  // ---- accounts

  findAccountByEmail(email: string): Promise<Account | undefined> {
    return withDbRetry(() => this.db.selectFrom("auth.accounts").selectAll().where("email", "=", email).executeTakeFirst());
  }

  getAccount(id: string): Promise<Account | undefined> {
    return withDbRetry(() => this.db.selectFrom("auth.accounts").selectAll().where("id", "=", id).executeTakeFirst());
  }

  /**
   * Insert an account, and `event` into the outbox in the same transaction;
   * EmailTakenError on a duplicate email (never retried).
   */
  async createAccount(a: Insertable<AccountTable>, event?: OutboxEvent): Promise<Account> {
    try {
      return await withDbRetry(() =>
        this.db.transaction().execute(async (trx) => {
          const account = await trx.insertInto("auth.accounts").values(a).returningAll().executeTakeFirstOrThrow();
          if (event) await enqueue(trx, SCHEMA, event);
          return account;
        }),
      );
    } catch (err) {
      if (pgCode(err) === PG_UNIQUE_VIOLATION) throw new EmailTakenError();
      throw err;
    }
  }

  /** Insert unless the email exists; returns the account with that email and whether we created it. */
  async ensureAccount(a: Insertable<AccountTable>): Promise<{ account: Account; created: boolean }> {
    const inserted = await withDbRetry(() =>
      this.db.insertInto("auth.accounts").values(a).onConflict((oc) => oc.column("email").doNothing()).returningAll().executeTakeFirst(),
    );
    if (inserted) return { account: inserted, created: true };
    const existing = await this.findAccountByEmail(a.email);
    if (!existing) throw new Error("account insert conflicted but no account exists");
    return { account: existing, created: false };
  }

  /**
   * Undo createAccount (the profile could not be created): remove the account
   * and, in the same transaction, its event if the relay has not sent it yet.
   */
  async removeNewAccount(id: string, eventId: string): Promise<void> {
    await withDbRetry(() =>
      this.db.transaction().execute(async (trx) => {
        await trx.deleteFrom("auth.accounts").where("id", "=", id).execute();
        await discardUnsent(trx, SCHEMA, eventId);
      }),
    );
  }

  /** Wake this process's relay of the auth outbox (after an enqueue was committed). */
  outboxCommitted(): void {
    notifyRelays(this.db, SCHEMA);
  }

  async deleteAccount(id: string): Promise<boolean> {
    const r = await withDbRetry(() => this.db.deleteFrom("auth.accounts").where("id", "=", id).executeTakeFirst());
    return r.numDeletedRows > 0n;
  }

  /** Replace the hash; `passwordChanged` false for a rehash at a new cost. */
  async setPasswordHash(id: string, hash: string, passwordChanged: boolean, now: Date): Promise<void> {
    await withDbRetry(() =>
      this.db
        .updateTable("auth.accounts")
        .set(passwordChanged ? { password_hash: hash, updated_at: now, password_changed_at: now } : { password_hash: hash })
        .where("id", "=", id)
        .execute(),
    );
  }

  // ---- sessions and refresh tokens

  /** A new session with its first refresh token, in one transaction. */
  async createSession(s: NewSession): Promise<Session> {
    return withDbRetry(() =>
      this.db.transaction().execute(async (trx) => {
        const session = await trx
          .insertInto("auth.sessions")
          .values({
            id: s.id,
            user_id: s.userId,
            created_at: s.now,
            last_used_at: s.now,
            expires_at: s.expiresAt,
            revoked_at: null,
            revoke_reason: null,
            user_agent: s.userAgent,
            ip: s.ip,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        await trx
          .insertInto("auth.refresh_tokens")
          .values({
            token_hash: s.refreshHash,
            session_id: s.id,
            user_id: s.userId,
            created_at: s.now,
            expires_at: earlier(s.refreshExpiresAt, s.expiresAt),
            consumed_at: null,
            revoked_at: null,
          })
          .execute();
        return session;
      }),
    );
  }

  findRefreshToken(hash: Buffer): Promise<RefreshToken | undefined> {
    return withDbRetry(() => this.db.selectFrom("auth.refresh_tokens").selectAll().where("token_hash", "=", hash).executeTakeFirst());
  }

  /**
   * Spend `oldHash` and issue `newHash` atomically: a conditional update marks
   * the old token consumed only if it is still live, so of N concurrent calls
   * exactly one gets a row back; the rest see a consumed token (reuse), with
   * the winner's `successorEnc` (committed with the spend) when there is one.
   */
  rotateRefreshToken(oldHash: Buffer, newHash: Buffer, now: Date, idleSeconds: number, successorEnc: Uint8Array | null = null): Promise<RotateResult> {
    return withDbRetry(() =>
      this.db.transaction().execute(async (trx): Promise<RotateResult> => {
        const spent = await trx
          .updateTable("auth.refresh_tokens")
          .set({ consumed_at: now, successor_enc: successorEnc })
          .where("token_hash", "=", oldHash)
          .where("consumed_at", "is", null)
          .where("revoked_at", "is", null)
          .where("expires_at", ">", now)
          .returning(["session_id", "user_id"])
          .executeTakeFirst();
        if (!spent) {
          const row = await trx
            .selectFrom("auth.refresh_tokens")
            .select(["session_id", "user_id", "consumed_at", "successor_enc"])
            .where("token_hash", "=", oldHash)
            .executeTakeFirst();
          return row?.consumed_at
            ? { kind: "reuse", sessionId: row.session_id, userId: row.user_id, consumedAt: row.consumed_at, successorEnc: row.successor_enc }
            : { kind: "invalid" };
        }
        const session = await trx
          .updateTable("auth.sessions")
          .set({ last_used_at: now })
          .where("id", "=", spent.session_id)
          .where("revoked_at", "is", null)
          .where("expires_at", ">", now)
          .returningAll()
          .executeTakeFirst();
        if (!session) return { kind: "invalid" };
        await trx
          .insertInto("auth.refresh_tokens")
          .values({
            token_hash: newHash,
            session_id: session.id,
            user_id: session.user_id,
            created_at: now,
            expires_at: earlier(new Date(now.getTime() + idleSeconds * 1000), session.expires_at),
            consumed_at: null,
            revoked_at: null,
          })
          .execute();
        return { kind: "ok", session };
      }),
    );
  }

  getSession(id: string): Promise<Session | undefined> {
    return withDbRetry(() => this.db.selectFrom("auth.sessions").selectAll().where("id", "=", id).executeTakeFirst());
  }

  /** Sessions that can still be refreshed: not revoked, not past their absolute or idle lifetime. */
  listLiveSessions(userId: string, now: Date): Promise<Session[]> {
    return withDbRetry(() =>
      this.db
        .selectFrom("auth.sessions as s")
        .selectAll("s")
        .where("s.user_id", "=", userId)
        .where("s.revoked_at", "is", null)
        .where("s.expires_at", ">", now)
        .where((eb) =>
          eb.exists(
            eb
              .selectFrom("auth.refresh_tokens as rt")
              .select("rt.session_id")
              .whereRef("rt.session_id", "=", "s.id")
              .where("rt.consumed_at", "is", null)
              .where("rt.revoked_at", "is", null)
              .where("rt.expires_at", ">", now),
          ),
        )
        .orderBy("s.created_at", "desc")
        .orderBy("s.id")
        .execute(),
    );
  }

  /**
   * Revoke live sessions and their refresh tokens in one transaction. Filter
   * by session id, by user (optionally sparing one session), or both (a
   * user's own session). Returns the sessions revoked now (`revoked`) and
   * every matching session revoked since `recentSince` (`recent`, which
   * includes `revoked`): the revocation list is written for `recent`, so a
   * retry after a failed KV write still covers the sessions of the first try.
   */
  revokeSessions(
    filter: { sessionId?: string; userId?: string; exceptSessionId?: string },
    reason: string,
    now: Date,
    recentSince: Date,
  ): Promise<{ revoked: string[]; recent: string[] }> {
    if (!filter.sessionId && !filter.userId) throw new Error("revokeSessions needs a session or a user");
    return withDbRetry(() =>
      this.db.transaction().execute(async (trx) => {
        let q = trx.updateTable("auth.sessions").set({ revoked_at: now, revoke_reason: reason }).where("revoked_at", "is", null);
        if (filter.sessionId) q = q.where("id", "=", filter.sessionId);
        if (filter.userId) q = q.where("user_id", "=", filter.userId);
        if (filter.exceptSessionId) q = q.where("id", "<>", filter.exceptSessionId);
        const revoked = (await q.returning("id").execute()).map((r) => r.id);
        if (revoked.length) {
          await trx
            .updateTable("auth.refresh_tokens")
            .set({ revoked_at: now })
            .where("session_id", "in", revoked)
            .where("revoked_at", "is", null)
            .execute();
        }
        let r = trx.selectFrom("auth.sessions").select("id").where("revoked_at", ">=", recentSince);
        if (filter.sessionId) r = r.where("id", "=", filter.sessionId);
        if (filter.userId) r = r.where("user_id", "=", filter.userId);
        if (filter.exceptSessionId) r = r.where("id", "<>", filter.exceptSessionId);
        const recent = (await r.execute()).map((x) => x.id);
        return { revoked, recent: [...new Set([...revoked, ...recent])] };
      }),
    );
  }
}
