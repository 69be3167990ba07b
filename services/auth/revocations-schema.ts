// Schema of durable revocations (services/auth/revocations.ts uses it): a row
// in auth.revoked_sessions for every session revoked, written by a trigger in
// the revoking transaction whatever code path revokes, and kept when the
// session row goes (account deletion cascades, cleanup); signing keys revoked
// for compromise carry revoked_at.
import { sql, type Migration } from "kysely";

export const revocationsMigration: Migration = {
  async up(db) {
    await sql`
      create table auth.revoked_sessions (
        session_id uuid primary key,
        user_id uuid not null,
        revoked_at timestamptz not null
      )`.execute(db);
    // Loading the revocations that still cover live tokens; cleanup.
    await sql`create index revoked_sessions_at on auth.revoked_sessions (revoked_at)`.execute(db);
    await sql`
      create function auth.record_session_revocation() returns trigger language plpgsql as $$
      begin
        insert into auth.revoked_sessions (session_id, user_id, revoked_at) values (new.id, new.user_id, new.revoked_at)
        on conflict (session_id) do nothing;
        return null;
      end $$`.execute(db);
    await sql`
      create trigger sessions_revocation_recorded after update of revoked_at on auth.sessions
      for each row when (old.revoked_at is null and new.revoked_at is not null)
      execute function auth.record_session_revocation()`.execute(db);
    await sql`
      insert into auth.revoked_sessions (session_id, user_id, revoked_at)
      select id, user_id, revoked_at from auth.sessions where revoked_at is not null
      on conflict (session_id) do nothing`.execute(db);
    await sql`alter table auth.signing_keys add column revoked_at timestamptz`.execute(db);
  },
};
