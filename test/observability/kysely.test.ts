// PGlite has no pg driver to instrument: tracedDialect gives its queries spans
// (statement text without values, BEGIN/COMMIT/ROLLBACK, errors), as children
// of the active span.
import assert from "node:assert/strict";
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { PGlite } from "@electric-sql/pglite";
import { Kysely, sql } from "kysely";
import { PGliteDialect } from "kysely-pglite-dialect";
import { operationOf, tracedDialect } from "../../platform/telemetry/kysely.js";
import { installMemoryTracing, parentOf, type MemoryTracing } from "./support/memory-otel.js";

describe("observability: PGlite query spans (tracedDialect)", function () {
  let otel: MemoryTracing;
  let lite: PGlite;
  let db: Kysely<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  before(async () => {
    otel = installMemoryTracing();
    lite = await PGlite.create();
    db = new Kysely({ dialect: tracedDialect(new PGliteDialect(lite)) });
    await sql`create table items (id int primary key, secret text)`.execute(db);
  });
  after(async () => {
    await db?.destroy();
    await otel?.uninstall();
  });
  beforeEach(() => otel.reset());

  const inSpan = async (fn: () => Promise<unknown>) => {
    const parent = trace.getTracer("t").startSpan("request");
    await context.with(trace.setSpan(context.active(), parent), fn).catch(() => {});
    parent.end();
    return parent.spanContext().spanId;
  };

  it("names spans like instrumentation-pg, with the parameterised SQL and no values", async () => {
    const parent = await inSpan(() => db.insertInto("items").values({ id: 1, secret: "hunter2" }).execute());
    const [q] = otel.spans().filter((s) => s.name !== "request");
    assert.equal(q.name, "pglite.query:INSERT");
    assert.equal(q.kind, SpanKind.CLIENT);
    assert.equal(parentOf(q), parent);
    assert.equal(q.attributes["db.system.name"], "postgresql");
    assert.equal(q.attributes["db.query.text"], 'insert into "items" ("id", "secret") values ($1, $2)');
    assert.ok(!JSON.stringify(q.attributes).includes("hunter2"));
  });

  it("traces transactions (BEGIN, queries, COMMIT) and failed queries as errors", async () => {
    await inSpan(() =>
      db.transaction().execute(async (trx) => {
        await trx.selectFrom("items").selectAll().execute();
        await trx.updateTable("items").set({ secret: "x" }).where("id", "=", 1).execute();
      }),
    );
    assert.deepEqual(otel.spans().filter((s) => s.name !== "request").map((s) => s.name), ["pglite.query:BEGIN", "pglite.query:SELECT", "pglite.query:UPDATE", "pglite.query:COMMIT"]);
    otel.reset();
    await inSpan(() => db.insertInto("items").values({ id: 1, secret: "dup" }).execute());
    const failed = otel.spans().find((s) => s.name === "pglite.query:INSERT")!;
    assert.equal(failed.status.code, SpanStatusCode.ERROR);
    assert.equal(failed.attributes["db.response.status_code"], "23505");
    assert.ok(failed.events.some((e) => e.name === "exception"));
  });

  it("queues connections as before (the wrapper keeps the driver's serialisation)", async () => {
    await Promise.all(Array.from({ length: 20 }, (_, i) => db.insertInto("items").values({ id: 100 + i, secret: "" }).execute()));
    const n = await db.selectFrom("items").select((eb) => eb.fn.countAll<number>().as("n")).where("id", ">=", 100).executeTakeFirstOrThrow();
    assert.equal(Number(n.n), 20);
  });

  it("reads the operation of a statement", () => {
    assert.equal(operationOf("  select 1"), "SELECT");
    assert.equal(operationOf("/* c */ -- x\n with a as (select 1) select * from a"), "WITH");
    assert.equal(operationOf(""), "unknown");
  });
});
