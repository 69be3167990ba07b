// Full-text search over the active products' names and descriptions.
// products.search is a generated tsvector (migrations.ts): the name with
// weight A, the description with weight B, both with the 'simple' text
// search configuration (no stemming, no stop words: works the same for every
// language and on PGlite), indexed with GIN. The query is the user's text
// through websearch_to_tsquery ("quoted phrase", or, -excluded; never a
// syntax error), ranked with ts_rank, so a word in the name ranks above the
// same word in the description only.
import { sql, type Kysely } from "kysely";
import { cursorTs, type Keyset } from "../../platform/pagination.js";
import type { CatalogueDb, ProductRow } from "./tables.js";

/** q: 1..Q_MAX characters. */
export const Q_MAX = 200;

export type Found = ProductRow & { cursor_ts: string; rank: number };

const COLUMNS = sql.raw(
  ["id", "sku", "name", "description", "price_minor", "currency", "stock", "reserved", "sold", "low_stock_threshold", "active", "created_at", "updated_at"]
    .map((c) => `p.${c}`)
    .join(", "),
);

/**
 * Active products matching `q`, best first: (rank, id) descending, after the
 * cursor's row (its rank for the same q, looked up again: a keyset on the
 * rank without carrying a float in the token).
 */
export async function searchProducts(db: Kysely<CatalogueDb>, q: { text: string; after?: Keyset; limit: number }): Promise<Found[]> {
  const after = q.after
    ? sql`and (ts_rank(p.search, query), p.id) < (select ts_rank(c.search, query), c.id from catalogue.products c where c.id = ${q.after.id})`
    : sql``;
  const { rows } = await sql<Found>`
    select ${COLUMNS}, ${cursorTs("p.created_at")} as cursor_ts, ts_rank(p.search, query) as rank
    from catalogue.products p, websearch_to_tsquery('simple', ${q.text}) query
    where p.active and p.search @@ query ${after}
    order by rank desc, p.id desc
    limit ${q.limit}`.execute(db);
  return rows;
}
