// CatalogueInternalService: reservations under contention. 200 concurrent
// Reserves for 50 units (exactly 50 succeed, the invariant holds throughout),
// idempotency by order id, all-or-nothing lines, Release and Commit exactly
// once when called twice at once, the sweeper releasing expired reservations
// (of order ids the order service settles as having no order) once with two
// sweepers at the same moment, and Hold preventing expiry.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { sql, type Kysely } from "kysely";
import { ReservationState } from "../../gen/acme/catalogue/v1/catalogue_pb.js";
import { PreconditionFailureSchema } from "../../gen/google/rpc/error_details_pb.js";
import { SERVICE_NAMES } from "../../app/services.js";
import { silentLogger } from "../../platform/logger.js";
import { loadSecrets } from "../../platform/secrets.js";
import { ReservationStore } from "../../services/catalogue/reservations.js";
import { createSweeper } from "../../services/catalogue/sweeper.js";
import type { CatalogueDb } from "../../services/catalogue/tables.js";
import { rejectsWith } from "../user/helpers.js";
import { countsOf, makeProduct, startCatalogueSystem, type CatalogueSystem } from "./support.js";

describe("catalogue: reservations", function () {
  this.timeout(60_000);
  let s: CatalogueSystem;
  // With the order service: the sweeper asks it to settle each expired reservation before releasing it.
  before(async () => (s = await startCatalogueSystem({ services: ["auth", "user", "order", "catalogue"] })));
  after(async () => s?.stop());
  const internal = () => s.t.catalogueInternal(s.orderToken);
  const reserve = (orderId: string, lines: { productId: string; quantity: number }[]) => internal().reserve({ orderId, lines });
  /** Make a reservation's expiry pass now. */
  const expire = (orderId: string) =>
    sql`update catalogue.reservations set reserved_until = now() - interval '1 second' where order_id = ${orderId}`.execute(s.t.system.db.db);

  it("200 concurrent Reserves of one unit against stock 50: exactly 50 succeed, 150 are told 0 left", async () => {
    const p = await makeProduct(s, { initialStock: 50, price: { amountMinor: 1999n, currency: "EUR" } });
    let sampling = true;
    let samples = 0;
    const sampler = (async () => {
      while (sampling) {
        const c = await countsOf(s, p.id);
        assert.ok(c.reserved + c.sold <= c.stock && c.reserved >= 0, `invariant broken: ${JSON.stringify(c)}`);
        samples++;
      }
    })();
    const results = await Promise.allSettled(Array.from({ length: 200 }, () => reserve(randomUUID(), [{ productId: p.id, quantity: 1 }])));
    sampling = false;
    await sampler;
    assert.ok(samples > 1, "the invariant was sampled while the reserves ran");
    const ok = results.filter((r) => r.status === "fulfilled");
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => ConnectError.from(r.reason));
    assert.equal(ok.length, 50);
    assert.equal(refused.length, 150);
    for (const e of refused) {
      assert.equal(e.code, Code.FailedPrecondition, e.rawMessage);
      assert.ok(e.rawMessage.includes(p.id) && e.rawMessage.includes("0 left"), e.rawMessage);
      const v = e.findDetails(PreconditionFailureSchema)[0]?.violations[0];
      assert.deepEqual([v?.type, v?.subject], ["STOCK", p.id]);
    }
    const first = ok[0].status === "fulfilled" ? ok[0].value.reservation! : undefined;
    assert.equal(first?.state, ReservationState.PENDING);
    assert.deepEqual([first?.lines[0].unitPrice?.amountMinor, first?.lines[0].lineTotal?.amountMinor, first?.totals[0].currency], [1999n, 1999n, "EUR"]);
    assert.ok(first?.reservedUntil);
    assert.deepEqual(await countsOf(s, p.id), { stock: 50, reserved: 50, sold: 0 });
  });

  it("a repeated Reserve with the same order id reserves once, even at the same moment", async () => {
    const p = await makeProduct(s, { initialStock: 10 });
    const orderId = randomUUID();
    const results = await Promise.all(Array.from({ length: 5 }, () => reserve(orderId, [{ productId: p.id, quantity: 3 }])));
    assert.equal(results.filter((r) => r.created).length, 1);
    assert.ok(results.every((r) => r.reservation?.orderId === orderId && r.reservation.lines[0].quantity === 3));
    // Later, with other lines: still the first reservation.
    const again = await reserve(orderId, [{ productId: p.id, quantity: 7 }]);
    assert.deepEqual([again.created, again.reservation?.lines[0].quantity], [false, 3]);
    assert.deepEqual(await countsOf(s, p.id), { stock: 10, reserved: 3, sold: 0 });
  });

  it("all lines or none; unknown and inactive products are refused naming the product", async () => {
    const a = await makeProduct(s, { initialStock: 5, price: { amountMinor: 250n, currency: "EUR" } });
    const b = await makeProduct(s, { initialStock: 1, price: { amountMinor: 100n, currency: "USD" } });
    const e = await rejectsWith(reserve(randomUUID(), [{ productId: a.id, quantity: 2 }, { productId: b.id, quantity: 2 }]), Code.FailedPrecondition);
    assert.ok(e.rawMessage.includes(b.id) && e.rawMessage.includes("1 left"), e.rawMessage);
    assert.deepEqual(await countsOf(s, a.id), { stock: 5, reserved: 0, sold: 0 }, "the first line was not kept");
    const unknown = randomUUID();
    const u = await rejectsWith(reserve(randomUUID(), [{ productId: a.id, quantity: 1 }, { productId: unknown, quantity: 1 }]), Code.FailedPrecondition);
    assert.deepEqual(u.findDetails(PreconditionFailureSchema)[0]?.violations.map((v) => [v.type, v.subject]), [["PRODUCT", unknown]]);
    const gone = await makeProduct(s);
    await s.t.catalogue(s.admin.token).deactivateProduct({ id: gone.id });
    const g = await rejectsWith(reserve(randomUUID(), [{ productId: gone.id, quantity: 1 }]), Code.FailedPrecondition);
    assert.match(g.rawMessage, /not for sale/);
    // Two currencies: a total per currency.
    const both = await reserve(randomUUID(), [{ productId: a.id, quantity: 2 }, { productId: b.id, quantity: 1 }]);
    assert.deepEqual(both.reservation?.totals.map((m) => [m.currency, m.amountMinor]), [["EUR", 500n], ["USD", 100n]]);
  });

  it("validates the request, naming the fields", async () => {
    const p = await makeProduct(s);
    await rejectsWith(reserve("x", []), Code.InvalidArgument, ["orderId", "lines"]);
    await rejectsWith(reserve(randomUUID(), [{ productId: "nope", quantity: 0 }]), Code.InvalidArgument, ["lines[0].productId", "lines[0].quantity"]);
    await rejectsWith(reserve(randomUUID(), [{ productId: p.id, quantity: 1 }, { productId: p.id, quantity: 1 }]), Code.InvalidArgument, ["lines[1].productId"]);
    await rejectsWith(internal().release({ orderId: "" }), Code.InvalidArgument, ["orderId"]);
    await rejectsWith(internal().commit({ orderId: randomUUID() }), Code.NotFound);
    // Users, even admins, may not call it.
    await assert.rejects(s.t.catalogueInternal(s.admin.token).reserve({ orderId: randomUUID(), lines: [{ productId: p.id, quantity: 1 }] }));
  });

  it("Release twice at once puts the units back once; a released reservation cannot be committed", async () => {
    const p = await makeProduct(s, { initialStock: 10 });
    const orderId = randomUUID();
    await reserve(orderId, [{ productId: p.id, quantity: 4 }]);
    const [r1, r2] = await Promise.all([internal().release({ orderId }), internal().release({ orderId })]);
    assert.deepEqual([r1.changed, r2.changed].sort(), [false, true]);
    assert.equal(r1.reservation?.state, ReservationState.RELEASED);
    assert.deepEqual(await countsOf(s, p.id), { stock: 10, reserved: 0, sold: 0 });
    assert.equal((await internal().release({ orderId })).changed, false);
    await rejectsWith(internal().commit({ orderId }), Code.FailedPrecondition);
    await rejectsWith(internal().hold({ orderId }), Code.FailedPrecondition);
  });

  it("Commit twice at once sells the units once; a committed reservation cannot be released", async () => {
    const p = await makeProduct(s, { initialStock: 10 });
    const orderId = randomUUID();
    await reserve(orderId, [{ productId: p.id, quantity: 4 }]);
    assert.equal((await internal().hold({ orderId })).changed, true);
    const [c1, c2] = await Promise.all([internal().commit({ orderId }), internal().commit({ orderId })]);
    assert.deepEqual([c1.changed, c2.changed].sort(), [false, true]);
    assert.equal(c2.reservation?.state, ReservationState.COMMITTED);
    assert.deepEqual(await countsOf(s, p.id), { stock: 10, reserved: 0, sold: 4 });
    const e = await rejectsWith(internal().release({ orderId }), Code.FailedPrecondition);
    assert.deepEqual(e.findDetails(PreconditionFailureSchema)[0]?.violations.map((v) => [v.type, v.subject]), [["RESERVATION", orderId]]);
  });

  it("two sweepers at the same moment release each expired pending reservation exactly once; held ones stay", async () => {
    const p = await makeProduct(s, { initialStock: 100 });
    const orders: string[] = Array.from({ length: 30 }, () => randomUUID());
    for (const orderId of orders) await reserve(orderId, [{ productId: p.id, quantity: 2 }]);
    const held = orders.slice(0, 5);
    for (const orderId of held) await internal().hold({ orderId });
    const live = randomUUID();
    await reserve(live, [{ productId: p.id, quantity: 1 }]);
    for (const orderId of orders) await expire(orderId);
    // A pending reservation past its time can no longer be held or committed; only released.
    await rejectsWith(internal().hold({ orderId: orders[10] }), Code.FailedPrecondition);
    await rejectsWith(internal().commit({ orderId: orders[10] }), Code.FailedPrecondition);
    // A second instance's sweeper, asking the order service over gRPC with the catalogue's service token.
    const secrets = loadSecrets(s.t.dataDir, s.t.env, SERVICE_NAMES);
    const { accessToken } = await s.t.auth().issueServiceToken({ clientId: "catalogue-service", clientSecret: secrets.clientSecrets.catalogue, audience: "acme-order" });
    const other = createSweeper({
      store: new ReservationStore(s.t.system.db.db as Kysely<CatalogueDb>, 120),
      orders: () => s.t.ordersInternal(accessToken),
      log: silentLogger,
      intervalMs: 0,
    });
    const [a, b] = await Promise.all([s.module.sweepNow(), other.sweep()]);
    const released = [...a, ...b];
    const expected = orders.filter((o) => !held.includes(o));
    assert.equal(released.length, new Set(released).size, "no order released twice");
    assert.deepEqual(new Set(released.filter((o) => orders.includes(o))), new Set(expected));
    assert.ok(!released.includes(live), "an unexpired reservation stays");
    assert.deepEqual(await countsOf(s, p.id), { stock: 100, reserved: held.length * 2 + 1, sold: 0 });
    assert.deepEqual((await Promise.all([s.module.sweepNow(), other.sweep()])).flat().filter((o) => orders.includes(o)), [], "nothing left to release");
    assert.equal((await internal().release({ orderId: expected[0] })).reservation?.state, ReservationState.RELEASED);
    // The held ones can still be committed.
    assert.equal((await internal().commit({ orderId: held[0] })).changed, true);
  });
});
