// Registration: the same answer for a new and a taken email, in about the
// same time (pacing.ts), so nobody learns which addresses have accounts. A
// new account commits with UserRegistered and its verification token's
// EmailVerificationRequested (verification.ts verifies it); the owner of a
// taken email gets SignupAttempted (signup-notice.ts) and an audit event.
import { randomUUID } from "node:crypto";
import type { Logger } from "../../platform/logger.js";
import type { AccountTokens } from "./account-tokens.js";
import type { Audit, RequestInfo } from "./audit.js";
import type { Clock } from "./clock.js";
import { emailVerificationRequested, userRegistered } from "./events.js";
import { CreationPace } from "./pacing.js";
import type { PasswordHasher } from "./passwords.js";
import type { Profiles } from "./profiles.js";
import type { SignupNotices } from "./signup-notice.js";
import { EmailTakenError, type Account, type AuthStore } from "./store.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class Registration {
  private readonly pace = new CreationPace();

  constructor(
    private readonly store: AuthStore,
    private readonly hasher: PasswordHasher,
    private readonly profiles: Profiles,
    private readonly audit: Audit,
    private readonly clock: Clock,
    private readonly log: Logger,
    /** The verification token of a new account, the notice to the owner of a taken email. */
    private readonly mail: { tokens: AccountTokens; signups: SignupNotices },
  ) {}

  /**
   * Inputs are validated and the email normalised by the caller. The same
   * answer (nothing) whether the email was new or taken, at about the same
   * time: both hash the password, and a taken email waits as long as creating
   * an account takes (pacing.ts). A new account's address is mailed a
   * verification token (EmailVerificationRequested); the owner of a taken
   * email a notice (SignupAttempted, signup-notice.ts) and an audit event.
   * No tokens: the client logs in.
   */
  async register(email: string, password: string, name: string, req: RequestInfo): Promise<void> {
    const hash = await this.hasher.hash(password);
    const existing = await this.store.findAccountByEmail(email);
    if (existing) return this.registerExisting(existing, req);
    const started = performance.now();
    const id = randomUUID();
    const now = new Date(this.clock.now());
    // The account, its verification token, UserRegistered and EmailVerificationRequested commit
    // together; the events are removed with the account if the profile cannot be created.
    const verify = this.mail.tokens.prepare(id, "verify_email", email, now);
    const events = [
      userRegistered(id, email),
      emailVerificationRequested({ userId: id, email, token: verify.token, expiresAt: verify.expiresAt, purpose: "verify" }, now),
    ];
    try {
      await this.store.createAccount({ id, email, password_hash: hash, created_by: "register" }, events, verify.store);
    } catch (err) {
      // Lost a race for the email: the same answer as any taken email.
      if (err instanceof EmailTakenError) return this.registerExisting(await this.store.findAccountByEmail(email), req);
      throw err;
    }
    try {
      await this.profiles.create({ userId: id, email, name, role: "user" });
    } catch (err) {
      // No account without a profile: undo, then report.
      const ids = events.map((e) => e.id);
      await this.store.removeNewAccount(id, ids).catch((e) => this.log.error("could not remove account after failed profile creation", { userId: id, err: e }));
      throw err;
    }
    this.store.outboxCommitted();
    this.pace.observe(performance.now() - started);
    await this.audit.record("register", { userId: id }, req);
  }

  /** The notice to the owner is written within the paced wait, so this path takes no longer than a creation. */
  private async registerExisting(account: Account | undefined, req: RequestInfo): Promise<void> {
    const waitMs = this.pace.nextWaitMs();
    const started = performance.now();
    if (account) await this.mail.signups.attempted(account);
    await sleep(Math.max(0, waitMs - (performance.now() - started)));
    await this.audit.record("register_existing", { userId: account?.id }, req);
  }
}
