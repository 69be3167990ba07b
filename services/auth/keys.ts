// ES256 signing keys: stored in auth.signing_keys with the private key sealed
// by AES-256-GCM under secrets.keyEncryptionKey, rotated on a schedule or by
// command. Life of a key: created and published in the JWKS at once, signs
// from `activates_at` (publish-ahead later, so cached JWKS copies learn it
// first) until its successor activates (`retires_at`), and stays published
// until every token it signed has expired (`expires_at`); or, revoked for
// compromise (`revoke`, revoked_at), unpublished and refused at once
// (docs/revocation.md). Schedule changes run
// under a transaction-scoped advisory lock, so instances starting together
// create one key, not several. Also the in-process KeySource for verifiers.
// The material of one key (generation, sealing, JWK) is key-material.ts.
import type { KeyObject } from "node:crypto";
import { sql, type Kysely } from "kysely";
import type { Jwk, KeySource } from "../../platform/auth/keys.js";
import { withDbRetry } from "../../platform/db.js";
import type { Logger } from "../../platform/logger.js";
import type { Clock } from "./clock.js";
import { maxTokenTtlSeconds, type AuthConfig } from "./config.js";
import { newKeyRow, openKeyRow, withSchedule, type KeyRow, type SigningKey } from "./key-material.js";
import type { AuthDb } from "./tables.js";

export type { SigningKey } from "./key-material.js";

/** Clock skew allowed by verifiers (platform/auth/verifier.ts uses 30 s). */
const SKEW_MARGIN_MS = 60_000;
/** Unknown kids reload from the database at most this often. */
const MIN_RELOAD_MS = 2_000;

/** `revoke` of a kid that is not a published key. */
export class UnknownKeyError extends Error {
  constructor(readonly kid: string) {
    super(`no published signing key with kid ${kid}`);
  }
}

export class SigningKeys implements KeySource {
  private keys = new Map<string, SigningKey>();
  private lastLoad = -Infinity;
  private loading?: Promise<void>;
  /** Database reloads so far (tests check the unknown-kid rate limit). */
  loads = 0;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly db: Kysely<AuthDb>,
    private readonly kek: Buffer,
    private readonly cfg: AuthConfig,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  // ---- KeySource (verifiers in this process)

  async get(kid: string): Promise<KeyObject | undefined> {
    const k = this.keys.get(kid);
    if (k) return this.published(k) ? k.publicKey : undefined;
    try {
      if (this.clock.now() - this.lastLoad >= MIN_RELOAD_MS) await this.load();
      else if (this.loading) await this.loading;
    } catch (err) {
      // The database is unreachable: the kid stays unknown (the token is refused), the keys we have still work.
      this.log.warn("signing keys could not be reloaded", { err });
    }
    const again = this.keys.get(kid);
    return again && this.published(again) ? again.publicKey : undefined;
  }

  // ---- signing and publishing

  /** The key that signs now: the latest activated one that has not retired. */
  current(): SigningKey {
    const now = this.clock.now();
    let best: SigningKey | undefined;
    for (const k of this.keys.values()) {
      const live = k.activatesAt <= now && (k.retiresAt === undefined || k.retiresAt > now) && this.published(k);
      if (k.privateKey && live && (!best || k.activatesAt > best.activatesAt)) best = k;
    }
    if (!best) throw new Error("no usable signing key: not loaded, or sealed under another KEY_ENCRYPTION_KEY (run `npm run admin -- rotate-keys --immediate`)");
    return best;
  }

  /** The JSON Web Key Set: every published key, the next one included. */
  jwks(): { keys: Jwk[] } {
    const keys = [...this.keys.values()].filter((k) => this.published(k)).sort((a, b) => a.activatesAt - b.activatesAt);
    return { keys: keys.map((k) => k.jwk) };
  }

  /** Kids and schedule, for the admin command and tests (no key material). */
  schedule() {
    return [...this.keys.values()]
      .sort((a, b) => a.activatesAt - b.activatesAt)
      .map((k) => ({ kid: k.kid, activatesAt: k.activatesAt, retiresAt: k.retiresAt, expiresAt: k.expiresAt }));
  }

  // ---- schedule

  /** First key, scheduled rotation, chain bookkeeping; then reload. Safe to run on every instance at once. */
  async maintain(): Promise<void> {
    await this.locked(async (trx, rows, now) => {
      const active = rows.filter((r) => r.activates_at.getTime() <= now.getTime());
      const pending = rows.filter((r) => r.activates_at.getTime() > now.getTime());
      const current = active.at(-1);
      if (!current) {
        if (pending.length) await this.activate(trx, pending[0].kid, now);
        else await this.insert(trx, now);
        return;
      }
      const due = current.activates_at.getTime() + (this.cfg.keyRotationSeconds - this.cfg.keyPublishAheadSeconds) * 1000;
      if (!pending.length && now.getTime() >= due) {
        await this.insert(trx, new Date(now.getTime() + this.cfg.keyPublishAheadSeconds * 1000));
      }
    });
  }

