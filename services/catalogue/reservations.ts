// Reservations (schema "catalogue"): units set aside for an order. Every
// operation on one order runs in one transaction under a transaction-level
// advisory lock on the order id, so calls for the same order (a repeated
// Reserve, Release twice at once, a sweeper racing a Commit) take turns and
// each sees what the previous one committed. The counts move by conditional
// UPDATEs of the product rows, locked in product-id order by every
// transaction (no deadlocks), with their events in the same transaction.
import { sql, type Kysely, type Transaction } from "kysely";
import { notifyRelays } from "../../platform/outbox.js";
import { enqueueStockEvents, STOCK_REASON, type StockReason } from "./events.js";
import { SCHEMA } from "./migrations.js";
import { availableOf, PRODUCT_COLUMNS, type CatalogueDb, type ReservationRow, type ReservationState } from "./tables.js";

export type Trx = Transaction<CatalogueDb>;

export interface Line {
  productId: string;
  quantity: number;
}

/** Why Reserve refused a line: no such product, taken off sale, or not enough units (`available` left). */
export class ReserveRefused extends Error {
  constructor(
    readonly productId: string,
    readonly reason: "unknown" | "inactive" | "insufficient",
    readonly available = 0,
    readonly asked = 0,
  ) {
    super(reason === "insufficient" ? `not enough stock for product ${productId}: ${available} left, ${asked} asked`
      : `product ${productId} ${reason === "unknown" ? "does not exist" : "is not for sale"}`);
  }
}

export type Transition = "hold" | "release" | "commit" | "expire";

export interface TransitionOptions {
  /** Give up ("unchanged", no rows) when another transaction holds the order (the sweeper). */
  tryOnly?: boolean;
  /**
   * The order is known to exist (its OrderCreated or status change arrived): hold
   * or commit a pending reservation even past reserved_until, if the sweeper has
   * not released it yet.
   */
  orderExists?: boolean;
}

export type TransitionResult =
  | { outcome: "changed" | "unchanged"; rows: ReservationRow[] }
  | { outcome: "missing" }
  | { outcome: "refused"; state: ReservationState; expired: boolean; rows: ReservationRow[] };

/** Which states each transition moves from, to which, and how the product counts move. */
const RULES: Record<Transition, { from: ReservationState[]; to: ReservationState; reason?: StockReason; reserved: -1 | 0; sold: 0 | 1 }> = {
  hold: { from: ["pending"], to: "held", reserved: 0, sold: 0 },
  release: { from: ["pending", "held"], to: "released", reason: STOCK_REASON.released, reserved: -1, sold: 0 },
  commit: { from: ["pending", "held"], to: "committed", reason: STOCK_REASON.committed, reserved: -1, sold: 1 },
  expire: { from: ["pending"], to: "released", reason: STOCK_REASON.expired, reserved: -1, sold: 0 },
};

/** Take the order's lock for this transaction (wait, or with `tryOnly` give up at once: false). */
async function lockOrder(trx: Trx, orderId: string, tryOnly = false): Promise<boolean> {
  const fn = sql.raw(tryOnly ? "pg_try_advisory_xact_lock" : "pg_advisory_xact_lock");
  const { rows } = await sql<{ ok: unknown }>`select ${fn}(hashtext(${`catalogue.reservation:${orderId}`})) as ok`.execute(trx);
  return !tryOnly || rows[0]?.ok === true;
}

const rowsOf = (trx: Trx, orderId: string) =>
  trx.selectFrom("catalogue.reservations").selectAll().select(sql<boolean>`reserved_until <= now()`.as("expired"))
    .where("order_id", "=", orderId).orderBy("product_id").execute();

export class ReservationStore {
  constructor(readonly db: Kysely<CatalogueDb>, private readonly ttlSeconds: number) {}

  async get(orderId: string): Promise<ReservationRow[]> {
    return this.db.selectFrom("catalogue.reservations").selectAll().where("order_id", "=", orderId).orderBy("product_id").execute();
  }

