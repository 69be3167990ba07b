// Orders of catalogue products (issue 19): CreateOrder reserves the lines'
// stock in the catalogue (idempotent by the order id derived from the owner
// and the request id), prices them server-side, and the catalogue follows the
// order's events (OrderCreated holds, CONFIRMED commits, OrderCancelled
// releases). Contention, exactly-once returns of stock (cancel twice at once,
// two sweepers at once), prices fixed at order time, removed request fields
// refused, the crash windows of the protocol, and the admin's ListAllOrders.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { sql, type Kysely } from "kysely";
import { OrderInternalService, OrderSchema, OrderStatus, type Order } from "../../gen/acme/order/v1/order_pb.js";
import type { MemoryBus } from "../../platform/bus/memory.js";
import { silentLogger } from "../../platform/logger.js";
import { PreconditionFailureSchema } from "../../gen/google/rpc/error_details_pb.js";
import type { CatalogueModule } from "../../services/catalogue/index.js";
import { createSweeper } from "../../services/catalogue/sweeper.js";
import { orderIdFor } from "../../services/order/ids.js";
import type { OrderModule } from "../../services/order/index.js";
import { OrderStore, type OrderDb } from "../../services/order/store.js";
import { relaxedRateLimits } from "../interop/support.js";
import { rest } from "../support/http.js";
import { line, makeProduct } from "../support/products.js";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { eventually, rejectsWith, signUp, signUpAdmin, type TestUser } from "../user/helpers.js";
import { catalogueServiceToken, countsOf, orderServiceToken, reservationState, stockReasons } from "./catalogue-support.js";

const mask = { paths: ["status"] };

