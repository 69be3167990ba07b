// Accounts: login, password checks and change, removal (registration is
// registration.ts). Login failures look the same to the client whatever the
// cause; the audit log keeps the true reason. Throttling policy: lockout.ts
// and docs/auth-policy.md. Events (events.ts): PasswordChanged and
// AccountLocked here; LoginFromNewDevice and SessionRevoked with the sessions
// (sessions.ts).
import type { Tokens } from "../../gen/acme/auth/v1/auth_pb.js";
import type { User } from "../../gen/acme/user/v1/user_pb.js";
import type { UserPrincipal } from "../../platform/auth/principal.js";
import { invalidArgument, unauthenticated } from "../../platform/errors.js";
import type { Logger } from "../../platform/logger.js";
import type { Audit, AuthEventType, LoginFailureReason, RequestInfo } from "./audit.js";
import { metrics, METRIC } from "../../platform/telemetry/metrics.js";
import type { Clock } from "./clock.js";
import { accountLocked } from "./events.js";
import type { Lockout, Refusal } from "./lockout.js";
import { MAX_PASSWORD_BYTES, type PasswordHasher } from "./passwords.js";
import type { Profiles } from "./profiles.js";
import type { ChallengeIssued, LoginChallenges } from "./mfa/challenges.js";
import type { Sessions } from "./sessions.js";
import type { Account, AuthStore } from "./store.js";
import { retrySeconds, throttledError } from "./throttled.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The one answer to every failed login. */
export const INVALID_CREDENTIALS = "invalid email or password";

/** Login's answer for an account with a second factor: only the challenge (LoginResponse.second_factor). */
export interface SecondFactorRequired {
  secondFactor: ChallengeIssued;
}

export interface SignedIn {
  user: User;
  tokens: Tokens;
}

export class Accounts {
  constructor(
    private readonly store: AuthStore,
    private readonly hasher: PasswordHasher,
    private readonly lockout: Lockout,
    private readonly sessions: Sessions,
    private readonly profiles: Profiles,
    private readonly audit: Audit,
    private readonly clock: Clock,
    private readonly log: Logger,
    /** Login's second step (mfa/challenges.ts): a challenge for an account with a confirmed second factor. */
    private readonly secondFactor: Pick<LoginChallenges, "issueIfRequired">,
  ) {}

  async login(email: string, password: string, req: RequestInfo): Promise<SignedIn | SecondFactorRequired> {
    // Throttles first, before anything depends on whether the account exists.
    const refusal = await this.lockout.check(email, req.ip);
    if (refusal) return this.throttled(email, refusal, req);
    const delayMs = await this.lockout.softDelayMs(email);
    if (delayMs > 0) await sleep(delayMs);
    const account = email ? await this.store.findAccountByEmail(email) : undefined;

    // bcrypt reads 72 bytes: a longer input could match a stored prefix, so it never reaches compare.
    const tooLong = Buffer.byteLength(password, "utf8") > MAX_PASSWORD_BYTES;
    if (!account || tooLong || !password) {
      await this.hasher.verifyDummy(password.slice(0, MAX_PASSWORD_BYTES));
      return this.fail(email, account, account ? "bad_password" : "unknown_user", req, true);
    }
    if (!(await this.hasher.verify(password, account.password_hash))) return this.fail(email, account, "bad_password", req, true);

    const profile = await this.profiles.check(account.id);
    if (!profile.exists || !profile.active || !profile.user) return this.fail(email, account, "inactive", req, false);

    await this.rehashIfNeeded(account, password);
    // An account with a second factor gets a challenge instead of a session (CompleteLogin, mfa/login.ts).
    // Its throttle failures are kept until the code is right too: a known password must not buy fresh guesses.
    const secondFactor = await this.secondFactor.issueIfRequired(account.id, req);
    if (secondFactor) {
      await this.audit.record("login_second_factor_required", { userId: account.id }, req);
      return { secondFactor };
    }
    await this.lockout.reset(email, req.ip);
    return this.signIn(account, profile.user, req);
  }

  /** A session for an account whose credentials (and second factor) were checked; `reason`: how ("totp", "recovery_code"). */
  async signIn(account: Account, user: User, req: RequestInfo, reason?: string): Promise<SignedIn> {
    const { tokens, sessionId } = await this.sessions.start(account, [user.role], req);
    await this.audit.record("login_success", { userId: account.id, sessionId, reason }, req);
    return { user, tokens };
  }

  /** A wrong second-factor code counts against the sign-in throttles like a wrong password (mfa/attempts.ts). */
  countFailedAttempt(account: Account, req: RequestInfo): Promise<void> {
    return this.countFailure(account.email, account, req);
  }

