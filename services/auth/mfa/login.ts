// CompleteLogin, the second step of a login for an account with a second
// factor: the challenge Login returned (challenges.ts) and a TOTP code or an
// unused recovery code. The challenge and the code are spent in one
// transaction, so a code never signs in twice and a challenge never yields two
// sessions; then the session starts exactly as after a password-only login
// (Accounts.signIn). Wrong codes count against the challenge (it dies after
// MAX_FAILURES) and against the sign-in throttles (attempts.ts).
import { unauthenticated } from "../../../platform/errors.js";
import { metrics, METRIC } from "../../../platform/telemetry/metrics.js";
import type { Accounts, SignedIn } from "../accounts.js";
import type { Audit, LoginFailureReason, RequestInfo } from "../audit.js";
import type { Clock } from "../clock.js";
import type { Lockout } from "../lockout.js";
import type { Profiles } from "../profiles.js";
import type { AuthStore } from "../store.js";
import type { Account } from "../tables.js";
import type { FactorAttempts } from "./attempts.js";
import type { LoginChallenge, LoginChallenges } from "./challenges.js";
import { totpOrRecoveryInput, type FactorCheck } from "./factors.js";
import type { SecondFactorStore } from "./second-factor-store.js";

export const INVALID_CHALLENGE = "invalid or expired challenge";
export const INVALID_CODE = "invalid code";

export interface SecondFactorLoginDeps {
  challenges: LoginChallenges;
  check: FactorCheck;
  attempts: FactorAttempts;
  store: SecondFactorStore;
  accounts: Accounts;
  authStore: AuthStore;
  lockout: Lockout;
  profiles: Profiles;
  audit: Audit;
  clock: Clock;
}

export class SecondFactorLogin {
  constructor(private readonly d: SecondFactorLoginDeps) {}

  async complete(challenge: string, code: string, recoveryCode: string, req: RequestInfo): Promise<SignedIn> {
    const input = totpOrRecoveryInput(code, recoveryCode);
    const c = await this.d.challenges.find(challenge);
    const account = c && (await this.d.authStore.getAccount(c.user_id));
    if (!c || !account) return this.refuse(c?.user_id, "bad_challenge", req);
    await this.d.attempts.checkThrottle(account, req, "login_throttled", "complete_login");

    const checked = await this.d.check.prove(account.id, input);
    if ("refused" in checked) return this.fail(c, account, checked.refused, req);
    const profile = await this.d.profiles.check(account.id);
    if (!profile.exists || !profile.active || !profile.user) return this.refuse(account.id, "inactive", req);

    const now = new Date(this.d.clock.now());
    const refused = await this.d.store.transact(async (trx) => {
      if (!(await this.d.challenges.redeem(trx, c, now))) return "bad_challenge";
      if (!(await this.d.store.spend(trx, account.id, checked.proof, now))) return input.kind === "totp" ? "reused_code" : "bad_recovery_code";
      return undefined;
    });
    if (refused === "bad_challenge") return this.refuse(account.id, "bad_challenge", req);
    if (refused) return this.fail(c, account, refused as LoginFailureReason, req);

    if (input.kind === "recovery_code") {
      const left = await this.d.store.unusedRecoveryCodes(account.id);
      await this.d.audit.record("recovery_code_used", { userId: account.id, reason: `${left} left` }, req);
    }
    // Both factors were right: this address's failures for the account are forgotten, as after a plain login.
    await this.d.lockout.reset(account.email, req.ip);
    return this.d.accounts.signIn(account, profile.user, req, input.kind);
  }

  /** A wrong, reused or used code: counted against the challenge and the throttles; one answer for all. */
  private async fail(c: LoginChallenge, account: Account, reason: LoginFailureReason, req: RequestInfo): Promise<never> {
    await this.d.challenges.recordFailure(c);
    await this.d.attempts.countFailure(account, req);
    metrics.counter(METRIC.loginFailures);
    await this.d.audit.record("login_failure", { userId: account.id, reason }, req);
    throw unauthenticated(INVALID_CODE);
  }

  /** No live challenge (or no active account behind it): nothing to count against. */
  private async refuse(userId: string | undefined, reason: LoginFailureReason, req: RequestInfo): Promise<never> {
    metrics.counter(METRIC.loginFailures);
    await this.d.audit.record("login_failure", { userId, reason }, req);
    throw unauthenticated(INVALID_CHALLENGE);
  }
}
