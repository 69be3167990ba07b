// Schema "catalogue": products, their stock, and the reservations orders make.
// Owned by the catalogue service only. reservations.order_id refers to an
// order of the order service; there is no foreign key across schemas.
import { sql, type Migration } from "kysely";
import { processedEventsMigration } from "../../platform/consumer.js";
import { outboxMigration } from "../../platform/outbox.js";

export const SCHEMA = "catalogue";

export const RESERVATION_STATES = ["pending", "held", "released", "committed"] as const;

const list = (values: readonly string[]) => sql.join(values.map((v) => sql.lit(v)));

export const migrations: Record<string, Migration> = {
  "001_catalogue": {
    async up(db) {
      // Stock: `stock` counts every unit ever put in (initial + restocks); reserved and
      // sold come out of it, never below zero together (reserved + sold <= stock).
      // Every change is one conditional UPDATE (store.ts), so the checks never fire in
      // normal operation: they are the last line, not the logic.
      await sql`
        create table catalogue.products (
          id uuid primary key,
          sku text not null unique check (sku ~ '^[A-Z0-9-]{1,40}$'),
          name text not null check (char_length(name) between 1 and 200),
          description text not null default '' check (char_length(description) <= 5000),
          price_minor bigint not null check (price_minor >= 0),
          currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
          stock integer not null check (stock >= 0),
          reserved integer not null default 0 check (reserved >= 0),
          sold integer not null default 0 check (sold >= 0),
          low_stock_threshold integer not null default 0 check (low_stock_threshold >= 0),
          active boolean not null default true,
          created_at timestamptz not null default now(),
          updated_at timestamptz not null default now(),
          constraint products_stock_invariant check (reserved + sold <= stock),
          -- Full-text search (search.ts): the name weighs more (A) than the description (B).
          search tsvector generated always as (
            setweight(to_tsvector('simple', name), 'A') ||
            setweight(to_tsvector('simple', coalesce(description, '')), 'B')
          ) stored
        )`.execute(db);
      await sql`create index products_search on catalogue.products using gin (search)`.execute(db);
      // ListProducts: active products by name, price or creation, keyset on (value, id).
      await sql`create index products_active_name on catalogue.products (name, id) where active`.execute(db);
      await sql`create index products_active_price on catalogue.products (price_minor, id) where active`.execute(db);
      await sql`create index products_active_created on catalogue.products (created_at, id) where active`.execute(db);
      // One row per (order, product); the rows of one order move together (store.ts).
      await sql`
        create table catalogue.reservations (
          order_id uuid not null,
          product_id uuid not null references catalogue.products (id),
          sku text not null,
          quantity integer not null check (quantity between 1 and 10000),
          unit_price_minor bigint not null check (unit_price_minor >= 0),
          currency char(3) not null,
          state text not null default 'pending' check (state in (${list(RESERVATION_STATES)})),
          reserved_until timestamptz not null,
          created_at timestamptz not null default now(),
          updated_at timestamptz not null default now(),
          primary key (order_id, product_id)
        )`.execute(db);
      // The sweeper: pending reservations by expiry.
      await sql`create index reservations_pending_until on catalogue.reservations (reserved_until) where state = 'pending'`.execute(db);
    },
  },
  // Events written with the change they describe, relayed to the bus (platform/outbox.ts, ./events.ts).
  "002_outbox": outboxMigration(SCHEMA),
  // The product's name at Reserve, for the order's lines (the sku and price are already copied).
  "003_reservation_name": {
    async up(db) {
      await sql`alter table catalogue.reservations add column name text not null default ''`.execute(db);
    },
  },
  // The order-events consumer (order-events.ts): one row per event whose effect committed.
  "004_processed_events": processedEventsMigration(SCHEMA),
};