  /**
   * Rotate now: publish a new key that signs after the publish-ahead time
   * (no-op when one is already pending), or with `immediate` sign with it at
   * once (a pending key is activated rather than a new one made). Returns the
   * kid of the key that will sign next.
   */
  async rotate(opts: { immediate?: boolean } = {}): Promise<string> {
    let kid = "";
    await this.locked(async (trx, rows, now) => {
      const pending = rows.filter((r) => r.activates_at.getTime() > now.getTime());
      if (pending.length) {
        kid = pending[0].kid;
        if (opts.immediate) await this.activate(trx, kid, now);
        return;
      }
      const at = opts.immediate ? now : new Date(now.getTime() + this.cfg.keyPublishAheadSeconds * 1000);
      kid = await this.insert(trx, at);
    });
    this.log.info("signing key rotation scheduled", { kid, immediate: opts.immediate === true });
    return kid;
  }

  /**
   * Retire a key at once, for compromise: it is unpublished (gone from the
   * JWKS at this instance's reload, other instances' next revocation sync) and
   * never signs again, and revoked_at records it for the revocation list
   * (services/auth/revocations.ts), so tokens it signed are refused even by
   * verifiers holding an older JWKS copy. When it was the signing key, the
   * pending key (or a new one) signs from now. Returns the kid that signs now.
   */
  async revoke(kid: string): Promise<string> {
    await this.locked(async (trx, rows, now) => {
      if (!rows.some((r) => r.kid === kid)) throw new UnknownKeyError(kid);
      const active = rows.filter((r) => r.activates_at.getTime() <= now.getTime());
      const wasSigning = active.at(-1)?.kid === kid;
      await sql`update auth.signing_keys set revoked_at = ${now}, retires_at = ${now}, expires_at = ${now} where kid = ${kid}`.execute(trx);
      if (!wasSigning) return;
      const pending = rows.filter((r) => r.kid !== kid && r.activates_at.getTime() > now.getTime());
      if (pending.length) await this.activate(trx, pending[0].kid, now);
      else await this.insert(trx, now);
    });
    const signing = this.canSign() ? this.current().kid : "";
    this.log.warn("signing key revoked", { kid, signing });
    return signing;
  }

  /** Reload the published keys from the database (single flight). */
  load(): Promise<void> {
    return (this.loading ??= (async () => {
      try {
        this.loads++;
        const now = new Date(this.clock.now());
        const rows = await withDbRetry(() =>
          this.db
            .selectFrom("auth.signing_keys")
            .selectAll()
            .where((eb) => eb.or([eb("expires_at", "is", null), eb("expires_at", ">", now)]))
            .orderBy("activates_at")
            .execute(),
        );
        const opened = await Promise.all(rows.map((r) => this.keys.get(r.kid) ?? openKeyRow(this.kek, r, this.log)));
        this.keys = new Map(rows.map((r, i) => [r.kid, withSchedule(opened[i], r)]));
      } finally {
        this.lastLoad = this.clock.now();
        this.loading = undefined;
      }
    })());
  }

  start(): void {
    this.timer = setInterval(() => {
      this.maintain().catch((err) => this.log.error("signing key maintenance failed", { err }));
    }, this.cfg.keyCheckSeconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  // ---- internals

  private published(k: SigningKey): boolean {
    return k.expiresAt === undefined || k.expiresAt > this.clock.now();
  }

  /** True when a key that can sign is active now (after load). */
  canSign(): boolean {
    try {
      this.current();
      return true;
    } catch {
      return false;
    }
  }

  private async insert(trx: Kysely<AuthDb>, activatesAt: Date): Promise<string> {
    const row = await newKeyRow(this.kek, activatesAt);
    await trx.insertInto("auth.signing_keys").values(row).execute();
    return row.kid;
  }

  private async activate(trx: Kysely<AuthDb>, kid: string, now: Date): Promise<void> {
    await trx.updateTable("auth.signing_keys").set({ activates_at: now }).where("kid", "=", kid).execute();
  }

  /**
   * Run a schedule change under the advisory lock with the live keys, then
   * recompute each key's retirement from its successor and reload.
   */
  private async locked(fn: (trx: Kysely<AuthDb>, rows: KeyRow[], now: Date) => Promise<void>): Promise<void> {
    // A retired key stays published for the longest token lifetime, plus the time an
    // instance may keep signing with it before its next reload, plus clock skew.
    const ttlMs = (maxTokenTtlSeconds(this.cfg) + this.cfg.keyCheckSeconds) * 1000 + SKEW_MARGIN_MS;
    await withDbRetry(() =>
      this.db.transaction().execute(async (trx) => {
        await sql`select pg_advisory_xact_lock(hashtext('acme.auth.signing_keys'))`.execute(trx);
        const now = new Date(this.clock.now());
        const live = () =>
          trx
            .selectFrom("auth.signing_keys")
            .selectAll()
            .where((eb) => eb.or([eb("expires_at", "is", null), eb("expires_at", ">", now)]))
            .orderBy("activates_at")
            .orderBy("kid")
            .execute();
        await fn(trx, await live(), now);
        const rows = await live();
        for (let i = 0; i < rows.length; i++) {
          const succ = rows[i + 1];
          const retires = succ ? succ.activates_at : null;
          const expires = retires ? new Date(retires.getTime() + ttlMs) : null;
          if (rows[i].retires_at?.getTime() !== retires?.getTime() || rows[i].expires_at?.getTime() !== expires?.getTime()) {
            await trx
              .updateTable("auth.signing_keys")
              .set({ retires_at: retires, expires_at: expires })
              .where("kid", "=", rows[i].kid)
              .execute();
          }
        }
      }),
    );
    await this.load();
  }
}
