// Schema "notify": where mail goes, what users want, and the delivery log.
// Owned by the notification service only. user_id refers to an account of the
// auth service; there is no foreign key across schemas (the addresses here are
// copies carried by events, not a view of auth's table).
import { sql, type Migration } from "kysely";
import { processedEventsMigration } from "../../platform/consumer.js";

export const SCHEMA = "notify";

export const KINDS = [
  "welcome", "new_device_login", "password_changed", "account_locked", "email_changed", "order_confirmation", "order_status",
  // 004: the account lifecycle (issue 18).
  "verify_email", "signup_attempt", "password_reset_request", "password_reset", "second_factor_changed",
] as const;
export const CATEGORIES = ["security", "account", "orders"] as const;
export const DELIVERY_STATUSES = ["QUEUED", "SENT", "RETRYING", "FAILED", "SUPPRESSED"] as const;
export const ATTEMPT_OUTCOMES = ["SENT", "TEMPORARY_FAILURE", "PERMANENT_FAILURE"] as const;

const list = (values: readonly string[]) => sql.join(values.map((v) => sql.lit(v)));

export const migrations: Record<string, Migration> = {
  "001_notify": {
    async up(db) {
      // Event-carried state: the address of each user, from UserRegistered and EmailChanged.
      // occurred_at of the event that set it, so an older event arriving late changes nothing.
      await sql`
        create table notify.recipients (
          user_id uuid primary key,
          email text not null check (char_length(email) between 3 and 254),
          occurred_at timestamptz not null,
          updated_at timestamptz not null default now()
        )`.execute(db);
      // Absent row: every category on. Security is not stored: it is always on.
      await sql`
        create table notify.preferences (
          user_id uuid primary key,
          account boolean not null default true,
          orders boolean not null default true,
          updated_at timestamptz not null default now()
        )`.execute(db);
      // One row per (event, kind); the id is derived from them (consumers.ts), so every
      // redelivery of an event works on the same row and sends the same Message-ID.
      await sql`
        create table notify.deliveries (
          id uuid primary key,
          event_id text not null check (char_length(event_id) between 1 and 100),
          kind text not null check (kind in (${list(KINDS)})),
          category text not null check (category in (${list(CATEGORIES)})),
          user_id uuid not null,
          recipient text not null check (char_length(recipient) between 3 and 254),
          subject text not null check (char_length(subject) between 1 and 200),
          status text not null check (status in (${list(DELIVERY_STATUSES)})),
          attempts integer not null default 0 check (attempts >= 0),
          last_error text check (char_length(last_error) <= 500),
          created_at timestamptz not null default now(),
          updated_at timestamptz not null default now(),
          sent_at timestamptz,
          unique (event_id, kind)
        )`.execute(db);
      // ListMyNotifications and ListDeliveries by user: newest first, keyset on (created_at, id).
      await sql`create index deliveries_user_created on notify.deliveries (user_id, created_at, id)`.execute(db);
      // ListDeliveries: everyone's, or by status.
      await sql`create index deliveries_created on notify.deliveries (created_at, id)`.execute(db);
      await sql`create index deliveries_status_created on notify.deliveries (status, created_at, id)`.execute(db);
      await sql`
        create table notify.delivery_attempts (
          delivery_id uuid not null references notify.deliveries (id) on delete cascade,
          number integer not null check (number >= 1),
          bus_attempt integer not null check (bus_attempt >= 1),
          attempted_at timestamptz not null,
          duration_ms integer not null check (duration_ms >= 0),
          outcome text not null check (outcome in (${list(ATTEMPT_OUTCOMES)})),
          smtp_code integer check (smtp_code between 100 and 999),
          error text check (char_length(error) <= 500),
          primary key (delivery_id, number)
        )`.execute(db);
    },
  },
  // The events each consumer processed, in the transaction of its effect (platform/consumer.ts).
  "002_processed_events": processedEventsMigration(SCHEMA),
  // AccountDeleted: the user's row stays as a tombstone (no address, erased_at set), so an
  // older event arriving later cannot bring the address back (store.ts, saveRecipient).
  "003_erased_recipients": {
    async up(db) {
      await sql`alter table notify.recipients alter column email drop not null, add column erased_at timestamptz`.execute(db);
      await sql`alter table notify.recipients add constraint recipients_erased check ((email is null) = (erased_at is not null))`.execute(db);
    },
  },
  // The kinds of the account lifecycle's mails (verification, sign-up attempt, password reset,
  // second factor). The check was created inline in 001, so Postgres named it
  // deliveries_kind_check; it is replaced by one with the current list (in one statement: the
  // table is never without it).
  "004_lifecycle_kinds": {
    async up(db) {
      await sql`
        alter table notify.deliveries
          drop constraint deliveries_kind_check,
          add constraint deliveries_kind_check check (kind in (${list(KINDS)}))`.execute(db);
    },
  },
};
