// Row <-> message conversions for the order service.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { OrderSchema, OrderStatus, type Order } from "../../gen/acme/order/v1/order_pb.js";
import type { OrderRow, Status } from "./tables.js";

const toEnum: Record<Status, OrderStatus> = {
  PENDING: OrderStatus.PENDING,
  CONFIRMED: OrderStatus.CONFIRMED,
  SHIPPED: OrderStatus.SHIPPED,
  CANCELLED: OrderStatus.CANCELLED,
};

export const statusEnum = (s: Status): OrderStatus => toEnum[s];

export const statusOf = (s: OrderStatus): Status | undefined =>
  (Object.keys(toEnum) as Status[]).find((k) => toEnum[k] === s);

export function toOrder(r: OrderRow): Order {
  return create(OrderSchema, {
    id: r.id,
    userId: r.user_id,
    product: r.product,
    quantity: r.quantity,
    unitPriceCents: BigInt(r.unit_price_cents),
    totalCents: BigInt(r.total_cents),
    status: toEnum[r.status],
    requestId: r.request_id,
    ownerDeleted: r.owner_deleted,
    createdAt: timestampFromDate(r.created_at),
    updatedAt: timestampFromDate(r.updated_at),
  });
}
