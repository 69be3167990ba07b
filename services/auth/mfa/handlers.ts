// AuthService handlers of the second factor: TOTP enrolment, recovery codes,
// the second login step, the admin reset. Logic: second-factor.ts (the
// caller's own factor and the admin reset) and login.ts (CompleteLogin).
// Refusals by the sign-in throttles carry Retry-After as a header (withRetryAfter).
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { AuthService } from "../../../gen/acme/auth/v1/auth_pb.js";
import { isAdmin, requireUser } from "../../../platform/auth/principal.js";
import { permissionDenied } from "../../../platform/errors.js";
import { requestInfo } from "../audit.js";
import { withRetryAfter } from "../throttled.js";
import type { SecondFactorLogin } from "./login.js";
import type { SecondFactor } from "./second-factor.js";

type SecondFactorMethods =
  | "completeLogin" | "getSecondFactor" | "startTotpEnrollment" | "confirmTotp" | "disableTotp" | "regenerateRecoveryCodes" | "resetSecondFactor";

export interface SecondFactorHandlerDeps {
  secondFactor: SecondFactor;
  login: SecondFactorLogin;
}

export function secondFactorHandlers(d: SecondFactorHandlerDeps): Pick<ServiceImpl<typeof AuthService>, SecondFactorMethods> {
  return {
    async completeLogin(req, ctx) {
      return withRetryAfter(ctx, () => d.login.complete(req.challenge, req.code, req.recoveryCode, requestInfo(ctx)));
    },

    async getSecondFactor(_req, ctx) {
      const s = await d.secondFactor.status(requireUser(ctx).userId);
      return { totpEnabled: s.totpEnabled, totpEnabledAt: s.enabledAt && timestampFromDate(s.enabledAt), recoveryCodesLeft: s.recoveryCodesLeft };
    },

    async startTotpEnrollment(req, ctx) {
      const p = requireUser(ctx);
      return withRetryAfter(ctx, () => d.secondFactor.startEnrollment(p, req.currentPassword, requestInfo(ctx)));
    },

    async confirmTotp(req, ctx) {
      const p = requireUser(ctx);
      return { recoveryCodes: await d.secondFactor.confirm(p, req.code, requestInfo(ctx)) };
    },

    async disableTotp(req, ctx) {
      const p = requireUser(ctx);
      await withRetryAfter(ctx, () => d.secondFactor.disable(p, req.code, req.recoveryCode, requestInfo(ctx)));
      return {};
    },

    async regenerateRecoveryCodes(req, ctx) {
      const p = requireUser(ctx);
      return { recoveryCodes: await withRetryAfter(ctx, () => d.secondFactor.regenerateRecoveryCodes(p, req.code, requestInfo(ctx))) };
    },

    async resetSecondFactor(req, ctx) {
      const p = requireUser(ctx);
      // The contract's policy already requires the admin role; checked here too, as the handler acts on another user.
      if (!isAdmin(p)) throw permissionDenied();
      await d.secondFactor.reset(p, req.userId, requestInfo(ctx));
      return {};
    },
  };
}
