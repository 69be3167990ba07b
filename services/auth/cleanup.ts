// Background cleanup of expired sessions, refresh tokens and signing keys, in
// bounded batches. Safe on several instances at once: each batch locks its
// rows with FOR UPDATE SKIP LOCKED, so instances share the work instead of
// waiting on each other. Lockout and revocation state lives in the KV store
// with a TTL on every key and expires there without help; the durable
// revocations (auth.revoked_sessions) go once no token they cover can live.
import { sql, type Kysely } from "kysely";
import { withDbRetry } from "../../platform/db.js";
import type { Logger } from "../../platform/logger.js";
import type { Clock } from "./clock.js";
import type { AuthConfig } from "./config.js";
import { sessionWindowSeconds } from "./revocations.js";
import type { AuthDb } from "./tables.js";

const BATCH = 500;
/** Batches per table per run, so one run stays short; the next run continues. */
const MAX_BATCHES = 20;
/** Keep expired signing keys' rows a day for forensics (they are no longer published). */
const KEY_GRACE_MS = 86_400_000;

export interface CleanupResult {
  refreshTokens: number;
  sessions: number;
  signingKeys: number;
}

export class Cleanup {
  private timer?: NodeJS.Timeout;
  private running?: Promise<CleanupResult>;

  constructor(
    private readonly db: Kysely<AuthDb>,
    private readonly cfg: AuthConfig,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  runOnce(): Promise<CleanupResult> {
    return (this.running ??= this.run().finally(() => (this.running = undefined)));
  }

  start(): void {
    this.timer = setInterval(() => {
      this.runOnce().then(
        (r) => (r.refreshTokens || r.sessions || r.signingKeys) && this.log.info("auth cleanup", { ...r }),
        (err) => this.log.error("auth cleanup failed", { err }),
      );
    }, this.cfg.cleanupIntervalSeconds * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running?.catch(() => {});
  }

  private async run(): Promise<CleanupResult> {
    const now = new Date(this.clock.now());
    const revokedBefore = new Date(now.getTime() - this.cfg.revokedRetentionSeconds * 1000);
    const keysBefore = new Date(now.getTime() - KEY_GRACE_MS);
    const refreshTokens = await this.batched(() =>
      this.db
        .deleteFrom("auth.refresh_tokens")
        .where("token_hash", "in", (eb) =>
          eb.selectFrom("auth.refresh_tokens").select("token_hash").where("expires_at", "<=", now).limit(BATCH).forUpdate().skipLocked(),
        )
        .executeTakeFirst(),
    );
    // Sessions past their absolute lifetime, and sessions revoked longer ago than the retention
    // (their refresh tokens go with them, by the foreign key).
    const expired = await this.batched(() =>
      this.db
        .deleteFrom("auth.sessions")
        .where("id", "in", (eb) => eb.selectFrom("auth.sessions").select("id").where("expires_at", "<=", now).limit(BATCH).forUpdate().skipLocked())
        .executeTakeFirst(),
    );
    const revoked = await this.batched(() =>
      this.db
        .deleteFrom("auth.sessions")
        .where("id", "in", (eb) =>
          eb.selectFrom("auth.sessions").select("id").where("revoked_at", "<=", revokedBefore).limit(BATCH).forUpdate().skipLocked(),
        )
        .executeTakeFirst(),
    );
    const signingKeys = await this.batched(() =>
      this.db.deleteFrom("auth.signing_keys").where("expires_at", "<=", keysBefore).executeTakeFirst(),
    );
    // Durable revocations older than any access token they could cover (plus an hour's grace).
    const revocationsBefore = new Date(now.getTime() - (sessionWindowSeconds(this.cfg) + 3600) * 1000);
    const revocations = await this.batched(async () => {
      const r = await sql`
        delete from auth.revoked_sessions where session_id in (
          select session_id from auth.revoked_sessions where revoked_at <= ${revocationsBefore} limit ${BATCH} for update skip locked)`.execute(this.db);
      return { numDeletedRows: r.numAffectedRows ?? 0n };
    });
    if (revocations) this.log.info("auth cleanup: expired revocations", { revocations });
    // Mailed tokens (account-tokens.ts) past their expiry, and spent or retired ones once the
    // resend limits no longer count them (they are decided from the newest token's created_at).
    const usedBefore = new Date(now.getTime() - Math.max(3600, this.cfg.verifyResendSeconds) * 1000);
    const accountTokens = await this.batched(() =>
      this.db
        .deleteFrom("auth.account_tokens")
        .where("token_hash", "in", (eb) =>
          eb
            .selectFrom("auth.account_tokens")
            .select("token_hash")
            .where((w) => w.or([w("expires_at", "<=", now), w("used_at", "<=", usedBefore)]))
            .limit(BATCH)
            .forUpdate()
            .skipLocked(),
        )
        .executeTakeFirst(),
    );
    if (accountTokens) this.log.info("auth cleanup: expired or used account tokens", { accountTokens });
    // Second-factor login challenges past their lifetime (used ones too: they expire minutes later),
    // and TOTP enrolments never confirmed in time (mfa/): their sealed secrets serve nobody.
    const loginChallenges = await this.batched(() =>
      this.db
        .deleteFrom("auth.login_challenges")
        .where("challenge_hash", "in", (eb) =>
          eb.selectFrom("auth.login_challenges").select("challenge_hash").where("expires_at", "<=", now).limit(BATCH).forUpdate().skipLocked(),
        )
        .executeTakeFirst(),
    );
    const pendingBefore = new Date(now.getTime() - this.cfg.totpEnrollSeconds * 1000);
    const pendingTotp = await this.batched(() =>
      this.db.deleteFrom("auth.totp").where("confirmed_at", "is", null).where("created_at", "<=", pendingBefore).executeTakeFirst(),
    );
    if (loginChallenges || pendingTotp) this.log.info("auth cleanup: second factor", { loginChallenges, pendingTotp });
    return { refreshTokens, sessions: expired + revoked, signingKeys };
  }

  private async batched(del: () => Promise<{ numDeletedRows: bigint }>): Promise<number> {
    let total = 0;
    for (let i = 0; i < MAX_BATCHES; i++) {
      const n = Number((await withDbRetry(del)).numDeletedRows);
      total += n;
      if (n < BATCH) break;
    }
    return total;
  }
}
