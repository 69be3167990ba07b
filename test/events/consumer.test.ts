// Idempotent consumers (platform/consumer.ts): the effect and the record of the
// event commit together, so a redelivery changes nothing; a failed effect rolls
// back and is retried; the consumer's span continues the producer's trace.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { SpanKind } from "@opentelemetry/api";
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import type { BusMessage, Delivery } from "../../platform/bus/bus.js";
import { memoryBus } from "../../platform/bus/memory.js";
import { idempotent, processedEventsMigration } from "../../platform/consumer.js";
import { metrics } from "../../platform/telemetry/metrics.js";
import { installMemoryTracing, type MemoryTracing } from "../observability/support/memory-otel.js";
import { freshDatabaseUrl } from "../support/fresh.js";

const SCHEMA = "consumer_test";

describe("idempotent consumers", () => {
  let db: Kysely<any>;
  let otel: MemoryTracing;
  before(async () => {
    otel = installMemoryTracing();
    db = new Kysely({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: await freshDatabaseUrl(), max: 4 }) }) });
    await sql`create schema ${sql.id(SCHEMA)}`.execute(db);
    await processedEventsMigration(SCHEMA).up(db);
    await sql`create table ${sql.table(`${SCHEMA}.effects`)} (event_id text not null, consumer text not null)`.execute(db);
  });
  after(async () => {
    await db?.destroy();
    await otel?.uninstall();
  });

  const effects = async (eventId: string) =>
    Number((await sql<{ n: string }>`select count(*) as n from ${sql.table(`${SCHEMA}.effects`)} where event_id = ${eventId}`.execute(db)).rows[0].n);
  const message = (headers: Record<string, string> = {}): BusMessage => ({
    id: randomUUID(), type: "test.Event", routingKey: "thing.happened", body: new Uint8Array([1]), headers,
  });
  const handlerFor = (consumer: string, fail = 0) => {
    let calls = 0;
    const handler = idempotent({
      db, schema: SCHEMA, consumer,
      async handle(d: Delivery, trx) {
        calls++;
        await sql`insert into ${sql.table(`${SCHEMA}.effects`)} (event_id, consumer) values (${d.message.id}, ${consumer})`.execute(trx);
        if (calls <= fail) throw new Error("transient failure after the effect");
      },
    });
    return { handler, calls: () => calls };
  };

  it("a redelivered event changes nothing: one effect, however often it arrives", async () => {
    const { handler, calls } = handlerFor("once");
    const m = message();
    for (let attempt = 1; attempt <= 3; attempt++) await handler({ message: m, attempt });
    assert.equal(calls(), 1);
    assert.equal(await effects(m.id), 1);
  });

  it("concurrent duplicate deliveries: still one effect", async () => {
    const { handler } = handlerFor("concurrent");
    const m = message();
    await Promise.allSettled(Array.from({ length: 5 }, () => handler({ message: m, attempt: 1 })));
    assert.equal(await effects(m.id), 1);
  });

  it("a failed effect rolls back with its record, is retried by the bus, and commits once", async () => {
    const bus = memoryBus();
    const { handler, calls } = handlerFor("retried", 2);
    await bus.consume({ queue: "retried", exchange: "acme.test", bindings: ["thing.*"], maxAttempts: 5, backoffMs: () => 5 }, handler);
    const m = message();
    await bus.publish("acme.test", m);
    const until = Date.now() + 5000;
    while (calls() < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    await bus.idle();
    assert.equal(calls(), 3, "two failures, then success");
    assert.equal(await effects(m.id), 1, "the failed attempts' effects rolled back");
    assert.equal(bus.deadLetters("retried").length, 0);
    const text = await metrics.render();
    assert.match(text, /acme_events_consumed_total\{outcome="retried",queue="retried"\} 2/);
    assert.match(text, /acme_events_consumed_total\{outcome="ok",queue="retried"\} 1/);
    await bus.close();
  });

  it("one event, two consumers: each processes it once", async () => {
    const a = handlerFor("mail");
    const b = handlerFor("stats");
    const m = message();
    await a.handler({ message: m, attempt: 1 });
    await b.handler({ message: m, attempt: 1 });
    await a.handler({ message: m, attempt: 2 });
    assert.equal(await effects(m.id), 2);
  });

  it("the consumer's span continues the producer's trace (traceparent in the message headers)", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const { handler } = handlerFor("traced");
    const m = message({ traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
    await handler({ message: m, attempt: 1 });
    const span = otel.spans().find((s) => s.name === "traced process");
    assert.ok(span, "a consumer span");
    assert.equal(span.kind, SpanKind.CONSUMER);
    assert.equal(span.spanContext().traceId, traceId);
    assert.equal(span.attributes["messaging.message.id"], m.id);
  });
});
