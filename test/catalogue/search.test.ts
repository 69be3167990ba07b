// SearchProducts: Postgres full-text search over names and descriptions,
// ranked (a match in the name above a match in the description only), never
// an inactive product, q validated; the same cases on the test Postgres
// server and on PGlite (the generated tsvector column and its GIN index).
import { strict as assert } from "node:assert";
import { Code } from "@connectrpc/connect";
import { sql } from "kysely";
import type { Product } from "../../gen/acme/catalogue/v1/catalogue_pb.js";
import { rejectsWith } from "../user/helpers.js";
import { makeProduct, startCatalogueSystem, type CatalogueSystem } from "./support.js";

for (const database of ["postgres", "pglite"] as const) {
  describe(`catalogue: search (${database})`, function () {
    this.timeout(60_000);
    let s: CatalogueSystem;
    let inName: Product;
    let inDescription: Product;
    let inBoth: Product;
    before(async () => {
      s = await startCatalogueSystem({ database });
      inDescription = await makeProduct(s, { name: "Reading light", description: "A zephyrine brass lamp for the desk" });
      inName = await makeProduct(s, { name: "Zephyrine kettle", description: "Boils water" });
      inBoth = await makeProduct(s, { name: "Zephyrine mug", description: "The zephyrine mug, in zephyrine blue" });
      await makeProduct(s, { name: "Plain cup", description: "Nothing to see" });
    });
    after(async () => s?.stop());
    const search = (q: string, more: { pageSize?: number; pageToken?: string } = {}) => s.t.catalogue().searchProducts({ q, ...more });

    it("finds a word in names and descriptions, a name match above a description-only match", async () => {
      const got = (await search("zephyrine")).products.map((p) => p.id);
      assert.equal(got.length, 3);
      assert.deepEqual(new Set(got.slice(0, 2)), new Set([inName.id, inBoth.id]), "name matches first");
      assert.equal(got[2], inDescription.id, "the description-only match last");
      assert.equal(got[0], inBoth.id, "name and description above name only");
      assert.deepEqual((await search("brass desk")).products.map((p) => p.id), [inDescription.id], "every word must match");
      assert.deepEqual((await search("kettle OR cup")).products.length, 2, "web-search syntax");
      assert.deepEqual((await search("zephyrine -mug")).products.map((p) => p.id).sort(), [inName.id, inDescription.id].sort());
      assert.deepEqual((await search("nowhere")).products, []);
      assert.deepEqual((await search("!!! &|")).products, [], "punctuation only: nothing, not an error");
    });

    it("pages through the ranked matches without repeats", async () => {
      const all = (await search("zephyrine")).products.map((p) => p.id);
      const seen: string[] = [];
      let pageToken = "";
      for (let i = 0; i < 5; i++) {
        const page = await search("zephyrine", { pageSize: 1, pageToken });
        seen.push(...page.products.map((p) => p.id));
        pageToken = page.nextPageToken;
        if (!pageToken) break;
      }
      assert.deepEqual(seen, all);
      const first = await search("zephyrine", { pageSize: 1 });
      await rejectsWith(search("kettle", { pageSize: 1, pageToken: first.nextPageToken }), Code.InvalidArgument, ["pageToken"]);
    });

    it("never returns an inactive product", async () => {
      const gone = await makeProduct(s, { name: "Quillwort vase", description: "quillwort" });
      assert.equal((await search("quillwort")).products.length, 1);
      await s.t.catalogue(s.admin.token).deactivateProduct({ id: gone.id });
      assert.deepEqual((await search("quillwort")).products, []);
    });

    it("q is required, at most 200 characters: INVALID_ARGUMENT naming q", async () => {
      await rejectsWith(search(""), Code.InvalidArgument, ["q"]);
      await rejectsWith(search("   "), Code.InvalidArgument, ["q"]);
      await rejectsWith(search("x".repeat(201)), Code.InvalidArgument, ["q"]);
      await search("x".repeat(200));
    });

    it("the search column is generated and GIN-indexed", async () => {
      const db = s.t.system.db.db;
      const { rows } = await sql<{ indexdef: string }>`select indexdef from pg_indexes where schemaname = 'catalogue' and indexname = 'products_search'`.execute(db);
      assert.match(rows[0]?.indexdef ?? "", /USING gin \(search\)/);
      const { rows: gen } = await sql<{ v: string }>`select search::text as v from catalogue.products where id = ${inName.id}`.execute(db);
      assert.match(gen[0].v, /'zephyrine':1A/);
      assert.match(gen[0].v, /'water':4B/);
    });
  });
}
