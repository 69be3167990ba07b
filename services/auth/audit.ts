// Append-only audit log (auth.auth_events; a trigger refuses UPDATE, DELETE and
// TRUNCATE). Records what happened, to whom, from where and in which trace;
// never passwords, tokens or hashes. A failed write is logged, not fatal:
// signing in must not depend on the audit table being writable.
import { callerTraceId } from "../../platform/telemetry/propagation.js";
import { isSpanContextValid, trace } from "@opentelemetry/api";
import type { HandlerContext } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { withDbRetry } from "../../platform/db.js";
import type { Logger } from "../../platform/logger.js";
import { clientIp, userAgent } from "../../platform/request.js";
import type { Clock } from "./clock.js";
import type { AuthDb } from "./tables.js";

export type AuthEventType =
  | "register"
  /** Someone registered an email that has an account; the owner is told (SignupAttempted, at most every 10 minutes). */
  | "register_existing"
  | "login_success"
  | "login_failure"
  /** A login refused unseen by a throttle; reason: scope and wait. */
  | "login_throttled"
  /** A failure started a throttle; reason: scope, wait, failures. */
  | "throttle_started"
  /** An account reached the per-account soft limit: its logins now wait (reason). */
  | "login_slowed"
  | "refresh"
  /** A spent refresh token retried within the grace window got the pair it was exchanged for. */
  | "refresh_retried"
  | "refresh_failure"
  | "reuse_detected"
  | "logout"
  | "logout_all"
  | "password_change"
  | "password_change_failure"
  | "session_revoked"
  | "sessions_revoked"
  | "account_deleted"
  /** A verification token was spent: the address is verified (verification.ts). */
  | "email_verified"
  /** ResendVerification mailed a new token. */
  | "verification_resent"
  /** ChangeEmail passed the password check; reason "address taken" when no mail went out (the caller is not told). */
  | "email_change_requested"
  /** ChangeEmail refused: wrong current password or a throttle (reason). */
  | "email_change_failure"
  /** A change_email token was spent: the sign-in address changed. */
  | "email_changed"
  /** RequestPasswordReset; reason "unknown address" when no account has it (the caller is not told). */
  | "password_reset_requested"
  /** RequestPasswordReset refused by its per-address or per-client limit (reason). */
  | "password_reset_throttled"
  /** A reset token set a new password; every session was revoked. */
  | "password_reset"
  /** Login: the password was right, the account has a second factor: a challenge instead of a session (mfa/). */
  | "login_second_factor_required"
  /** StartTotpEnrollment: a new pending secret (replacing a pending one). */
  | "totp_enrollment_started"
  /** ConfirmTotp: TOTP is on, recovery codes issued. */
  | "totp_enabled"
  /** DisableTotp; reason: what proved it ("totp", "recovery_code"). */
  | "totp_disabled"
  | "recovery_codes_regenerated"
  /** A recovery code was spent (CompleteLogin); reason: how many are left. */
  | "recovery_code_used"
  /** An admin removed the user's second factor; reason names the admin. */
  | "second_factor_reset"
  /** A second-factor action refused: "<action>: <why>" (bad_code, reused_code, bad_password, throttled ...). */
  | "second_factor_failure"
  | "token_issued"
  | "token_refused"
  | "admin_created"
  /** Migration 003 left an account's email as stored: its normal form is another account's. */
  | "email_not_normalized";

/** Why a login failed; the client only ever sees "invalid email or password". */
export type LoginFailureReason =
  | "unknown_user"
  | "bad_password"
  | "inactive"
  /** CompleteLogin (mfa/login.ts): an unknown, expired, used or dead challenge; a wrong, reused or used code. */
  | "bad_challenge"
  | "bad_code"
  | "reused_code"
  | "bad_recovery_code";

export interface RequestInfo {
  ip: string;
  userAgent: string;
  traceId: string;
}

export function requestInfo(ctx: HandlerContext): RequestInfo {
  // The active span's trace (the one this request is recorded under), else the caller's traceparent.
  const active = trace.getActiveSpan()?.spanContext();
  const traceId = active && isSpanContextValid(active) ? active.traceId : callerTraceId(ctx.requestHeader);
  return { ip: clientIp(ctx), userAgent: userAgent(ctx), traceId };
}

/** For work that is not a request (bootstrap, admin command, cleanup). */
export const SYSTEM_REQUEST: RequestInfo = { ip: "", userAgent: "", traceId: "" };

export interface EventFields {
  userId?: string;
  clientId?: string;
  sessionId?: string;
  reason?: string;
}

export class Audit {
  constructor(
    private readonly db: Kysely<AuthDb>,
    private readonly log: Logger,
    private readonly clock: Clock,
  ) {}

  async record(type: AuthEventType, f: EventFields, req: RequestInfo): Promise<void> {
    try {
      await withDbRetry(() =>
        this.db
          .insertInto("auth.auth_events")
          .values({
            at: new Date(this.clock.now()),
            type,
            user_id: f.userId ?? null,
            client_id: f.clientId ?? null,
            session_id: f.sessionId ?? null,
            reason: f.reason?.slice(0, 200) ?? null,
            ip: req.ip.slice(0, 64),
            user_agent: req.userAgent.slice(0, 256),
            trace_id: req.traceId,
          })
          .execute(),
      );
    } catch (err) {
      this.log.error("audit event not recorded", { type, err });
    }
  }
}
