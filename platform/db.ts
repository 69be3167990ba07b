// Postgres through kysely: `pg` when DATABASE_URL is set, otherwise an
// embedded PGlite persisted under DATA_DIR. One code path for both: the same
// migrations and queries run on either. Each service owns one Postgres schema
// and its migrations (see services/*/migrations.ts).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Kysely, Migrator, PostgresDialect, sql, type Migration, type MigrationProvider } from "kysely";
import pg from "pg";
import { isTransientDbError } from "./errors.js";
import { seedFromTemplate } from "./pglite.js";
import { tracedDialect } from "./telemetry/kysely.js";

export { sql };

export interface Database {
  /** Untyped root handle; services narrow it with `forSchema`. */
  readonly db: Kysely<any>;
  readonly kind: "postgres" | "pglite";
  /** Pool statistics for gauges (zeros for PGlite). */
  poolStats(): { total: number; idle: number; waiting: number };
  close(): Promise<void>;
}

export interface DatabaseOptions {
  url?: string;
  dataDir: string;
  /** Max pool size for pg. */
  max?: number;
}

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  if (opts.url) {
    const pool = new pg.Pool({ connectionString: opts.url, max: opts.max ?? 10 });
    // An idle client error must not crash the process; the pool replaces it.
    pool.on("error", () => {});
    const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
    return {
      db,
      kind: "postgres",
      poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
      close: () => db.destroy(),
    };
  }
  const { PGlite } = await import("@electric-sql/pglite");
  const { PGliteDialect } = await import("kysely-pglite-dialect");
  const dir = join(opts.dataDir, "pglite");
  mkdirSync(opts.dataDir, { recursive: true });
  // A new data dir starts from the install's initdb template when there is one (platform/pglite.ts).
  if (!(await seedFromTemplate(dir))) mkdirSync(dir, { recursive: true });
  const lite = await PGlite.create(dir);
  // PGlite is not pg: its queries get spans from a wrapped dialect.
  const db = new Kysely<any>({ dialect: tracedDialect(new PGliteDialect(lite)) });
  return {
    db,
    kind: "pglite",
    poolStats: () => ({ total: 1, idle: 1, waiting: 0 }),
    close: async () => {
      await db.destroy();
      if (!lite.closed) await lite.close();
    },
  };
}

/** Run a service's migrations inside its own schema (idempotent). */
export async function migrate(db: Kysely<any>, schema: string, migrations: Record<string, Migration>): Promise<void> {
  // Concurrent "create schema if not exists" races in Postgres (unique
  // violation on pg_namespace) when several instances start at once: serialise.
  await db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext(${`migrate:${schema}`}))`.execute(trx);
    await sql`create schema if not exists ${sql.id(schema)}`.execute(trx);
  });
  const provider: MigrationProvider = { getMigrations: async () => migrations };
  const migrator = new Migrator({
    db: db.withSchema(schema),
    provider,
    migrationTableSchema: schema,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName ?? "unknown";
    throw new Error(`migration ${schema}/${failed} failed: ${(error as Error).message}`);
  }
}

/**
 * Retry a database operation on transient errors (connection loss,
 * serialization failure, deadlock) a bounded number of times with a short
 * backoff. Other errors (e.g. unique violations) are thrown at once.
 */
export async function withDbRetry<T>(fn: () => Promise<T>, attempts = 3, baseDelayMs = 20): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts || !isTransientDbError(err)) throw err;
      await new Promise((r) => setTimeout(r, baseDelayMs * 2 ** (i - 1)));
    }
  }
}
