// The catalogue's one consumer: the order service's events (exchange
// acme.order) drive the order's reservation, so a Hold or Commit the order
// service could not deliver itself (a crash, a timeout) still happens:
//   order.created                      -> Hold
//   order.status_changed to CONFIRMED  -> Commit
//   order.cancelled (owner, admin, the pending-order sweeper "expired") -> Release
// Idempotent twice over (platform/consumer.ts): a redelivery is recorded in
// catalogue.processed_events, and each move is a no-op once made
// (reservations.ts). The event proves the order exists, so a pending
// reservation past reserved_until that the sweeper has not released yet is
// still held or committed (orderExists). A move the reservation cannot make
// (an order without a reservation, from before orders reserved stock; a
// reservation already released or committed) is logged and acknowledged:
// retrying would never change it.
import { fromBinary } from "@bufbuild/protobuf";
import type { Kysely } from "kysely";
import { EnvelopeSchema } from "../../gen/acme/events/v1/events_pb.js";
import { OrderStatus } from "../../gen/acme/order/v1/order_pb.js";
import { backoffWithJitter, PoisonMessage, type ConsumerSpec, type MessageHandler } from "../../platform/bus/bus.js";
import { idempotent } from "../../platform/consumer.js";
import type { Logger } from "../../platform/logger.js";
import { notifyRelays } from "../../platform/outbox.js";
import { UUID_RE } from "../../platform/validate.js";
import { SCHEMA } from "./migrations.js";
import type { ReservationStore, Transition, Trx } from "./reservations.js";
import type { CatalogueDb } from "./tables.js";

export const ORDER_EVENTS: Omit<ConsumerSpec, "backoffMs"> = {
  queue: "catalogue.order-events",
  exchange: "acme.order",
  bindings: ["order.created", "order.status_changed", "order.cancelled"],
  maxAttempts: 10,
};

/** What an order event asks of its reservation, if anything. */
export function moveOf(body: Uint8Array): { orderId: string; move: Exclude<Transition, "expire"> } | undefined {
  let event;
  try {
    event = fromBinary(EnvelopeSchema, body).event;
  } catch {
    throw new PoisonMessage("body is not an acme.events.v1.Envelope");
  }
  const orderId = (() => {
    switch (event.case) {
      case "orderCreated":
      case "orderStatusChanged":
      case "orderCancelled":
        return event.value.orderId;
      default:
        throw new PoisonMessage(`not an order event (${event.case ?? "empty"})`);
    }
  })();
  if (!UUID_RE.test(orderId)) throw new PoisonMessage("order event without a valid order_id");
  const id = orderId.toLowerCase();
  if (event.case === "orderCreated") return { orderId: id, move: "hold" };
  if (event.case === "orderCancelled") return { orderId: id, move: "release" };
  // A cancellation's status change comes with its OrderCancelled: that one releases.
  if (event.case === "orderStatusChanged" && event.value.toStatus === OrderStatus.CONFIRMED) return { orderId: id, move: "commit" };
  return undefined;
}

export function orderEventsConsumer(db: Kysely<CatalogueDb>, reservations: ReservationStore, log: Logger): { spec: ConsumerSpec; handler: MessageHandler } {
  const inner = idempotent({
    db,
    schema: SCHEMA,
    consumer: ORDER_EVENTS.queue,
    async handle(delivery, trx) {
      const what = moveOf(delivery.message.body);
      if (!what) return;
      const r = await reservations.transitionIn(trx as unknown as Trx, what.orderId, what.move, { orderExists: true });
      if (r.outcome === "missing") log.info("order event for an order without a reservation", { orderId: what.orderId, move: what.move });
      if (r.outcome === "refused") {
        // An order whose reservation is gone (or a cancelled order's already sold units):
        // nothing a retry could change; operators need to see it.
        log.error("order event the reservation cannot follow", { orderId: what.orderId, move: what.move, state: r.state, expired: r.expired });
      }
    },
  });
  // The stock events of a move are committed now: wake the relay (it would otherwise poll).
  const handler: MessageHandler = async (delivery) => {
    await inner(delivery);
    notifyRelays(db, SCHEMA);
  };
  return { spec: { ...ORDER_EVENTS, backoffMs: backoffWithJitter(200, 30_000) }, handler };
}