  /**
   * Reserve every line or none, priced now; once per order id (a repeat
   * returns the first reservation, created false). Throws ReserveRefused for
   * the first line (by product id) that cannot be had.
   */
  async reserve(orderId: string, lines: Line[]): Promise<{ rows: ReservationRow[]; created: boolean }> {
    const sorted = [...lines].sort((a, b) => a.productId.localeCompare(b.productId));
    const out = await this.db.transaction().execute(async (trx) => {
      await lockOrder(trx, orderId);
      const seen = await rowsOf(trx, orderId);
      if (seen.length) return { rows: seen as ReservationRow[], created: false };
      const priced = [];
      for (const line of sorted) {
        // The one statement that decides: enough units, and the product on sale.
        const p = await trx
          .updateTable("catalogue.products")
          .set({ reserved: sql<number>`reserved + ${line.quantity}`, updated_at: sql<Date>`now()` })
          .where("id", "=", line.productId)
          .where("active", "=", true)
          .where(sql<boolean>`stock - reserved - sold >= ${line.quantity}`)
          .returning(PRODUCT_COLUMNS)
          .executeTakeFirst();
        if (!p) {
          const now = await trx.selectFrom("catalogue.products").select(PRODUCT_COLUMNS).where("id", "=", line.productId).executeTakeFirst();
          if (!now) throw new ReserveRefused(line.productId, "unknown");
          if (!now.active) throw new ReserveRefused(line.productId, "inactive");
          throw new ReserveRefused(line.productId, "insufficient", availableOf(now), line.quantity);
        }
        await enqueueStockEvents(trx, p, { available: availableOf(p) + line.quantity, threshold: p.low_stock_threshold }, { reason: STOCK_REASON.reserved, orderId });
        priced.push({ line, p });
      }
      const rows = await trx
        .insertInto("catalogue.reservations")
        .values(priced.map(({ line, p }) => ({
          order_id: orderId,
          product_id: p.id,
          sku: p.sku,
          name: p.name,
          quantity: line.quantity,
          unit_price_minor: String(p.price_minor),
          currency: p.currency,
          reserved_until: sql<Date>`now() + make_interval(secs => ${this.ttlSeconds})`,
        })))
        .returningAll()
        .execute();
      return { rows, created: true };
    });
    if (out.created) notifyRelays(this.db, SCHEMA);
    return out;
  }

  /**
   * Move the order's reservation along `t` exactly once. A reservation already
   * where `t` leads is "unchanged"; one `t` cannot move (released when
   * committing, an expired pending one when holding or committing) is
   * "refused". `tryOnly`: give up ("unchanged", no rows) when another
   * transaction holds the order (the sweeper).
   */
  async transition(orderId: string, t: Transition, opts: TransitionOptions = {}): Promise<TransitionResult> {
    const result = await this.db.transaction().execute((trx) => this.transitionIn(trx, orderId, t, opts));
    if (result.outcome === "changed" && RULES[t].reason) notifyRelays(this.db, SCHEMA);
    return result;
  }

  /** transition() inside the caller's transaction (the order-events consumer's); the caller notifies the relay. */
  async transitionIn(trx: Trx, orderId: string, t: Transition, opts: TransitionOptions = {}): Promise<TransitionResult> {
    const rule = RULES[t];
    {
      if (!(await lockOrder(trx, orderId, opts.tryOnly))) return { outcome: "unchanged", rows: [] };
      const rows = await rowsOf(trx, orderId);
      if (!rows.length) return { outcome: "missing" };
      const { state, expired } = rows[0];
      if (state === rule.to) return { outcome: "unchanged", rows };
      // A pending reservation past reserved_until belongs to the sweeper: it can only be released,
      // unless the caller knows its order exists (`orderExists`: the order-events consumer).
      const live = state !== "pending" || t === "release" || (t === "expire" ? expired : !expired || opts.orderExists === true);
      if (!rule.from.includes(state) || !live) {
        return t === "expire" ? { outcome: "unchanged", rows } : { outcome: "refused", state, expired, rows };
      }
      const moved = await trx
        .updateTable("catalogue.reservations")
        .set({ state: rule.to, updated_at: sql<Date>`now()` })
        .where("order_id", "=", orderId)
        .where("state", "=", state)
        .returningAll()
        .execute();
      moved.sort((a, b) => a.product_id.localeCompare(b.product_id));
      if (rule.reason) {
        for (const r of moved) {
          const p = await trx
            .updateTable("catalogue.products")
            .set({
              reserved: sql<number>`reserved + ${rule.reserved * r.quantity}`,
              sold: sql<number>`sold + ${rule.sold * r.quantity}`,
              updated_at: sql<Date>`now()`,
            })
            .where("id", "=", r.product_id)
            .returning(PRODUCT_COLUMNS)
            .executeTakeFirstOrThrow();
          const before = availableOf(p) - (rule.sold ? 0 : r.quantity);
          await enqueueStockEvents(trx, p, { available: before, threshold: p.low_stock_threshold }, { reason: rule.reason, orderId });
        }
      }
      return { outcome: "changed", rows: moved };
    }
  }

  /**
   * Order ids with a pending reservation past reserved_until, in order-id
   * order after `after` (a sweep walks them once each), at most `limit`.
   */
  async dueOrders(after: string | undefined, limit: number): Promise<string[]> {
    let q = this.db
      .selectFrom("catalogue.reservations")
      .select("order_id")
      .distinct()
      .where("state", "=", "pending")
      .where("reserved_until", "<=", sql<Date>`now()`);
    if (after) q = q.where("order_id", ">", after);
    const rows = await q.orderBy("order_id").limit(limit).execute();
    return rows.map((r) => r.order_id);
  }
}
