// Data access for sessions and refresh tokens (schema "auth", tables.ts):
// sessions with the devices they come from, refresh-token rotation and
// revocation. Accounts are store.ts. Every query is parameterised.
import { sql, type Kysely } from "kysely";
import { withDbRetry } from "../../platform/db.js";
import { enqueue, notifyRelays, type OutboxEvent } from "../../platform/outbox.js";
import { sessionRevoked } from "./events.js";
import { SCHEMA } from "./migrations.js";
import type { AuthDb, RefreshToken, Session } from "./tables.js";

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
  /** devices.ts */
  deviceId: string;
  ip: string;
  refreshHash: Buffer;
  refreshExpiresAt: Date;
}

const earlier = (a: Date, b: Date) => (a.getTime() <= b.getTime() ? a : b);

export class SessionStore {
  constructor(readonly db: Kysely<AuthDb>) {}

  /**
   * A new session with its first refresh token, in one transaction, which
   * also remembers the session's device for the account; when the device is
   * new, `newDevice` (LoginFromNewDevice) goes into the outbox with it.
   */
  async createSession(s: NewSession, newDevice: OutboxEvent): Promise<{ session: Session; newDevice: boolean }> {
    const r = await withDbRetry(() =>
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
        // insert ... on conflict do nothing: of concurrent logins from one new device, one inserts.
        const added = await trx
          .insertInto("auth.known_devices")
          .values({ user_id: s.userId, device_id: s.deviceId, first_seen_at: s.now })
          .onConflict((oc) => oc.columns(["user_id", "device_id"]).doNothing())
          .returning("device_id")
          .executeTakeFirst();
        // The account's first device is where it signs in from, not a new one: no notice for it.
        const knownBefore =
          added !== undefined &&
          (await trx
            .selectFrom("auth.known_devices")
            .select("device_id")
            .where("user_id", "=", s.userId)
            .where("device_id", "<>", s.deviceId)
            .limit(1)
            .executeTakeFirst()) !== undefined;
        if (knownBefore) await enqueue(trx, SCHEMA, newDevice);
        return { session, newDevice: knownBefore };
      }),
    );
    if (r.newDevice) notifyRelays(this.db, SCHEMA);
    return r;
  }

  /** A refresh token with whether its account's address is verified (the access token's email_verified claim). */
  findRefreshToken(hash: Buffer): Promise<(RefreshToken & { email_verified: boolean }) | undefined> {
    return withDbRetry(() =>
      this.db
        .selectFrom("auth.refresh_tokens as r")
        .innerJoin("auth.accounts as a", "a.id", "r.user_id")
        .selectAll("r")
        .select(sql<boolean>`a.email_verified_at is not null`.as("email_verified"))
        .where("r.token_hash", "=", hash)
        .executeTakeFirst(),
    );
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
   * Each session revoked now gets a SessionRevoked in the outbox, in the same
   * transaction; a session that was already revoked gets none.
   */
  async revokeSessions(
    filter: { sessionId?: string; userId?: string; exceptSessionId?: string },
    reason: string,
    now: Date,
    recentSince: Date,
  ): Promise<{ revoked: string[]; recent: string[] }> {
    if (!filter.sessionId && !filter.userId) throw new Error("revokeSessions needs a session or a user");
    const r = await withDbRetry(() =>
      this.db.transaction().execute(async (trx) => {
        let q = trx.updateTable("auth.sessions").set({ revoked_at: now, revoke_reason: reason }).where("revoked_at", "is", null);
        if (filter.sessionId) q = q.where("id", "=", filter.sessionId);
        if (filter.userId) q = q.where("user_id", "=", filter.userId);
        if (filter.exceptSessionId) q = q.where("id", "<>", filter.exceptSessionId);
        const ended = await q.returning(["id", "user_id"]).execute();
        const revoked = ended.map((r) => r.id);
        for (const e of ended) await enqueue(trx, SCHEMA, sessionRevoked(e.user_id, e.id, reason, now));
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
    if (r.revoked.length) notifyRelays(this.db, SCHEMA);
    return r;
  }
}
