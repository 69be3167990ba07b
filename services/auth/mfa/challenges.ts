// Login challenges: the password was right for an account with a confirmed
// second factor, so instead of a session Login hands out a challenge (256
// random bits, stored only as SHA-256) that CompleteLogin redeems with a code.
// Short lived (AUTH_MFA_CHALLENGE_SECONDS), single use, and dead after
// MAX_FAILURES wrong codes, so one password success buys few guesses (every
// guess also counts against the sign-in throttles, login.ts).
import { randomBytes } from "node:crypto";
import type { Kysely, Selectable } from "kysely";
import { withDbRetry } from "../../../platform/db.js";
import type { RequestInfo } from "../audit.js";
import type { Clock } from "../clock.js";
import type { AuthConfig } from "../config.js";
import type { AuthDb, LoginChallengeTable } from "../tables.js";
import { hashToken } from "../tokens.js";
import type { SecondFactorStore, Trx } from "./second-factor-store.js";

/** Wrong codes a challenge survives; the next one is refused as an unknown challenge. */
export const MAX_FAILURES = 5;
/** What CompleteLogin accepts, in SecondFactorChallenge.methods. */
export const METHODS = ["totp", "recovery_code"];
/** Challenges we issue are 43 base64url characters; anything else is not looked up. */
const SHAPE = /^[A-Za-z0-9_-]{43}$/;

/** LoginResponse.second_factor. */
export interface ChallengeIssued {
  challenge: string;
  expiresIn: number;
  methods: string[];
}

export type LoginChallenge = Selectable<LoginChallengeTable>;

export class LoginChallenges {
  constructor(
    private readonly db: Kysely<AuthDb>,
    private readonly factors: SecondFactorStore,
    private readonly cfg: AuthConfig,
    private readonly clock: Clock,
  ) {}

  /** For Accounts.login after the password: a challenge when the account has a confirmed TOTP, else undefined. */
  async issueIfRequired(userId: string, req: RequestInfo): Promise<ChallengeIssued | undefined> {
    const totp = await this.factors.getTotp(userId);
    if (!totp?.confirmed_at) return undefined;
    const challenge = randomBytes(32).toString("base64url");
    const now = this.clock.now();
    await withDbRetry(() =>
      this.db
        .insertInto("auth.login_challenges")
        .values({
          challenge_hash: hashToken(challenge),
          user_id: userId,
          created_at: new Date(now),
          expires_at: new Date(now + this.cfg.mfaChallengeSeconds * 1000),
          used_at: null,
          user_agent: req.userAgent.slice(0, 256),
          ip: req.ip.slice(0, 64),
        })
        .execute(),
    );
    return { challenge, expiresIn: this.cfg.mfaChallengeSeconds, methods: [...METHODS] };
  }

  /** The live challenge (unused, unexpired, failures left) for a token, or undefined. */
  async find(challenge: string): Promise<LoginChallenge | undefined> {
    if (!SHAPE.test(challenge)) return undefined;
    return withDbRetry(() =>
      this.db
        .selectFrom("auth.login_challenges")
        .selectAll()
        .where("challenge_hash", "=", hashToken(challenge))
        .where("used_at", "is", null)
        .where("expires_at", ">", new Date(this.clock.now()))
        .where("failures", "<", MAX_FAILURES)
        .executeTakeFirst(),
    );
  }

  /** One more wrong code against the challenge. */
  async recordFailure(c: LoginChallenge): Promise<void> {
    await withDbRetry(() =>
      this.db
        .updateTable("auth.login_challenges")
        .set((eb) => ({ failures: eb("failures", "+", 1) }))
        .where("challenge_hash", "=", c.challenge_hash)
        .where("used_at", "is", null)
        .execute(),
    );
  }

  /** Redeem, inside the transaction that spends the code: false when it is no longer live (used concurrently, expired, dead). */
  async redeem(trx: Trx, c: LoginChallenge, now: Date): Promise<boolean> {
    const r = await trx
      .updateTable("auth.login_challenges")
      .set({ used_at: now })
      .where("challenge_hash", "=", c.challenge_hash)
      .where("used_at", "is", null)
      .where("expires_at", ">", now)
      .where("failures", "<", MAX_FAILURES)
      .executeTakeFirst();
    return r.numUpdatedRows === 1n;
  }
}
