// Order service module (placeholder until the user and order issue lands).
import { OrderInternalService, OrderService } from "../../gen/acme/order/v1/order_pb.js";
import type { ServiceDefinition } from "../../platform/service.js";

export const orderService: ServiceDefinition = {
  name: "order",
  async prepare() {
    return {};
  },
  async create() {
    return {
      name: "order",
      services: [OrderService, OrderInternalService],
      routes(router) {
        router.service(OrderService, {});
        router.service(OrderInternalService, {});
      },
    };
  },
};
