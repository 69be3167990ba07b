// Data access for products (schema "catalogue"): types first, SQL visible.
// Every change of a product's counts is one conditional UPDATE, and its events
// go into the outbox in the same transaction (events.ts). Reservations are in
// reservations.ts, full-text search in search.ts.
import { randomUUID } from "node:crypto";
import { sql, type Kysely, type Transaction } from "kysely";
import { enqueue, notifyRelays } from "../../platform/outbox.js";
import { cursorTs, type Keyset } from "../../platform/pagination.js";
import { enqueueStockEvents, productCreated, STOCK_REASON } from "./events.js";
import { SCHEMA } from "./migrations.js";
import { availableOf, PRODUCT_COLUMNS, type CatalogueDb, type ProductRow } from "./tables.js";

export type { CatalogueDb, ProductRow } from "./tables.js";

/** Highest stock of one product (stock is an integer column). */
export const STOCK_MAX = 1_000_000_000;

export interface NewProduct {
  sku: string;
  name: string;
  description: string;
  priceMinor: bigint;
  currency: string;
  stock: number;
  lowStockThreshold: number;
}

export interface ProductChange {
  name?: string;
  description?: string;
  price?: { minor: bigint; currency: string };
  lowStockThreshold?: number;
}

export type SortKey = "name" | "price" | "created";
const SORT_COLUMN = { name: "name", price: "price_minor", created: "created_at" } as const;

export interface ListQuery {
  minPriceMinor?: bigint;
  maxPriceMinor?: bigint;
  currency?: string;
  inStock: boolean;
  sort: SortKey;
  descending: boolean;
  after?: Keyset;
  limit: number;
}

export type Listed = ProductRow & { cursor_ts: string };

export class ProductStore {
  constructor(readonly db: Kysely<CatalogueDb>) {}

  /** A product, active or not. */
  get(id: string, db: Kysely<CatalogueDb> | Transaction<CatalogueDb> = this.db): Promise<ProductRow | undefined> {
    return db.selectFrom("catalogue.products").select(PRODUCT_COLUMNS).where("id", "=", id).executeTakeFirst();
  }

  /** A new product with its ProductCreated and StockChanged (and StockLow when it starts low); undefined when the sku is taken. */
  async create(p: NewProduct): Promise<ProductRow | undefined> {
    const row = await this.db.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto("catalogue.products")
        .values({
          id: randomUUID(),
          sku: p.sku,
          name: p.name,
          description: p.description,
          price_minor: p.priceMinor.toString(),
          currency: p.currency,
          stock: p.stock,
          low_stock_threshold: p.lowStockThreshold,
        })
        .onConflict((oc) => oc.column("sku").doNothing())
        .returning(PRODUCT_COLUMNS)
        .executeTakeFirst();
      if (!row) return undefined;
      await enqueue(trx, SCHEMA, productCreated(row));
      await enqueueStockEvents(trx, row, { available: Number.POSITIVE_INFINITY, threshold: 0 }, { reason: STOCK_REASON.created });
      return row;
    });
    if (row) notifyRelays(this.db, SCHEMA);
    return row;
  }

  /**
   * Active products, filtered, in (sort column, id) order, after the cursor's
   * row. The cursor names a row (its id); the page goes on after that row's
   * current sort value, so no row is skipped or repeated while values stay put.
   */
  list(q: ListQuery): Promise<Listed[]> {
    const col = SORT_COLUMN[q.sort];
    const dir = q.descending ? "desc" : "asc";
    let query = this.db
      .selectFrom("catalogue.products")
      .select(PRODUCT_COLUMNS)
      .select(cursorTs("created_at").as("cursor_ts"))
      .where("active", "=", true);
    if (q.minPriceMinor !== undefined) query = query.where("price_minor", ">=", q.minPriceMinor.toString());
    if (q.maxPriceMinor !== undefined) query = query.where("price_minor", "<=", q.maxPriceMinor.toString());
    if (q.currency) query = query.where("currency", "=", q.currency);
    if (q.inStock) query = query.where(sql<boolean>`stock - reserved - sold > 0`);
    if (q.after) {
      const op = sql.raw(q.descending ? "<" : ">");
      query = query.where(
        sql<boolean>`(${sql.ref(col)}, id) ${op} (select ${sql.ref(`c.${col}`)}, c.id from catalogue.products c where c.id = ${q.after.id})`,
      );
    }
    return query.orderBy(col, dir).orderBy("id", dir).limit(q.limit).execute();
  }

  /**
   * Change the given fields. The row is locked for the change, so a threshold
   * change that makes the product low emits StockLow exactly once.
   */
  async update(id: string, c: ProductChange): Promise<ProductRow | undefined> {
    const row = await this.db.transaction().execute(async (trx) => {
      const before = await trx.selectFrom("catalogue.products").select(PRODUCT_COLUMNS).where("id", "=", id).forUpdate().executeTakeFirst();
      if (!before) return undefined;
      const after = await trx
        .updateTable("catalogue.products")
        .set({
          ...(c.name !== undefined ? { name: c.name } : {}),
          ...(c.description !== undefined ? { description: c.description } : {}),
          ...(c.price ? { price_minor: c.price.minor.toString(), currency: c.price.currency } : {}),
          ...(c.lowStockThreshold !== undefined ? { low_stock_threshold: c.lowStockThreshold } : {}),
          updated_at: sql<Date>`now()`,
        })
        .where("id", "=", id)
        .returning(PRODUCT_COLUMNS)
        .executeTakeFirstOrThrow();
      await enqueueStockEvents(trx, after, { available: availableOf(before), threshold: before.low_stock_threshold }, {});
      return after;
    });
    if (row) notifyRelays(this.db, SCHEMA);
    return row;
  }

  /** Take a product off sale; idempotent (an inactive one is returned as it is). */
  async deactivate(id: string): Promise<ProductRow | undefined> {
    const row = await this.db
      .updateTable("catalogue.products")
      .set({ active: false, updated_at: sql<Date>`now()` })
      .where("id", "=", id)
      .where("active", "=", true)
      .returning(PRODUCT_COLUMNS)
      .executeTakeFirst();
    return row ?? this.get(id);
  }

  /**
   * Add `quantity` units: one conditional UPDATE (never above STOCK_MAX).
   * "missing" when there is no such product, "full" when it would pass STOCK_MAX.
   */
  async restock(id: string, quantity: number): Promise<ProductRow | "missing" | "full"> {
    const row = await this.db.transaction().execute(async (trx) => {
      const row = await trx
        .updateTable("catalogue.products")
        .set({ stock: sql<number>`stock + ${quantity}`, updated_at: sql<Date>`now()` })
        .where("id", "=", id)
        .where(sql<boolean>`stock + ${quantity} <= ${STOCK_MAX}`)
        .returning(PRODUCT_COLUMNS)
        .executeTakeFirst();
      if (row) await enqueueStockEvents(trx, row, { available: availableOf(row) - quantity, threshold: row.low_stock_threshold }, { reason: STOCK_REASON.restocked });
      return row;
    });
    if (row) {
      notifyRelays(this.db, SCHEMA);
      return row;
    }
    return (await this.get(id)) ? "full" : "missing";
  }
}
