// Schema "auth": credentials, sessions, refresh tokens, signing keys, service
// clients and the audit log. Owned by the auth service only. Every lookup path
// has an index (named after the query it serves).
import { sql, type Kysely, type Migration } from "kysely";
import { migrate } from "../../platform/db.js";
import { outboxMigration } from "../../platform/outbox.js";
import { deviceIdSql } from "./devices.js";
import { normalizeStoredEmails } from "./email-migration.js";
import { revocationsMigration } from "./revocations-schema.js";

export const SCHEMA = "auth";

/** Migrate the auth schema (platform `migrate` serialises concurrent starts). */
export async function migrateAuth(db: Kysely<any>): Promise<void> {
  await migrate(db, SCHEMA, migrations);
}

export const migrations: Record<string, Migration> = {
  "001_auth": {
    async up(db) {
      await sql`
        create table auth.accounts (
          id uuid primary key,
          email text not null,
          password_hash text not null,
          -- 'register', 'bootstrap' (ADMIN_EMAIL at first start) or 'admin-cli'
          created_by text not null default 'register',
          created_at timestamptz not null default now(),
          updated_at timestamptz not null default now(),
          password_changed_at timestamptz not null default now()
        )`.execute(db);
      // Login and register look accounts up by (normalised) email.
      await sql`create unique index accounts_email on auth.accounts (email)`.execute(db);

      await sql`
        create table auth.sessions (
          id uuid primary key,
          user_id uuid not null references auth.accounts (id) on delete cascade,
          created_at timestamptz not null,
          last_used_at timestamptz not null,
          -- absolute end of the login (refresh never extends it)
          expires_at timestamptz not null,
          revoked_at timestamptz,
          revoke_reason text,
          user_agent text not null default '',
          ip text not null default ''
        )`.execute(db);
      // ListSessions, logout-all, RevokeUserSessions, account deletion (the FK cascade): a user's sessions.
      await sql`create index sessions_user on auth.sessions (user_id, created_at)`.execute(db);
      // Cleanup: expired and long-revoked sessions.
      await sql`create index sessions_expires on auth.sessions (expires_at)`.execute(db);
      await sql`create index sessions_revoked on auth.sessions (revoked_at) where revoked_at is not null`.execute(db);

      await sql`
        create table auth.refresh_tokens (
          -- SHA-256 of the opaque token; the token itself is never stored
          token_hash bytea primary key,
          session_id uuid not null references auth.sessions (id) on delete cascade,
          user_id uuid not null,
          created_at timestamptz not null,
          expires_at timestamptz not null,
          consumed_at timestamptz,
          revoked_at timestamptz
        )`.execute(db);
      // Revoking a session (family) revokes its tokens.
      await sql`create index refresh_tokens_session on auth.refresh_tokens (session_id)`.execute(db);
      // Cleanup of expired tokens.
      await sql`create index refresh_tokens_expires on auth.refresh_tokens (expires_at)`.execute(db);

      await sql`
        create table auth.signing_keys (
          kid text primary key,
          alg text not null,
          public_jwk jsonb not null,
          -- AES-256-GCM(iv 12 | tag 16 | ciphertext) of the PKCS#8 DER private key, AAD = kid
          private_key_enc bytea not null,
          created_at timestamptz not null default now(),
          -- published from creation; signs from activates_at until its successor activates
          activates_at timestamptz not null,
          retires_at timestamptz,
          -- removed from the JWKS once every token it signed has expired
          expires_at timestamptz
        )`.execute(db);
      // Loading the published keys in schedule order.
      await sql`create index signing_keys_activates on auth.signing_keys (activates_at)`.execute(db);

      await sql`
        create table auth.service_clients (
          client_id text primary key,
          -- SHA-256 of the client secret (secrets are 256-bit random strings)
          secret_hash bytea not null,
          audiences text[] not null,
          allowed_routes text[] not null,
          -- requests per minute granted to this client (rate_limit claim)
          rate_limit integer not null,
          active boolean not null default true,
          created_at timestamptz not null default now(),
          updated_at timestamptz not null default now()
        )`.execute(db);

      await sql`
        create table auth.auth_events (
          id bigint generated always as identity primary key,
          at timestamptz not null default now(),
          type text not null,
          user_id uuid,
          client_id text,
          session_id uuid,
          reason text,
          ip text not null default '',
          user_agent text not null default '',
          trace_id text not null default ''
        )`.execute(db);
      // A user's history, newest first; time-range scans.
      await sql`create index auth_events_user on auth.auth_events (user_id, at) where user_id is not null`.execute(db);
      await sql`create index auth_events_at on auth.auth_events (at)`.execute(db);
      // Append-only: the service can add events but never change or remove them.
      await sql`
        create function auth.auth_events_append_only() returns trigger language plpgsql as $$
        begin
          raise exception 'auth.auth_events is append-only' using errcode = '42501';
        end $$`.execute(db);
      await sql`
        create trigger auth_events_append_only before update or delete on auth.auth_events
        for each row execute function auth.auth_events_append_only()`.execute(db);
      await sql`
        create trigger auth_events_no_truncate before truncate on auth.auth_events
        for each statement execute function auth.auth_events_append_only()`.execute(db);
    },
  },
  "002_refresh_successor": {
    async up(db) {
      // The pair a spent refresh token was exchanged for, encrypted under a key
      // derived from that token (services/auth/successor.ts): the reuse grace window.
      await sql`alter table auth.refresh_tokens add column successor_enc bytea`.execute(db);
    },
  },
  "003_normalize_emails": {
    async up(db) {
      await normalizeStoredEmails(db);
    },
  },
  // Durable revocations (services/auth/revocations-schema.ts).
  "004_revocations": revocationsMigration,
  "005_client_scopes": {
    async up(db) {
      // Clients are granted scopes, the terms the contract's policy uses ((acme.edge.v1.policy).scopes),
      // instead of gRPC path patterns. The built-in clients get theirs at the next start (ServiceClients.sync).
      await sql`alter table auth.service_clients add column scopes text[] not null default '{}'`.execute(db);
      await sql`alter table auth.service_clients drop column allowed_routes`.execute(db);
    },
  },
  // Events written with the change they describe, relayed to the bus (platform/outbox.ts, ./events.ts).
  "006_outbox": outboxMigration(SCHEMA),
  "007_known_devices": {
    async up(db) {
      // The devices each account has signed in from (services/auth/devices.ts): a login from one
      // not here emits LoginFromNewDevice. Kept with the account, not with its sessions.
      await sql`
        create table auth.known_devices (
          user_id uuid not null references auth.accounts (id) on delete cascade,
          -- first 32 hex digits of SHA-256(user agent)
          device_id text not null,
          first_seen_at timestamptz not null,
          primary key (user_id, device_id)
        )`.execute(db);
      // The devices of the sessions still stored are known: no notice for them after the upgrade.
      await sql`
        insert into auth.known_devices (user_id, device_id, first_seen_at)
        select user_id, ${deviceIdSql(sql.ref("user_agent"))}, min(created_at) from auth.sessions
        group by 1, 2
        on conflict do nothing`.execute(db);
    },
  },
  "008_account_lifecycle": {
    async up(db) {
      // Email verification (verification.ts): null until the address is verified. Accounts that
      // existed before count as verified (they were created when nothing was checked).
      await sql`alter table auth.accounts add column email_verified_at timestamptz`.execute(db);
      await sql`update auth.accounts set email_verified_at = created_at`.execute(db);
      // Single-use mailed tokens (account-tokens.ts): verification, email change, password reset.
      await sql`
        create table auth.account_tokens (
          -- SHA-256 of the token; the token itself is never stored
          token_hash bytea primary key,
          user_id uuid not null references auth.accounts (id) on delete cascade,
          purpose text not null check (purpose in ('verify_email', 'change_email', 'reset_password')),
          -- the address the token was mailed to (for change_email: the new address)
          email text not null,
          created_at timestamptz not null,
          expires_at timestamptz not null,
          used_at timestamptz
        )`.execute(db);
      // A new token of a purpose retires the user's earlier ones; resend limits count them.
      await sql`create index account_tokens_user on auth.account_tokens (user_id, purpose, created_at)`.execute(db);
      // Cleanup of expired tokens.
      await sql`create index account_tokens_expires on auth.account_tokens (expires_at)`.execute(db);

      // TOTP (mfa/): the secret encrypted like the signing keys (AES-256-GCM under the data key,
      // AAD = user id); pending until a first code confirms it. last_step: the newest time step
      // accepted, so a code is never accepted twice.
      await sql`
        create table auth.totp (
          user_id uuid primary key references auth.accounts (id) on delete cascade,
          secret_enc bytea not null,
          created_at timestamptz not null,
          confirmed_at timestamptz,
          last_step bigint not null default 0
        )`.execute(db);
      await sql`
        create table auth.recovery_codes (
          user_id uuid not null references auth.accounts (id) on delete cascade,
          -- SHA-256 of the normalised code
          code_hash bytea not null,
          created_at timestamptz not null,
          used_at timestamptz,
          primary key (user_id, code_hash)
        )`.execute(db);
      // Second-factor challenges: the password was right, a code is awaited.
      await sql`
        create table auth.login_challenges (
          -- SHA-256 of the challenge
          challenge_hash bytea primary key,
          user_id uuid not null references auth.accounts (id) on delete cascade,
          created_at timestamptz not null,
          expires_at timestamptz not null,
          failures integer not null default 0,
          used_at timestamptz,
          user_agent text not null default '',
          ip text not null default ''
        )`.execute(db);
      await sql`create index login_challenges_expires on auth.login_challenges (expires_at)`.execute(db);
    },
  },
};
