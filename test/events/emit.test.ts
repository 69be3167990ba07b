// The first events, written through the outbox in the transaction of the
// change: UserRegistered when Register creates an account (auth.outbox),
// OrderCreated when CreateOrder inserts an order (orders.outbox). Through the
// whole product on the test Postgres; the system's relays publish them to the
// in-process bus the test gives it.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { fromBinary } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { sql, type Kysely } from "kysely";
import { AuthService } from "../../gen/acme/auth/v1/auth_pb.js";
import { EnvelopeSchema, type Envelope } from "../../gen/acme/events/v1/events_pb.js";
import { OrderStatus } from "../../gen/acme/order/v1/order_pb.js";
import type { BusMessage } from "../../platform/bus/bus.js";
import { memoryBus, type MemoryBus } from "../../platform/bus/memory.js";
import { metrics } from "../../platform/telemetry/metrics.js";
import { OUTBOX as AUTH_OUTBOX, userRegistered } from "../../services/auth/events.js";
import { AuthStore } from "../../services/auth/store.js";
import { OUTBOX as ORDER_OUTBOX } from "../../services/order/events.js";
import { installMemoryTracing, type MemoryTracing } from "../observability/support/memory-otel.js";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { signUp, PASSWORD } from "../user/helpers.js";
import { linesOf } from "../support/products.js";

interface Row {
  seq: string;
  event_id: string;
  aggregate_id: string;
  type: string;
  routing_key: string;
  body: Uint8Array;
  headers: Record<string, string>;
  sent_at: Date | null;
}

const outboxRows = async (db: Kysely<any>, schema: string, aggregateId?: string): Promise<Row[]> =>
  (
    await sql<Row>`select * from ${sql.table(`${schema}.outbox`)}
      where ${aggregateId === undefined ? sql`true` : sql`aggregate_id = ${aggregateId}`} order by seq`.execute(db)
  ).rows;

const decode = (body: Uint8Array): Envelope => fromBinary(EnvelopeSchema, new Uint8Array(body));

async function accountId(t: TestSystem, email: string): Promise<string> {
  const { rows } = await sql<{ id: string }>`select id from auth.accounts where email = ${email}`.execute(t.system.db.db);
  assert.equal(rows.length, 1, `one account for ${email}`);
  return rows[0].id;
}

