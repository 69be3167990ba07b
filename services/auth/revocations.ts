// Durable revocations: Postgres is the source of truth, the KV list
// (platform/auth/revocation.ts) is a cache of it that this module rebuilds.
//
// - auth.revoked_sessions gets a row, in the same transaction, whenever a
//   session's revoked_at is set (a trigger, whatever code path revokes); it has
//   no foreign key, so deleting the account (sessions cascade) or cleaning up
//   sessions keeps it. auth.signing_keys.revoked_at marks keys retired for
//   compromise (`npm run admin -- rotate-keys --revoke KID`).
// - On start (before the port opens) the auth service loads every revocation
//   still covering a live token into the KV store and sets the sentinel; every
//   REVOCATION_SYNC_MS it checks the sentinel (missing: a flush or a new store,
//   reload everything) and copies revocations made since its last pass (one
//   whose KV write failed during an outage lands here), and reloads its signing
//   keys when one of them was revoked. docs/revocation.md.
import { randomUUID } from "node:crypto";
import { sql, type Kysely } from "kysely";
import {
  REVOCATION_MARGIN_SECONDS,
  REVOCATIONS_LOADED_KEY,
  revokedKeyKey,
  revokedSessionKey,
} from "../../platform/auth/revocation.js";
import { withDbRetry } from "../../platform/db.js";
import type { KeyValueStore } from "../../platform/kv.js";
import type { Logger } from "../../platform/logger.js";
import type { Clock } from "./clock.js";
import { maxTokenTtlSeconds, type AuthConfig } from "./config.js";
import type { SigningKeys } from "./keys.js";

/** Revocations made up to this long before a pass's start are copied again (commit later than revoked_at). */
const SYNC_SLACK_MS = 10_000;
/** The rebuild marker outlives a slow rebuild. */
const BUILDING_TTL_MS = 60_000;
/** KV writes in flight at once during a rebuild. */
const WRITE_BATCH = 500;
const buildingKey = (id: string) => `auth:revoked:building:${id}`;

interface Entry {
  readonly key: string;
  readonly ttlMs: number;
}

/** How long a revoked session must stay in the list: as long as its access tokens can live. */
export const sessionWindowSeconds = (cfg: AuthConfig) => cfg.accessTtlSeconds + REVOCATION_MARGIN_SECONDS;
/** How long a revoked key must stay in the list: its tokens' lifetime, plus an instance's signing before it reloads. */
export const keyWindowSeconds = (cfg: AuthConfig) => maxTokenTtlSeconds(cfg) + cfg.keyCheckSeconds + REVOCATION_MARGIN_SECONDS;

export class RevocationCache {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  /** Start of the last pass that reached both stores (epoch ms, auth clock). */
  private lastSync = -Infinity;
  /** Full loads done (tests). */
  rebuilds = 0;

  constructor(
    private readonly db: Kysely<any>,
    private readonly kv: KeyValueStore,
    private readonly cfg: AuthConfig,
    private readonly keys: SigningKeys,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly intervalMs: number,
  ) {}

  /**
   * Load every revocation that still matters into the KV store, then set the
   * sentinel. A flush during the load (the marker this pass wrote is gone)
   * starts it again, at most 3 times.
   */
  async rebuild(): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      const started = this.clock.now();
      const marker = buildingKey(randomUUID());
      await this.kv.set(marker, "1", BUILDING_TTL_MS);
      const entries = await this.entries(-Infinity);
      await this.write(entries);
      const generation = `${new Date(started).toISOString()}/${randomUUID()}`;
      if ((await this.kv.get(marker)) === "1") {
        await this.kv.set(REVOCATIONS_LOADED_KEY, generation);
        // Flushed between the check and the set: the sentinel must not stay.
        if ((await this.kv.get(marker)) === "1") {
          await this.kv.del(marker);
          this.lastSync = started;
          this.rebuilds++;
          this.log.info("revocation list loaded", { entries: entries.length, generation });
          return entries.length;
        }
        await this.kv.del(REVOCATIONS_LOADED_KEY);
      }
      if (attempt >= 3) throw new Error("revocation list: the store was flushed during every load");
    }
  }

  /** One pass: reload when the sentinel is missing, else copy recent revocations; reload keys revoked elsewhere. */
  tick(): Promise<void> {
    return (this.running ??= (async () => {
      try {
        if ((await this.kv.get(REVOCATIONS_LOADED_KEY)) === null) {
          this.log.warn("revocation list missing from the store (flushed or new); reloading it from the database");
          await this.rebuild();
        } else {
          const started = this.clock.now();
          await this.write(await this.entries(this.lastSync - SYNC_SLACK_MS));
          this.lastSync = started;
        }
      } finally {
        this.running = undefined;
      }
    })());
  }

  start(): void {
    // One log line when syncing starts failing (a store or the database down) and one when it recovers.
    let failing = false;
    this.timer = setInterval(() => {
      this.tick().then(
        () => failing && ((failing = false), this.log.info("revocation list sync recovered")),
        (err) => !failing && ((failing = true), this.log.warn("revocation list sync failing; retrying every pass", { err })),
      );
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running?.catch(() => {});
  }

  /** KV entries for revocations made since `since` (epoch ms) that still cover live tokens. */
  private async entries(since: number): Promise<Entry[]> {
    const now = this.clock.now();
    const sessionWindow = sessionWindowSeconds(this.cfg) * 1000;
    const keyWindow = keyWindowSeconds(this.cfg) * 1000;
    const from = (window: number) => new Date(Math.max(since, now - window));
    const [sessions, keys] = await withDbRetry(() =>
      Promise.all([
        sql<{ session_id: string; revoked_at: Date }>`
          select session_id, revoked_at from auth.revoked_sessions where revoked_at >= ${from(sessionWindow)}`.execute(this.db),
        sql<{ kid: string; revoked_at: Date }>`
          select kid, revoked_at from auth.signing_keys where revoked_at is not null and revoked_at >= ${from(keyWindow)}`.execute(this.db),
      ]),
    );
    const ttl = (at: Date, window: number) => Math.max(1000, at.getTime() + window - now);
    const out: Entry[] = sessions.rows.map((r) => ({ key: revokedSessionKey(r.session_id), ttlMs: ttl(r.revoked_at, sessionWindow) }));
    for (const r of keys.rows) out.push({ key: revokedKeyKey(r.kid), ttlMs: ttl(r.revoked_at, keyWindow) });
    // A key revoked by another instance or the admin command: stop signing with it and unpublish it here too.
    const mine = new Set(this.keys.schedule().map((k) => k.kid));
    if (keys.rows.some((r) => mine.has(r.kid))) await this.keys.load();
    return out;
  }

  private async write(entries: readonly Entry[]): Promise<void> {
    for (let i = 0; i < entries.length; i += WRITE_BATCH) {
      await Promise.all(entries.slice(i, i + WRITE_BATCH).map((e) => this.kv.set(e.key, "1", e.ttlMs)));
    }
  }
}
