// Queries compiled once (platform/prepared.ts) answer exactly what the same
// kysely query built per call answers, on Postgres and on the embedded PGlite:
// each call's values land in their own places, constants of the query stay,
// and a builder that does not bind an argument as a value is refused.
import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase, sql, type Database } from "../../platform/db.js";
import { prepared } from "../../platform/prepared.js";
import { freshDatabaseUrl } from "../support/fresh.js";

interface Row {
  id: number;
  owner: string;
  kind: string;
  note: string | null;
}

for (const kind of ["postgres", "pglite"] as const) {
  describe(`prepared queries (${kind})`, () => {
    let database: Database;
    let dir: string;
    before(async function () {
      this.timeout(60_000);
      dir = mkdtempSync(join(tmpdir(), "acme-prepared-"));
      database = await openDatabase({ dataDir: dir, url: kind === "postgres" ? await freshDatabaseUrl() : undefined });
      await sql`create table things (id int primary key, owner text not null, kind text not null, note text)`.execute(database.db);
      await sql`insert into things values (1, 'ann', 'book', null), (2, 'ann', 'pen', 'blue'), (3, 'bob', 'book', 'x'), (4, 'bob', 'pen', null)`.execute(database.db);
    });
    after(async () => {
      await database?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it("answers each call with that call's values, as the query built per call does", async () => {
      const db = database.db;
      const build = (owner: string, kind: string) => db.selectFrom("things").selectAll().where("owner", "=", owner).where("kind", "=", kind);
      const q = prepared(db, build);
      for (const [owner, k] of [["ann", "pen"], ["bob", "book"], ["ann", "book"], ["carl", "pen"]]) {
        assert.deepEqual(await q.first(owner, k), await build(owner, k).executeTakeFirst(), `${owner}/${k}`);
      }
      assert.equal((await q.first("bob", "pen"))?.id, 4);
      assert.equal(await q.first("nobody", "pen"), undefined);
    });

    it("keeps the query's own constants in place around the arguments, and an argument may be bound twice", async () => {
      const db = database.db;
      const q = prepared(db, (kind: string, minId: number) =>
        db
          .selectFrom("things")
          .select(["id", "owner"])
          .where("owner", "in", ["ann", "bob"])
          .where("kind", "=", kind)
          .where((eb) => eb.or([eb("id", ">=", minId), eb("note", "=", kind)]))
          .orderBy("id")
          .limit(10),
      );
      assert.deepEqual(await q.all("book", 2), [{ id: 3, owner: "bob" }]);
      assert.deepEqual(await q.all("pen", 0), [
        { id: 2, owner: "ann" },
        { id: 4, owner: "bob" },
      ]);
      assert.match(q.sql, /\$5/, "the constants and both uses of each argument are parameters");
    });

    it("refuses a builder that does not bind its argument as a value", () => {
      const db = database.db;
      const q = prepared(db, (_owner: string) => db.selectFrom("things").selectAll().where("owner", "=", "ann"));
      assert.throws(() => q.sql, /argument 1 is not bound as a value/);
    });

    it("a value that looks like SQL is only ever a value", async () => {
      const db = database.db;
      const q = prepared(db, (owner: string) => db.selectFrom("things").select("id").where("owner", "=", owner));
      assert.deepEqual(await q.all("ann' or '1'='1"), []);
      assert.equal((await q.all("ann")).length, 2);
    });
  });
}
