// Conformance scenarios of the catalogue's routes (services/catalogue): the
// public list, search and read, and the admin's create, update, deactivate,
// restock and stock view, each through the edge under test. Merged into
// routes.test.ts's table.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { call, expectGrpcError, expectLocalReply, expectStatus, type Answer, type Target, type User } from "./target.js";

const BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest";
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

const fieldsOf = (a: Answer): string[] =>
  (a.json.details ?? []).filter((d: { "@type": string }) => d["@type"] === BAD_REQUEST).flatMap((d: { fieldViolations: { field: string }[] }) => d.fieldViolations.map((v) => v.field));

function expectFieldError(a: Answer, field: string, what: string): void {
  expectGrpcError(a, 400, Code.InvalidArgument, what);
  assert.ok(fieldsOf(a).includes(field), `${what}: ${field} named in ${a.text}`);
}

/** A product as the API shows it: int64 as strings, times in RFC 3339, no unknown fields. */
function expectProduct(p: Record<string, unknown>, want: { sku?: string; name?: string; amountMinor?: string; available?: number }) {
  assert.match(String(p.id), /^[0-9a-f-]{36}$/);
  if (want.sku) assert.equal(p.sku, want.sku);
  if (want.name) assert.equal(p.name, want.name);
  if (want.amountMinor) assert.deepEqual(p.price, { amountMinor: want.amountMinor, currency: "EUR" }, "money: int64 minor units as a string");
  if (want.available !== undefined) assert.equal(p.available ?? 0, want.available);
  assert.match(String(p.createdAt), RFC3339);
  for (const k of Object.keys(p)) assert.ok(["id", "sku", "name", "description", "price", "available", "active", "createdAt", "updatedAt"].includes(k), `unexpected product field ${k}`);
}