describe("orders of catalogue products", function () {
  this.timeout(120_000);
  let t: TestSystem;
  let dir: string;
  let admin: TestUser;
  let alice: TestUser;
  let bob: TestUser;
  let orderModule: OrderModule;
  let catalogueModule: CatalogueModule;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "acme-co-"));
    // Both sweepers only when a test runs them; rate limits relaxed for the 200 concurrent creates;
    // the outbox relays back off briefly after the bus outage of crash window (c).
    t = await startTestSystem({ env: { RATELIMIT_CONFIG: relaxedRateLimits(dir), ORDER_SWEEP_INTERVAL_MS: "0", CATALOGUE_SWEEP_INTERVAL_MS: "0", OUTBOX_MAX_BACKOFF_MS: "500" } });
    [admin, alice, bob] = await Promise.all([signUpAdmin(t), signUp(t, "Alice"), signUp(t, "Bob")]);
    orderModule = t.system.modules.find((m) => m.name === "order") as OrderModule;
    catalogueModule = t.system.modules.find((m) => m.name === "catalogue") as CatalogueModule;
  });
  after(async () => {
    await t?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const order = (u: TestUser, productId: string, quantity = 1, requestId: string = randomUUID()) =>
    t.orders(u.token).createOrder({ lines: line(productId, quantity), requestId });
  const confirm = (id: string) => t.orders(admin.token).updateOrder({ order: create(OrderSchema, { id, status: OrderStatus.CONFIRMED }), updateMask: mask });
  const held = (orderId: string) => eventually(`the reservation of ${orderId} is held`, async () => (await reservationState(t, orderId)) === "held");

  /** Sample reserved + sold <= stock while `work` runs. */
  async function sampled<T>(productId: string, work: () => Promise<T>): Promise<T> {
    let on = true;
    let samples = 0;
    const sampler = (async () => {
      while (on) {
        const c = await countsOf(t, productId);
        assert.ok(c.reserved >= 0 && c.sold >= 0 && c.reserved + c.sold <= c.stock, `invariant broken: ${JSON.stringify(c)}`);
        samples++;
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    try {
      return await work();
    } finally {
      on = false;
      await sampler;
      assert.ok(samples > 1, "the invariant was sampled while the work ran");
    }
  }

  it("an order of lines is priced by the catalogue, its stock reserved and held; a retried request id reuses it", async () => {
    const lamp = await makeProduct(t, { name: "Desk lamp", priceMinor: 4_500n, stock: 20 });
    const pen = await makeProduct(t, { name: "Pen", priceMinor: 199n, stock: 20 });
    const requestId = randomUUID();
    const req = { lines: [{ productId: lamp.id, quantity: 2 }, { productId: pen.id, quantity: 5 }], requestId };
    const { order: o } = await t.orders(alice.token).createOrder(req);
    assert.ok(o);
    assert.equal(o.id, orderIdFor(alice.id, requestId), "the order id is derived from the owner and the request id");
    assert.equal(o.status, OrderStatus.PENDING);
    const byProduct = new Map(o.lines.map((l) => [l.productId, l]));
    assert.deepEqual(
      [byProduct.get(lamp.id)?.name, byProduct.get(lamp.id)?.sku, byProduct.get(lamp.id)?.quantity, byProduct.get(lamp.id)?.unitPrice?.amountMinor, byProduct.get(lamp.id)?.lineTotal?.amountMinor],
      ["Desk lamp", lamp.sku, 2, 4_500n, 9_000n],
    );
    assert.deepEqual([byProduct.get(pen.id)?.lineTotal?.amountMinor, byProduct.get(pen.id)?.unitPrice?.currency], [995n, "EUR"]);
    assert.deepEqual([o.total?.amountMinor, o.total?.currency], [9_995n, "EUR"]);
    assert.deepEqual([o.totalCents, o.quantity, o.product], [9_995n, 7, ""], "deprecated fields: total, units, no single product");
    assert.deepEqual(await countsOf(t, lamp.id), { stock: 20, reserved: 2, sold: 0 });
    await held(o.id);
    // The same request id again, at the same moment, even with other lines: the first order, reserved once.
    const again = await Promise.all(Array.from({ length: 5 }, () => t.orders(alice.token).createOrder({ ...req, lines: line(lamp.id, 9) })));
    for (const a of again) assert.equal(a.order?.id, o.id);
    assert.deepEqual(await countsOf(t, lamp.id), { stock: 20, reserved: 2, sold: 0 });
    const got = (await t.orders(alice.token).getOrder({ id: o.id })).order!;
    assert.deepEqual(got.lines.map((l) => l.productId).sort(), [lamp.id, pen.id].sort());
    assert.equal(got.total?.amountMinor, 9_995n);
    // Someone else's same request id is another order.
    const bobs = (await t.orders(bob.token).createOrder(req)).order!;
    assert.notEqual(bobs.id, o.id);
    assert.deepEqual(await countsOf(t, lamp.id), { stock: 20, reserved: 4, sold: 0 });
  });

  it("200 concurrent REST creates of one unit against stock 50: 50 orders, 150 told the product has 0 left", async () => {
    const p = await makeProduct(t, { stock: 50 });
    const users = await Promise.all(Array.from({ length: 10 }, (_, i) => signUp(t, `Buyer ${i}`)));
    const answers = await sampled(p.id, () =>
      Promise.all(Array.from({ length: 200 }, (_, i) =>
        rest(t.url, "POST", "/v1/orders", { token: users[i % users.length].token, body: { lines: [{ productId: p.id, quantity: 1 }], requestId: randomUUID() } }))),
    );
    const ok = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status !== 200);
    assert.equal(ok.length, 50, `statuses: ${[...new Set(answers.map((a) => a.status))].join(", ")}`);
    for (const r of refused) {
      assert.equal(r.status, 400, r.text);
      assert.equal(r.body.code, Code.FailedPrecondition, r.text);
      assert.ok(r.body.message.includes(p.id) && r.body.message.includes("0 left"), r.body.message);
    }
    for (const a of ok) assert.deepEqual([a.body.order.lines[0].productId, a.body.order.total.amountMinor], [p.id, "1999"]);
    assert.deepEqual(await countsOf(t, p.id), { stock: 50, reserved: 50, sold: 0 });
    const { rows } = await sql<{ n: string }>`select count(*) as n from orders.order_lines where product_id = ${p.id}`.execute(t.system.db.db);
    assert.equal(Number(rows[0].n), 50, "exactly 50 orders name the product");
  });

  it("200 concurrent gRPC creates against stock 50: exactly 50 succeed, the rest FAILED_PRECONDITION with the catalogue's PreconditionFailure", async () => {
    const p = await makeProduct(t, { stock: 50 });
    const results = await sampled(p.id, () => Promise.allSettled(Array.from({ length: 200 }, () => order(alice, p.id))));
    const ok = results.filter((r) => r.status === "fulfilled");
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => ConnectError.from(r.reason));
    assert.equal(ok.length, 50);
    for (const e of refused) {
      assert.equal(e.code, Code.FailedPrecondition, e.rawMessage);
      assert.ok(e.rawMessage.includes(p.id) && e.rawMessage.includes("0 left"), e.rawMessage);
      const v = e.findDetails(PreconditionFailureSchema)[0]?.violations[0];
      assert.deepEqual([v?.type, v?.subject], ["STOCK", p.id], "the catalogue's detail passes through");
    }
    assert.deepEqual(await countsOf(t, p.id), { stock: 50, reserved: 50, sold: 0 });
  });

  it("cancelling returns the stock exactly once, even when cancelled twice at the same moment", async () => {
    const p = await makeProduct(t, { stock: 10 });
    const keep = (await order(bob, p.id, 2)).order!;
    const o = (await order(alice, p.id, 3)).order!;
    await held(o.id);
    assert.deepEqual(await countsOf(t, p.id), { stock: 10, reserved: 5, sold: 0 });
    const both = await Promise.allSettled([t.orders(alice.token).cancelOrder({ id: o.id }), t.orders(alice.token).cancelOrder({ id: o.id })]);
    assert.equal(both.filter((r) => r.status === "fulfilled").length, 1, "one cancel wins, the other is refused");
    await eventually("the reservation is released", async () => (await reservationState(t, o.id)) === "released");
    assert.deepEqual(await countsOf(t, p.id), { stock: 10, reserved: 2, sold: 0 }, "3 units back, once; the other order's 2 stay");
    assert.deepEqual(await stockReasons(t, o.id), ["reserved", "released"]);
    assert.equal(await reservationState(t, keep.id), "held");
  });

  it("expiry: two pending-order sweepers at the same moment return each order's stock exactly once", async () => {
    const p = await makeProduct(t, { stock: 30 });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await order(i % 2 ? alice : bob, p.id, 2)).order!.id);
    const live = (await order(alice, p.id, 4)).order!.id;
    for (const id of ids) await held(id);
    await sql`update orders.orders set created_at = now() - interval '2 days' where id in (${sql.join(ids)})`.execute(t.system.db.db);
    const [a, b] = await Promise.all([orderModule.sweepNow(), orderModule.sweepNow()]);
    assert.deepEqual([...a, ...b].filter((id) => ids.includes(id)).sort(), [...ids].sort(), "each expired order cancelled once");
    await eventually("every expired order's stock is back", async () => (await countsOf(t, p.id)).reserved === 4);
    for (const id of ids) assert.deepEqual(await stockReasons(t, id), ["reserved", "released"], `order ${id}`);
    // Later sweeps and redeliveries change nothing.
    await Promise.all([orderModule.sweepNow(), catalogueModule.sweepNow()]);
    assert.deepEqual(await countsOf(t, p.id), { stock: 30, reserved: 4, sold: 0 });
    assert.equal(await reservationState(t, live), "held");
  });

  it("confirming an order (admin) moves its units from reserved to sold", async () => {
    const p = await makeProduct(t, { stock: 10 });
    const o = (await order(alice, p.id, 4)).order!;
    await confirm(o.id);
    await eventually("the reservation is committed", async () => (await reservationState(t, o.id)) === "committed");
    assert.deepEqual(await countsOf(t, p.id), { stock: 10, reserved: 0, sold: 4 });
    // Shipping changes nothing in the catalogue.
    await t.orders(admin.token).updateOrder({ order: create(OrderSchema, { id: o.id, status: OrderStatus.SHIPPED }), updateMask: mask });
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await countsOf(t, p.id), { stock: 10, reserved: 0, sold: 4 });
    assert.deepEqual(await stockReasons(t, o.id), ["reserved", "committed"]);
  });

  it("prices: an order keeps the price of its moment after the admin changes it; a new order gets the new one", async () => {
    const p = await makeProduct(t, { priceMinor: 1_000n });
    const first = (await order(alice, p.id, 3)).order!;
    assert.equal(first.total?.amountMinor, 3_000n);
    await t.catalogue(admin.token).updateProduct({ id: p.id, price: { amountMinor: 1_250n, currency: "EUR" } });
    const kept = (await t.orders(alice.token).getOrder({ id: first.id })).order!;
    assert.deepEqual([kept.lines[0].unitPrice?.amountMinor, kept.total?.amountMinor], [1_000n, 3_000n]);
    const second = (await order(alice, p.id, 3)).order!;
    assert.deepEqual([second.lines[0].unitPrice?.amountMinor, second.total?.amountMinor], [1_250n, 3_750n]);
  });

  it("REST: a client sending unitPriceCents, product, quantity or a total gets 400 naming the field, and nothing is created", async () => {
    const p = await makeProduct(t, { stock: 5 });
    const u = await signUp(t, "Chooser");
    const base = { lines: [{ productId: p.id, quantity: 1 }], requestId: randomUUID() };
    for (const [extra, field] of [
      [{ unitPriceCents: "1" }, "unitPriceCents"],
      [{ unitPriceCents: 1 }, "unitPriceCents"],
      [{ product: "widget" }, "product"],
      [{ quantity: 2 }, "quantity"],
      [{ total: { amountMinor: "1", currency: "EUR" } }, "total"],
      [{ totalCents: "1" }, "totalCents"],
    ] as const) {
      const r = await rest(t.url, "POST", "/v1/orders", { token: u.token, body: { ...base, ...extra } });
      assert.equal(r.status, 400, `${field}: ${r.text}`);
      assert.equal(r.body.code, Code.InvalidArgument);
      assert.ok(r.text.includes(field), `names ${field}: ${r.text}`);
    }
    assert.equal((await t.orders(u.token).listOrders({})).orders.length, 0, "no order");
    assert.deepEqual(await countsOf(t, p.id), { stock: 5, reserved: 0, sold: 0 }, "nothing reserved");
    // gRPC: the removed fields are refused by name too.
    await rejectsWith(t.orders(u.token).createOrder({ ...base, unitPriceCents: 1n, product: "x", quantity: 1 }), Code.InvalidArgument, ["unitPriceCents", "product", "quantity"]);
  });

  it("refuses bad lines, naming each", async () => {
    const p = await makeProduct(t);
    const o = t.orders(alice.token);
    await rejectsWith(o.createOrder({ lines: [], requestId: "r" }), Code.InvalidArgument, ["lines"]);
    await rejectsWith(o.createOrder({ lines: [{ productId: "nope", quantity: 0 }], requestId: "" }), Code.InvalidArgument, ["lines[0].productId", "lines[0].quantity", "requestId"]);
    await rejectsWith(o.createOrder({ lines: [{ productId: p.id, quantity: 10_001 }], requestId: "r" }), Code.InvalidArgument, ["lines[0].quantity"]);
    await rejectsWith(o.createOrder({ lines: [{ productId: p.id, quantity: 1 }, { productId: p.id.toUpperCase(), quantity: 1 }], requestId: "r" }), Code.InvalidArgument, ["lines[1].productId"]);
    await rejectsWith(o.createOrder({ lines: Array.from({ length: 51 }, () => ({ productId: randomUUID(), quantity: 1 })), requestId: "r" }), Code.InvalidArgument, ["lines"]);
    const unknown = await rejectsWith(order(alice, randomUUID()), Code.FailedPrecondition);
    assert.match(unknown.rawMessage, /does not exist/);
    const usd = await makeProduct(t, { currency: "USD" });
    const mixed = await rejectsWith(o.createOrder({ lines: [{ productId: p.id, quantity: 1 }, { productId: usd.id, quantity: 1 }], requestId: randomUUID() }), Code.FailedPrecondition);
    assert.match(mixed.rawMessage, /share a currency/);
    assert.equal((await countsOf(t, usd.id)).reserved, 0, "the reservation of a refused order is released");
  });

  describe("crash windows", () => {
    let serviceToken: string;
    before(async () => (serviceToken = await orderServiceToken(t)));

    it("(a) Reserve done, the order never committed: after reserved_until the catalogue's sweeper releases it; no order", async () => {
      const p = await makeProduct(t, { stock: 10 });
      const requestId = randomUUID();
      const orderId = orderIdFor(alice.id, requestId);
      await t.catalogueInternal(serviceToken).reserve({ orderId, lines: line(p.id, 3) });
      assert.deepEqual(await countsOf(t, p.id), { stock: 10, reserved: 3, sold: 0 });
      await sql`update catalogue.reservations set reserved_until = now() - interval '1 second' where order_id = ${orderId}`.execute(t.system.db.db);
      const [x, y] = await Promise.all([catalogueModule.sweepNow(), catalogueModule.sweepNow()]);
      assert.deepEqual([...x, ...y].filter((id) => id === orderId), [orderId], "released once");
      assert.deepEqual(await countsOf(t, p.id), { stock: 10, reserved: 0, sold: 0 });
      assert.equal((await t.orders(admin.token).listAllOrders({ userId: alice.id, productId: p.id })).orders.length, 0, "no order");
      // The client's retry of that request finds the reservation released: told to use a new request id, nothing reserved.
      const e = await rejectsWith(order(alice, p.id, 3, requestId), Code.Aborted);
      assert.match(e.rawMessage, /new requestId/);
      assert.deepEqual(await countsOf(t, p.id), { stock: 10, reserved: 0, sold: 0 });
    });

    it("(a') Reserve done, then the client retries in time: the order uses that reservation, reserved once", async () => {
      const p = await makeProduct(t, { stock: 10 });
      const requestId = randomUUID();
      await t.catalogueInternal(serviceToken).reserve({ orderId: orderIdFor(alice.id, requestId), lines: line(p.id, 3) });
      const o = (await order(alice, p.id, 3, requestId)).order!;
      assert.equal(o.id, orderIdFor(alice.id, requestId));
      await held(o.id);
      assert.deepEqual(await countsOf(t, p.id), { stock: 10, reserved: 3, sold: 0 });
    });

    it("(b) the order committed but Hold lost: the OrderCreated consumer holds it, and the sweeper never releases a held one", async () => {
      const p = await makeProduct(t, { stock: 10, name: "Kettle" });
      const requestId = randomUUID();
      const orderId = orderIdFor(bob.id, requestId);
      const r = (await t.catalogueInternal(serviceToken).reserve({ orderId, lines: line(p.id, 2) })).reservation!;
      // What CreateOrder does between Reserve and Hold, and then it "crashes" (no Hold).
      const store = new OrderStore(t.system.db.db as Kysely<OrderDb>);
      await store.create({
        id: orderId, userId: bob.id, requestId, currency: "EUR", commitBefore: new Date(Date.now() + 60_000),
        lines: r.lines.map((l) => ({ productId: l.productId, sku: l.sku, name: l.name, quantity: l.quantity, unitPriceMinor: l.unitPrice!.amountMinor, currency: "EUR" })),
      });
      await held(orderId);
      await sql`update catalogue.reservations set reserved_until = now() - interval '1 second' where order_id = ${orderId}`.execute(t.system.db.db);
      assert.deepEqual(await catalogueModule.sweepNow(), []);
      assert.deepEqual(await countsOf(t, p.id), { stock: 10, reserved: 2, sold: 0 });
      assert.equal((await t.orders(bob.token).getOrder({ id: orderId })).order?.lines[0].name, "Kettle");
    });

    it("(b') OrderCreated arriving after reserved_until still holds a pending reservation the sweeper has not released", async () => {
      const p = await makeProduct(t, { stock: 10 });
      const requestId = randomUUID();
      const orderId = orderIdFor(bob.id, requestId);
      const r = (await t.catalogueInternal(serviceToken).reserve({ orderId, lines: line(p.id, 1) })).reservation!;
      await sql`update catalogue.reservations set reserved_until = now() - interval '1 second' where order_id = ${orderId}`.execute(t.system.db.db);
      await new OrderStore(t.system.db.db as Kysely<OrderDb>).create({
        id: orderId, userId: bob.id, requestId, currency: "EUR", commitBefore: new Date(Date.now() + 60_000),
        lines: r.lines.map((l) => ({ productId: l.productId, sku: l.sku, name: l.name, quantity: l.quantity, unitPriceMinor: l.unitPrice!.amountMinor, currency: "EUR" })),
      });
      await held(orderId);
      assert.deepEqual(await catalogueModule.sweepNow(), []);
    });

    /** Bob's order inserted as CreateOrder would after Reserve, and then no Hold (a crash). */
    const commitWithoutHold = async (orderId: string, requestId: string, r: { lines: { productId: string; sku: string; name: string; quantity: number; unitPrice?: { amountMinor: bigint } }[] }) =>
      new OrderStore(t.system.db.db as Kysely<OrderDb>).create({
        id: orderId, userId: bob.id, requestId, currency: "EUR", commitBefore: new Date(Date.now() + 60_000),
        lines: r.lines.map((l) => ({ productId: l.productId, sku: l.sku, name: l.name, quantity: l.quantity, unitPriceMinor: l.unitPrice!.amountMinor, currency: "EUR" })),
      });

    it("(c) the order committed, Hold lost and OrderCreated not delivered (broker down) past reserved_until: the sweeper asks the order service, finds the order and holds it", async () => {
      const bus = t.system.bus as MemoryBus;
      assert.equal(typeof bus.down, "function", "the test system runs the in-process bus");
      const p = await makeProduct(t, { stock: 10 });
      const requestId = randomUUID();
      const orderId = orderIdFor(bob.id, requestId);
      const r = (await t.catalogueInternal(serviceToken).reserve({ orderId, lines: line(p.id, 2) })).reservation!;
      bus.down(true);
      try {
        await commitWithoutHold(orderId, requestId, r);
        await sql`update catalogue.reservations set reserved_until = now() - interval '1 second' where order_id = ${orderId}`.execute(t.system.db.db);
        assert.equal(await reservationState(t, orderId), "pending", "nothing held it: no Hold, no OrderCreated");
        const [x, y] = await Promise.all([catalogueModule.sweepNow(), catalogueModule.sweepNow()]);
        assert.ok(![...x, ...y].includes(orderId), "not released");
        assert.equal(await reservationState(t, orderId), "held", "held: the order exists");
        assert.deepEqual(await countsOf(t, p.id), { stock: 10, reserved: 2, sold: 0 });
        assert.deepEqual(await stockReasons(t, orderId), ["reserved"]);
      } finally {
        bus.down(false);
      }
      // OrderCreated, delivered late, changes nothing; confirming the order sells the units.
      await confirm(orderId);
      await eventually("the reservation is committed", async () => (await reservationState(t, orderId)) === "committed");
      assert.deepEqual(await countsOf(t, p.id), { stock: 10, reserved: 0, sold: 2 });
      assert.deepEqual(await stockReasons(t, orderId), ["reserved", "committed"]);
    });

    it("(c') an existing order's expired pending reservation follows its status: CONFIRMED commits, CANCELLED releases, once", async () => {
      const bus = t.system.bus as MemoryBus;
      const p = await makeProduct(t, { stock: 10 });
      const ids: Record<string, string> = {};
      bus.down(true);
      try {
        for (const to of [OrderStatus.CONFIRMED, OrderStatus.CANCELLED]) {
          const requestId = randomUUID();
          const orderId = orderIdFor(bob.id, requestId);
          const r = (await t.catalogueInternal(serviceToken).reserve({ orderId, lines: line(p.id, 1) })).reservation!;
          await commitWithoutHold(orderId, requestId, r);
          await t.orders(admin.token).updateOrder({ order: create(OrderSchema, { id: orderId, status: to }), updateMask: mask });
          await sql`update catalogue.reservations set reserved_until = now() - interval '1 second' where order_id = ${orderId}`.execute(t.system.db.db);
          ids[OrderStatus[to]] = orderId;
        }
        const [x, y] = await Promise.all([catalogueModule.sweepNow(), catalogueModule.sweepNow()]);
        assert.deepEqual([...x, ...y].filter((id) => Object.values(ids).includes(id)), [ids.CANCELLED], "the cancelled order's units released once");
        assert.equal(await reservationState(t, ids.CONFIRMED), "committed");
        assert.equal(await reservationState(t, ids.CANCELLED), "released");
        assert.deepEqual(await countsOf(t, p.id), { stock: 10, reserved: 0, sold: 1 });
      } finally {
        bus.down(false);
      }
      // The late events change nothing.
      await new Promise((r) => setTimeout(r, 1000));
      assert.deepEqual(await countsOf(t, p.id), { stock: 10, reserved: 0, sold: 1 });
      assert.deepEqual(await stockReasons(t, ids.CONFIRMED), ["reserved", "committed"]);
      assert.deepEqual(await stockReasons(t, ids.CANCELLED), ["reserved", "released"]);
    });

    it("(d) Reserve done, no order: SettleReservation answers no order and marks the id, the sweeper releases; a retry of the request is ABORTED", async () => {
      const p = await makeProduct(t, { stock: 10 });
      const requestId = randomUUID();
      const orderId = orderIdFor(alice.id, requestId);
      await t.catalogueInternal(serviceToken).reserve({ orderId, lines: line(p.id, 4) });
      await sql`update catalogue.reservations set reserved_until = now() - interval '1 second' where order_id = ${orderId}`.execute(t.system.db.db);
      assert.deepEqual(await catalogueModule.sweepNow(), [orderId]);
      assert.deepEqual(await countsOf(t, p.id), { stock: 10, reserved: 0, sold: 0 });
      assert.ok(await new OrderStore(t.system.db.db as Kysely<OrderDb>).abandoned(orderId), "the order id is marked abandoned");
      const e = await rejectsWith(order(alice, p.id, 4, requestId), Code.Aborted);
      assert.match(e.rawMessage, /new requestId/);
      assert.deepEqual(await countsOf(t, p.id), { stock: 10, reserved: 0, sold: 0 });
      // The RPC itself, over gRPC with the catalogue's token: idempotent; an existing order answers its status.
      const settle = t.ordersInternal(await catalogueServiceToken(t));
      assert.deepEqual([(await settle.settleReservation({ orderId })).orderExists, (await settle.settleReservation({ orderId })).orderExists], [false, false]);
      const o = (await order(bob, p.id, 1)).order!;
      const got = await settle.settleReservation({ orderId: o.id.toUpperCase() });
      assert.deepEqual([got.orderExists, got.status], [true, OrderStatus.PENDING]);
      await rejectsWith(settle.settleReservation({ orderId: "nope" }), Code.InvalidArgument, ["orderId"]);
      // Only the catalogue's scope may ask (the order service's own token may not).
      const refused = await t.ordersInternal(serviceToken).settleReservation({ orderId }).then(() => assert.fail("the order service's token was accepted"), (err) => ConnectError.from(err));
      assert.ok([Code.Unauthenticated, Code.PermissionDenied].includes(refused.code), `${Code[refused.code]}: ${refused.rawMessage}`);
    });

    it("(e) the order service unreachable: the sweeper releases nothing; the reservation waits for a sweep that gets an answer", async () => {
      const p = await makeProduct(t, { stock: 10 });
      const orderId = orderIdFor(alice.id, randomUUID());
      await t.catalogueInternal(serviceToken).reserve({ orderId, lines: line(p.id, 3) });
      await sql`update catalogue.reservations set reserved_until = now() - interval '1 second' where order_id = ${orderId}`.execute(t.system.db.db);
      const cut = createSweeper({
        store: catalogueModule.reservations,
        // Nothing listens on port 1.
        orders: () => createClient(OrderInternalService, createGrpcTransport({ baseUrl: "http://127.0.0.1:1", defaultTimeoutMs: 1000 })),
        log: silentLogger,
        intervalMs: 0,
      });
      assert.deepEqual(await cut.sweep(), []);
      assert.equal(await reservationState(t, orderId), "pending");
      assert.deepEqual(await countsOf(t, p.id), { stock: 10, reserved: 3, sold: 0 });
      assert.deepEqual(await stockReasons(t, orderId), ["reserved"]);
      // The order service answers again: no order, released.
      assert.ok((await catalogueModule.sweepNow()).includes(orderId));
      assert.deepEqual(await countsOf(t, p.id), { stock: 10, reserved: 0, sold: 0 });
    });
  });

  describe("ListAllOrders (admin)", () => {
    it("lists every user's orders newest first, filtered by status, user, product and creation time, paged", async () => {
      const p = await makeProduct(t);
      const q = await makeProduct(t);
      const carol = await signUp(t, "Carol");
      const made: Order[] = [];
      for (let i = 0; i < 5; i++) made.push((await order(i % 2 ? carol : alice, i < 3 ? p.id : q.id)).order!);
      await confirm(made[0].id);
      const all = t.orders(admin.token);
      const ids = async (req: Parameters<typeof all.listAllOrders>[0]) => (await all.listAllOrders(req)).orders.map((o) => o.id);
      assert.deepEqual(await ids({ productId: p.id }), [made[2].id, made[1].id, made[0].id], "newest first");
      assert.deepEqual(await ids({ productId: q.id, userId: carol.id }), [made[3].id]);
      assert.deepEqual(await ids({ productId: p.id, status: OrderStatus.CONFIRMED }), [made[0].id]);
      const after = made[2].createdAt!;
      assert.deepEqual(await ids({ userId: carol.id, createdAfter: after }), [made[3].id]);
      assert.deepEqual(await ids({ userId: carol.id, createdBefore: after }), [made[1].id]);
      // Pages of 2 over both products' orders by carol and alice.
      const seen: string[] = [];
      let pageToken = "";
      const soon = timestampFromDate(new Date(Date.now() + 60_000));
      do {
        const page = await all.listAllOrders({ pageSize: 2, pageToken, createdAfter: made[0].createdAt, createdBefore: soon });
        seen.push(...page.orders.map((o) => o.id));
        pageToken = page.nextPageToken;
      } while (pageToken);
      assert.deepEqual(seen.filter((id) => made.some((m) => m.id === id)), made.map((m) => m.id).reverse());
      await rejectsWith(all.listAllOrders({ pageToken: (await all.listAllOrders({ pageSize: 1 })).nextPageToken, productId: p.id }), Code.InvalidArgument, ["pageToken"]);
      await rejectsWith(all.listAllOrders({ productId: "x", userId: "y" }), Code.InvalidArgument, ["productId", "userId"]);
      await rejectsWith(t.orders(alice.token).listAllOrders({}), Code.PermissionDenied);
      const r = await rest(t.url, "GET", `/v1/admin/orders?productId=${q.id}`, { token: admin.token });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body.orders.map((o: { id: string }) => o.id), [made[4].id, made[3].id]);
    });
  });
});