  /** Check the current password (counted against the same throttles), set the new one, end every other session. */
  async changePassword(p: UserPrincipal, current: string, next: string, req: RequestInfo): Promise<void> {
    const account = await this.confirmPassword(p, current, "password_change_failure", req);
    const fields = { userId: account.id, sessionId: p.sessionId };
    const hash = await this.hasher.hash(next);
    // PasswordChanged commits with the hash; each other session's SessionRevoked with its revocation.
    await this.store.changePassword(account.id, hash, new Date(this.clock.now()));
    await this.lockout.reset(account.email, req.ip);
    await this.sessions.revoke({ userId: account.id, exceptSessionId: p.sessionId }, "password_change", "password_change", req, fields);
  }

  /**
   * The caller's current password, for a change that needs it (ChangePassword,
   * ChangeEmail): refused by the login throttles, a wrong one counted against
   * them (INVALID_ARGUMENT on currentPassword); `failure` is the audit type.
   */
  async confirmPassword(p: UserPrincipal, current: string, failure: AuthEventType, req: RequestInfo): Promise<Account> {
    const account = await this.store.getAccount(p.userId);
    if (!account) throw unauthenticated("account not found");
    const fields = { userId: account.id, sessionId: p.sessionId };
    const refusal = await this.lockout.check(account.email, req.ip);
    if (refusal) {
      await this.audit.record(failure, { ...fields, reason: `throttled ${refusal.scope}` }, req);
      throw throttledError(refusal.retryAfterMs);
    }
    const ok =
      Buffer.byteLength(current, "utf8") <= MAX_PASSWORD_BYTES && current !== "" && (await this.hasher.verify(current, account.password_hash));
    if (!ok) {
      await this.countFailure(account.email, account, req);
      await this.audit.record(failure, { ...fields, reason: "bad_password" }, req);
      throw invalidArgument([{ field: "currentPassword", description: "is incorrect" }]);
    }
    return account;
  }

  /**
   * Revoke every session, then remove the account (sessions and refresh tokens
   * cascade) with its AccountDeleted. Idempotent: a repeat changes nothing and writes no event.
   */
  async deleteAccount(userId: string, clientId: string, req: RequestInfo): Promise<void> {
    await this.sessions.revoke({ userId }, "account_deleted", undefined, req, {});
    if (await this.store.deleteAccount(userId, new Date(this.clock.now()))) await this.audit.record("account_deleted", { userId, clientId }, req);
  }

  private async fail(
    email: string,
    account: Account | undefined,
    reason: LoginFailureReason,
    req: RequestInfo,
    counts: boolean,
  ): Promise<never> {
    if (counts) await this.countFailure(email, account, req);
    // No reason label: a public counter by reason would tell anyone whether an email has an
    // account (unknown_user against bad_password). The audit log keeps the reason.
    metrics.counter(METRIC.loginFailures);
    await this.audit.record("login_failure", { userId: account?.id, reason }, req);
    throw unauthenticated(INVALID_CREDENTIALS);
  }

  /** A refused attempt: audited with the account when there is one; the client sees the same answer either way. */
  private async throttled(email: string, refusal: Refusal, req: RequestInfo): Promise<never> {
    const account = email ? await this.store.findAccountByEmail(email) : undefined;
    metrics.counter(METRIC.loginFailures);
    await this.audit.record("login_throttled", { userId: account?.id, reason: `${refusal.scope}: retry in ${retrySeconds(refusal.retryAfterMs)}s` }, req);
    throw throttledError(refusal.retryAfterMs);
  }

  private async countFailure(email: string, account: Account | undefined, req: RequestInfo): Promise<void> {
    const out = await this.lockout.recordFailure(email, req.ip);
    for (const s of out.started) {
      metrics.counter(METRIC.lockouts, { kind: s.scope });
      await this.audit.record("throttle_started", { userId: account?.id, reason: `${s.scope}: ${s.waitMs / 1000}s after ${s.failures} failures` }, req);
    }
    if (out.slowedNow) {
      await this.audit.record("login_slowed", { userId: account?.id, reason: `${out.accountFailures} failures from all addresses` }, req);
    }
    if (out.locked && account) await this.announceLock(account, out.locked);
  }

  /**
   * AccountLocked for a lock of the account from one address (lockout.ts): the
   * lock is in the KV store, so the event has a transaction of its own. Like
   * the audit, a failed write is logged, not fatal: the answer to the failed
   * attempt must not depend on it (nor tell that the email has an account).
   */
  private async announceLock(account: Account, lock: { failures: number; waitMs: number }): Promise<void> {
    const now = this.clock.now();
    const reason = `account_address: ${lock.failures} failures`;
    try {
      await this.store.recordEvent(accountLocked(account.id, account.email, reason, new Date(now + lock.waitMs), new Date(now)));
    } catch (err) {
      this.log.error("AccountLocked not recorded", { userId: account.id, err });
    }
  }

  /** The configured cost changed since this hash was made: store a new one (best effort). */
  private async rehashIfNeeded(account: Account, password: string): Promise<void> {
    if (!this.hasher.needsRehash(account.password_hash)) return;
    try {
      const hash = await this.hasher.hash(password);
      await this.store.rehashPassword(account.id, hash);
    } catch (err) {
      this.log.warn("password rehash skipped", { userId: account.id, err });
    }
  }
}
