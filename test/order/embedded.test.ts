// The main user and order flows once on the embedded stack (PGlite + the
// in-process key-value store), the same code paths as on Postgres + Redis.
import { strict as assert } from "node:assert";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import { FieldMaskSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { OrderSchema, OrderStatus } from "../../gen/acme/order/v1/order_pb.js";
import { UserSchema } from "../../gen/acme/user/v1/user_pb.js";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { eventually, rejectsWith, signUp, signUpAdmin } from "../user/helpers.js";
import { line, makeProduct } from "../support/products.js";

describe("user and order flows on the embedded stack (PGlite, memory store)", function () {
  let t: TestSystem;
  before(async () => (t = await startTestSystem({
        database: "pglite",
        store: "memory",
        // Through the embedded edge, with limits high enough for the bursts below.
        env: { ORDER_SWEEP_INTERVAL_MS: "0", RATELIMIT_CONFIG: fileURLToPath(new URL("./fixtures/ratelimit-generous.yaml", import.meta.url)) },
      })));
  after(async () => t?.stop());

  it("profile, orders (idempotent, paged, cancelled, shipped), ownership, deactivation and deletion", async () => {
    assert.equal(t.system.db.kind, "pglite");
    const [alice, bob, admin] = await Promise.all([signUp(t, "Alice"), signUp(t, "Bob"), signUpAdmin(t)]);

    const me = await t.users(alice.token).updateMe({ user: create(UserSchema, { name: "Alice E." }), updateMask: create(FieldMaskSchema, { paths: ["name"] }) });
    assert.equal(me.user?.name, "Alice E.");

    const o = t.orders(alice.token);
    const lampProduct = await makeProduct(t, { name: "Lamp", priceMinor: 4_999_999_999n, stock: 10 }, admin.token);
    const same = await Promise.all(Array.from({ length: 10 }, () => o.createOrder({ lines: line(lampProduct.id, 2), requestId: "k1" })));
    assert.equal(new Set(same.map((r) => r.order!.id)).size, 1);
    const lamp = same[0].order!;
    assert.equal(lamp.total?.amountMinor, 9_999_999_998n);
    assert.equal((await t.catalogue(admin.token).getProductStock({ id: lampProduct.id })).stock?.reserved, 2, "reserved once (PGlite)");
    const itemProduct = await makeProduct(t, { priceMinor: 100n }, admin.token);
    for (let i = 0; i < 4; i++) await o.createOrder({ lines: line(itemProduct.id, 1), requestId: `i${i}` });

    const ids: string[] = [];
    let token = "";
    do {
      const page = await o.listOrders({ pageSize: 2, pageToken: token });
      ids.push(...page.orders.map((x) => x.id));
      token = page.nextPageToken;
    } while (token);
    assert.equal(ids.length, 5);
    assert.equal(new Set(ids).size, 5);
    assert.equal(ids[4], lamp.id, "oldest last");

    await rejectsWith(t.orders(bob.token).getOrder({ id: lamp.id }), Code.NotFound);
    await rejectsWith(t.orders(bob.token).listOrders({ userId: alice.id }), Code.PermissionDenied);
    await rejectsWith(o.createOrder({ lines: [], requestId: "" }), Code.InvalidArgument, ["lines", "requestId"]);

    const confirmed = await t.orders(admin.token).updateOrder({ order: create(OrderSchema, { id: lamp.id, status: OrderStatus.CONFIRMED }) });
    assert.equal(confirmed.order?.status, OrderStatus.CONFIRMED);
    await eventually("the lamps are sold (the catalogue follows OrderStatusChanged)", async () =>
      (await t.catalogue(admin.token).getProductStock({ id: lampProduct.id })).stock?.sold === 2);
    await rejectsWith(o.cancelOrder({ id: lamp.id }), Code.FailedPrecondition);
    const item = ids[0];
    assert.equal((await o.cancelOrder({ id: item })).order?.status, OrderStatus.CANCELLED);

    // The same over REST/JSON through the embedded edge (google.api.http).
    const rest = async (method: string, path: string, token: string, body?: unknown) => {
      const res = await fetch(t.url + path, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Record<string, any> };
    };
    // Answers are the whole response messages: {"user": {...}}, {"order": {...}}.
    const meOverRest = await rest("GET", "/v1/users/me", alice.token);
    assert.equal(meOverRest.status, 200);
    assert.equal(meOverRest.body.user.id, alice.id);
    assert.equal(meOverRest.body.user.name, "Alice E.");
    const seven = await makeProduct(t, { name: "Rest", priceMinor: 7n }, admin.token);
    const posted = await rest("POST", "/v1/orders", alice.token, { lines: [{ productId: seven.id, quantity: 3 }], requestId: "rest-1" });
    assert.equal(posted.status, 200);
    assert.deepEqual(Object.keys(posted.body), ["order"]);
    const order = posted.body.order;
    assert.deepEqual(order.total, { amountMinor: "21", currency: "EUR" });
    assert.equal(order.status, "ORDER_STATUS_PENDING");
    assert.equal(order.userId, alice.id);
    const bad = await rest("POST", "/v1/orders", alice.token, { lines: [{ productId: seven.id, quantity: 0 }], requestId: "rest-2" });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, 3);
    assert.match(JSON.stringify(bad.body.details), /lines\[0\]\.quantity/);
    const listed = await rest("GET", "/v1/orders?status=ORDER_STATUS_PENDING&pageSize=1", alice.token);
    assert.equal(listed.body.orders[0].id, order.id);
    assert.deepEqual((await rest("GET", `/v1/orders/${order.id}`, alice.token)).body, { order });
    const hidden = await rest("GET", `/v1/orders/${order.id}`, bob.token);
    assert.equal(hidden.status, 404);
    assert.equal(hidden.body.code, 5);
    const cancelled = await rest("POST", `/v1/orders/${order.id}:cancel`, alice.token, {});
    assert.equal(cancelled.body.order.id, order.id);
    assert.equal(cancelled.body.order.status, "ORDER_STATUS_CANCELLED");

    const users = await t.users(admin.token).listUsers({ pageSize: 2 });
    assert.equal(users.users.length, 2);
    assert.equal((await t.users(admin.token).listUsers({ pageToken: users.nextPageToken })).users.length, 1);

    await t.users(admin.token).updateUser({ user: create(UserSchema, { id: bob.id, active: false }), updateMask: create(FieldMaskSchema, { paths: ["active"] }) });
    await rejectsWith(t.users(bob.token).getMe({}), Code.Unauthenticated);

    await t.users(alice.token).deleteUser({ id: alice.id });
    await rejectsWith(o.listOrders({}), Code.Unauthenticated);
    const kept = await t.orders(admin.token).listOrders({ userId: alice.id, pageSize: 10 });
    assert.equal(kept.orders.length, 6);
    assert.ok(kept.orders.every((x) => x.ownerDeleted));
  });
});
