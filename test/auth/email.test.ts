// The email normal form and script rule (services/auth/email.ts), and
// migration 003 that brings stored emails to it where that is safe.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import type { Kysely } from "kysely";
import { openDatabase, type Database } from "../../platform/db.js";
import { mixedScriptProblem, normalizeEmail } from "../../platform/email.js";
import { normalizeStoredEmails } from "../../services/auth/email-migration.js";
import { migrateAuth } from "../../services/auth/migrations.js";
import { freshDatabaseUrl } from "../support/fresh.js";

describe("auth: email normal form", () => {
  it("trims, folds compatibility forms (NFKC), lowercases, drops one trailing dot of the domain", () => {
    assert.equal(normalizeEmail("  Alice@Example.com. "), "alice@example.com");
    assert.equal(normalizeEmail("ａｌｉｃｅ@ｅｘａｍｐｌｅ.ｃｏｍ"), "alice@example.com");
    assert.equal(normalizeEmail("alice@example.com.."), "alice@example.com.", "only one dot");
    assert.equal(normalizeEmail("ÅSA@EXAMPLE.SE"), "åsa@example.se");
    assert.equal(normalizeEmail("no-at-sign."), "no-at-sign.");
  });

  it("refuses mixed scripts in the local part or a domain label; allows one script, and Latin with Han and kana", () => {
    assert.ok(mixedScriptProblem("\u0430lice@example.com"), "Cyrillic а among Latin");
    assert.ok(mixedScriptProblem("alice@ex\u0430mple.com"));
    assert.ok(mixedScriptProblem("p\u03b1ypal@example.com"), "Greek alpha among Latin");
    assert.equal(mixedScriptProblem("иван@пример.рф"), undefined);
    assert.equal(mixedScriptProblem("иван@example.com"), undefined, "each part on its own");
    assert.equal(mixedScriptProblem("tanaka太郎ひらがな@example.jp"), undefined);
    assert.equal(mixedScriptProblem("user.name+tag-1@sub.example.com"), undefined);
  });
});

describe("auth: migration 003 normalises stored emails where safe", () => {
  let database: Database;
  let db: Kysely<any>;
  before(async () => {
    database = await openDatabase({ url: await freshDatabaseUrl(), dataDir: "", max: 2 });
    db = database.db;
    await migrateAuth(db);
  });
  after(async () => database?.close());

  it("updates unique ones, leaves colliding ones as stored with an audit event (id, no address)", async () => {
    const ids = { plain: randomUUID(), dotted: randomUUID(), upper: randomUUID(), canonical: randomUUID() };
    await db
      .insertInto("auth.accounts")
      .values([
        { id: ids.plain, email: "bob@example.com.", password_hash: "x" },
        { id: ids.upper, email: "Carol@Example.COM", password_hash: "x" },
        { id: ids.canonical, email: "dave@example.com", password_hash: "x" },
        { id: ids.dotted, email: "dave@example.com.", password_hash: "x" },
      ])
      .execute();
    assert.deepEqual(await normalizeStoredEmails(db), { updated: 2, collisions: 1 });
    const rows = await db.selectFrom("auth.accounts").select(["id", "email"]).execute();
    const byId = Object.fromEntries(rows.map((r) => [r.id, r.email]));
    assert.equal(byId[ids.plain], "bob@example.com");
    assert.equal(byId[ids.upper], "carol@example.com");
    assert.equal(byId[ids.canonical], "dave@example.com");
    assert.equal(byId[ids.dotted], "dave@example.com.", "kept: its normal form is another account's");
    const events = await db.selectFrom("auth.auth_events").select(["type", "user_id", "reason"]).execute();
    assert.deepEqual(events, [{ type: "email_not_normalized", user_id: ids.dotted, reason: "normal form collides with another account" }]);
    // Idempotent.
    assert.deepEqual(await normalizeStoredEmails(db), { updated: 0, collisions: 1 });
  });
});
