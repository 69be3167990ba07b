// Row <-> message conversions for the order service. Money stays integer
// minor units end to end (BigInt), never a floating-point number; drivers
// return bigint as a string (pg) or a number (PGlite), hence BigInt().
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { MoneySchema, type Money } from "../../gen/acme/catalogue/v1/catalogue_pb.js";
import { OrderLineSchema, OrderSchema, OrderStatus, type Order, type OrderLine } from "../../gen/acme/order/v1/order_pb.js";
import type { OrderLineRow, OrderWithLines, Status } from "./tables.js";

const toEnum: Record<Status, OrderStatus> = {
  PENDING: OrderStatus.PENDING,
  CONFIRMED: OrderStatus.CONFIRMED,
  SHIPPED: OrderStatus.SHIPPED,
  CANCELLED: OrderStatus.CANCELLED,
};

export const statusEnum = (s: Status): OrderStatus => toEnum[s];

export const statusOf = (s: OrderStatus): Status | undefined =>
  (Object.keys(toEnum) as Status[]).find((k) => toEnum[k] === s);

const money = (amountMinor: bigint, currency: string): Money => create(MoneySchema, { amountMinor, currency: currency.trim() });

export function toLine(r: OrderLineRow): OrderLine {
  const unit = BigInt(r.unit_price_minor);
  return create(OrderLineSchema, {
    productId: r.product_id,
    sku: r.sku,
    name: r.name,
    quantity: r.quantity,
    unitPrice: money(unit, r.currency),
    lineTotal: money(unit * BigInt(r.quantity), r.currency),
  });
}

/**
 * What an order says in the fields deprecated by lines (Order and
 * OrderCreated): for an order of lines, product and unit price of a one-line
 * order ("" and 0 for several lines), the units of all lines, the total; for
 * an order made before lines, its own columns.
 */
export function legacyFields(r: OrderWithLines): { product: string; quantity: number; unitPriceCents: bigint; totalCents: bigint } {
  if (!r.lines.length) {
    return { product: r.product ?? "", quantity: r.quantity ?? 0, unitPriceCents: BigInt(r.unit_price_cents ?? 0), totalCents: BigInt(r.total_cents ?? 0) };
  }
  const one = r.lines.length === 1 ? r.lines[0] : undefined;
  return {
    product: one?.name ?? "",
    quantity: r.lines.reduce((n, l) => n + l.quantity, 0),
    unitPriceCents: one ? BigInt(one.unit_price_minor) : 0n,
    totalCents: BigInt(r.total_minor ?? 0),
  };
}

/** The order's total: the sum of its lines in its one currency (for an order made before lines, total_cents without a currency). */
export function totalOf(r: OrderWithLines): Money {
  return r.currency ? money(BigInt(r.total_minor ?? 0), r.currency) : money(BigInt(r.total_cents ?? 0), "");
}

export function toOrder(r: OrderWithLines): Order {
  return create(OrderSchema, {
    id: r.id,
    userId: r.user_id,
    ...legacyFields(r),
    lines: r.lines.map(toLine),
    total: totalOf(r),
    status: toEnum[r.status],
    requestId: r.request_id,
    ownerDeleted: r.owner_deleted,
    createdAt: timestampFromDate(r.created_at),
    updatedAt: timestampFromDate(r.updated_at),
  });
}
