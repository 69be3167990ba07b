// Sessions and refresh tokens. A session is one login (one device, devices.ts:
// a login from a device new to the account emits LoginFromNewDevice); its
// refresh tokens form one family: each refresh spends the presented token and
// issues the next, the session id (JWT sid) stays. Presenting a spent token
// again is reuse: the family's session is revoked at once, except within the
// reuse grace window (AUTH_REFRESH_REUSE_GRACE_SECONDS, default 0), where a
// retry gets the pair the token was exchanged for (successor.ts). Every revocation
// also lands in the shared revocation list (platform/auth/revocation.ts), so
// access tokens of the session are refused on their next use everywhere, and
// a SessionRevoked event per session goes out (session-store.ts).
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { TokensSchema, type Tokens } from "../../gen/acme/auth/v1/auth_pb.js";
import { revokeSessions } from "../../platform/auth/revocation.js";
import { unauthenticated } from "../../platform/errors.js";
import type { KeyValueStore } from "../../platform/kv.js";
import type { Audit, AuthEventType, EventFields, RequestInfo } from "./audit.js";
import type { Clock } from "./clock.js";
import type { AuthConfig } from "./config.js";
import { deviceId } from "./devices.js";
import { loginFromNewDevice } from "./events.js";
import type { Profiles } from "./profiles.js";
import type { SessionStore } from "./session-store.js";
import type { Session } from "./tables.js";
import { openSuccessor, sealSuccessor } from "./successor.js";
import { hashToken, newRefreshToken, REFRESH_TOKEN_SHAPE, type TokenMinter, type UserTokenInput } from "./tokens.js";

export const INVALID_REFRESH = "invalid refresh token";

interface SpentToken {
  session_id: string;
  user_id: string;
  consumedAt: Date;
  successorEnc: Uint8Array | null;
}

export interface RevokeFilter {
  sessionId?: string;
  userId?: string;
  exceptSessionId?: string;
}

export class Sessions {
  constructor(
    private readonly store: SessionStore,
    private readonly minter: TokenMinter,
    private readonly kv: KeyValueStore,
    private readonly cfg: AuthConfig,
    private readonly clock: Clock,
    private readonly audit: Audit,
    private readonly profiles: Profiles,
  ) {}

  /**
   * A new session for a signed-in account: its first refresh token and an
   * access token. When the account had not signed in from this device before,
   * LoginFromNewDevice is committed with the session.
   */
  async start(
    account: { id: string; email: string; email_verified_at: Date | null },
    roles: readonly string[],
    req: RequestInfo,
  ): Promise<{ tokens: Tokens; sessionId: string }> {
    const now = this.clock.now();
    const refresh = newRefreshToken();
    const id = randomUUID();
    const device = deviceId(req.userAgent);
    const newDevice = loginFromNewDevice(
      { userId: account.id, email: account.email, sessionId: id, deviceId: device, ip: req.ip, userAgent: req.userAgent },
      new Date(now),
    );
    await this.store.createSession(
      {
        id,
        userId: account.id,
        now: new Date(now),
        expiresAt: new Date(now + this.cfg.refreshAbsoluteSeconds * 1000),
        userAgent: req.userAgent,
        deviceId: device,
        ip: req.ip,
        refreshHash: hashToken(refresh),
        refreshExpiresAt: new Date(now + this.cfg.refreshIdleSeconds * 1000),
      },
      newDevice,
    );
    return { tokens: await this.tokens({ userId: account.id, sessionId: id, roles, emailVerified: account.email_verified_at !== null }, refresh), sessionId: id };
  }

