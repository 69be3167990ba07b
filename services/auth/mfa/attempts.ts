// Guessing a second-factor code is guessing a password: every attempt is
// refused while the sign-in throttles (lockout.ts) apply to the account from
// the caller's address, and every wrong or reused code counts against them
// like a wrong password (Accounts.countFailedAttempt). Without this a stolen
// password, or a stolen access token for DisableTotp, would allow unlimited
// guesses at a 6-digit code.
import { invalidArgument } from "../../../platform/errors.js";
import type { Accounts } from "../accounts.js";
import type { Audit, AuthEventType, EventFields, RequestInfo } from "../audit.js";
import type { Lockout } from "../lockout.js";
import type { Account } from "../tables.js";
import { retrySeconds, throttledError } from "../throttled.js";
import type { FactorInput, FactorRefusal } from "./factors.js";

export class FactorAttempts {
  constructor(
    private readonly lockout: Lockout,
    private readonly accounts: Accounts,
    private readonly audit: Audit,
  ) {}

  /** RESOURCE_EXHAUSTED with Retry-After while a throttle applies; audited as `type` ("<action>: throttled ..."). */
  async checkThrottle(account: Account, req: RequestInfo, type: AuthEventType, action: string, fields: EventFields = {}): Promise<void> {
    const refusal = await this.lockout.check(account.email, req.ip);
    if (!refusal) return;
    const reason = `${action}: throttled ${refusal.scope}, retry in ${retrySeconds(refusal.retryAfterMs)}s`;
    await this.audit.record(type, { ...fields, userId: account.id, reason }, req);
    throw throttledError(refusal.retryAfterMs);
  }

  /** Count the failure, audit it (never the code), and refuse with INVALID_ARGUMENT on the field that was wrong. */
  async refuse(account: Account, req: RequestInfo, action: string, why: FactorRefusal, input: FactorInput, fields: EventFields = {}): Promise<never> {
    await this.accounts.countFailedAttempt(account, req);
    await this.audit.record("second_factor_failure", { ...fields, userId: account.id, reason: `${action}: ${why}` }, req);
    throw invalidArgument([{ field: input.kind === "totp" ? "code" : "recoveryCode", description: "is incorrect" }]);
  }

  /** A failure of the second login step: counted like a wrong password. */
  countFailure(account: Account, req: RequestInfo): Promise<void> {
    return this.accounts.countFailedAttempt(account, req);
  }
}
