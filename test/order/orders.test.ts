// OrderService on real Postgres + Redis through the whole product.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { FieldMaskSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { sql, type Kysely } from "kysely";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { OrderSchema, OrderStatus, type CreateOrderRequestSchema } from "../../gen/acme/order/v1/order_pb.js";

type CreateOrderRequest = Omit<MessageInitShape<typeof CreateOrderRequestSchema>, "$typeName">;
import { orderSettings, type OrderModule } from "../../services/order/index.js";
import { OrderStore, type OrderDb } from "../../services/order/store.js";
import { orderIdFor } from "../../services/order/ids.js";
import { makeProduct } from "../support/products.js";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { eventually, rejectsWith, signUp, signUpAdmin, userStore, type TestUser } from "../user/helpers.js";

const mask = (...paths: string[]) => create(FieldMaskSchema, { paths });
/** The catalogue product the orders of a suite name (19.99 EUR, plenty of stock). */
let productId = "";
const valid = (over: Partial<CreateOrderRequest> = {}) => ({
  lines: [{ productId, quantity: 3 }],
  requestId: randomUUID(),
  ...over,
});

describe("order service", function () {
  let t: TestSystem;
  let alice: TestUser;
  let bob: TestUser;
  let admin: TestUser;
  let db: Kysely<OrderDb>;
  let store: OrderStore;

  before(async () => {
    // The background sweeper is off here (tested below, and in its own system).
    t = await startTestSystem({ edge: false, env: { ORDER_SWEEP_INTERVAL_MS: "0" } });
    db = t.system.db.db as Kysely<OrderDb>;
    store = new OrderStore(db);
    [alice, bob, admin] = await Promise.all([signUp(t, "Alice"), signUp(t, "Bob"), signUpAdmin(t)]);
    productId = (await makeProduct(t, { priceMinor: 1999n })).id;
  });
  after(async () => t?.stop());

  const countRows = async (userId: string, requestId: string) =>
    Number((await db.selectFrom("orders.orders").select((eb) => eb.fn.countAll().as("n")).where("user_id", "=", userId).where("request_id", "=", requestId).executeTakeFirstOrThrow()).n);

  describe("CreateOrder", () => {
    it("creates a PENDING order owned by the caller with the total computed by the server from the catalogue's price", async () => {
      const req = valid();
      const { order } = await t.orders(alice.token).createOrder(req);
      assert.ok(order);
      assert.equal(order.userId, alice.id);
      assert.equal(order.status, OrderStatus.PENDING);
      assert.deepEqual([order.total?.amountMinor, order.total?.currency], [5997n, "EUR"]);
      assert.deepEqual([order.lines[0].productId, order.lines[0].quantity, order.lines[0].unitPrice?.amountMinor, order.lines[0].lineTotal?.amountMinor], [productId, 3, 1999n, 5997n]);
      assert.deepEqual([order.totalCents, order.unitPriceCents, order.quantity, order.product], [5997n, 1999n, 3, "Widget"], "the deprecated fields of a one-line order");
      assert.equal(order.requestId, req.requestId);
      assert.equal(order.ownerDeleted, false);
      assert.ok(order.createdAt && order.updatedAt);
    });

    it("handles the largest allowed amounts exactly (int64 minor units)", async () => {
      const dear = await makeProduct(t, { priceMinor: 1_000_000_000_000n });
      const { order } = await t.orders(alice.token).createOrder(valid({ lines: [{ productId: dear.id, quantity: 10_000 }] }));
      assert.equal(order?.total?.amountMinor, 10_000_000_000_000_000n);
      const again = await t.orders(alice.token).getOrder({ id: order!.id });
      assert.equal(again.order?.total?.amountMinor, 10_000_000_000_000_000n);
      assert.equal(again.order?.lines[0].lineTotal?.amountMinor, 10_000_000_000_000_000n);
    });

    it("names every bad field: removed fields, lines, request id (empty, too long, control characters, out of range)", async () => {
      const o = t.orders(alice.token);
      const cases: [Partial<CreateOrderRequest>, string[]][] = [
        [{ product: "Widget" }, ["product"]],
        [{ quantity: 3 }, ["quantity"]],
        [{ unitPriceCents: 1999n }, ["unitPriceCents"]],
        [{ unitPriceCents: -1n }, ["unitPriceCents"]],
        [{ lines: [] }, ["lines"]],
        [{ lines: [{ productId, quantity: 0 }] }, ["lines[0].quantity"]],
        [{ lines: [{ productId, quantity: -5 }] }, ["lines[0].quantity"]],
        [{ lines: [{ productId, quantity: 10_001 }] }, ["lines[0].quantity"]],
        [{ lines: [{ productId: "widget", quantity: 1 }] }, ["lines[0].productId"]],
        [{ requestId: "" }, ["requestId"]],
        [{ requestId: "r".repeat(101) }, ["requestId"]],
        [{ requestId: "line\nbreak" }, ["requestId"]],
        [{ product: "x", quantity: 1, unitPriceCents: 1n, lines: [], requestId: "" }, ["product", "quantity", "unitPriceCents", "lines", "requestId"]],
      ];
      for (const [over, fields] of cases) await rejectsWith(o.createOrder(valid(over)), Code.InvalidArgument, fields);
      // Boundaries are accepted.
      await o.createOrder(valid({ lines: [{ productId, quantity: 10_000 }], requestId: "r".repeat(100) }));
      await o.createOrder(valid({ lines: [{ productId, quantity: 1 }] }));
    });

    it("is idempotent on requestId: a retry returns the first order, even with other parameters (AIP-155)", async () => {
      const req = valid();
      const first = (await t.orders(alice.token).createOrder(req)).order!;
      assert.equal(first.id, orderIdFor(alice.id, req.requestId));
      const again = (await t.orders(alice.token).createOrder(req)).order!;
      assert.equal(again.id, first.id);
      const other = await makeProduct(t, { name: "Other" });
      const different = (await t.orders(alice.token).createOrder({ ...req, lines: [{ productId: other.id, quantity: 9 }] })).order!;
      assert.equal(different.id, first.id);
      assert.deepEqual([different.lines.length, different.lines[0].productId, different.lines[0].quantity], [1, productId, 3]);
      assert.equal(await countRows(alice.id, req.requestId), 1);
      // The key is per owner: bob's identical key makes bob's own order.
      const bobs = (await t.orders(bob.token).createOrder(req)).order!;
      assert.notEqual(bobs.id, first.id);
      assert.equal(bobs.userId, bob.id);
    });

    it("asks the user service first: an inactive or missing profile cannot order, even with a valid token", async () => {
      const ivy = await signUp(t, "Ivy");
      // Behind the token's back (no session revocation): only CheckUser can notice.
      await userStore(t).update(ivy.id, { active: false });
      await rejectsWith(t.orders(ivy.token).createOrder(valid()), Code.PermissionDenied);
      await userStore(t).delete(ivy.id);
      await rejectsWith(t.orders(ivy.token).createOrder(valid()), Code.PermissionDenied);
      assert.equal((await t.orders(ivy.token).listOrders({})).orders.length, 0);
    });

    it("20 concurrent creates with one requestId make exactly one row, and all return it", async () => {
      const req = valid();
      const client = t.orders(alice.token);
      const results = await Promise.all(Array.from({ length: 20 }, () => client.createOrder(req)));
      const ids = new Set(results.map((r) => r.order!.id));
      assert.equal(ids.size, 1);
      assert.equal(await countRows(alice.id, req.requestId), 1);
    });
  });

  describe("ownership", () => {
    let a1: string;
    before(async () => {
      a1 = (await t.orders(alice.token).createOrder(valid())).order!.id;
    });

    it("user B cannot read, cancel, update or delete user A's order: NOT_FOUND, like a missing one", async () => {
      const hidden = await rejectsWith(t.orders(bob.token).getOrder({ id: a1 }), Code.NotFound);
      const missing = await rejectsWith(t.orders(bob.token).getOrder({ id: randomUUID() }), Code.NotFound);
      assert.equal(hidden.rawMessage, missing.rawMessage);
      await rejectsWith(t.orders(bob.token).cancelOrder({ id: a1 }), Code.NotFound);
      // Update and delete are admin RPCs: refused before any lookup.
      await rejectsWith(t.orders(bob.token).updateOrder({ order: create(OrderSchema, { id: a1, status: OrderStatus.CONFIRMED }) }), Code.PermissionDenied);
      await rejectsWith(t.orders(bob.token).deleteOrder({ id: a1 }), Code.PermissionDenied);
      const still = await t.orders(alice.token).getOrder({ id: a1 });
      assert.equal(still.order?.status, OrderStatus.PENDING);
    });

    it("user B cannot list user A's orders (PERMISSION_DENIED, for a real or a made-up id) and never sees them in their own list", async () => {
      await rejectsWith(t.orders(bob.token).listOrders({ userId: alice.id }), Code.PermissionDenied);
      await rejectsWith(t.orders(bob.token).listOrders({ userId: randomUUID() }), Code.PermissionDenied);
      const own = await t.orders(bob.token).listOrders({ pageSize: 100 });
      assert.ok(own.orders.every((o) => o.userId === bob.id));
      assert.ok(!own.orders.some((o) => o.id === a1));
      // Passing one's own id is the same as passing none.
      const mine = await t.orders(alice.token).listOrders({ userId: alice.id, pageSize: 100 });
      assert.ok(mine.orders.some((o) => o.id === a1));
    });

    it("an admin can read, list, cancel and manage anyone's orders", async () => {
      assert.equal((await t.orders(admin.token).getOrder({ id: a1 })).order?.userId, alice.id);
      const listed = await t.orders(admin.token).listOrders({ userId: alice.id, pageSize: 100 });
      assert.ok(listed.orders.some((o) => o.id === a1));
      const c = await t.orders(admin.token).cancelOrder({ id: a1 });
      assert.equal(c.order?.status, OrderStatus.CANCELLED);
    });
  });

  describe("CancelOrder", () => {
    it("the owner cancels a PENDING order; anything else is FAILED_PRECONDITION", async () => {
      const id = (await t.orders(alice.token).createOrder(valid())).order!.id;
      const c = await t.orders(alice.token).cancelOrder({ id });
      assert.equal(c.order?.status, OrderStatus.CANCELLED);
      await rejectsWith(t.orders(alice.token).cancelOrder({ id }), Code.FailedPrecondition);
      const id2 = (await t.orders(alice.token).createOrder(valid())).order!.id;
      await t.orders(admin.token).updateOrder({ order: create(OrderSchema, { id: id2, status: OrderStatus.CONFIRMED }) });
      await rejectsWith(t.orders(alice.token).cancelOrder({ id: id2 }), Code.FailedPrecondition);
    });

    it("malformed ids are INVALID_ARGUMENT; unknown ids NOT_FOUND", async () => {
      await rejectsWith(t.orders(alice.token).cancelOrder({ id: "" }), Code.InvalidArgument, ["id"]);
      await rejectsWith(t.orders(alice.token).cancelOrder({ id: "123" }), Code.InvalidArgument, ["id"]);
      await rejectsWith(t.orders(alice.token).cancelOrder({ id: randomUUID() }), Code.NotFound);
      await rejectsWith(t.orders(alice.token).getOrder({ id: "zzz" }), Code.InvalidArgument, ["id"]);
    });
  });

  describe("UpdateOrder (admin)", () => {
    const update = (id: string, status: OrderStatus, m?: string[]) =>
      t.orders(admin.token).updateOrder({ order: create(OrderSchema, { id, status }), updateMask: m ? mask(...m) : undefined });
    const newOrder = async () => (await t.orders(alice.token).createOrder(valid())).order!.id;

    it("moves PENDING -> CONFIRMED -> SHIPPED, and PENDING or CONFIRMED -> CANCELLED", async () => {
      const id = await newOrder();
      assert.equal((await update(id, OrderStatus.CONFIRMED, ["status"])).order?.status, OrderStatus.CONFIRMED);
      assert.equal((await update(id, OrderStatus.SHIPPED)).order?.status, OrderStatus.SHIPPED);
      const id2 = await newOrder();
      assert.equal((await update(id2, OrderStatus.CANCELLED)).order?.status, OrderStatus.CANCELLED);
      const id3 = await newOrder();
      await update(id3, OrderStatus.CONFIRMED);
      assert.equal((await update(id3, OrderStatus.CANCELLED)).order?.status, OrderStatus.CANCELLED);
    });

    it("refuses illegal transitions with FAILED_PRECONDITION", async () => {
      const id = await newOrder();
      await rejectsWith(update(id, OrderStatus.SHIPPED), Code.FailedPrecondition);
      await rejectsWith(update(id, OrderStatus.PENDING), Code.FailedPrecondition);
      await update(id, OrderStatus.CONFIRMED);
      await rejectsWith(update(id, OrderStatus.CONFIRMED), Code.FailedPrecondition);
      await rejectsWith(update(id, OrderStatus.PENDING), Code.FailedPrecondition);
      await update(id, OrderStatus.SHIPPED);
      await rejectsWith(update(id, OrderStatus.CANCELLED), Code.FailedPrecondition);
      const c = await newOrder();
      await update(c, OrderStatus.CANCELLED);
      await rejectsWith(update(c, OrderStatus.CONFIRMED), Code.FailedPrecondition);
    });

    it("validates order, order.id, order.status (unset, unknown) and updateMask; unknown order NOT_FOUND", async () => {
      const id = await newOrder();
      const o = t.orders(admin.token);
      await rejectsWith(o.updateOrder({}), Code.InvalidArgument, ["order"]);
      await rejectsWith(update("nope", OrderStatus.CONFIRMED), Code.InvalidArgument, ["order.id"]);
      await rejectsWith(update(id, OrderStatus.UNSPECIFIED, ["status"]), Code.InvalidArgument, ["order.status"]);
      await rejectsWith(update(id, OrderStatus.UNSPECIFIED), Code.InvalidArgument, ["updateMask"]);
      await rejectsWith(update(id, 42 as OrderStatus), Code.InvalidArgument, ["order.status"]);
      await rejectsWith(update(id, OrderStatus.CONFIRMED, ["product"]), Code.InvalidArgument, ["updateMask"]);
      await rejectsWith(update(id, OrderStatus.CONFIRMED, ["status", "bogus"]), Code.InvalidArgument, ["updateMask"]);
      await rejectsWith(update(randomUUID(), OrderStatus.CONFIRMED), Code.NotFound);
      assert.equal((await o.getOrder({ id })).order?.status, OrderStatus.PENDING);
    });
  });

  describe("DeleteOrder (admin)", () => {
    it("deletes; then NOT_FOUND; malformed id INVALID_ARGUMENT", async () => {
      const id = (await t.orders(alice.token).createOrder(valid())).order!.id;
      await t.orders(admin.token).deleteOrder({ id });
      await rejectsWith(t.orders(alice.token).getOrder({ id }), Code.NotFound);
      await rejectsWith(t.orders(admin.token).deleteOrder({ id }), Code.NotFound);
      await rejectsWith(t.orders(admin.token).deleteOrder({ id: "1" }), Code.InvalidArgument, ["id"]);
    });
  });

  describe("ListOrders", () => {
    let gina: TestUser;
    before(async () => (gina = await signUp(t, "Gina")));

    it("lists the caller's orders newest first, filters by status, and pages without gaps or duplicates while orders are added", async () => {
      const o = t.orders(gina.token);
      const created: string[] = [];
      for (let i = 0; i < 25; i++) created.push((await o.createOrder(valid())).order!.id);
      await o.cancelOrder({ id: created[3] });
      await o.cancelOrder({ id: created[10] });

      const seen: string[] = [];
      const addedMeanwhile: string[] = [];
      let token = "";
      let page = 0;
      do {
        const r = await o.listOrders({ pageSize: 4, pageToken: token });
        seen.push(...r.orders.map((x) => x.id));
        token = r.nextPageToken;
        if (page++ < 3) addedMeanwhile.push((await o.createOrder(valid())).order!.id);
      } while (token);
      assert.equal(new Set(seen).size, seen.length, "no duplicates");
      // Newest first: exactly the orders that existed at the first page, in reverse creation order.
      assert.deepEqual(seen, [...created].reverse());
      assert.ok(!seen.some((id) => addedMeanwhile.includes(id)), "newer orders appear on a new listing, not mid-way");

      const first = await o.listOrders({});
      assert.equal(first.orders.length, 20);
      assert.deepEqual(first.orders.slice(0, 3).map((x) => x.id), [...addedMeanwhile].reverse());

      const cancelled = await o.listOrders({ status: OrderStatus.CANCELLED });
      assert.deepEqual(cancelled.orders.map((x) => x.id), [created[10], created[3]]);
      const pending = await o.listOrders({ status: OrderStatus.PENDING, pageSize: 100 });
      assert.equal(pending.orders.length, 25 - 2 + 3);
      assert.ok(pending.orders.every((x) => x.status === OrderStatus.PENDING));
    });

    it("a page token only works for the same filter and owner; tampered tokens, bad sizes, statuses and ids are INVALID_ARGUMENT", async () => {
      const o = t.orders(gina.token);
      const { nextPageToken } = await o.listOrders({ pageSize: 2 });
      assert.notEqual(nextPageToken, "");
      await rejectsWith(o.listOrders({ pageToken: nextPageToken, status: OrderStatus.PENDING }), Code.InvalidArgument, ["pageToken"]);
      await rejectsWith(t.orders(admin.token).listOrders({ pageToken: nextPageToken }), Code.InvalidArgument, ["pageToken"]);
      const ok = await t.orders(admin.token).listOrders({ pageToken: nextPageToken, userId: gina.id, pageSize: 2 });
      assert.equal(ok.orders.length, 2);
      const [p, m] = nextPageToken.split(".");
      await rejectsWith(o.listOrders({ pageToken: `${p}.${m.split("").reverse().join("")}` }), Code.InvalidArgument, ["pageToken"]);
      await rejectsWith(o.listOrders({ pageToken: "not a token" }), Code.InvalidArgument, ["pageToken"]);
      await rejectsWith(o.listOrders({ pageSize: -3 }), Code.InvalidArgument, ["pageSize"]);
      await rejectsWith(o.listOrders({ status: 99 as OrderStatus }), Code.InvalidArgument, ["status"]);
      await rejectsWith(o.listOrders({ userId: "abc" }), Code.InvalidArgument, ["userId"]);
      await rejectsWith(o.listOrders({ pageSize: -1, status: 7 as OrderStatus, userId: "x" }), Code.InvalidArgument, ["status", "userId"]);
    });
  });

  describe("pending-order cleanup", () => {
    const backdate = (id: string, seconds: number) =>
      sql`update orders.orders set created_at = now() - make_interval(secs => ${seconds}) where id = ${id}`.execute(db);

    it("cancels only orders PENDING past the configured age (default 24 h)", async () => {
      const o = t.orders(alice.token);
      const old = (await o.createOrder(valid())).order!.id;
      const fresh = (await o.createOrder(valid())).order!.id;
      const oldConfirmed = (await o.createOrder(valid())).order!.id;
      await t.orders(admin.token).updateOrder({ order: create(OrderSchema, { id: oldConfirmed, status: OrderStatus.CONFIRMED }) });
      await backdate(old, 86_400 + 60);
      await backdate(oldConfirmed, 86_400 + 60);
      const youngish = (await o.createOrder(valid())).order!.id;
      await backdate(youngish, 86_400 - 600);

      const mod = t.system.modules.find((m) => m.name === "order") as OrderModule;
      const cancelled = await mod.sweepNow();
      assert.deepEqual(cancelled, [old]);
      const status = async (id: string) => (await o.getOrder({ id })).order?.status;
      assert.equal(await status(old), OrderStatus.CANCELLED);
      assert.equal(await status(fresh), OrderStatus.PENDING);
      assert.equal(await status(youngish), OrderStatus.PENDING);
      assert.equal(await status(oldConfirmed), OrderStatus.CONFIRMED);
      assert.deepEqual(await mod.sweepNow(), []);
    });

    it("concurrent sweepers (several instances) cancel each expired order exactly once", async () => {
      const harry = await signUp(t, "Harry");
      const ids: string[] = [];
      for (let i = 0; i < 120; i++) {
        const line = { productId, sku: "X", name: "x", quantity: 1, unitPriceMinor: 1n, currency: "EUR" };
        const id = orderIdFor(harry.id, `s${i}`);
        ids.push((await store.create({ id, userId: harry.id, requestId: `s${i}`, lines: [line], currency: "EUR", commitBefore: new Date(Date.now() + 60_000) })).order.id);
      }
      await sql`update orders.orders set created_at = now() - interval '2 days' where user_id = ${harry.id}`.execute(db);
      const runs = await Promise.all(Array.from({ length: 4 }, () => store.cancelExpiredPending(86_400, 10)));
      const all = runs.flat().filter((id) => ids.includes(id));
      assert.equal(all.length, ids.length, "no order cancelled twice");
      assert.deepEqual([...all].sort(), [...ids].sort(), "every expired order cancelled");
    });
  });

  describe("OrderInternalService", () => {
    it("refuses user tokens and anonymous callers", async () => {
      await rejectsWith(t.ordersInternal(alice.token).markOwnerDeleted({ userId: alice.id }), Code.PermissionDenied);
      await rejectsWith(t.ordersInternal().markOwnerDeleted({ userId: alice.id }), Code.Unauthenticated);
    });
  });
});

