// CatalogueService. The auth interceptor has already checked the contract's
// access: the list, search and get RPCs are public, the rest admin only
// (refused with PERMISSION_DENIED before they get here). The public never
// sees an inactive product: it is NOT_FOUND, as an unknown one.
import type { ServiceImpl } from "@connectrpc/connect";
import { ProductSort, ProductSortSchema, type CatalogueService, type Money } from "../../gen/acme/catalogue/v1/catalogue_pb.js";
import { alreadyExists, failedPrecondition, invalidArgument, notFound } from "../../platform/errors.js";
import { nextPage, pageSize, type PageTokens } from "../../platform/pagination.js";
import { badField, charLength, Validator } from "../../platform/validate.js";
import { toProduct, toStock } from "./convert.js";
import { searchProducts, Q_MAX } from "./search.js";
import { STOCK_MAX, type ProductChange, type ProductStore, type SortKey } from "./store.js";

export const SKU_RE = /^[A-Z0-9-]{1,40}$/;
export const CURRENCY_RE = /^[A-Z]{3}$/;
export const NAME_MAX = 200;
export const DESCRIPTION_MAX = 5000;
/** Highest unit price: 10^12 minor units. With quantities <= 10000 a line total stays far inside int64. */
export const PRICE_MAX_MINOR = 1_000_000_000_000n;
export const RESTOCK_MAX = 1_000_000;
/** The fields UpdateProduct changes (the ones set). */
const UPDATABLE = ["name", "description", "price", "lowStockThreshold"];

const SORTS: Record<ProductSort, SortKey> = {
  [ProductSort.UNSPECIFIED]: "name",
  [ProductSort.NAME]: "name",
  [ProductSort.PRICE]: "price",
  [ProductSort.CREATED]: "created",
};

/** A Money field: amount within [0, PRICE_MAX_MINOR], currency three uppercase letters. */
export function checkMoney(v: Validator, field: string, m: Money | undefined): void {
  if (!m) return void v.add(field, "is required");
  v.bigint(`${field}.amountMinor`, m.amountMinor, { min: 0n, max: PRICE_MAX_MINOR });
  if (!CURRENCY_RE.test(m.currency)) v.add(`${field}.currency`, "must be an ISO 4217 code: three uppercase letters");
}

function checkDescription(v: Validator, value: string): void {
  if (charLength(value) > DESCRIPTION_MAX) v.add("description", `must be at most ${DESCRIPTION_MAX} characters`);
}

export interface CatalogueHandlerDeps {
  store: ProductStore;
  pageTokens: PageTokens;
}

