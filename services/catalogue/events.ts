// Events the catalogue service publishes (acme.events.v1), written to its
// outbox (catalogue.outbox, platform/outbox.ts) in the transaction of the
// change. The aggregate is the product: its events leave in the order its
// row was changed.
import { create } from "@bufbuild/protobuf";
import type { Transaction } from "kysely";
import { ProductCreatedSchema, StockChangedSchema, StockLowSchema } from "../../gen/acme/events/v1/events_pb.js";
import { enqueue, type OutboxEvent } from "../../platform/outbox.js";
import { envelopeEvent } from "../envelope.js";
import { SCHEMA } from "./migrations.js";
import { availableOf, type ProductRow } from "./tables.js";

/** Where the relay of this service's outbox reads and publishes (app/ starts it). */
export const OUTBOX = { schema: SCHEMA, exchange: "acme.catalogue" } as const;

/** Routing keys on OUTBOX.exchange. */
export const ROUTING = {
  productCreated: "catalogue.product_created",
  stockChanged: "catalogue.stock_changed",
  stockLow: "catalogue.stock_low",
} as const;

/** Why a product's stock counts changed (StockChanged.reason). */
export const STOCK_REASON = {
  created: "created",
  restocked: "restocked",
  reserved: "reserved",
  released: "released",
  expired: "expired",
  committed: "committed",
} as const;
export type StockReason = (typeof STOCK_REASON)[keyof typeof STOCK_REASON];

/** A new product, as inserted. */
export function productCreated(p: ProductRow): OutboxEvent {
  return envelopeEvent({
    routingKey: ROUTING.productCreated,
    aggregateId: p.id,
    occurredAt: p.created_at,
    event: {
      case: "productCreated",
      value: create(ProductCreatedSchema, { productId: p.id, sku: p.sku, name: p.name, priceMinor: BigInt(p.price_minor), currency: p.currency.trim(), stock: p.stock }),
    },
  });
}

/** The counts of `p` after a change. */
export function stockChanged(p: ProductRow, reason: StockReason, orderId = ""): OutboxEvent {
  return envelopeEvent({
    routingKey: ROUTING.stockChanged,
    aggregateId: p.id,
    occurredAt: p.updated_at,
    event: {
      case: "stockChanged",
      value: create(StockChangedSchema, { productId: p.id, stock: p.stock, reserved: p.reserved, sold: p.sold, available: availableOf(p), reason, orderId }),
    },
  });
}

/** `p`'s available units are at or below its threshold now. */
export function stockLow(p: ProductRow): OutboxEvent {
  return envelopeEvent({
    routingKey: ROUTING.stockLow,
    aggregateId: p.id,
    occurredAt: p.updated_at,
    event: { case: "stockLow", value: create(StockLowSchema, { productId: p.id, sku: p.sku, available: availableOf(p), lowStockThreshold: p.low_stock_threshold }) },
  });
}

/** Was the product low (available <= threshold)? */
export const isLow = (available: number, threshold: number) => available <= threshold;

/**
 * The events of one change of a product's counts or threshold, enqueued in
 * `trx`: StockChanged when the counts moved (`reason`), and StockLow when it
 * crossed into "low" (it was not low before, `before`; it is now), so a
 * product stays quiet while it stays low and speaks again after it rose
 * above its threshold and fell back.
 */
export async function enqueueStockEvents(
  trx: Transaction<any>,
  after: ProductRow,
  before: { available: number; threshold: number },
  change: { reason?: StockReason; orderId?: string },
): Promise<void> {
  if (change.reason) await enqueue(trx, SCHEMA, stockChanged(after, change.reason, change.orderId));
  if (after.active && !isLow(before.available, before.threshold) && isLow(availableOf(after), after.low_stock_threshold)) {
    await enqueue(trx, SCHEMA, stockLow(after));
  }
}