describe("order service: the background cleanup job", function () {
  let t: TestSystem;
  after(async () => t?.stop());

  it("runs on its interval and cancels expired PENDING orders (ORDER_PENDING_TTL_SECONDS, ORDER_SWEEP_INTERVAL_MS)", async () => {
    t = await startTestSystem({ edge: false, env: { ORDER_PENDING_TTL_SECONDS: "3600", ORDER_SWEEP_INTERVAL_MS: "100" } });
    const u = await signUp(t);
    productId = (await makeProduct(t)).id;
    const o = t.orders(u.token);
    const old = (await o.createOrder(valid())).order!.id;
    const fresh = (await o.createOrder(valid())).order!.id;
    await sql`update orders.orders set created_at = now() - interval '2 hours' where id = ${old}`.execute(t.system.db.db);
    await eventually("the sweeper cancels the expired order", async () => (await o.getOrder({ id: old })).order?.status === OrderStatus.CANCELLED);
    assert.equal((await o.getOrder({ id: fresh })).order?.status, OrderStatus.PENDING);
  });

  it("refuses bad settings, naming the variable", () => {
    assert.throws(() => orderSettings({ ORDER_PENDING_TTL_SECONDS: "-5" }), /ORDER_PENDING_TTL_SECONDS/);
    assert.throws(() => orderSettings({ ORDER_SWEEP_INTERVAL_MS: "soon" }), /ORDER_SWEEP_INTERVAL_MS/);
    assert.equal(orderSettings({}).pendingTtlSeconds, 86_400);
  });
});
