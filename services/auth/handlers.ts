// AuthService handlers: validate, call the domain classes, build responses.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { AuthService, SessionSchema } from "../../gen/acme/auth/v1/auth_pb.js";
import { requireUser } from "../../platform/auth/principal.js";
import { notFound, permissionDenied, unauthenticated } from "../../platform/errors.js";
import type { Accounts } from "./accounts.js";
import type { Registration } from "./registration.js";
import { requestInfo, type Audit } from "./audit.js";
import type { ServiceClients } from "./clients.js";
import { emailProblem, normalizeEmail } from "../../platform/email.js";
import type { JwksPublisher } from "./jwks.js";
import type { Sessions } from "./sessions.js";
import type { TokenMinter } from "./tokens.js";
import { withRetryAfter } from "./throttled.js";
import { emailHandlers, type EmailHandlerDeps } from "./email-handlers.js";
import { secondFactorHandlers, type SecondFactorHandlerDeps } from "./mfa/handlers.js";
import { deviceName } from "./devices.js";
import { check, nameProblem, passwordProblem, UUID } from "./validate.js";

/** Register's one answer, for a new and for a taken email. */
export const REGISTER_ACCEPTED = "accepted";

export interface HandlerDeps {
  accounts: Accounts;
  registration: Registration;
  sessions: Sessions;
  clients: ServiceClients;
  minter: TokenMinter;
  audit: Audit;
  jwks: JwksPublisher;
  /** The mailed-token flows (email-handlers.ts). */
  mail: EmailHandlerDeps;
  secondFactor: SecondFactorHandlerDeps;
}

export function authHandlers(d: HandlerDeps): ServiceImpl<typeof AuthService> {
  return {
    ...emailHandlers(d.mail),
    ...secondFactorHandlers(d.secondFactor),

    async register(req, ctx) {
      const email = normalizeEmail(req.email);
      const name = req.name.trim();
      check({ email: emailProblem(email), password: passwordProblem(req.password), name: nameProblem(name) });
      await d.registration.register(email, req.password, name, requestInfo(ctx));
      return { status: REGISTER_ACCEPTED };
    },

    async login(req, ctx) {
      return withRetryAfter(ctx, () => d.accounts.login(normalizeEmail(req.email).slice(0, 320), req.password, requestInfo(ctx)));
    },

    async refresh(req, ctx) {
      return { tokens: await d.sessions.refresh(req.refreshToken, requestInfo(ctx)) };
    },

    async logout(req, ctx) {
      await d.sessions.logout(req.refreshToken, requestInfo(ctx));
      return {};
    },

    async logoutAll(_req, ctx) {
      const p = requireUser(ctx);
      await d.sessions.revoke({ userId: p.userId }, "logout_all", "logout_all", requestInfo(ctx), { userId: p.userId, sessionId: p.sessionId });
      return {};
    },

    async listSessions(_req, ctx) {
      const p = requireUser(ctx);
      const sessions = await d.sessions.list(p.userId);
      return {
        sessions: sessions.map((s) =>
          create(SessionSchema, {
            id: s.id,
            createdAt: timestampFromDate(s.created_at),
            lastUsedAt: timestampFromDate(s.last_used_at),
            userAgent: s.user_agent,
            ip: s.ip,
            current: s.id === p.sessionId,
            device: deviceName(s.user_agent),
          }),
        ),
      };
    },

    async revokeOtherSessions(_req, ctx) {
      const p = requireUser(ctx);
      const revoked = await d.sessions.revoke({ userId: p.userId, exceptSessionId: p.sessionId }, "revoke_others", "sessions_revoked", requestInfo(ctx), {
        userId: p.userId,
        sessionId: p.sessionId,
      });
      return { revoked };
    },

    async deleteSession(req, ctx) {
      const p = requireUser(ctx);
      // Someone else's session, a revoked one and a made-up id all read as "not found".
      if (!UUID.test(req.id)) throw notFound("session");
      const n = await d.sessions.revoke({ sessionId: req.id.toLowerCase(), userId: p.userId }, "session_deleted", undefined, requestInfo(ctx), {});
      if (n === 0) throw notFound("session");
      await d.audit.record("session_revoked", { userId: p.userId, sessionId: req.id.toLowerCase(), reason: "session_deleted" }, requestInfo(ctx));
      return {};
    },

    async changePassword(req, ctx) {
      const p = requireUser(ctx);
      check({ newPassword: passwordProblem(req.newPassword) });
      await withRetryAfter(ctx, () => d.accounts.changePassword(p, req.currentPassword, req.newPassword, requestInfo(ctx)));
      return {};
    },

    async issueServiceToken(req, ctx) {
      const info = requestInfo(ctx);
      const clientId = req.clientId.slice(0, 100);
      const client = await d.clients.authenticate(clientId, req.clientSecret);
      if (!client) {
        await d.audit.record("token_refused", { clientId: clientId || undefined, reason: "bad_credentials" }, info);
        throw unauthenticated("invalid client credentials");
      }
      if (!client.audiences.includes(req.audience)) {
        await d.audit.record("token_refused", { clientId, reason: "audience_not_allowed" }, info);
        throw permissionDenied("audience not allowed for this client");
      }
      const t = await d.minter.serviceToken({
        clientId,
        audience: req.audience,
        scopes: client.scopes,
        rateLimit: client.rate_limit,
      });
      await d.audit.record("token_issued", { clientId, reason: req.audience }, info);
      return { accessToken: t.token, expiresIn: t.expiresIn, tokenType: "Bearer" };
    },

    async getJwks(_req, ctx) {
      ctx.responseHeader.set("cache-control", d.jwks.cacheControl());
      return d.jwks.httpBody();
    },
  };
}
