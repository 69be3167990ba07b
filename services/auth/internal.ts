// AuthInternalService: called by other services with a service token (the
// auth interceptor has checked audience and route before we get here).
import type { ServiceImpl } from "@connectrpc/connect";
import type { AuthInternalService } from "../../gen/acme/auth/v1/auth_pb.js";
import { principalKey } from "../../platform/auth/principal.js";
import type { Accounts } from "./accounts.js";
import { requestInfo } from "./audit.js";
import type { Sessions } from "./sessions.js";
import { check, UUID } from "./validate.js";

export function internalHandlers(accounts: Accounts, sessions: Sessions): ServiceImpl<typeof AuthInternalService> {
  const caller = (ctx: Parameters<ServiceImpl<typeof AuthInternalService>["deleteAccount"]>[1]) => {
    const p = ctx.values.get(principalKey);
    return p?.kind === "service" ? p.clientId : undefined;
  };
  return {
    async revokeUserSessions(req, ctx) {
      check({ userId: UUID.test(req.userId) ? undefined : "must be a UUID", reason: req.reason.length > 100 ? "must be at most 100 characters" : undefined });
      const userId = req.userId.toLowerCase();
      const reason = req.reason || "unspecified";
      const revoked = await sessions.revoke({ userId }, reason, "sessions_revoked", requestInfo(ctx), { userId, clientId: caller(ctx), reason });
      return { revoked };
    },
    async deleteAccount(req, ctx) {
      check({ userId: UUID.test(req.userId) ? undefined : "must be a UUID" });
      await accounts.deleteAccount(req.userId.toLowerCase(), caller(ctx) ?? "", requestInfo(ctx));
      return {};
    },
  };
}
