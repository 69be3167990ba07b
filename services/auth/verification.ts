// Email verification and email change, by mailed single-use tokens
// (account-tokens.ts). Registration issues the first verify_email token
// (accounts.ts); ResendVerification issues a new one (the earlier stop
// working), at most one per AUTH_VERIFY_RESEND_SECONDS per account, counted
// from account_tokens.created_at under a lock of the account row so that
// concurrent resends cannot both pass. ChangeEmail mails a change_email token
// to the new address; VerifyEmail with it makes that the sign-in address.
// A token only applies while the account has the address it was mailed for:
// after a change, tokens mailed to the old address are refused like any other.
import type { Kysely } from "kysely";
import type { UserPrincipal } from "../../platform/auth/principal.js";
import { withDbRetry } from "../../platform/db.js";
import { invalidArgument, PG_UNIQUE_VIOLATION, pgCode, unauthenticated } from "../../platform/errors.js";
import { enqueue } from "../../platform/outbox.js";
import { invalidToken, StaleTokenError, tooSoon, type AccountTokens, type SpentToken } from "./account-tokens.js";
import type { Accounts } from "./accounts.js";
import type { Audit, RequestInfo } from "./audit.js";
import type { Clock } from "./clock.js";
import type { AuthConfig } from "./config.js";
import { emailVerificationRequested } from "./events.js";
import { SCHEMA } from "./migrations.js";
import type { AuthStore } from "./store.js";
import type { AccountTokenPurpose, AuthDb } from "./tables.js";

export const RESEND_TOO_SOON = "a verification mail was sent moments ago; try again later";
export const CHANGE_TOO_SOON = "an email change was requested moments ago; try again later";

type Resent = "sent" | "already_verified";

export class Verification {
  constructor(
    private readonly db: Kysely<AuthDb>,
    private readonly store: AuthStore,
    private readonly tokens: AccountTokens,
    private readonly accounts: Accounts,
    private readonly audit: Audit,
    private readonly cfg: Pick<AuthConfig, "verifyResendSeconds">,
    private readonly clock: Clock,
  ) {}

  /**
   * Spend a verify_email or change_email token; the address it was mailed to
   * is now verified (and, for a change, the sign-in address). Any token that
   * does not apply gets the one invalidToken() answer and changes nothing.
   */
  async verify(token: string, req: RequestInfo): Promise<string> {
    const now = new Date(this.clock.now());
    let done: (SpentToken & { oldEmail?: string }) | undefined;
    try {
      done = await withDbRetry(() =>
        this.db.transaction().execute(async (trx) => {
          const spent = await this.tokens.spend(trx, token, ["verify_email", "change_email"], now);
          if (!spent) return undefined;
          if (spent.purpose === "change_email") {
            // A unique violation here (the address was taken since the mail) aborts the transaction.
            const r = await this.store.changeEmailIn(trx, spent.userId, spent.email, now, now);
            if (!r) throw new StaleTokenError();
            return { ...spent, oldEmail: r.changed ? r.oldEmail : undefined };
          }
          const verified = await trx
            .updateTable("auth.accounts")
            .set((eb) => ({ email_verified_at: eb.fn.coalesce("email_verified_at", eb.val(now)) }))
            .where("id", "=", spent.userId)
            .where("email", "=", spent.email)
            .returning("id")
            .executeTakeFirst();
          if (!verified) throw new StaleTokenError();
          return spent;
        }),
      );
    } catch (err) {
      if (err instanceof StaleTokenError || pgCode(err) === PG_UNIQUE_VIOLATION) throw invalidToken();
      throw err;
    }
    if (!done) throw invalidToken();
    if (done.oldEmail !== undefined) {
      this.store.outboxCommitted();
      await this.audit.record("email_changed", { userId: done.userId }, req);
    } else {
      await this.audit.record("email_verified", { userId: done.userId }, req);
    }
    return done.email;
  }

  /** A new verification token for the caller's unverified address (the earlier ones stop working). */
  async resend(p: UserPrincipal, req: RequestInfo): Promise<Resent> {
    const now = new Date(this.clock.now());
    const r = await withDbRetry(() =>
      this.db.transaction().execute(async (trx): Promise<{ status: Resent } | { waitMs: number }> => {
        const account = await this.lockAccount(trx, p.userId);
        if (account.email_verified_at) return { status: "already_verified" };
        const waitMs = await this.waitMs(trx, p.userId, "verify_email", now);
        if (waitMs > 0) return { waitMs };
        const issued = await this.tokens.issue(trx, account.id, "verify_email", account.email, now);
        await enqueue(trx, SCHEMA, emailVerificationRequested({ userId: account.id, email: account.email, ...issued, purpose: "verify" }, now));
        return { status: "sent" };
      }),
    );
    if ("waitMs" in r) throw tooSoon(RESEND_TOO_SOON, r.waitMs);
    if (r.status === "sent") {
      this.store.outboxCommitted();
      await this.audit.record("verification_resent", { userId: p.userId, sessionId: p.sessionId }, req);
    }
    return r.status;
  }

  /**
   * Start a change of the caller's address (`newEmail` normalised and
   * validated by the caller). The current password is checked as for
   * ChangePassword. An address that belongs to another account gets the same
   * answer, the same work (a token is stored) and the same time, but no mail:
   * the caller cannot learn that it is taken, nor mail its owner.
   */
  async changeEmail(p: UserPrincipal, newEmail: string, currentPassword: string, req: RequestInfo): Promise<void> {
    const account = await this.accounts.confirmPassword(p, currentPassword, "email_change_failure", req);
    if (newEmail === account.email) throw invalidArgument([{ field: "newEmail", description: "must differ from the current address" }]);
    const taken = (await this.store.findAccountByEmail(newEmail)) !== undefined;
    const now = new Date(this.clock.now());
    const waitMs = await withDbRetry(() =>
      this.db.transaction().execute(async (trx) => {
        await this.lockAccount(trx, p.userId);
        // Same limit as resends: the new address is a stranger's until verified; no mail bombing it.
        const wait = await this.waitMs(trx, p.userId, "change_email", now);
        if (wait > 0) return wait;
        const issued = await this.tokens.issue(trx, account.id, "change_email", newEmail, now);
        if (!taken) {
          await enqueue(trx, SCHEMA, emailVerificationRequested({ userId: account.id, email: newEmail, ...issued, purpose: "change_email" }, now));
        }
        return 0;
      }),
    );
    if (waitMs > 0) throw tooSoon(CHANGE_TOO_SOON, waitMs);
    if (!taken) this.store.outboxCommitted();
    await this.audit.record("email_change_requested", { userId: p.userId, sessionId: p.sessionId, reason: taken ? "address taken" : undefined }, req);
  }

  /** The account row, locked until the transaction ends: concurrent requests for it take turns. */
  private async lockAccount(trx: Kysely<AuthDb>, userId: string) {
    const account = await trx.selectFrom("auth.accounts").select(["id", "email", "email_verified_at"]).where("id", "=", userId).forUpdate().executeTakeFirst();
    if (!account) throw unauthenticated("account not found");
    return account;
  }

  /** How long until the user may be mailed another token of `purpose` (0: now). */
  private async waitMs(trx: Kysely<AuthDb>, userId: string, purpose: AccountTokenPurpose, now: Date): Promise<number> {
    const intervalMs = this.cfg.verifyResendSeconds * 1000;
    if (intervalMs === 0) return 0;
    const latest = await this.tokens.issuedSince(trx, userId, purpose, new Date(now.getTime() - intervalMs));
    return latest ? Math.max(1, latest.getTime() + intervalMs - now.getTime()) : 0;
  }
}
