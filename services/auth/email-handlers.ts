// AuthService handlers of the mailed-token flows: email verification, email
// change, password reset (issue 18). Validate, call the domain classes
// (verification.ts, password-reset.ts), build responses. Every bad token gets
// the one INVALID_ARGUMENT naming `token` (account-tokens.ts); limits answer
// RESOURCE_EXHAUSTED with Retry-After as a response header (withRetryAfter).
import type { ServiceImpl } from "@connectrpc/connect";
import type { AuthService } from "../../gen/acme/auth/v1/auth_pb.js";
import { requireUser } from "../../platform/auth/principal.js";
import { emailProblem, normalizeEmail } from "../../platform/email.js";
import { requestInfo } from "./audit.js";
import type { PasswordReset } from "./password-reset.js";
import { withRetryAfter } from "./throttled.js";
import { check, passwordProblem } from "./validate.js";
import type { Verification } from "./verification.js";

type EmailMethods = "verifyEmail" | "resendVerification" | "changeEmail" | "requestPasswordReset" | "resetPassword";

/** ChangeEmail's one answer: the change happens when the mailed token is verified. */
export const CHANGE_PENDING = "pending";
/** RequestPasswordReset's one answer, for a known and an unknown address. */
export const RESET_ACCEPTED = "accepted";

export interface EmailHandlerDeps {
  verification: Verification;
  passwordReset: PasswordReset;
}

export function emailHandlers(d: EmailHandlerDeps): Pick<ServiceImpl<typeof AuthService>, EmailMethods> {
  return {
    async verifyEmail(req, ctx) {
      return { email: await d.verification.verify(req.token, requestInfo(ctx)) };
    },

    async resendVerification(_req, ctx) {
      const p = requireUser(ctx);
      return { status: await withRetryAfter(ctx, () => d.verification.resend(p, requestInfo(ctx))) };
    },

    async changeEmail(req, ctx) {
      const p = requireUser(ctx);
      const newEmail = normalizeEmail(req.newEmail);
      check({ newEmail: emailProblem(newEmail) });
      await withRetryAfter(ctx, () => d.verification.changeEmail(p, newEmail, req.currentPassword, requestInfo(ctx)));
      return { status: CHANGE_PENDING };
    },

    async requestPasswordReset(req, ctx) {
      const email = normalizeEmail(req.email);
      check({ email: emailProblem(email) });
      await withRetryAfter(ctx, () => d.passwordReset.request(email, requestInfo(ctx)));
      return { status: RESET_ACCEPTED };
    },

    async resetPassword(req, ctx) {
      // The password first: its problems are the caller's to fix whatever the token.
      check({ newPassword: passwordProblem(req.newPassword) });
      await d.passwordReset.reset(req.token, req.newPassword, requestInfo(ctx));
      return {};
    },
  };
}
