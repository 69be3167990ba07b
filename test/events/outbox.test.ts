// The transactional outbox and its relay (platform/outbox.ts) on the test
// Postgres, with a table of its own (schema "evtest") and the in-process bus:
// rows exist only when their transaction commits; the relay publishes them in
// seq order and marks them sent, keeps them through a bus outage and publishes
// each exactly once after it; two relays on one schema never publish a row
// twice; cleanup removes only old sent rows.
import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { sql, type Kysely } from "kysely";
import type { BusMessage, Publisher } from "../../platform/bus/bus.js";
import { memoryBus, type MemoryBus } from "../../platform/bus/memory.js";
import { migrate, openDatabase, type Database } from "../../platform/db.js";
import { silentLogger } from "../../platform/logger.js";
import { enqueue, notifyRelays, outboxMigration, PublishFailed, startRelay, type OutboxEvent, type Relay } from "../../platform/outbox.js";
import { freshDatabaseUrl } from "../support/fresh.js";

const SCHEMA = "evtest";
const EXCHANGE = "acme.test";

const event = (aggregateId: string = randomUUID(), n = 0): OutboxEvent => ({
  id: randomUUID(),
  type: "acme.events.v1.Test",
  routingKey: "test.happened",
  aggregateId,
  body: new Uint8Array([n & 0xff, 0, 255]),
  headers: { traceparent: `00-${"a".repeat(32)}-${"b".repeat(16)}-01` },
});

/** Everything published on EXCHANGE, in delivery order. */
async function collect(bus: MemoryBus): Promise<BusMessage[]> {
  const got: BusMessage[] = [];
  await bus.consume({ queue: `collect-${randomUUID()}`, exchange: EXCHANGE, bindings: ["#"], maxAttempts: 1, backoffMs: () => 0 }, async (d) => {
    got.push(d.message);
  });
  return got;
}

