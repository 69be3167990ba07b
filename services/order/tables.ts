// The order service's table as kysely sees it (migrations.ts creates it):
// types only, so the store, the converters and the events share them.
import type { ColumnType, Generated, Selectable } from "kysely";
import type { Timestamps } from "../../platform/db.js";

export const STATUSES = ["PENDING", "CONFIRMED", "SHIPPED", "CANCELLED"] as const;
export type Status = (typeof STATUSES)[number];

type Int8 = ColumnType<string | number | bigint, string, string>;

export interface OrderTable extends Timestamps {
  id: string;
  user_id: string;
  product: string;
  quantity: number;
  unit_price_cents: Int8;
  total_cents: Int8;
  status: ColumnType<Status, Status | undefined, Status>;
  request_id: string;
  owner_deleted: Generated<boolean>;
}

export interface OrderDb {
  "orders.orders": OrderTable;
}

export type OrderRow = Selectable<OrderTable>;
