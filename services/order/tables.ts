// The order service's tables as kysely sees them (migrations.ts creates
// them): types only, so the store, the converters and the events share them.
import type { ColumnType, Generated, Selectable } from "kysely";
import type { Timestamps } from "../../platform/db.js";

export const STATUSES = ["PENDING", "CONFIRMED", "SHIPPED", "CANCELLED"] as const;
export type Status = (typeof STATUSES)[number];

type Int8 = ColumnType<string | number | bigint, string, string>;
type NullableInt8 = ColumnType<string | number | bigint | null, string | null | undefined, string | null>;

export interface OrderTable extends Timestamps {
  id: string;
  user_id: string;
  /** Orders made before lines (migration 003): product, quantity and price as the client sent them; null since. */
  product: ColumnType<string | null, string | null | undefined, string | null>;
  quantity: ColumnType<number | null, number | null | undefined, number | null>;
  unit_price_cents: NullableInt8;
  total_cents: NullableInt8;
  /** Sum of the lines' totals, in `currency` (null for orders made before lines). */
  total_minor: NullableInt8;
  currency: ColumnType<string | null, string | null | undefined, string | null>;
  status: ColumnType<Status, Status | undefined, Status>;
  request_id: string;
  owner_deleted: Generated<boolean>;
}

/** One product of an order, priced by the catalogue when its stock was reserved. */
export interface OrderLineTable {
  order_id: string;
  /** 0-based, in the order of the catalogue's reservation (by product id). */
  position: number;
  product_id: string;
  sku: string;
  name: string;
  quantity: number;
  unit_price_minor: Int8;
  currency: string;
}

/** Reservations this service gave up on (it released them): their order is never inserted. */
export interface AbandonedTable {
  order_id: string;
  reason: string;
  created_at: Generated<Date>;
}

export interface OrderDb {
  "orders.orders": OrderTable;
  "orders.order_lines": OrderLineTable;
  "orders.abandoned_reservations": AbandonedTable;
}

export type OrderRow = Selectable<OrderTable>;
export type OrderLineRow = Selectable<OrderLineTable>;
/** An order with its lines, as the API and the events show it. */
export type OrderWithLines = OrderRow & { lines: OrderLineRow[] };
