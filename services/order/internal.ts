// OrderInternalService: called by other services with a service token
// (the user service, when a user is deleted).
import type { ServiceImpl } from "@connectrpc/connect";
import { OrderInternalService } from "../../gen/acme/order/v1/order_pb.js";
import { Validator } from "../../platform/validate.js";
import type { OrderStore } from "./store.js";

export function internalHandlers(store: OrderStore): Partial<ServiceImpl<typeof OrderInternalService>> {
  return {
    async markOwnerDeleted(req) {
      new Validator().uuid("userId", req.userId).done();
      // Idempotent: a repeated call marks nothing new.
      return { updated: await store.markOwnerDeleted(req.userId) };
    },
  };
}
