// Events the order service publishes (acme.events.v1), written to its outbox
// (orders.outbox, platform/outbox.ts) in the transaction of the change.
import { create } from "@bufbuild/protobuf";
import { OrderCreatedSchema } from "../../gen/acme/events/v1/events_pb.js";
import type { OutboxEvent } from "../../platform/outbox.js";
import { envelopeEvent } from "../envelope.js";
import { toOrder } from "./convert.js";
import { SCHEMA } from "./migrations.js";
import type { OrderRow } from "./store.js";

/** Where the relay of this service's outbox reads and publishes (app/ starts it). */
export const OUTBOX = { schema: SCHEMA, exchange: "acme.order" } as const;

/** Routing keys on OUTBOX.exchange. */
export const ROUTING = { orderCreated: "order.created" } as const;

/** A new order, as inserted. */
export function orderCreated(row: OrderRow): OutboxEvent {
  const o = toOrder(row);
  return envelopeEvent({
    routingKey: ROUTING.orderCreated,
    aggregateId: o.id,
    occurredAt: row.created_at,
    event: {
      case: "orderCreated",
      value: create(OrderCreatedSchema, {
        orderId: o.id,
        userId: o.userId,
        product: o.product,
        quantity: o.quantity,
        unitPriceCents: o.unitPriceCents,
        totalCents: o.totalCents,
        status: o.status,
      }),
    },
  });
}
