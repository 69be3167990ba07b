// Accounts: registration, login, password change, removal, and creating an
// admin (bootstrap and the admin command). Login failures look the same to
// the client whatever the cause; the audit log keeps the true reason.
import { randomUUID } from "node:crypto";
import type { Tokens } from "../../gen/acme/auth/v1/auth_pb.js";
import type { User } from "../../gen/acme/user/v1/user_pb.js";
import type { UserPrincipal } from "../../platform/auth/principal.js";
import { alreadyExists, failedPrecondition, invalidArgument, resourceExhausted, unauthenticated } from "../../platform/errors.js";
import type { Logger } from "../../platform/logger.js";
import type { Audit, LoginFailureReason, RequestInfo } from "./audit.js";
import { metrics, METRIC } from "../../platform/telemetry/metrics.js";
import type { Clock } from "./clock.js";
import type { Lockout } from "./lockout.js";
import { MAX_PASSWORD_BYTES, type PasswordHasher } from "./passwords.js";
import type { Profiles } from "./profiles.js";
import type { Sessions } from "./sessions.js";
import { EmailTakenError, type Account, type AuthStore } from "./store.js";

/** The one answer to every failed login. */
export const INVALID_CREDENTIALS = "invalid email or password";

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
  ) {}

  /** Inputs are validated and the email normalised by the caller. */
  async register(email: string, password: string, name: string, req: RequestInfo): Promise<SignedIn> {
    // Cheap early answer for a taken email; the unique index decides races.
    if (await this.store.findAccountByEmail(email)) throw alreadyExists("email already registered");
    const hash = await this.hasher.hash(password);
    const id = randomUUID();
    try {
      await this.store.createAccount({ id, email, password_hash: hash, created_by: "register" });
    } catch (err) {
      if (err instanceof EmailTakenError) throw alreadyExists("email already registered");
      throw err;
    }
    let user: User;
    try {
      user = await this.profiles.create({ userId: id, email, name, role: "user" });
    } catch (err) {
      // No account without a profile: undo, then report.
      await this.store.deleteAccount(id).catch((e) => this.log.error("could not remove account after failed profile creation", { userId: id, err: e }));
      throw err;
    }
    const { tokens, sessionId } = await this.sessions.start(id, [user.role], req);
    await this.audit.record("register", { userId: id, sessionId }, req);
    return { user, tokens };
  }

  async login(email: string, password: string, req: RequestInfo): Promise<SignedIn> {
    if (await this.lockout.ipBlocked(req.ip)) {
      await this.audit.record("login_failure", { reason: "ip_limited" }, req);
      throw resourceExhausted("too many failed sign-in attempts from this address; try again later");
    }
    const account = email ? await this.store.findAccountByEmail(email) : undefined;
    const lock = await this.lockout.status(email);
    if (lock.locked) return this.fail(email, account, "locked", req, false);

    // bcrypt reads 72 bytes: a longer input could match a stored prefix, so it never reaches compare.
    const tooLong = Buffer.byteLength(password, "utf8") > MAX_PASSWORD_BYTES;
    if (!account || tooLong || !password) {
      await this.hasher.verifyDummy(password.slice(0, MAX_PASSWORD_BYTES));
      return this.fail(email, account, account ? "bad_password" : "unknown_user", req, true);
    }
    if (!(await this.hasher.verify(password, account.password_hash))) return this.fail(email, account, "bad_password", req, true);

    const profile = await this.profiles.check(account.id);
    if (!profile.exists || !profile.active || !profile.user) return this.fail(email, account, "inactive", req, false);

    await this.lockout.reset(email);
    await this.rehashIfNeeded(account, password);
    const { tokens, sessionId } = await this.sessions.start(account.id, [profile.user.role], req);
    await this.audit.record("login_success", { userId: account.id, sessionId }, req);
    return { user: profile.user, tokens };
  }

  /** Check the current password (counted against the lockout), set the new one, end every other session. */
  async changePassword(p: UserPrincipal, current: string, next: string, req: RequestInfo): Promise<void> {
    const account = await this.store.getAccount(p.userId);
    if (!account) throw unauthenticated("account not found");
    const fields = { userId: account.id, sessionId: p.sessionId };
    if ((await this.lockout.status(account.email)).locked) {
      await this.audit.record("password_change_failure", { ...fields, reason: "locked" }, req);
      throw failedPrecondition("too many failed password attempts; try again later");
    }
    const ok =
      Buffer.byteLength(current, "utf8") <= MAX_PASSWORD_BYTES && current !== "" && (await this.hasher.verify(current, account.password_hash));
    if (!ok) {
      await this.countFailure(account.email, account, req);
      await this.audit.record("password_change_failure", { ...fields, reason: "bad_password" }, req);
      throw invalidArgument([{ field: "currentPassword", description: "is incorrect" }]);
    }
    const hash = await this.hasher.hash(next);
    await this.store.setPasswordHash(account.id, hash, true, new Date(this.clock.now()));
    await this.lockout.reset(account.email);
    await this.sessions.revoke({ userId: account.id, exceptSessionId: p.sessionId }, "password_change", "password_change", req, fields);
  }

  /** Revoke every session, then remove the account (sessions and refresh tokens cascade). Idempotent. */
  async deleteAccount(userId: string, clientId: string, req: RequestInfo): Promise<void> {
    await this.sessions.revoke({ userId }, "account_deleted", undefined, req, {});
    if (await this.store.deleteAccount(userId)) await this.audit.record("account_deleted", { userId, clientId }, req);
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

  private async countFailure(email: string, account: Account | undefined, req: RequestInfo): Promise<void> {
    const [{ failures, lockMs }] = await Promise.all([this.lockout.recordFailure(email), this.lockout.recordIpFailure(req.ip)]);
    if (lockMs > 0) {
      metrics.counter(METRIC.lockouts, { kind: "account" });
      await this.audit.record("lock", { userId: account?.id, reason: `${lockMs / 1000}s after ${failures} failures` }, req);
    }
  }

  /** The configured cost changed since this hash was made: store a new one (best effort). */
  private async rehashIfNeeded(account: Account, password: string): Promise<void> {
    if (!this.hasher.needsRehash(account.password_hash)) return;
    try {
      const hash = await this.hasher.hash(password);
      await this.store.setPasswordHash(account.id, hash, false, new Date(this.clock.now()));
    } catch (err) {
      this.log.warn("password rehash skipped", { userId: account.id, err });
    }
  }
}
