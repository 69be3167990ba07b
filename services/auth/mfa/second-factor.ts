// TOTP enrolment and management for the signed-in user, and the admin reset.
// Enrolment is two steps: StartTotpEnrollment (current password) stores a
// pending secret and shows it; ConfirmTotp with a first code turns it on and
// hands out the recovery codes. Turning it off or replacing the recovery codes
// needs a current code, spent with the replay guard (second-factor-store.ts).
// Each change commits with its SecondFactorChanged event.
import type { UserPrincipal } from "../../../platform/auth/principal.js";
import { failedPrecondition, invalidArgument, notFound, unauthenticated } from "../../../platform/errors.js";
import type { Accounts } from "../accounts.js";
import type { Audit, RequestInfo } from "../audit.js";
import type { Clock } from "../clock.js";
import type { AuthConfig } from "../config.js";
import { secondFactorChanged, type SecondFactorChange } from "../events.js";
import type { AuthStore } from "../store.js";
import type { Account } from "../tables.js";
import { UUID } from "../validate.js";
import type { FactorAttempts } from "./attempts.js";
import { totpInput, totpOrRecoveryInput, type FactorCheck, type FactorInput } from "./factors.js";
import { hashRecoveryCode, newRecoveryCodes, normaliseRecoveryCode } from "./recovery-codes.js";
import type { Proof, SecondFactorStore, Trx } from "./second-factor-store.js";
import { base32, newTotpSecret, otpauthUri, qrSvg } from "./totp.js";

export interface SecondFactorDeps {
  store: SecondFactorStore;
  check: FactorCheck;
  attempts: FactorAttempts;
  accounts: Accounts;
  authStore: AuthStore;
  audit: Audit;
  cfg: AuthConfig;
  clock: Clock;
}

export interface Enrollment {
  secret: string;
  otpauthUri: string;
  qrSvg: string;
  expiresIn: number;
}

export interface SecondFactorStatus {
  totpEnabled: boolean;
  enabledAt?: Date;
  recoveryCodesLeft: number;
}

const ALREADY_ENABLED = "TOTP is already enabled; disable it first";
const NOT_ENABLED = "TOTP is not enabled";

export class SecondFactor {
  constructor(private readonly d: SecondFactorDeps) {}

  async status(userId: string): Promise<SecondFactorStatus> {
    const row = await this.d.store.getTotp(userId);
    if (!row?.confirmed_at) return { totpEnabled: false, recoveryCodesLeft: 0 };
    return { totpEnabled: true, enabledAt: row.confirmed_at, recoveryCodesLeft: await this.d.store.unusedRecoveryCodes(userId) };
  }

  /** A new pending secret (replacing a pending one); nothing changes for login until ConfirmTotp. */
  async startEnrollment(p: UserPrincipal, currentPassword: string, req: RequestInfo): Promise<Enrollment> {
    if ((await this.d.store.getTotp(p.userId))?.confirmed_at) throw failedPrecondition(ALREADY_ENABLED);
    const account = await this.d.accounts.confirmPassword(p, currentPassword, "second_factor_failure", req);
    const secret = newTotpSecret();
    if (!(await this.d.store.putPending(account.id, this.d.check.sealSecret(account.id, secret), new Date(this.d.clock.now())))) {
      throw failedPrecondition(ALREADY_ENABLED);
    }
    const uri = otpauthUri(secret, this.d.cfg.totpIssuer, account.email);
    await this.d.audit.record("totp_enrollment_started", { userId: account.id, sessionId: p.sessionId }, req);
    return { secret: base32(secret), otpauthUri: uri, qrSvg: await qrSvg(uri), expiresIn: this.d.cfg.totpEnrollSeconds };
  }

  /** The first code turns TOTP on; returns the recovery codes (shown once). */
  async confirm(p: UserPrincipal, code: string, req: RequestInfo): Promise<string[]> {
    const input = totpInput(code);
    const account = await this.account(p);
    const row = await this.d.store.getTotp(account.id);
    if (row?.confirmed_at) throw failedPrecondition(ALREADY_ENABLED);
    if (!row) throw failedPrecondition("no TOTP enrolment is pending; start one");
    const now = this.d.clock.now();
    const pendingSince = new Date(now - this.d.cfg.totpEnrollSeconds * 1000);
    if (row.created_at <= pendingSince) throw failedPrecondition("the TOTP enrolment expired; start again");
    const step = this.d.check.stepFor(account.id, row.secret_enc, input.code);
    const codes = newRecoveryCodes();
    const refused =
      step === undefined
        ? "bad_code"
        : await this.d.store.transact(async (trx) => {
            // Conditional on the very secret the code was checked against (a new enrolment may have replaced it).
            if (!(await this.d.store.confirm(trx, account.id, row.secret_enc, step, new Date(now), pendingSince))) return "bad_code";
            await this.d.store.replaceRecoveryCodes(trx, account.id, hashes(codes), new Date(now));
            await this.event(trx, account, "totp_enabled", now);
            return undefined;
          });
    if (refused) {
      // Not counted against the throttles: guessing the code of a secret you were just shown gains nothing.
      await this.d.audit.record("second_factor_failure", { userId: account.id, reason: "confirm: bad_code" }, req);
      throw invalidArgument([{ field: "code", description: "is incorrect" }]);
    }
    await this.d.audit.record("totp_enabled", { userId: account.id, sessionId: p.sessionId }, req);
    return codes;
  }

