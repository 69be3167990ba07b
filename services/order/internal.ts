// OrderInternalService: called by other services with a service token
// (the user service, when a user is deleted; the catalogue's reservation
// sweeper, before it releases an expired reservation).
import type { ServiceImpl } from "@connectrpc/connect";
import { OrderInternalService, OrderStatus } from "../../gen/acme/order/v1/order_pb.js";
import { Validator } from "../../platform/validate.js";
import { statusEnum } from "./convert.js";
import type { OrderStore } from "./store.js";

export function internalHandlers(store: OrderStore): Partial<ServiceImpl<typeof OrderInternalService>> {
  return {
    async markOwnerDeleted(req) {
      new Validator().uuid("userId", req.userId).done();
      // Idempotent: a repeated call marks nothing new.
      return { updated: await store.markOwnerDeleted(req.userId) };
    },

    async settleReservation(req) {
      new Validator().uuid("orderId", req.orderId).done();
      // Under the lock CreateOrder's insert takes: the order exists, or it is marked
      // abandoned now (no insert after) and its reservation may be released. Idempotent.
      const status = await store.settle(req.orderId.toLowerCase(), "expired");
      return status ? { orderExists: true, status: statusEnum(status) } : { orderExists: false, status: OrderStatus.UNSPECIFIED };
    },
  };
}
