// CatalogueService: admin CRUD with validation naming fields, the public
// list (filters, sorts, keyset pages) and get, inactive products hidden, and
// the contract's roles.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { ProductSort, type Product } from "../../gen/acme/catalogue/v1/catalogue_pb.js";
import { rejectsWith } from "../user/helpers.js";
import { countsOf, makeProduct, sku, startCatalogueSystem, type CatalogueSystem } from "./support.js";

/** Every page of a listing, page by page (pageSize each). */
async function allPages(list: (pageToken: string) => Promise<{ products: Product[]; nextPageToken: string }>) {
  const out: Product[] = [];
  let token = "";
  for (let i = 0; i < 50; i++) {
    const page = await list(token);
    out.push(...page.products);
    token = page.nextPageToken;
    if (!token) return out;
  }
  throw new Error("too many pages");
}

describe("catalogue: products", function () {
  let s: CatalogueSystem;
  before(async () => (s = await startCatalogueSystem()));
  after(async () => s?.stop());

  it("an admin creates a product; anyone reads it; the stock is for admins", async () => {
    const code = sku("LAMP");
    const p = await makeProduct(s, { sku: code, name: "Desk lamp", description: "A lamp.\nWarm light.", price: { amountMinor: 4999n, currency: "EUR" }, initialStock: 7, lowStockThreshold: 2 });
    assert.equal(p.sku, code);
    assert.equal(p.price?.amountMinor, 4999n);
    assert.equal(p.price?.currency, "EUR");
    assert.equal(p.available, 7);
    assert.equal(p.active, true);
    const got = await s.t.catalogue().getProduct({ id: p.id });
    assert.equal(got.product?.name, "Desk lamp");
    assert.equal(got.product?.description, "A lamp.\nWarm light.");
    const st = await s.t.catalogue(s.admin.token).getProductStock({ id: p.id });
    assert.deepEqual([st.stock?.stock, st.stock?.reserved, st.stock?.sold, st.stock?.available, st.stock?.lowStockThreshold, st.stock?.low], [7, 0, 0, 7, 2, false]);
    await rejectsWith(s.t.catalogue().getProduct({ id: randomUUID() }), Code.NotFound);
    await rejectsWith(s.t.catalogue().getProduct({ id: "nope" }), Code.InvalidArgument, ["id"]);
  });

  it("validation names each bad field; a taken sku is ALREADY_EXISTS naming sku", async () => {
    const c = s.t.catalogue(s.admin.token);
    await rejectsWith(
      c.createProduct({ sku: "bad sku", name: "", description: "x".repeat(5001), price: { amountMinor: -1n, currency: "eur" }, initialStock: -1, lowStockThreshold: -2 }),
      Code.InvalidArgument,
      ["sku", "name", "description", "price.amountMinor", "price.currency", "initialStock", "lowStockThreshold"],
    );
    await rejectsWith(c.createProduct({ sku: "A".repeat(41), name: "x" }), Code.InvalidArgument, ["sku", "price"]);
    const code = sku();
    await makeProduct(s, { sku: code });
    const dup = await rejectsWith(makeProduct(s, { sku: code }), Code.AlreadyExists);
    assert.match(dup.rawMessage, /sku/);
  });

  it("only admins create, update, deactivate, restock and read stock", async () => {
    const p = await makeProduct(s);
    const as = (token?: string) => s.t.catalogue(token);
    for (const token of [s.user.token, undefined]) {
      const code = token ? Code.PermissionDenied : Code.Unauthenticated;
      await rejectsWith(as(token).createProduct({ sku: sku(), name: "x", price: { amountMinor: 1n, currency: "EUR" } }), code);
      await rejectsWith(as(token).updateProduct({ id: p.id, name: "x" }), code);
      await rejectsWith(as(token).deactivateProduct({ id: p.id }), code);
      await rejectsWith(as(token).restockProduct({ id: p.id, quantity: 1 }), code);
      await rejectsWith(as(token).getProductStock({ id: p.id }), code);
    }
    // The public RPCs need no token, and a user's is fine too.
    await as().listProducts({});
    await as(s.user.token).getProduct({ id: p.id });
  });

  it("UpdateProduct changes the fields set and keeps the others", async () => {
    const c = s.t.catalogue(s.admin.token);
    const p = await makeProduct(s, { name: "Old", description: "old words" });
    const u1 = await c.updateProduct({ id: p.id, name: "New" });
    assert.deepEqual([u1.product?.name, u1.product?.description, u1.product?.price?.amountMinor], ["New", "old words", 1000n]);
    const u2 = await c.updateProduct({ id: p.id, price: { amountMinor: 250n, currency: "USD" }, description: "", lowStockThreshold: 3 });
    assert.deepEqual([u2.product?.name, u2.product?.description, u2.product?.price?.amountMinor, u2.product?.price?.currency], ["New", "", 250n, "USD"]);
    assert.equal((await c.getProductStock({ id: p.id })).stock?.lowStockThreshold, 3);
    await rejectsWith(c.updateProduct({ id: p.id }), Code.InvalidArgument, ["name", "description", "price", "lowStockThreshold"]);
    await rejectsWith(c.updateProduct({ id: p.id, name: "", price: { amountMinor: 1n, currency: "EURO" } }), Code.InvalidArgument, ["name", "price.currency"]);
    await rejectsWith(c.updateProduct({ id: randomUUID(), name: "x" }), Code.NotFound);
  });

  it("RestockProduct adds a positive quantity", async () => {
    const c = s.t.catalogue(s.admin.token);
    const p = await makeProduct(s, { initialStock: 2 });
    const r = await c.restockProduct({ id: p.id, quantity: 5 });
    assert.deepEqual([r.stock?.stock, r.stock?.available], [7, 7]);
    assert.deepEqual(await countsOf(s, p.id), { stock: 7, reserved: 0, sold: 0 });
    await rejectsWith(c.restockProduct({ id: p.id, quantity: 0 }), Code.InvalidArgument, ["quantity"]);
    await rejectsWith(c.restockProduct({ id: p.id, quantity: -3 }), Code.InvalidArgument, ["quantity"]);
    await rejectsWith(c.restockProduct({ id: randomUUID(), quantity: 1 }), Code.NotFound);
  });

  it("a deactivated product is NOT_FOUND and unlisted for the public; admins still see it; idempotent", async () => {
    const c = s.t.catalogue(s.admin.token);
    const p = await makeProduct(s, { price: { amountMinor: 1n, currency: "XDA" } });
    const d = await c.deactivateProduct({ id: p.id });
    assert.equal(d.product?.active, false);
    assert.equal((await c.deactivateProduct({ id: p.id })).product?.active, false);
    await rejectsWith(s.t.catalogue().getProduct({ id: p.id }), Code.NotFound);
    await rejectsWith(s.t.catalogue(s.admin.token).getProduct({ id: p.id }), Code.NotFound);
    assert.deepEqual((await s.t.catalogue().listProducts({ currency: "XDA" })).products, []);
    assert.equal((await c.getProductStock({ id: p.id })).product?.active, false);
  });

  describe("ListProducts", () => {
    const CUR = "XLP";
    const made: Product[] = [];
    before(async () => {
      // Names, prices and stock chosen so each order differs; two equal prices (ties go by id).
      const spec: [string, bigint, number][] = [
        ["delta", 400n, 1], ["alpha", 100n, 0], ["echo", 300n, 5], ["charlie", 300n, 2], ["bravo", 500n, 0], ["foxtrot", 200n, 9], ["golf", 700n, 3],
      ];
      for (const [name, price, stock] of spec) made.push(await makeProduct(s, { name, price: { amountMinor: price, currency: CUR }, initialStock: stock }));
    });
    const c = () => s.t.catalogue();
    const names = (ps: Product[]) => ps.map((p) => p.name);
    const byPrice = (a: Product, b: Product) => Number(a.price!.amountMinor - b.price!.amountMinor) || (a.id < b.id ? -1 : 1);

    it("sorts by name (default), price and creation, either way, page by page", async () => {
      const sortedNames = names(made).sort();
      assert.deepEqual(names(await allPages((pageToken) => c().listProducts({ currency: CUR, pageSize: 2, pageToken }))), sortedNames);
      assert.deepEqual(names(await allPages((pageToken) => c().listProducts({ currency: CUR, pageSize: 3, pageToken, sort: ProductSort.NAME, descending: true }))), [...sortedNames].reverse());
      const priced = names([...made].sort(byPrice));
      assert.deepEqual(names(await allPages((pageToken) => c().listProducts({ currency: CUR, pageSize: 2, pageToken, sort: ProductSort.PRICE }))), priced);
      assert.deepEqual(names(await allPages((pageToken) => c().listProducts({ currency: CUR, pageSize: 1, pageToken, sort: ProductSort.PRICE, descending: true }))), [...priced].reverse());
      assert.deepEqual(names(await allPages((pageToken) => c().listProducts({ currency: CUR, pageSize: 3, pageToken, sort: ProductSort.CREATED }))), names(made));
      assert.deepEqual(names(await allPages((pageToken) => c().listProducts({ currency: CUR, pageSize: 4, pageToken, sort: ProductSort.CREATED, descending: true }))), names(made).reverse());
    });

    it("filters by price range, currency and stock", async () => {
      const got = await c().listProducts({ currency: CUR, minPriceMinor: 200n, maxPriceMinor: 400n, sort: ProductSort.PRICE });
      assert.deepEqual(names(got.products), names(made.filter((p) => p.price!.amountMinor >= 200n && p.price!.amountMinor <= 400n).sort(byPrice)));
      assert.deepEqual(names((await c().listProducts({ currency: CUR, inStock: true })).products), names(made.filter((p) => p.available > 0)).sort());
      assert.deepEqual((await c().listProducts({ currency: "XZZ" })).products, []);
      const all = await c().listProducts({ pageSize: 100 });
      assert.ok(all.products.every((p) => p.active));
    });

    it("refuses bad filters and a page token of another listing, naming the field", async () => {
      await rejectsWith(c().listProducts({ currency: "eu" }), Code.InvalidArgument, ["currency"]);
      await rejectsWith(c().listProducts({ minPriceMinor: -1n }), Code.InvalidArgument, ["minPriceMinor"]);
      await rejectsWith(c().listProducts({ minPriceMinor: 5n, maxPriceMinor: 4n }), Code.InvalidArgument, ["maxPriceMinor"]);
      await rejectsWith(c().listProducts({ sort: 99 as ProductSort }), Code.InvalidArgument, ["sort"]);
      await rejectsWith(c().listProducts({ pageSize: -1 }), Code.InvalidArgument, ["pageSize"]);
      const first = await c().listProducts({ currency: CUR, pageSize: 1 });
      assert.ok(first.nextPageToken);
      await rejectsWith(c().listProducts({ currency: CUR, pageSize: 1, pageToken: first.nextPageToken, sort: ProductSort.PRICE }), Code.InvalidArgument, ["pageToken"]);
      await rejectsWith(c().listProducts({ pageToken: "garbage" }), Code.InvalidArgument, ["pageToken"]);
    });

    it("never repeats or skips a row when products are added between pages", async () => {
      const first = await c().listProducts({ currency: CUR, pageSize: 3 });
      await makeProduct(s, { name: "aardvark", price: { amountMinor: 1n, currency: CUR } });
      const rest = await allPages((pageToken) => c().listProducts({ currency: CUR, pageSize: 3, pageToken: pageToken || first.nextPageToken }));
      assert.deepEqual([...names(first.products), ...names(rest)], names(made).sort());
    });
  });
});

