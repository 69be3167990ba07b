// Postgres through kysely: `pg` when DATABASE_URL is set, otherwise an
// embedded PGlite persisted under DATA_DIR. One code path for both: the same
// migrations and queries run on either. Each service owns one Postgres schema
// and its migrations (see services/*/migrations.ts).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type ColumnType, Kysely, Migrator, PostgresDialect, sql, type Migration, type MigrationProvider } from "kysely";
import pg from "pg";
import { int } from "./config.js";
import { DependencyCircuit } from "./dependency.js";
import { dbUnavailableReason, DependencyUnavailableError, isTransientDbError, POOL_BUSY } from "./errors.js";
import { seedFromTemplate } from "./pglite.js";
import { tracedDialect } from "./telemetry/kysely.js";

export { sql };

export interface Database {
  /** Untyped root handle; services narrow it with `forSchema`. */
  readonly db: Kysely<any>;
  readonly kind: "postgres" | "pglite";
  /** False while Postgres is known down (its circuit open); absent for PGlite. */
  readonly available?: () => boolean;
  /** Pool statistics for gauges (zeros for PGlite). */
  poolStats(): { total: number; idle: number; waiting: number };
  close(): Promise<void>;
}

export interface DatabaseOptions {
  url?: string;
  dataDir: string;
  /** Max pool size for pg. */
  max?: number;
  /** Where DB_* knobs are read (default process.env). */
  env?: Record<string, string | undefined>;
}

/** How long Postgres may take before a request is told UNAVAILABLE (docs/outages.md). */
export interface DbTimeouts {
  /** DB_CONNECT_TIMEOUT_MS: opening a connection, and waiting for a free one in the pool. */
  connectMs: number;
  /** DB_STATEMENT_TIMEOUT_MS: one statement, enforced by the server (statement_timeout) and by the client. */
  statementMs: number;
  /** DB_CIRCUIT_OPEN_MS: after a failed connection, calls fail at once for this long, then one probes. */
  circuitOpenMs: number;
}

export function dbTimeouts(env: Record<string, string | undefined> = process.env): DbTimeouts {
  return {
    connectMs: int(env, "DB_CONNECT_TIMEOUT_MS", 1000, 50, 60_000),
    statementMs: int(env, "DB_STATEMENT_TIMEOUT_MS", 5000, 100, 600_000),
    circuitOpenMs: int(env, "DB_CIRCUIT_OPEN_MS", 1000, 50, 60_000),
  };
}

/**
 * The pg pool as kysely sees it, failing fast while Postgres is down: a
 * connection that cannot be opened (refused, timed out, server starting or
 * shutting down) opens the circuit, and while it is open every query fails at
 * once with DependencyUnavailableError instead of queueing; a query whose
 * connection breaks fails the same way and its client is discarded.
 */
/** pg-pool's error when no client was free within connectionTimeoutMillis. */
const POOL_QUEUE_TIMEOUT = "timeout exceeded when trying to connect";

function guardedPool(pool: pg.Pool, circuit: DependencyCircuit) {
  const fail = (err: unknown): unknown => {
    const reason = dbUnavailableReason(err);
    if (!reason) return err;
    // A statement timeout is one slow query, not the server gone.
    if ((err as { code?: unknown }).code !== "57014") circuit.failed(reason);
    return new DependencyUnavailableError("postgres", reason, { cause: err });
  };
  return {
    async connect() {
      // Every connection busy for DB_CONNECT_TIMEOUT_MS (overload): UNAVAILABLE for this call,
      // but the server answers, so the circuit stays as it is.
      let busy: unknown;
      const acquired = await circuit.run(
        () => pool.connect().catch((err: unknown) => ((err as Error)?.message === POOL_QUEUE_TIMEOUT ? ((busy = err), undefined) : Promise.reject(err))),
        dbUnavailableReason,
      );
      if (!acquired) throw new DependencyUnavailableError("postgres", POOL_BUSY, { cause: busy });
      const client = acquired;
      let broken = false;
      // pg-pool listens for a client's errors only while it is idle: one held between two
      // queries (a transaction waiting on other work) when the server goes away would
      // otherwise emit an unhandled 'error' and end the process.
      const onError = (err: unknown) => {
        broken = true;
        circuit.failed(dbUnavailableReason(err) ?? "connection error");
      };
      client.on("error", onError);
      return {
        query: ((...args: [any, any?]) => {
          const out = client.query(...args);
          // A cursor (kysely's stream) is returned as is.
          if (!(out instanceof Promise)) return out;
          return out.catch((err: unknown) => {
            const mapped = fail(err);
            if (mapped !== err) broken = true;
            throw mapped;
          });
        }) as pg.PoolClient["query"],
        release: () => {
          client.removeListener("error", onError);
          client.release(broken || undefined);
        },
      };
    },
    end: () => pool.end(),
  };
}

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  if (opts.url) {
    const t = dbTimeouts(opts.env);
    const pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.max ?? 10,
      connectionTimeoutMillis: t.connectMs,
      statement_timeout: t.statementMs,
      // The client gives up too when the server does not answer at all (hung, partitioned).
      query_timeout: t.statementMs + t.connectMs,
      keepAlive: true,
    });
    // An idle client error must not crash the process; the pool replaces it.
    pool.on("error", () => {});
    const circuit = new DependencyCircuit({ dependency: "postgres", openMs: t.circuitOpenMs });
    const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: guardedPool(pool, circuit) }) });
    return {
      db,
      kind: "postgres",
      available: () => circuit.up,
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

/** created_at and updated_at as the services' tables keep them: set by the database, updated_at by updates. */
export interface Timestamps {
  created_at: ColumnType<Date, never, never>;
  updated_at: ColumnType<Date, never, Date>;
}