describe("orders of catalogue products: the commit deadline", function () {
  this.timeout(60_000);
  let t: TestSystem;
  after(async () => t?.stop());

  it("a reservation expiring within the margin is released and the order is not created (ABORTED)", async () => {
    // Reservations of 10 s against a 30 s margin: every insert is too late.
    t = await startTestSystem({ edge: false, env: { CATALOGUE_RESERVATION_SECONDS: "10", ORDER_SWEEP_INTERVAL_MS: "0", CATALOGUE_SWEEP_INTERVAL_MS: "0" } });
    const u = await signUp(t);
    const p = await makeProduct(t, { stock: 5 });
    const requestId = randomUUID();
    const e = await rejectsWith(t.orders(u.token).createOrder({ lines: line(p.id, 2), requestId }), Code.Aborted);
    assert.match(e.rawMessage, /new requestId/);
    assert.deepEqual(await countsOf(t, p.id), { stock: 5, reserved: 0, sold: 0 }, "released at once");
    assert.equal(await reservationState(t, orderIdFor(u.id, requestId)), "released");
    assert.equal((await t.orders(u.token).listOrders({})).orders.length, 0);
    await rejectsWith(t.orders(u.token).createOrder({ lines: line(p.id, 2), requestId }), Code.Aborted);
    assert.deepEqual(await countsOf(t, p.id), { stock: 5, reserved: 0, sold: 0 });
  });
});
