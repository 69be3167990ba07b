// The embedded database's first start: a new DATA_DIR is copied from the
// install's initdb template (platform/pglite.ts) instead of running initdb;
// an existing data dir is never touched; the copy is a working cluster of
// its own (writes do not reach the template or other data dirs).
import { strict as assert } from "node:assert";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase, sql } from "../../platform/db.js";
import { ensurePgliteTemplate, pgliteTemplateDir, seedFromTemplate } from "../../platform/pglite.js";

describe("embedded database: initdb template", () => {
  let root: string;
  before(async function () {
    this.timeout(120_000);
    root = mkdtempSync(join(tmpdir(), "acme-pglite-"));
    await ensurePgliteTemplate(); // made by npm ci's postinstall; made here if install scripts were skipped
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it("npm ci made a template for the installed PGlite version", () => {
    assert.ok(existsSync(join(pgliteTemplateDir(), "PG_VERSION")), pgliteTemplateDir());
  });

  it("a new data dir is a copy of the template, and each copy is a database of its own", async () => {
    const a = join(root, "a");
    const b = join(root, "b");
    const templateFiles = readdirSync(pgliteTemplateDir(), { recursive: true }).length;
    for (const dataDir of [a, b]) {
      const db = await openDatabase({ dataDir });
      assert.equal(db.kind, "pglite");
      assert.equal(readdirSync(join(dataDir, "pglite"), { recursive: true }).length >= templateFiles, true);
      await sql`create table marks (who text)`.execute(db.db);
      await sql`insert into marks values (${dataDir})`.execute(db.db);
      await db.close();
    }
    const again = await openDatabase({ dataDir: a });
    const rows = await sql<{ who: string }>`select who from marks`.execute(again.db);
    assert.deepEqual(rows.rows, [{ who: a }], "data dir a kept its own row, not b's");
    await again.close();
    assert.ok(!readdirSync(root).some((f) => f.includes(".seeding-")), "no staging dir left behind");
  });

  it("never copies over a data dir that has anything in it", async () => {
    const dir = join(root, "taken", "pglite");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "something"), "mine");
    assert.equal(await seedFromTemplate(dir), false);
    assert.deepEqual(readdirSync(dir), ["something"]);
  });

  it("ACME_PGLITE_TEMPLATE=off leaves a new data dir to PGlite's own initdb", async () => {
    process.env.ACME_PGLITE_TEMPLATE = "off";
    try {
      const dir = join(root, "off", "pglite");
      assert.equal(await seedFromTemplate(dir), false);
      assert.equal(existsSync(dir), false);
    } finally {
      delete process.env.ACME_PGLITE_TEMPLATE;
    }
    assert.ok(statSync(pgliteTemplateDir()).isDirectory());
  });
});