async function eventually(what: string, fn: () => Promise<boolean> | boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const countById = (msgs: BusMessage[]) => msgs.reduce((m, x) => m.set(x.id, (m.get(x.id) ?? 0) + 1), new Map<string, number>());

describe("events: the transactional outbox and its relay", function () {
  let database: Database;
  let db: Kysely<any>;
  let dataDir: string;
  const relays: Relay[] = [];
  const buses: MemoryBus[] = [];

  const newBus = () => {
    const b = memoryBus();
    buses.push(b);
    return b;
  };
  const relay = (bus: Publisher, over: Partial<Parameters<typeof startRelay>[0]> = {}) => {
    const r = startRelay({ db, schema: SCHEMA, bus, exchange: EXCHANGE, log: silentLogger, batchSize: 10, intervalMs: 60_000, ...over });
    relays.push(r);
    return r;
  };
  /** Write events, each in a transaction of its own (as services do). */
  const write = async (events: OutboxEvent[]) => {
    for (const e of events) await db.transaction().execute((trx) => enqueue(trx, SCHEMA, e));
  };
  const rows = () =>
    sql<{ seq: string; event_id: string; sent_at: Date | null }>`select seq, event_id, sent_at from evtest.outbox order by seq`.execute(db).then((r) => r.rows);

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "acme-outbox-"));
    database = await openDatabase({ url: await freshDatabaseUrl(), dataDir });
    db = database.db;
    await migrate(db, SCHEMA, { "001_outbox": outboxMigration(SCHEMA) });
  });
  afterEach(async () => {
    await Promise.all(relays.splice(0).map((r) => r.stop()));
    await Promise.all(buses.splice(0).map((b) => b.close()));
    await sql`truncate evtest.outbox`.execute(db);
  });
  after(async () => {
    await database?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("keeps a row only when its transaction commits, and refuses an enqueue outside a transaction", async () => {
    const kept = event();
    const dropped = event();
    await assert.rejects(
      db.transaction().execute(async (trx) => {
        await enqueue(trx, SCHEMA, dropped);
        throw new Error("the change failed");
      }),
      /the change failed/,
    );
    await write([kept]);
    assert.deepEqual((await rows()).map((r) => r.event_id), [kept.id]);
    await assert.rejects(enqueue(db as never, SCHEMA, event()), /inside the caller's transaction/);
    const [stored] = (await sql<{ body: Uint8Array; headers: Record<string, string>; sent_at: Date | null }>`select body, headers, sent_at from evtest.outbox`.execute(db)).rows;
    assert.deepEqual(new Uint8Array(stored.body), kept.body);
    assert.deepEqual(stored.headers, kept.headers);
    assert.equal(stored.sent_at, null);
  });

  it("publishes unsent rows in seq order with their id, type, routing key, body and headers, marks them sent, and lag drops to 0", async () => {
    const bus = newBus();
    const got = await collect(bus);
    const events = Array.from({ length: 25 }, (_, i) => event(`agg-${i % 3}`, i));
    await write(events);
    const r = relay(bus, { intervalMs: 60_000 });
    // The first tick may have started already: flush serialises with it.
    await r.flush();
    await bus.idle();
    assert.deepEqual(got.map((m) => m.id), events.map((e) => e.id));
    assert.deepEqual(
      got.map((m) => [m.type, m.routingKey, [...m.body], m.headers]),
      events.map((e) => [e.type, e.routingKey, [...e.body], e.headers]),
    );
    assert.ok((await rows()).every((x) => x.sent_at !== null));
    assert.equal(await r.lagMs(), 0);
  });

  it("keeps rows unsent while the bus is down, then publishes every one exactly once, in order, when it is back", async () => {
    const bus = newBus();
    const got = await collect(bus);
    bus.down(true);
    const r = relay(bus, { intervalMs: 20, maxBackoffMs: 40 });
    const events = Array.from({ length: 30 }, (_, i) => event(`agg-${i % 4}`, i));
    await write(events.slice(0, 15));
    notifyRelays(db, SCHEMA);
    await assert.rejects(r.flush(), PublishFailed);
    await write(events.slice(15));
    // Several retry rounds pass while down: nothing is marked sent.
    await new Promise((res) => setTimeout(res, 150));
    assert.equal((await rows()).filter((x) => x.sent_at !== null).length, 0);
    assert.ok((await r.lagMs()) >= 100, "lag reports the oldest unsent row");
    bus.down(false);
    await eventually("every row sent", async () => (await rows()).every((x) => x.sent_at !== null));
    await bus.idle();
    const counts = countById(got);
    assert.equal(counts.size, events.length, "none lost");
    assert.ok([...counts.values()].every((n) => n === 1), "none twice");
    assert.deepEqual(got.map((m) => m.id), events.map((e) => e.id), "in seq order");
  });

  it("stops a batch at a refused publish and resumes at that row, keeping the order", async () => {
    const bus = newBus();
    const got = await collect(bus);
    let calls = 0;
    // Refuses the 4th publish once.
    const flaky: Publisher = { publish: (x, m) => (++calls === 4 ? Promise.reject(new Error("nack")) : bus.publish(x, m)) };
    const events = Array.from({ length: 8 }, (_, i) => event("one-aggregate", i));
    await write(events);
    const r = relay(flaky);
    await r.flush().catch((err) => assert.ok(err instanceof PublishFailed, String(err)));
    await r.flush();
    await bus.idle();
    assert.deepEqual(got.map((m) => m.id), events.map((e) => e.id));
  });

  it("wakes a running relay at notifyRelays instead of waiting for its next poll", async () => {
    const bus = newBus();
    const got = await collect(bus);
    relay(bus, { intervalMs: 60_000 });
    await new Promise((res) => setTimeout(res, 50)); // the first (empty) tick is over
    const e = event();
    await write([e]);
    notifyRelays(db, SCHEMA);
    await eventually("the event published", () => got.length === 1, 2000);
    assert.equal(got[0].id, e.id);
  });

  it("two relays on one schema never publish the same row twice (advisory lock)", async () => {
    const bus = newBus();
    const got = await collect(bus);
    // A slow broker: a batch takes long enough for the other relay to try meanwhile.
    const slow: Publisher = { publish: async (x, m) => (await new Promise((res) => setTimeout(res, 2)), bus.publish(x, m)) };
    const events = Array.from({ length: 60 }, (_, i) => event(`agg-${i % 5}`, i));
    await write(events);
    const a = relay(slow, { intervalMs: 5 });
    const b = relay(slow, { intervalMs: 5 });
    await Promise.all([a.flush(), b.flush(), a.flush(), b.flush()]);
    await eventually("every row sent", async () => (await rows()).every((x) => x.sent_at !== null));
    await bus.idle();
    const counts = countById(got);
    assert.equal(counts.size, events.length);
    assert.deepEqual([...counts.entries()].filter(([, n]) => n > 1), []);
    assert.deepEqual(got.map((m) => m.id), events.map((e) => e.id));
  });

  it("cleanup deletes sent rows older than cleanupAfterMs, and nothing else", async () => {
    const [oldSent, newSent, oldUnsent] = [event(), event(), event()];
    await write([oldSent, newSent, oldUnsent]);
    await sql`update evtest.outbox set sent_at = now() - interval '2 hours' where event_id = ${oldSent.id}`.execute(db);
    await sql`update evtest.outbox set sent_at = now() - interval '10 minutes' where event_id = ${newSent.id}`.execute(db);
    await sql`update evtest.outbox set created_at = now() - interval '3 hours' where event_id = ${oldUnsent.id}`.execute(db);
    // A bus that is down: the relay publishes nothing during the test.
    const bus = newBus();
    bus.down(true);
    const r = relay(bus, { cleanupAfterMs: 3_600_000 });
    assert.equal(await r.cleanup(), 1);
    assert.deepEqual((await rows()).map((x) => x.event_id).sort(), [newSent.id, oldUnsent.id].sort());
    assert.equal(await r.cleanup(), 0);
    assert.ok((await r.lagMs()) >= 3 * 3_600_000 - 60_000);
  });
});
