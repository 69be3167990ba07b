// The catalogue's events, written to catalogue.outbox in the transaction of
// each change: ProductCreated, StockChanged (counts after, reason, order),
// StockLow once per crossing of the threshold; and relayed to the bus on the
// exchange acme.catalogue.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { fromBinary } from "@bufbuild/protobuf";
import { EnvelopeSchema } from "../../gen/acme/events/v1/events_pb.js";
import type { BusMessage } from "../../platform/bus/bus.js";
import { memoryBus } from "../../platform/bus/memory.js";
import { createLogger } from "../../platform/logger.js";
import { eventually } from "../user/helpers.js";
import { makeProduct, outboxOf, startCatalogueSystem, type CatalogueSystem } from "./support.js";

/** The product's events so far, as "routing key: detail". */
async function eventsOf(s: CatalogueSystem, productId: string): Promise<string[]> {
  return (await outboxOf(s, productId)).map((r) => {
    const e = fromBinary(EnvelopeSchema, new Uint8Array(r.body)).event;
    assert.equal(r.type, e.value?.$typeName);
    switch (e.case) {
      case "productCreated": return `${r.routing_key}: ${e.value.sku} ${e.value.priceMinor} ${e.value.currency} ${e.value.stock}`;
      case "stockChanged": return `${r.routing_key}: ${e.value.reason} ${e.value.stock}/${e.value.reserved}/${e.value.sold}/${e.value.available}${e.value.orderId ? " order" : ""}`;
      case "stockLow": return `${r.routing_key}: ${e.value.available} <= ${e.value.lowStockThreshold}`;
      default: return `${r.routing_key}: ${e.case}`;
    }
  });
}

describe("catalogue: events", function () {
  this.timeout(30_000);
  let s: CatalogueSystem;
  const bus = memoryBus();
  const received: BusMessage[] = [];
  before(async () => {
    // Nothing consumes the catalogue's events yet (the bus refuses an unroutable publish and
    // the outbox keeps the row): bind a queue first, as a consumer would.
    await bus.consume(
      { queue: "test.catalogue-events", exchange: "acme.catalogue", bindings: ["catalogue.#"], maxAttempts: 1, backoffMs: () => 10 },
      async (d) => void received.push(d.message),
    );
    s = await startCatalogueSystem({ bus });
  });
  after(async () => s?.stop());
  const internal = () => s.t.catalogueInternal(s.orderToken);

  it("every change of the counts is a StockChanged; StockLow once per crossing of the threshold", async () => {
    const p = await makeProduct(s, { sku: "EVT-1", price: { amountMinor: 1234n, currency: "EUR" }, initialStock: 5, lowStockThreshold: 2 });
    const [o1, o2, o3] = [randomUUID(), randomUUID(), randomUUID()];
    await internal().reserve({ orderId: o1, lines: [{ productId: p.id, quantity: 3 }] }); // 5 -> 2: low
    await internal().reserve({ orderId: o2, lines: [{ productId: p.id, quantity: 1 }] }); // 2 -> 1: still low, no StockLow
    await internal().release({ orderId: o1 }); // 1 -> 4: above again
    await internal().release({ orderId: o1 }); // no-op: no event
    await internal().reserve({ orderId: o3, lines: [{ productId: p.id, quantity: 2 }] }); // 4 -> 2: low again
    await internal().commit({ orderId: o3 }); // reserved -> sold: available unchanged
    await s.t.catalogue(s.admin.token).restockProduct({ id: p.id, quantity: 10 }); // 2 -> 12
    await s.t.catalogue(s.admin.token).updateProduct({ id: p.id, lowStockThreshold: 20 }); // 12 <= 20: low by threshold
    assert.deepEqual(await eventsOf(s, p.id), [
      "catalogue.product_created: EVT-1 1234 EUR 5",
      "catalogue.stock_changed: created 5/0/0/5",
      "catalogue.stock_changed: reserved 5/3/0/2 order",
      "catalogue.stock_low: 2 <= 2",
      "catalogue.stock_changed: reserved 5/4/0/1 order",
      "catalogue.stock_changed: released 5/1/0/4 order",
      "catalogue.stock_changed: reserved 5/3/0/2 order",
      "catalogue.stock_low: 2 <= 2",
      "catalogue.stock_changed: committed 5/1/2/2 order",
      "catalogue.stock_changed: restocked 15/1/2/12",
      "catalogue.stock_low: 12 <= 20",
    ]);
  });

  it("a product created at or below its threshold is low from the start; a refused Reserve writes nothing", async () => {
    const p = await makeProduct(s, { initialStock: 0, lowStockThreshold: 0 });
    await assert.rejects(internal().reserve({ orderId: randomUUID(), lines: [{ productId: p.id, quantity: 1 }] }));
    assert.deepEqual((await eventsOf(s, p.id)).slice(1), ["catalogue.stock_changed: created 0/0/0/0", "catalogue.stock_low: 0 <= 0"]);
  });

  it("the relay publishes them on acme.catalogue", async () => {
    const p = await makeProduct(s, { initialStock: 3 });
    await eventually("ProductCreated published", async () =>
      received.some((m) => m.routingKey === "catalogue.product_created" && fromBinary(EnvelopeSchema, m.body).aggregateId === p.id));
  });
});

describe("catalogue: its events are consumed by the notification service", function () {
  this.timeout(30_000);
  let s: CatalogueSystem;
  const lines: string[] = [];
  before(async () => {
    const log = createLogger({}, { level: "warn", pretty: false, write: (line) => lines.push(line) });
    s = await startCatalogueSystem({ services: ["auth", "user", "catalogue", "notification"], log });
  });
  after(async () => s?.stop());

  it("every row of the catalogue's outbox is published (a queue is bound); StockLow is logged for the operators", async () => {
    const p = await makeProduct(s, { initialStock: 1, lowStockThreshold: 1 });
    await eventually("the catalogue's outbox drained", async () => {
      const rows = await outboxOf(s, p.id);
      return rows.length >= 2 && rows.every((r) => r.sent_at !== null);
    });
    await eventually("StockLow logged", async () => lines.some((l) => l.includes("stock low") && l.includes(p.id)));
  });
});
