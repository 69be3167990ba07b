// Schema "users": profiles, roles and the active flag. Owned by the user service only.
import { sql, type Migration } from "kysely";
import { processedEventsMigration } from "../../platform/consumer.js";

export const SCHEMA = "users";

export const migrations: Record<string, Migration> = {
  "001_profiles": {
    async up(db) {
      await sql`
        create table users.profiles (
          id uuid primary key,
          email text not null,
          name text not null,
          role text not null default 'user' check (role in ('user', 'admin')),
          active boolean not null default true,
          created_at timestamptz not null default now(),
          updated_at timestamptz not null default now()
        )`.execute(db);
      await sql`create unique index profiles_email on users.profiles (email)`.execute(db);
      // Cursor pagination walks (created_at, id).
      await sql`create index profiles_created on users.profiles (created_at, id)`.execute(db);
    },
  },
  // The events the user service consumed, with their effect (email-changes.ts).
  "002_processed_events": processedEventsMigration(SCHEMA),
};
