// Migration 003: stored emails brought to the normal form of email.ts where
// that is safe. An account whose normalised email would equal another
// account's (stored or normalised) keeps its stored email and gets an audit
// event "email_not_normalized" (its id, never the address) for an operator to
// resolve; every other account is updated. Addresses that mix scripts are
// normalised but not refused: their owners still sign in.
import { sql, type Kysely } from "kysely";
import { normalizeEmail } from "../../platform/email.js";

export async function normalizeStoredEmails(db: Kysely<any>): Promise<{ updated: number; collisions: number }> {
  const { rows } = await sql<{ id: string; email: string }>`select id, email from auth.accounts`.execute(db);
  const byNormal = new Map<string, string[]>();
  for (const r of rows) {
    const n = normalizeEmail(r.email);
    byNormal.set(n, [...(byNormal.get(n) ?? []), r.id]);
  }
  let updated = 0;
  let collisions = 0;
  for (const r of rows) {
    const n = normalizeEmail(r.email);
    if (n === r.email) continue;
    if (byNormal.get(n)!.length > 1) {
      collisions++;
      await sql`insert into auth.auth_events (type, user_id, reason) values ('email_not_normalized', ${r.id}, 'normal form collides with another account')`.execute(db);
      continue;
    }
    await sql`update auth.accounts set email = ${n} where id = ${r.id}`.execute(db);
    updated++;
  }
  return { updated, collisions };
}
