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
  // Orders of catalogue products (issue 19): lines priced by the catalogue at Reserve, a total in
  // one currency. The first columns describe orders made before (null for new ones); their
  // checks pass on null.
  "003_lines": {
    async up(db) {
      await sql`
        alter table orders.orders
          alter column product drop not null,
          alter column quantity drop not null,
          alter column unit_price_cents drop not null,
          alter column total_cents drop not null,
          add column total_minor bigint check (total_minor >= 0),
          add column currency char(3) check (currency ~ '^[A-Z]{3}$')`.execute(db);
      await sql`
        create table orders.order_lines (
          order_id uuid not null references orders.orders (id) on delete cascade,
          position smallint not null check (position between 0 and 49),
          product_id uuid not null,
          sku text not null,
          name text not null,
          quantity integer not null check (quantity between 1 and 10000),
          unit_price_minor bigint not null check (unit_price_minor >= 0),
          currency char(3) not null,
          primary key (order_id, position),
          unique (order_id, product_id)
        )`.execute(db);
      // ListAllOrders: newest first across owners, and by product.
      await sql`create index orders_created on orders.orders (created_at, id)`.execute(db);
      await sql`create index orders_status_created on orders.orders (status, created_at, id)`.execute(db);
      await sql`create index order_lines_product on orders.order_lines (product_id, order_id)`.execute(db);
      // Reservations given up (released by this service): their order id is never inserted (store.ts).
      await sql`
        create table orders.abandoned_reservations (
          order_id uuid primary key,
          reason text not null,
          created_at timestamptz not null default now()
        )`.execute(db);
    },
  },
};