async function eventually(what: string, fn: () => Promise<boolean> | boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function collect(bus: MemoryBus, exchange: string): Promise<BusMessage[]> {
  const got: BusMessage[] = [];
  await bus.consume({ queue: `collect-${exchange}`, exchange, bindings: ["#"], maxAttempts: 1, backoffMs: () => 0 }, async (d) => {
    got.push(d.message);
  });
  return got;
}

describe("events: UserRegistered and OrderCreated through the outbox", function () {
  let t: TestSystem;
  let db: Kysely<any>;
  let bus: MemoryBus;
  before(async () => {
    bus = memoryBus();
    // Polls far apart (a commit wakes the relay); short backoff while the bus is down.
    t = await startTestSystem({ edge: false, bus, env: { ORDER_SWEEP_INTERVAL_MS: "0", OUTBOX_POLL_MS: "60000", OUTBOX_MAX_BACKOFF_MS: "50" } });
    db = t.system.db.db;
  });
  after(async () => t?.stop());

  it("Register writes one UserRegistered row with the account: user id and email, no password; a taken email writes none", async () => {
    const email = `ev-${randomUUID()}@example.com`;
    const before = Date.now();
    await t.auth().register({ email, password: PASSWORD, name: "Eve" });
    const id = await accountId(t, email);
    const all = await outboxRows(db, "auth", id);
    // With it, in the same transaction, the verification mail's EmailVerificationRequested (issue 18).
    assert.deepEqual(all.map((r) => r.type).sort(), ["acme.events.v1.EmailVerificationRequested", "acme.events.v1.UserRegistered"]);
    const rows = all.filter((r) => r.type === "acme.events.v1.UserRegistered");
    assert.equal(rows.length, 1);
    const [row] = rows;
    assert.equal(row.type, "acme.events.v1.UserRegistered");
    assert.equal(row.routing_key, "user.registered");
    const env = decode(row.body);
    assert.equal(env.eventId, row.event_id);
    assert.equal(env.type, "acme.events.v1.UserRegistered");
    assert.equal(env.aggregateId, id);
    assert.equal(env.schemaVersion, 1);
    assert.ok(env.occurredAt && timestampDate(env.occurredAt).getTime() >= before - 1000);
    assert.equal(env.event.case, "userRegistered");
    assert.equal(env.event.value.userId, id);
    assert.equal(env.event.value.email, email);
    assert.equal(Buffer.from(row.body).includes(PASSWORD), false, "the password is not in the event");
    assert.equal(JSON.stringify(row.headers).includes(PASSWORD), false);

    // The same email again: the same answer, no second account, no second event.
    await t.auth().register({ email, password: "another password", name: "Mallory" });
    const forEmail = (await outboxRows(db, "auth")).filter((r) => {
      const e = decode(r.body).event;
      return e.case === "userRegistered" && e.value.email === email;
    });
    assert.deepEqual(forEmail.map((r) => r.event_id), [row.event_id]);
  });

  it("an account undone after a failed profile takes its unsent event with it; the account and event commit together", async () => {
    const store = new AuthStore(db);
    const id = randomUUID();
    const email = `undo-${randomUUID()}@example.com`;
    const e = userRegistered(id, email);
    await store.createAccount({ id, email, password_hash: "x", created_by: "register" }, e);
    assert.equal((await outboxRows(db, "auth", id)).length, 1);
    await store.removeNewAccount(id, e.id);
    assert.equal((await outboxRows(db, "auth", id)).length, 0);
    assert.equal((await sql`select 1 from auth.accounts where id = ${id}`.execute(db)).rows.length, 0);
    // A duplicate email rolls the whole transaction back: no event for it.
    const taken = `taken-${randomUUID()}@example.com`;
    await t.auth().register({ email: taken, password: PASSWORD, name: "T" });
    const id2 = randomUUID();
    await assert.rejects(store.createAccount({ id: id2, email: taken, password_hash: "x", created_by: "register" }, userRegistered(id2, taken)));
    assert.equal((await outboxRows(db, "auth", id2)).length, 0);
  });

  it("CreateOrder writes one OrderCreated row with the order; a repeated request id writes none", async () => {
    const alice = await signUp(t, "Alice");
    const requestId = randomUUID();
    const { order } = await t.orders(alice.token).createOrder({ lines: await linesOf(t, 3), requestId });
    assert.ok(order);
    const rows = await outboxRows(db, "orders", order.id);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].type, "acme.events.v1.OrderCreated");
    assert.equal(rows[0].routing_key, "order.created");
    const env = decode(rows[0].body);
    assert.equal(env.aggregateId, order.id);
    assert.equal(env.event.case, "orderCreated");
    const oc = env.event.value;
    assert.deepEqual(
      [oc.orderId, oc.userId, oc.product, oc.quantity, oc.unitPriceCents, oc.totalCents, oc.status],
      [order.id, alice.id, "Widget", 3, 1999n, 5997n, OrderStatus.PENDING],
    );
    assert.deepEqual(
      [oc.lines.length, oc.lines[0].productId, oc.lines[0].name, oc.lines[0].quantity, oc.lines[0].unitPrice?.amountMinor, oc.lines[0].lineTotal?.amountMinor, oc.total?.amountMinor, oc.total?.currency],
      [1, order.lines[0].productId, "Widget", 3, 1999n, 5997n, 5997n, "EUR"],
      "the lines, priced by the catalogue",
    );
    await t.orders(alice.token).createOrder({ lines: await linesOf(t, 1), requestId });
    assert.equal((await outboxRows(db, "orders", order.id)).length, 1);
    const all = await sql<{ n: string }>`select count(*) as n from orders.outbox o join orders.orders r on r.id::text = o.aggregate_id where r.user_id = ${alice.id}`.execute(db);
    assert.equal(Number(all.rows[0].n), 1);
  });

  describe("relayed by the system", () => {
    let users: BusMessage[];
    let orders: BusMessage[];
    before(async () => {
      users = await collect(bus, AUTH_OUTBOX.exchange);
      orders = await collect(bus, ORDER_OUTBOX.exchange);
    });

    it("a commit wakes the running relay: the event is on the bus at once, not at the next poll (a minute away)", async () => {
      const bob = await signUp(t, "Bob");
      await eventually("UserRegistered on the bus", () => users.some((m) => m.type === "acme.events.v1.UserRegistered" && decode(m.body).aggregateId === bob.id), 2000);
      const { order } = await t.orders(bob.token).createOrder({ lines: await linesOf(t, 1), requestId: randomUUID() });
      await eventually("OrderCreated on the bus", () => orders.some((m) => decode(m.body).aggregateId === order!.id), 2000);
      const m = orders.find((x) => decode(x.body).aggregateId === order!.id)!;
      assert.match(await metrics.render(), /acme_events_published_total\{exchange="acme\.order"\} [1-9]/);
      assert.equal(m.routingKey, "order.created");
      assert.equal(m.type, "acme.events.v1.OrderCreated");
    });

    it("with the bus down the API still works and the events wait; once it is back each is published exactly once", async () => {
      await bus.idle();
      users.length = 0;
      bus.down(true);
      const emails = Array.from({ length: 5 }, () => `down-${randomUUID()}@example.com`);
      for (const email of emails) assert.equal((await t.auth().register({ email, password: PASSWORD, name: "D" })).status, "accepted");
      const ids = await Promise.all(emails.map((e) => accountId(t, e)));
      await new Promise((res) => setTimeout(res, 100));
      for (const id of ids) assert.equal((await outboxRows(db, "auth", id))[0].sent_at, null);
      const lag = await sql<{ n: string }>`select count(*) as n from auth.outbox where sent_at is null`.execute(db);
      assert.ok(Number(lag.rows[0].n) >= ids.length);
      bus.down(false);
      await eventually("all sent", async () => (await Promise.all(ids.map((id) => outboxRows(db, "auth", id)))).every((rs) => rs[0].sent_at !== null));
      await bus.idle();
      const registered = users.filter((m) => m.type === "acme.events.v1.UserRegistered");
      const byAggregate = registered.map((m) => decode(m.body).aggregateId).filter((a) => ids.includes(a));
      assert.deepEqual(byAggregate, ids, "each once, in order");
      assert.equal(new Set(users.map((m) => m.id)).size, users.length);
    });
  });
});

describe("events: trace context in the envelope and headers", function () {
  let otel: MemoryTracing;
  let t: TestSystem;
  before(async () => {
    otel = installMemoryTracing();
    t = await startTestSystem({ edge: false, services: ["auth", "user"] });
  });
  after(async () => {
    await t?.stop();
    await otel?.uninstall();
  });

  it("carries the request's trace (the caller's trace id) as traceparent in the envelope and the row's headers", async () => {
    const traceId = randomUUID().replaceAll("-", "");
    const email = `trace-${randomUUID()}@example.com`;
    const client = createClient(
      AuthService,
      createGrpcTransport({ baseUrl: t.url, interceptors: [(next) => (req) => (req.header.set("traceparent", `00-${traceId}-00f067aa0ba902b7-01`), next(req))] }),
    );
    await client.register({ email, password: PASSWORD, name: "Tracy" });
    const [row] = await outboxRows(t.system.db.db, "auth", await accountId(t, email));
    const env = decode(row.body);
    assert.match(env.traceparent, new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    assert.equal(row.headers.traceparent, env.traceparent);
    assert.equal(row.headers.tracestate, undefined);
    assert.deepEqual(Object.keys(row.headers).sort(), ["traceparent"]);
  });
});
