// Events the order service publishes (acme.events.v1), written to its outbox
// (orders.outbox, platform/outbox.ts) in the transaction of the change.
import { create } from "@bufbuild/protobuf";
import { OrderCancelledSchema, OrderCreatedSchema, OrderStatusChangedSchema } from "../../gen/acme/events/v1/events_pb.js";
import type { OutboxEvent } from "../../platform/outbox.js";
import { envelopeEvent } from "../envelope.js";
import { legacyFields, statusEnum, toLine, totalOf } from "./convert.js";
import { SCHEMA } from "./migrations.js";
import type { OrderRow, OrderWithLines, Status } from "./tables.js";

/** Where the relay of this service's outbox reads and publishes (app/ starts it). */
export const OUTBOX = { schema: SCHEMA, exchange: "acme.order" } as const;

/** Routing keys on OUTBOX.exchange. */
export const ROUTING = { orderCreated: "order.created", orderStatusChanged: "order.status_changed", orderCancelled: "order.cancelled" } as const;

/** Why an order was cancelled (OrderCancelled.reason): by its owner, by an admin, or by the pending-order sweeper. */
export const CANCEL_REASON = { requested: "requested", admin: "admin", expired: "expired" } as const;
export type CancelReason = (typeof CANCEL_REASON)[keyof typeof CANCEL_REASON];

/** A new order with its lines, as inserted. */
export function orderCreated(row: OrderWithLines): OutboxEvent {
  return envelopeEvent({
    routingKey: ROUTING.orderCreated,
    aggregateId: row.id,
    occurredAt: row.created_at,
    event: {
      case: "orderCreated",
      value: create(OrderCreatedSchema, {
        orderId: row.id,
        userId: row.user_id,
        ...legacyFields(row),
        lines: row.lines.map(toLine),
        total: totalOf(row),
        status: statusEnum(row.status),
      }),
    },
  });
}

/** An order moved from `from` to its status now (`row`, as updated). */
export function orderStatusChanged(row: OrderRow, from: Status): OutboxEvent {
  return envelopeEvent({
    routingKey: ROUTING.orderStatusChanged,
    aggregateId: row.id,
    occurredAt: row.updated_at,
    event: {
      case: "orderStatusChanged",
      value: create(OrderStatusChangedSchema, { orderId: row.id, userId: row.user_id, fromStatus: statusEnum(from), toStatus: statusEnum(row.status) }),
    },
  });
}

/** An order was cancelled from `from` (`row`, as updated). */
export function orderCancelled(row: OrderRow, from: Status, reason: CancelReason): OutboxEvent {
  return envelopeEvent({
    routingKey: ROUTING.orderCancelled,
    aggregateId: row.id,
    occurredAt: row.updated_at,
    event: { case: "orderCancelled", value: create(OrderCancelledSchema, { orderId: row.id, userId: row.user_id, fromStatus: statusEnum(from), reason }) },
  });
}

/** Every event of one status change: OrderStatusChanged, and OrderCancelled when it is a cancellation. */
export function statusChangeEvents(row: OrderRow, from: Status, cancelReason: CancelReason): OutboxEvent[] {
  const events = [orderStatusChanged(row, from)];
  if (row.status === "CANCELLED") events.push(orderCancelled(row, from, cancelReason));
  return events;
}
