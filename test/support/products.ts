// Catalogue products for suites that order (orders name catalogue products
// since issue 19): an admin makes one with plenty of stock, the suite orders
// it. In process (startTestSystem: an admin of its own per system), over REST
// (any edge, given an admin's token) and on a stack (its ADMIN_EMAIL account).
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import type { Product } from "../../gen/acme/catalogue/v1/catalogue_pb.js";
import { rest } from "./http.js";
import type { TestSystem } from "./system.js";

/** Plenty: every suite's orders together stay far below it. */
export const LARGE_STOCK = 1_000_000;

export interface ProductSpec {
  name?: string;
  priceMinor?: bigint;
  currency?: string;
  stock?: number;
}

const sku = () => `T-${randomUUID().slice(0, 8).toUpperCase()}`;

const admins = new WeakMap<TestSystem, Promise<string>>();

/** An admin's access token for this system (made once per system; imports the user helpers lazily). */
export function adminToken(t: TestSystem): Promise<string> {
  let p = admins.get(t);
  if (!p) {
    p = import("../user/helpers.js").then(async ({ signUpAdmin }) => (await signUpAdmin(t)).token);
    admins.set(t, p);
  }
  return p;
}

/** A product on sale in `t` (default: "Widget", 19.99 EUR, LARGE_STOCK units), made by `token`'s admin or one of the fixture's. */
export async function makeProduct(t: TestSystem, spec: ProductSpec = {}, token?: string): Promise<Product> {
  const res = await t.catalogue(token ?? (await adminToken(t))).createProduct({
    sku: sku(),
    name: spec.name ?? "Widget",
    description: "",
    price: { amountMinor: spec.priceMinor ?? 1999n, currency: spec.currency ?? "EUR" },
    initialStock: spec.stock ?? LARGE_STOCK,
    lowStockThreshold: 0,
  });
  return res.product!;
}

/** The id of a product on sale, made over REST by an admin (any edge); JSON as the API answers it. */
export async function makeProductRest(base: string, token: string, spec: ProductSpec = {}): Promise<{ id: string; price: { amountMinor: string; currency: string } }> {
  const r = await rest(base, "POST", "/v1/admin/products", {
    token,
    body: {
      sku: sku(),
      name: spec.name ?? "Widget",
      price: { amountMinor: String(spec.priceMinor ?? 1999n), currency: spec.currency ?? "EUR" },
      initialStock: spec.stock ?? LARGE_STOCK,
    },
  });
  assert.equal(r.status, 200, `create product: ${r.text}`);
  return r.body.product;
}

/** Log in as a stack's admin (test/support/edge-stack.ts) and make a product through its edge. */
export async function makeStackProduct(stack: { edgeUrl: string; admin: { email: string; password: string } }, spec: ProductSpec = {}): Promise<string> {
  const login = await rest(stack.edgeUrl, "POST", "/v1/auth/login", { body: stack.admin });
  assert.equal(login.status, 200, `admin login: ${login.text}`);
  return (await makeProductRest(stack.edgeUrl, login.body.tokens.accessToken, spec)).id;
}

/** CreateOrder's lines: one line of `quantity` units of the product. */
export const line = (productId: string, quantity = 1) => [{ productId, quantity }];

const defaults = new WeakMap<TestSystem, Promise<Product>>();

/** The one product a suite orders when which product does not matter ("Widget", 19.99 EUR, LARGE_STOCK), made once per system. */
export function defaultProduct(t: TestSystem): Promise<Product> {
  let p = defaults.get(t);
  if (!p) {
    p = makeProduct(t);
    defaults.set(t, p);
  }
  return p;
}

/** CreateOrder's lines: `quantity` units of the system's default product. */
export async function linesOf(t: TestSystem, quantity = 1): Promise<{ productId: string; quantity: number }[]> {
  return line((await defaultProduct(t)).id, quantity);
}
