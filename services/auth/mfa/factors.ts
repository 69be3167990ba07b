// Checking a second factor: the request's code or recovery code (field-named
// INVALID_ARGUMENT when it cannot be one), then a Proof to spend in the
// transaction of what it authorises (second-factor-store.ts). TOTP secrets are
// sealed at rest under the key-encryption key, the user id as AAD (secret-box.ts).
import { invalidArgument } from "../../../platform/errors.js";
import type { Clock } from "../clock.js";
import { open, seal } from "../secret-box.js";
import { hashRecoveryCode, normaliseRecoveryCode } from "./recovery-codes.js";
import type { Proof, SecondFactorStore } from "./second-factor-store.js";
import { matchingStep, parseTotpCode } from "./totp.js";

export type FactorInput = { kind: "totp"; code: string } | { kind: "recovery_code"; code: string };

/** Why a well-formed factor was refused (audit only; the client sees one answer). */
export type FactorRefusal = "bad_code" | "reused_code" | "bad_recovery_code";

const CODE_SHAPE = "must be 6 digits";

/** A TOTP code alone (ConfirmTotp, RegenerateRecoveryCodes). */
export function totpInput(code: string): FactorInput {
  const parsed = parseTotpCode(code);
  if (parsed === undefined) throw invalidArgument([{ field: "code", description: code.trim() ? CODE_SHAPE : "is required" }]);
  return { kind: "totp", code: parsed };
}

/** A TOTP code or, instead, a recovery code (CompleteLogin, DisableTotp). */
export function totpOrRecoveryInput(code: string, recoveryCode: string): FactorInput {
  const [hasCode, hasRecovery] = [code.trim() !== "", recoveryCode.trim() !== ""];
  if (hasCode && hasRecovery) throw invalidArgument([{ field: "recoveryCode", description: "give either code or recoveryCode, not both" }]);
  if (!hasCode && !hasRecovery) throw invalidArgument([{ field: "code", description: "a 6-digit code, or instead recoveryCode, is required" }]);
  if (hasCode) return totpInput(code);
  const normalised = normaliseRecoveryCode(recoveryCode);
  if (normalised === undefined) throw invalidArgument([{ field: "recoveryCode", description: "is not a recovery code (10 letters and digits)" }]);
  return { kind: "recovery_code", code: normalised };
}

export class FactorCheck {
  constructor(
    private readonly kek: Buffer,
    private readonly store: SecondFactorStore,
    private readonly clock: Clock,
  ) {}

  sealSecret(userId: string, secret: Uint8Array): Buffer {
    return seal(this.kek, userId, secret);
  }

  openSecret(userId: string, sealed: Uint8Array): Buffer {
    return open(this.kek, userId, sealed);
  }

  /**
   * A TOTP code is matched against the confirmed secret now; a step not newer
   * than the last accepted one is refused here already (and again, atomically,
   * when spent). A recovery code is only hashed: spending it is the check.
   */
  async prove(userId: string, input: FactorInput): Promise<{ proof: Proof } | { refused: FactorRefusal }> {
    if (input.kind === "recovery_code") return { proof: { kind: "recovery_code", hash: hashRecoveryCode(input.code) } };
    const row = await this.store.getTotp(userId);
    if (!row?.confirmed_at) return { refused: "bad_code" };
    const step = matchingStep(this.openSecret(userId, row.secret_enc), input.code, this.clock.now());
    if (step === undefined) return { refused: "bad_code" };
    if (step <= Number(row.last_step)) return { refused: "reused_code" };
    return { proof: { kind: "totp", step } };
  }

  /** Match a code against a secret not yet confirmed (ConfirmTotp). */
  stepFor(userId: string, sealed: Uint8Array, code: string): number | undefined {
    return matchingStep(this.openSecret(userId, sealed), code, this.clock.now());
  }
}