  /** Spend a refresh token for a new pair; roles come fresh from the user service. */
  async refresh(refreshToken: string, req: RequestInfo): Promise<Tokens> {
    if (!REFRESH_TOKEN_SHAPE.test(refreshToken)) throw unauthenticated(INVALID_REFRESH);
    const hash = hashToken(refreshToken);
    const row = await this.store.findRefreshToken(hash);
    if (!row) throw unauthenticated(INVALID_REFRESH);
    const fields = { userId: row.user_id, sessionId: row.session_id };
    if (row.consumed_at) return this.spent(refreshToken, hash, { ...row, consumedAt: row.consumed_at, successorEnc: row.successor_enc }, req);
    const now = this.clock.now();
    if (row.revoked_at || row.expires_at.getTime() <= now) {
      await this.audit.record("refresh_failure", { ...fields, reason: row.revoked_at ? "revoked" : "expired" }, req);
      throw unauthenticated(INVALID_REFRESH);
    }
    const profile = await this.profiles.check(row.user_id);
    if (!profile.exists || !profile.active || !profile.user) {
      await this.revoke({ sessionId: row.session_id }, "inactive", "refresh_failure", req, { ...fields, reason: "inactive" });
      throw unauthenticated(INVALID_REFRESH);
    }
    // The pair is made before the spend so that, with a grace window, it is stored with it (sealed).
    const next = newRefreshToken();
    const tokens = await this.tokens({ userId: row.user_id, sessionId: row.session_id, roles: [profile.user.role], emailVerified: row.email_verified }, next);
    const sealed =
      this.cfg.refreshReuseGraceSeconds > 0
        ? sealSuccessor(refreshToken, hash, { accessToken: tokens.accessToken, refreshToken: next, expiresIn: tokens.expiresIn })
        : null;
    const r = await this.store.rotateRefreshToken(hash, hashToken(next), new Date(now), this.cfg.refreshIdleSeconds, sealed);
    if (r.kind === "reuse") return this.spent(refreshToken, hash, { session_id: r.sessionId, user_id: r.userId, ...r }, req);
    if (r.kind === "invalid") {
      await this.audit.record("refresh_failure", { ...fields, reason: "invalid" }, req);
      throw unauthenticated(INVALID_REFRESH);
    }
    await this.audit.record("refresh", fields, req);
    return tokens;
  }

  /**
   * A spent token presented again. Within the grace window, and while the
   * pair it was exchanged for is still unused and live, that same pair is
   * returned (the client lost the first answer); otherwise it is reuse and
   * the family (session) is revoked.
   */
  private async spent(token: string, hash: Buffer, s: SpentToken, req: RequestInfo): Promise<Tokens> {
    const graceMs = this.cfg.refreshReuseGraceSeconds * 1000;
    const now = this.clock.now();
    if (graceMs > 0 && s.successorEnc && now - s.consumedAt.getTime() <= graceMs) {
      const pair = openSuccessor(token, hash, s.successorEnc);
      const successor = pair && (await this.store.findRefreshToken(hashToken(pair.refreshToken)));
      if (pair && successor && !successor.consumed_at && !successor.revoked_at && successor.expires_at.getTime() > now) {
        await this.audit.record("refresh_retried", { userId: s.user_id, sessionId: s.session_id }, req);
        return create(TokensSchema, { ...pair, tokenType: "Bearer" });
      }
    }
    return this.reuse(s.session_id, s.user_id, req);
  }

  /** End the session a refresh token (live or spent) belongs to; unknown tokens are ignored. */
  async logout(refreshToken: string, req: RequestInfo): Promise<void> {
    if (!REFRESH_TOKEN_SHAPE.test(refreshToken)) return;
    const row = await this.store.findRefreshToken(hashToken(refreshToken));
    if (!row) return;
    await this.revoke({ sessionId: row.session_id }, "logout", "logout", req, { userId: row.user_id, sessionId: row.session_id });
  }

  list(userId: string): Promise<Session[]> {
    return this.store.listLiveSessions(userId, new Date(this.clock.now()));
  }

  /**
   * Revoke sessions in the database and in the revocation list, then audit.
   * Returns the number of sessions that were live.
   */
  async revoke(filter: RevokeFilter, reason: string, event: AuthEventType | undefined, req: RequestInfo, fields: EventFields): Promise<number> {
    const now = this.clock.now();
    // Access tokens live accessTtlSeconds: sessions revoked earlier than that need no new entry.
    const since = new Date(now - (this.cfg.accessTtlSeconds + 60) * 1000);
    const { revoked, recent } = await this.store.revokeSessions(filter, reason, new Date(now), since);
    if (recent.length) await revokeSessions(this.kv, recent, this.cfg.accessTtlSeconds);
    if (event) await this.audit.record(event, { ...fields, reason: fields.reason ?? reason }, req);
    return revoked.length;
  }

  private async reuse(sessionId: string, userId: string, req: RequestInfo): Promise<never> {
    await this.revoke({ sessionId }, "refresh_token_reuse", "reuse_detected", req, { userId, sessionId });
    throw unauthenticated(INVALID_REFRESH);
  }

  private async tokens(user: UserTokenInput, refreshToken: string): Promise<Tokens> {
    const access = await this.minter.accessToken(user);
    return create(TokensSchema, {
      accessToken: access.token,
      refreshToken,
      expiresIn: access.expiresIn,
      tokenType: "Bearer",
    });
  }
}