export function catalogueScenarios(t: () => Target, users: () => { admin: User; alice: User }): Record<string, () => Promise<void>> {
  const sku = (tag: string) => `${tag}-${randomUUID().slice(0, 8)}`.toUpperCase();
  const create = async (fields: Record<string, unknown> = {}) => {
    const body = { sku: sku("CONF"), name: `Conformance lamp ${randomUUID().slice(0, 6)}`, description: "a desk lamp", price: { amountMinor: "2500", currency: "EUR" }, initialStock: 5, ...fields };
    const a = await call(t(), "POST", "/v1/admin/products", { token: users().admin.access, body });
    expectStatus(a, 200, "create product");
    return a.json.product as Record<string, unknown> & { id: string; sku: string; name: string };
  };

  return {
    "GET /v1/products": async () => {
      const p = await create({ currency: undefined, price: { amountMinor: "101", currency: "EUR" } });
      const a = await call(t(), "GET", `/v1/products?minPriceMinor=101&maxPriceMinor=101&currency=EUR&pageSize=100`);
      expectStatus(a, 200, "anonymous");
      const found = (a.json.products as Record<string, unknown>[]).find((x) => x.id === p.id);
      assert.ok(found, a.text);
      expectProduct(found, { sku: p.sku, amountMinor: "101", available: 5 });
      const sorted = await call(t(), "GET", "/v1/products?sort=PRODUCT_SORT_PRICE&descending=true&pageSize=2");
      expectStatus(sorted, 200, "sorted, paged");
      assert.ok(sorted.json.products.length <= 2);
      expectLocalReply(await call(t(), "GET", "/v1/products?sort=PRODUCT_SORT_COLOUR"), 400, /PRODUCT_SORT_COLOUR/, "bad enum name");
      expectFieldError(await call(t(), "GET", "/v1/products?pageSize=-1"), "pageSize", "a negative page size");
    },

    "GET /v1/products/search": async () => {
      const word = `zyx${randomUUID().slice(0, 6).replace(/-/g, "")}`;
      const inName = await create({ name: `Lamp ${word}` });
      const inText = await create({ description: `goes with any ${word}` });
      const a = await call(t(), "GET", `/v1/products/search?q=${word}`);
      expectStatus(a, 200);
      assert.deepEqual((a.json.products as { id: string }[]).map((x) => x.id), [inName.id, inText.id], "a name match ranks first");
      expectFieldError(await call(t(), "GET", "/v1/products/search"), "q", "no q");
      expectStatus(await call(t(), "POST", `/v1/admin/products/${inName.id}:deactivate`, { token: users().admin.access, body: {} }), 200, "deactivate");
      const after = await call(t(), "GET", `/v1/products/search?q=${word}`);
      assert.deepEqual((after.json.products as { id: string }[]).map((x) => x.id), [inText.id], "never an inactive product");
    },

    "GET /v1/products/{id}": async () => {
      const p = await create();
      const a = await call(t(), "GET", `/v1/products/${p.id}`);
      expectStatus(a, 200);
      assert.deepEqual(Object.keys(a.json), ["product"]);
      expectProduct(a.json.product, { sku: p.sku, name: p.name, amountMinor: "2500", available: 5 });
      expectGrpcError(await call(t(), "GET", `/v1/products/${randomUUID()}`), 404, Code.NotFound, "unknown");
      expectGrpcError(await call(t(), "GET", "/v1/products/not-an-id"), 400, Code.InvalidArgument, "malformed id");
    },

    "POST /v1/admin/products": async () => {
      const p = await create({ lowStockThreshold: 2 });
      expectProduct(p, { amountMinor: "2500", available: 5 });
      const dup = await call(t(), "POST", "/v1/admin/products", { token: users().admin.access, body: { sku: p.sku, name: "Again", price: { amountMinor: "1", currency: "EUR" } } });
      expectGrpcError(dup, 409, Code.AlreadyExists, "a taken sku");
      const bad = await call(t(), "POST", "/v1/admin/products", { token: users().admin.access, body: { sku: "lower case", name: "", price: { amountMinor: "-1", currency: "euro" } } });
      expectGrpcError(bad, 400, Code.InvalidArgument, "bad fields");
      for (const f of ["sku", "name"]) assert.ok(fieldsOf(bad).includes(f), `${f} named: ${bad.text}`);
      expectGrpcError(await call(t(), "POST", "/v1/admin/products", { token: users().alice.access, body: { sku: sku("X"), name: "X", price: { amountMinor: "1", currency: "EUR" } } }), 403, Code.PermissionDenied, "not an admin");
      expectLocalReply(await call(t(), "POST", "/v1/admin/products", { body: {} }), 401, undefined, "anonymous");
    },

    "PATCH /v1/admin/products/{id}": async () => {
      const p = await create();
      const a = await call(t(), "PATCH", `/v1/admin/products/${p.id}`, { token: users().admin.access, body: { name: "Renamed lamp", price: { amountMinor: "3100", currency: "EUR" } } });
      expectStatus(a, 200);
      expectProduct(a.json.product, { name: "Renamed lamp", amountMinor: "3100" });
      expectGrpcError(await call(t(), "PATCH", `/v1/admin/products/${p.id}`, { token: users().admin.access, body: {} }), 400, Code.InvalidArgument, "nothing to change");
      expectGrpcError(await call(t(), "PATCH", `/v1/admin/products/${randomUUID()}`, { token: users().admin.access, body: { name: "X" } }), 404, Code.NotFound, "unknown");
      expectGrpcError(await call(t(), "PATCH", `/v1/admin/products/${p.id}`, { token: users().alice.access, body: { name: "X" } }), 403, Code.PermissionDenied, "not an admin");
    },

    "POST /v1/admin/products/{id}:deactivate": async () => {
      const p = await create();
      const a = await call(t(), "POST", `/v1/admin/products/${p.id}:deactivate`, { token: users().admin.access, body: {} });
      expectStatus(a, 200);
      expectGrpcError(await call(t(), "GET", `/v1/products/${p.id}`), 404, Code.NotFound, "hidden from the public");
      expectStatus(await call(t(), "POST", `/v1/admin/products/${p.id}:deactivate`, { token: users().admin.access, body: {} }), 200, "twice: no-op");
      expectGrpcError(await call(t(), "POST", `/v1/admin/products/${p.id}:deactivate`, { token: users().alice.access, body: {} }), 403, Code.PermissionDenied, "not an admin");
    },

    "POST /v1/admin/products/{id}:restock": async () => {
      const p = await create({ initialStock: 1 });
      const a = await call(t(), "POST", `/v1/admin/products/${p.id}:restock`, { token: users().admin.access, body: { quantity: 4 } });
      expectStatus(a, 200);
      const stock = await call(t(), "GET", `/v1/admin/products/${p.id}/stock`, { token: users().admin.access });
      assert.equal(stock.json.stock.available, 5, stock.text);
      expectFieldError(await call(t(), "POST", `/v1/admin/products/${p.id}:restock`, { token: users().admin.access, body: { quantity: 0 } }), "quantity", "zero");
    },

    "GET /v1/admin/products/{id}/stock": async () => {
      const p = await create({ initialStock: 7, lowStockThreshold: 3 });
      const a = await call(t(), "GET", `/v1/admin/products/${p.id}/stock`, { token: users().admin.access });
      expectStatus(a, 200);
      assert.deepEqual(Object.keys(a.json).sort(), ["product", "stock"]);
      assert.equal(a.json.stock.productId, p.id);
      assert.equal(a.json.stock.stock, 7);
      assert.equal(a.json.stock.available, 7);
      assert.equal(a.json.stock.lowStockThreshold, 3);
      assert.equal(a.json.stock.reserved ?? 0, 0);
      expectGrpcError(await call(t(), "GET", `/v1/admin/products/${p.id}/stock`, { token: users().alice.access }), 403, Code.PermissionDenied, "not an admin");
      expectGrpcError(await call(t(), "GET", `/v1/admin/products/${randomUUID()}/stock`, { token: users().admin.access }), 404, Code.NotFound, "unknown");
    },
  };
}
