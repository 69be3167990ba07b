// Schema "orders": orders and their lifecycle. Owned by the order service only.
// user_id refers to a profile in the user service's schema; there is no
// foreign key across schemas (the owner may be deleted, the order stays).
import { sql, type Migration } from "kysely";
import { outboxMigration } from "../../platform/outbox.js";

export const SCHEMA = "orders";

export const migrations: Record<string, Migration> = {
  "001_orders": {
    async up(db) {
      await sql`
        create table orders.orders (
          id uuid primary key,
          user_id uuid not null,
          product text not null check (char_length(product) between 1 and 200),
          quantity integer not null check (quantity between 1 and 1000),
          unit_price_cents bigint not null check (unit_price_cents >= 0),
          total_cents bigint not null check (total_cents = unit_price_cents * quantity),
          status text not null default 'PENDING'
            check (status in ('PENDING', 'CONFIRMED', 'SHIPPED', 'CANCELLED')),
          request_id text not null check (char_length(request_id) between 1 and 100),
          owner_deleted boolean not null default false,
          created_at timestamptz not null default now(),
          updated_at timestamptz not null default now()
        )`.execute(db);
      // Idempotent create (AIP-155): one order per (owner, request id).
      await sql`create unique index orders_owner_request on orders.orders (user_id, request_id)`.execute(db);
      // ListOrders: the owner's orders newest first, keyset on (created_at, id), optionally by status.
      await sql`create index orders_owner_created on orders.orders (user_id, created_at, id)`.execute(db);
      await sql`create index orders_owner_status_created on orders.orders (user_id, status, created_at, id)`.execute(db);
      // The pending-order sweeper: only PENDING rows, oldest first.
      await sql`create index orders_pending_created on orders.orders (created_at) where status = 'PENDING'`.execute(db);
    },
  },
  // Events written with the change they describe, relayed to the bus (platform/outbox.ts, ./events.ts).
  "002_outbox": outboxMigration(SCHEMA),
};