  /** Off, with a current code or a recovery code: the secret and every recovery code go. */
  async disable(p: UserPrincipal, code: string, recoveryCode: string, req: RequestInfo): Promise<void> {
    const input = totpOrRecoveryInput(code, recoveryCode);
    const account = await this.enabledAccount(p);
    await this.spendThen(account, input, req, "disable", async (trx, now) => {
      await this.d.store.remove(trx, account.id);
      await this.event(trx, account, "totp_disabled", now);
    });
    await this.d.audit.record("totp_disabled", { userId: account.id, sessionId: p.sessionId, reason: input.kind }, req);
  }

  /** Ten new recovery codes for a current TOTP code; the old ones stop working. */
  async regenerateRecoveryCodes(p: UserPrincipal, code: string, req: RequestInfo): Promise<string[]> {
    const input = totpInput(code);
    const account = await this.enabledAccount(p);
    const codes = newRecoveryCodes();
    await this.spendThen(account, input, req, "regenerate", async (trx, now) => {
      await this.d.store.replaceRecoveryCodes(trx, account.id, hashes(codes), new Date(now));
      await this.event(trx, account, "recovery_codes_regenerated", now);
    });
    await this.d.audit.record("recovery_codes_regenerated", { userId: account.id, sessionId: p.sessionId }, req);
    return codes;
  }

  /** Admin: remove a user's second factor (lost device). Sessions are left alone. */
  async reset(admin: UserPrincipal, userId: string, req: RequestInfo): Promise<void> {
    if (!UUID.test(userId)) throw invalidArgument([{ field: "userId", description: "must be a UUID" }]);
    const account = await this.d.authStore.getAccount(userId.toLowerCase());
    if (!account) throw notFound("user");
    let removed = false;
    const now = this.d.clock.now();
    await this.d.store.transact(async (trx) => {
      removed = await this.d.store.remove(trx, account.id);
      if (removed) await this.event(trx, account, "reset_by_admin", now);
      return undefined;
    });
    const reason = `by admin ${admin.userId}${removed ? "" : " (nothing to reset)"}`;
    await this.d.audit.record("second_factor_reset", { userId: account.id, reason }, req);
  }

  /**
   * Throttles, then the code; spent in one transaction with `change`, so a
   * refused code changes nothing and a code authorises one change only.
   */
  private async spendThen(account: Account, input: FactorInput, req: RequestInfo, action: string, change: (trx: Trx, now: number) => Promise<void>) {
    await this.d.attempts.checkThrottle(account, req, "second_factor_failure", action);
    const checked = await this.d.check.prove(account.id, input);
    if ("refused" in checked) return this.d.attempts.refuse(account, req, action, checked.refused, input);
    const proof: Proof = checked.proof;
    const now = this.d.clock.now();
    const refused = await this.d.store.transact(async (trx) => {
      if (!(await this.d.store.spend(trx, account.id, proof, new Date(now)))) return input.kind === "totp" ? "reused_code" : "bad_recovery_code";
      await change(trx, now);
      return undefined;
    });
    if (refused) return this.d.attempts.refuse(account, req, action, refused as "reused_code" | "bad_recovery_code", input);
  }

  private async account(p: UserPrincipal): Promise<Account> {
    const account = await this.d.authStore.getAccount(p.userId);
    if (!account) throw unauthenticated("account not found");
    return account;
  }

  private async enabledAccount(p: UserPrincipal): Promise<Account> {
    const account = await this.account(p);
    if (!(await this.d.store.getTotp(account.id))?.confirmed_at) throw failedPrecondition(NOT_ENABLED);
    return account;
  }

  private event(trx: Trx, account: Account, change: SecondFactorChange, now: number): Promise<void> {
    return this.d.store.enqueue(trx, secondFactorChanged(account.id, account.email, change, new Date(now)));
  }
}

const hashes = (codes: string[]) => codes.map((c) => hashRecoveryCode(normaliseRecoveryCode(c)!));