describe("catalogue: REST through the embedded edge", function () {
  let s: CatalogueSystem;
  before(async () => (s = await startCatalogueSystem({ edge: true })));
  after(async () => s?.stop());

  it("routes /v1/products, /v1/products/search (not GetProduct{id: search}) and the admin routes", async () => {
    const admin = { authorization: `Bearer ${s.admin.token}`, "content-type": "application/json" };
    const created = await fetch(`${s.t.url}/v1/admin/products`, {
      method: "POST", headers: admin,
      body: JSON.stringify({ sku: sku("REST"), name: "Desk lamp", description: "brass", price: { amountMinor: "1999", currency: "EUR" }, initialStock: 3 }),
    });
    assert.equal(created.status, 200, await created.clone().text());
    const p = (await created.json()).product;
    assert.deepEqual(p.price, { amountMinor: "1999", currency: "EUR" });
    const list = await (await fetch(`${s.t.url}/v1/products?inStock=true&sort=PRODUCT_SORT_PRICE&pageSize=10`)).json();
    assert.ok(list.products.some((x: { id: string }) => x.id === p.id));
    const found = await fetch(`${s.t.url}/v1/products/search?q=desk%20lamp`);
    assert.equal(found.status, 200);
    assert.deepEqual((await found.json()).products.map((x: { id: string }) => x.id), [p.id]);
    const noQ = await fetch(`${s.t.url}/v1/products/search`);
    assert.equal(noQ.status, 400);
    assert.equal((await fetch(`${s.t.url}/v1/products/${p.id}`)).status, 200);
    const stock = await fetch(`${s.t.url}/v1/admin/products/${p.id}:restock`, { method: "POST", headers: admin, body: JSON.stringify({ quantity: 2 }) });
    assert.equal((await stock.json()).stock.available, 5);
    assert.equal((await fetch(`${s.t.url}/v1/admin/products/${p.id}/stock`, { headers: { authorization: `Bearer ${s.user.token}` } })).status, 403);
    assert.equal((await fetch(`${s.t.url}/v1/admin/products/${p.id}/stock`)).status, 401);
  });
});
