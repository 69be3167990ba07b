// Row <-> message conversions for the catalogue service. Money stays integer
// minor units end to end (BigInt), never a floating-point number.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  MoneySchema, ProductSchema, ProductStockSchema, ReservationSchema, ReservationState as State, ReservedLineSchema,
  type Money, type Product, type ProductStock, type Reservation,
} from "../../gen/acme/catalogue/v1/catalogue_pb.js";
import { availableOf, type ProductRow, type ReservationRow, type ReservationState } from "./tables.js";

const STATES: Record<ReservationState, State> = {
  pending: State.PENDING,
  held: State.HELD,
  released: State.RELEASED,
  committed: State.COMMITTED,
};

export const money = (amountMinor: bigint, currency: string): Money => create(MoneySchema, { amountMinor, currency: currency.trim() });

export function toProduct(r: ProductRow): Product {
  return create(ProductSchema, {
    id: r.id,
    sku: r.sku,
    name: r.name,
    description: r.description,
    price: money(BigInt(r.price_minor), r.currency),
    available: availableOf(r),
    active: r.active,
    createdAt: timestampFromDate(r.created_at),
    updatedAt: timestampFromDate(r.updated_at),
  });
}

export function toStock(r: ProductRow): ProductStock {
  const available = availableOf(r);
  return create(ProductStockSchema, {
    productId: r.id,
    stock: r.stock,
    reserved: r.reserved,
    sold: r.sold,
    available,
    lowStockThreshold: r.low_stock_threshold,
    low: available <= r.low_stock_threshold,
  });
}

/** One order's reservation rows (all in one state) as a Reservation; lines by product id, totals by currency. */
export function toReservation(rows: ReservationRow[]): Reservation {
  const sorted = [...rows].sort((a, b) => a.product_id.localeCompare(b.product_id));
  const totals = new Map<string, bigint>();
  const lines = sorted.map((r) => {
    const unit = BigInt(r.unit_price_minor);
    const total = unit * BigInt(r.quantity);
    const currency = r.currency.trim();
    totals.set(currency, (totals.get(currency) ?? 0n) + total);
    return create(ReservedLineSchema, { productId: r.product_id, sku: r.sku, name: r.name, quantity: r.quantity, unitPrice: money(unit, currency), lineTotal: money(total, currency) });
  });
  const first = sorted[0];
  const latest = sorted.reduce((d, r) => (r.updated_at > d ? r.updated_at : d), first.updated_at);
  return create(ReservationSchema, {
    orderId: first.order_id,
    state: STATES[first.state],
    lines,
    totals: [...totals.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([c, t]) => money(t, c)),
    reservedUntil: timestampFromDate(first.reserved_until),
    createdAt: timestampFromDate(first.created_at),
    updatedAt: timestampFromDate(latest),
  });
}
