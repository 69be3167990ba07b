// Spans for queries that no instrumentation sees: PGlite runs Postgres in
// process (wasm), so @opentelemetry/instrumentation-pg has nothing to patch.
// `tracedDialect` wraps any kysely dialect's driver so every executed query
// (and BEGIN/COMMIT/ROLLBACK) gets a CLIENT span named like the pg
// instrumentation's ("pglite.query:SELECT"), with the parameterised SQL text
// (never the parameter values).
//
//   new Kysely({ dialect: tracedDialect(new PGliteDialect(lite), { system: "postgresql", prefix: "pglite.query" }) })
//
// Do not wrap the pg dialect: instrumentation-pg already traces it.
import { SpanKind, SpanStatusCode, trace, context } from "@opentelemetry/api";
import type { CompiledQuery, DatabaseConnection, Dialect, Driver, QueryResult, TransactionSettings } from "kysely";

export interface TracedDialectOptions {
  /** db.system(.name), default "postgresql". */
  system?: string;
  /** Span name prefix, default "pglite.query". */
  prefix?: string;
  /** db.namespace (database name), if meaningful. */
  namespace?: string;
  /** Longest db.query.text kept (default 2048 characters). */
  maxQueryText?: number;
}

/** "select ..." -> "SELECT"; the first keyword, as instrumentation-pg names its spans. */
export function operationOf(sqlText: string): string {
  const m = /^\s*(?:\/\*[\s\S]*?\*\/\s*|--[^\n]*\n\s*)*([A-Za-z]+)/.exec(sqlText);
  return m ? m[1].toUpperCase() : "unknown";
}

export function tracedDialect(inner: Dialect, opts: TracedDialectOptions = {}): Dialect {
  return {
    createAdapter: () => inner.createAdapter(),
    createDriver: () => tracedDriver(inner.createDriver(), opts),
    createIntrospector: (db) => inner.createIntrospector(db),
    createQueryCompiler: () => inner.createQueryCompiler(),
  };
}

function tracedDriver(driver: Driver, opts: TracedDialectOptions): Driver {
  const system = opts.system ?? "postgresql";
  const prefix = opts.prefix ?? "pglite.query";
  const max = opts.maxQueryText ?? 2048;
  const tracer = () => trace.getTracer("acme.db");
  const originals = new WeakMap<DatabaseConnection, DatabaseConnection>();

  const run = async <R>(sqlText: string, fn: () => Promise<R>): Promise<R> => {
    const op = operationOf(sqlText);
    const span = tracer().startSpan(`${prefix}:${op}${opts.namespace ? ` ${opts.namespace}` : ""}`, {
      kind: SpanKind.CLIENT,
      attributes: {
        "db.system": system,
        "db.system.name": system,
        "db.operation.name": op,
        "db.query.text": sqlText.length > max ? sqlText.slice(0, max) : sqlText,
        "db.statement": sqlText.length > max ? sqlText.slice(0, max) : sqlText,
        ...(opts.namespace ? { "db.namespace": opts.namespace, "db.name": opts.namespace } : {}),
      },
    });
    try {
      return await context.with(trace.setSpan(context.active(), span), fn);
    } catch (err) {
      const e = err as { code?: unknown; message?: unknown };
      if (typeof e?.code === "string") span.setAttribute("db.response.status_code", e.code);
      span.recordException(err instanceof Error ? err : String(err));
      span.setStatus({ code: SpanStatusCode.ERROR, message: typeof e?.message === "string" ? e.message : undefined });
      throw err;
    } finally {
      span.end();
    }
  };

  const wrap = (conn: DatabaseConnection): DatabaseConnection => {
    const wrapped: DatabaseConnection = {
      executeQuery: <R>(q: CompiledQuery): Promise<QueryResult<R>> => run(q.sql, () => conn.executeQuery<R>(q)),
      streamQuery: <R>(q: CompiledQuery, chunkSize?: number) => conn.streamQuery<R>(q, chunkSize),
    };
    originals.set(wrapped, conn);
    return wrapped;
  };
  const orig = (c: DatabaseConnection) => originals.get(c) ?? c;

  return {
    init: () => driver.init(),
    acquireConnection: async () => wrap(await driver.acquireConnection()),
    // Transactions are run through the wrapped connection, so BEGIN/COMMIT/ROLLBACK get spans.
    beginTransaction: (c, settings: TransactionSettings) => driver.beginTransaction(c, settings),
    commitTransaction: (c) => driver.commitTransaction(c),
    rollbackTransaction: (c) => driver.rollbackTransaction(c),
    savepoint: driver.savepoint && ((c, name, compile) => driver.savepoint!(c, name, compile)),
    rollbackToSavepoint: driver.rollbackToSavepoint && ((c, name, compile) => driver.rollbackToSavepoint!(c, name, compile)),
    releaseSavepoint: driver.releaseSavepoint && ((c, name, compile) => driver.releaseSavepoint!(c, name, compile)),
    releaseConnection: (c) => driver.releaseConnection(orig(c)),
    destroy: () => driver.destroy(),
  };
}