export function catalogueHandlers(deps: CatalogueHandlerDeps): Partial<ServiceImpl<typeof CatalogueService>> {
  const { store, pageTokens } = deps;
  const cursorOf = (r: { cursor_ts: string; id: string }) => ({ ts: r.cursor_ts, id: r.id });

  const existing = async (id: string) => {
    new Validator().uuid("id", id).done();
    return (await store.get(id.toLowerCase())) ?? (() => { throw notFound("product"); })();
  };

  return {
    async listProducts(req) {
      const v = new Validator();
      v.enumValue("sort", req.sort, ProductSortSchema, { allowUnspecified: true });
      if (req.minPriceMinor !== undefined) v.bigint("minPriceMinor", req.minPriceMinor, { min: 0n, max: PRICE_MAX_MINOR });
      if (req.maxPriceMinor !== undefined) v.bigint("maxPriceMinor", req.maxPriceMinor, { min: 0n, max: PRICE_MAX_MINOR });
      if (req.currency && !CURRENCY_RE.test(req.currency)) v.add("currency", "must be an ISO 4217 code: three uppercase letters");
      v.done();
      if (req.minPriceMinor !== undefined && req.maxPriceMinor !== undefined && req.minPriceMinor > req.maxPriceMinor) {
        badField("maxPriceMinor", "must not be below minPriceMinor");
      }
      const size = pageSize(req.pageSize);
      const sort = SORTS[req.sort];
      // A token is valid only for the filters and order it was issued for.
      const scope = `products:${req.minPriceMinor ?? "*"}:${req.maxPriceMinor ?? "*"}:${req.currency || "*"}:${req.inStock}:${sort}:${req.descending}`;
      const after = pageTokens.decode(req.pageToken, scope);
      const rows = await store.list({
        minPriceMinor: req.minPriceMinor,
        maxPriceMinor: req.maxPriceMinor,
        currency: req.currency || undefined,
        inStock: req.inStock,
        sort,
        descending: req.descending,
        after,
        limit: size + 1,
      });
      const page = nextPage(rows, size, cursorOf, (c) => pageTokens.encode(c, scope));
      return { products: page.items.map(toProduct), nextPageToken: page.nextPageToken };
    },

    async searchProducts(req) {
      new Validator().text("q", req.q, { max: Q_MAX }).done();
      const size = pageSize(req.pageSize);
      const scope = `search:${req.q}`;
      const after = pageTokens.decode(req.pageToken, scope);
      const rows = await searchProducts(store.db, { text: req.q, after, limit: size + 1 });
      const page = nextPage(rows, size, cursorOf, (c) => pageTokens.encode(c, scope));
      return { products: page.items.map(toProduct), nextPageToken: page.nextPageToken };
    },

    async getProduct(req) {
      const p = await existing(req.id);
      if (!p.active) throw notFound("product");
      return { product: toProduct(p) };
    },

    async createProduct(req) {
      const v = new Validator();
      v.text("sku", req.sku, { max: 40, pattern: SKU_RE, patternDescription: "must be 1..40 of A-Z, 0-9 and -" });
      v.text("name", req.name, { max: NAME_MAX });
      checkDescription(v, req.description);
      checkMoney(v, "price", req.price);
      v.int("initialStock", req.initialStock, { min: 0, max: STOCK_MAX });
      v.int("lowStockThreshold", req.lowStockThreshold, { min: 0, max: STOCK_MAX });
      v.done();
      const row = await store.create({
        sku: req.sku,
        name: req.name,
        description: req.description,
        priceMinor: req.price!.amountMinor,
        currency: req.price!.currency,
        stock: req.initialStock,
        lowStockThreshold: req.lowStockThreshold,
      });
      if (!row) throw alreadyExists(`sku: a product with sku ${req.sku} already exists`);
      return { product: toProduct(row) };
    },

    async updateProduct(req) {
      const v = new Validator().uuid("id", req.id);
      const change: ProductChange = {};
      if (req.name !== undefined) v.text("name", (change.name = req.name), { max: NAME_MAX });
      if (req.description !== undefined) checkDescription(v, (change.description = req.description));
      if (req.price) {
        checkMoney(v, "price", req.price);
        change.price = { minor: req.price.amountMinor, currency: req.price.currency };
      }
      if (req.lowStockThreshold !== undefined) v.int("lowStockThreshold", (change.lowStockThreshold = req.lowStockThreshold), { min: 0, max: STOCK_MAX });
      v.done();
      if (Object.keys(change).length === 0) throw invalidArgument(UPDATABLE.map((field) => ({ field, description: `nothing to update: set at least one of ${UPDATABLE.join(", ")}` })));
      const row = await store.update(req.id.toLowerCase(), change);
      if (!row) throw notFound("product");
      return { product: toProduct(row) };
    },

    async deactivateProduct(req) {
      await existing(req.id);
      const row = await store.deactivate(req.id.toLowerCase());
      if (!row) throw notFound("product");
      return { product: toProduct(row) };
    },

    async restockProduct(req) {
      const v = new Validator().uuid("id", req.id);
      v.int("quantity", req.quantity, { min: 1, max: RESTOCK_MAX }).done();
      const r = await store.restock(req.id.toLowerCase(), req.quantity);
      if (r === "missing") throw notFound("product");
      if (r === "full") throw failedPrecondition(`stock cannot exceed ${STOCK_MAX} units`);
      return { stock: toStock(r) };
    },

    async getProductStock(req) {
      const p = await existing(req.id);
      return { product: toProduct(p), stock: toStock(p) };
    },
  };
}
