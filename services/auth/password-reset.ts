// Forgotten password: RequestPasswordReset mails a reset_password token
// (account-tokens.ts) to an existing account's address, ResetPassword spends
// it for a new password. The request answers the same for a known and an
// unknown address, in status, body and time: the limits are counted before
// the account is looked up, keyed by a hash of the address, and the unknown
// path waits as long as the known one's writes recently took (pacing.ts, as
// Register does). A reset ends every session: whoever knew the old password
// (or held a stolen refresh token) is out.
import { createHash } from "node:crypto";
import type { Kysely } from "kysely";
import { withDbRetry } from "../../platform/db.js";
import type { KeyValueStore } from "../../platform/kv.js";
import { enqueue } from "../../platform/outbox.js";
import { invalidToken, StaleTokenError, tooSoon, type AccountTokens, type SpentToken } from "./account-tokens.js";
import type { Audit, RequestInfo } from "./audit.js";
import type { Clock } from "./clock.js";
import type { AuthConfig } from "./config.js";
import { passwordResetRequested } from "./events.js";
import type { Lockout } from "./lockout.js";
import { SCHEMA } from "./migrations.js";
import { CreationPace } from "./pacing.js";
import type { PasswordHasher } from "./passwords.js";
import type { Sessions } from "./sessions.js";
import type { AuthStore } from "./store.js";
import type { AuthDb } from "./tables.js";

export const RESET_THROTTLED = "too many password reset requests; try again later";
/** The limits' window: AUTH_RESET_PER_ADDRESS and AUTH_RESET_PER_CLIENT count per hour. */
export const RESET_WINDOW_MS = 3_600_000;

const h = (s: string) => createHash("sha256").update(s, "utf8").digest("hex").slice(0, 40);

export class PasswordReset {
  private readonly pace = new CreationPace();

  constructor(
    private readonly db: Kysely<AuthDb>,
    private readonly store: AuthStore,
    private readonly tokens: AccountTokens,
    private readonly hasher: PasswordHasher,
    private readonly lockout: Lockout,
    private readonly sessions: Sessions,
    private readonly audit: Audit,
    private readonly kv: KeyValueStore,
    private readonly cfg: Pick<AuthConfig, "resetPerAddress" | "resetPerClient">,
    private readonly clock: Clock,
  ) {}

  /** `email` normalised and validated by the caller. Nothing to tell the caller: the mail is the answer. */
  async request(email: string, req: RequestInfo): Promise<void> {
    await this.checkLimits(email, req);
    const account = await this.store.findAccountByEmail(email);
    if (!account) {
      await this.pace.wait();
      await this.audit.record("password_reset_requested", { reason: "unknown address" }, req);
      return;
    }
    const started = performance.now();
    const now = new Date(this.clock.now());
    // The token (earlier unused reset tokens retired) and its event commit together.
    await withDbRetry(() =>
      this.db.transaction().execute(async (trx) => {
        const issued = await this.tokens.issue(trx, account.id, "reset_password", account.email, now);
        await enqueue(trx, SCHEMA, passwordResetRequested({ userId: account.id, email: account.email, ...issued }, now));
      }),
    );
    this.store.outboxCommitted();
    this.pace.observe(performance.now() - started);
    await this.audit.record("password_reset_requested", { userId: account.id }, req);
  }

  /**
   * Fixed-window counters in the KV store (shared by every instance), per
   * address asked for and per client address, each request counted. Over
   * either: RESOURCE_EXHAUSTED until its window ends, whatever the address.
   */
  private async checkLimits(email: string, req: RequestInfo): Promise<void> {
    const keys = [`auth:reset:addr:${h(email)}`, `auth:reset:ip:${h(req.ip)}`];
    const [perAddress, perClient] = await this.kv.incrEach(keys.map((k) => [k, RESET_WINDOW_MS] as const));
    const over = [perAddress > this.cfg.resetPerAddress && keys[0], perClient > this.cfg.resetPerClient && keys[1]].filter((k): k is string => !!k);
    if (over.length === 0) return;
    const ttls = await Promise.all(over.map((k) => this.kv.pttl(k)));
    const waitMs = Math.max(...ttls.map((ms) => (ms > 0 ? ms : RESET_WINDOW_MS)));
    const scope = over.map((k) => (k === keys[0] ? "address" : "client")).join("+");
    await this.audit.record("password_reset_throttled", { reason: scope }, req);
    throw tooSoon(RESET_THROTTLED, waitMs);
  }

  /**
   * Spend a reset token for a new password (validated by the caller). One
   * transaction: the token spent, the hash set (only while the account still
   * has the address the token was mailed to, which is now verified),
   * PasswordChanged via "reset". Then the sign-in throttle of this client for
   * the address is forgotten and every session revoked (refresh tokens with
   * them, access tokens through the revocation list).
   */
  async reset(token: string, newPassword: string, req: RequestInfo): Promise<void> {
    // bcrypt only for a token that is live now (a cheap lookup by hash); spending decides, atomically.
    if (!(await this.tokens.isLive(this.db, token, ["reset_password"], new Date(this.clock.now())))) throw invalidToken();
    const hash = await this.hasher.hash(newPassword);
    const now = new Date(this.clock.now());
    let spent: SpentToken | undefined;
    try {
      spent = await withDbRetry(() =>
        this.db.transaction().execute(async (trx) => {
          const s = await this.tokens.spend(trx, token, ["reset_password"], now);
          if (s && !(await this.store.setPasswordIn(trx, s.userId, hash, now, s.email))) throw new StaleTokenError();
          return s;
        }),
      );
    } catch (err) {
      if (err instanceof StaleTokenError) throw invalidToken();
      throw err;
    }
    if (!spent) throw invalidToken();
    this.store.outboxCommitted();
    await this.lockout.reset(spent.email, req.ip);
    await this.sessions.revoke({ userId: spent.userId }, "password_reset", "password_reset", req, { userId: spent.userId });
  }
}
