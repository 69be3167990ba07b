// Data access for the order service (schema "orders"). Types first, SQL visible.
// Money is integer minor units in bigint columns; drivers return bigint as a
// string (pg) or a number (PGlite), so rows are normalised with BigInt() in convert.ts.
import { sql, type Kysely, type Transaction } from "kysely";
import { enqueue, notifyRelays } from "../../platform/outbox.js";
import { cursorTs, keysetWhere, type Keyset } from "../../platform/pagination.js";
import { prepared, type Prepared } from "../../platform/prepared.js";
import { CANCEL_REASON, orderCreated, statusChangeEvents, type CancelReason } from "./events.js";
import { SCHEMA } from "./migrations.js";
import type { OrderDb, OrderLineRow, OrderRow, OrderWithLines, Status } from "./tables.js";

export { STATUSES, type OrderDb, type OrderLineRow, type OrderRow, type OrderTable, type OrderWithLines, type Status } from "./tables.js";

/** A line as the catalogue reserved and priced it. */
export interface NewLine {
  productId: string;
  sku: string;
  name: string;
  quantity: number;
  unitPriceMinor: bigint;
  currency: string;
}

export interface NewOrder {
  /** orderIdFor(userId, requestId): the id the catalogue's reservation is keyed by. */
  id: string;
  userId: string;
  requestId: string;
  lines: NewLine[];
  /** The one currency of every line. */
  currency: string;
  /** The insert commits only while the database's clock is before this moment (the reservation's deadline less the margin). */
  commitBefore: Date;
}

/** The order's commit deadline passed before the insert could commit: nothing was written. */
export class CommitDeadlinePassed extends Error {
  constructor() {
    super("the order's stock reservation is about to expire");
  }
}

/** The reservation of this order id was given up (abandon()): the order is never inserted. */
export class ReservationAbandoned extends Error {
  constructor(readonly orderId: string) {
    super(`the stock reservation of order ${orderId} was released`);
  }
}

type Trx = Transaction<OrderDb>;

/**
 * The lock create() and abandon() take on one order id, so "insert the order"
 * and "give up its reservation" are decided one after the other, never both.
 */
async function lockOrder(trx: Trx, orderId: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext(${`orders.order:${orderId}`}))`.execute(trx);
}

export class OrderStore {
  // Point reads of GetOrder, CancelOrder and a repeated CreateOrder: compiled once.
  private readonly byId: Prepared<[id: string], OrderRow>;
  private readonly byRequestId: Prepared<[userId: string, requestId: string], OrderRow>;
  private readonly linesById: Prepared<[id: string], OrderLineRow>;

  constructor(private readonly db: Kysely<OrderDb>) {
    this.byId = prepared(db, (id: string) => db.selectFrom("orders.orders").selectAll().where("id", "=", id));
    this.byRequestId = prepared(db, (userId: string, requestId: string) =>
      db.selectFrom("orders.orders").selectAll().where("user_id", "=", userId).where("request_id", "=", requestId),
    );
    this.linesById = prepared(db, (id: string) => db.selectFrom("orders.order_lines").selectAll().where("order_id", "=", id).orderBy("position"));
  }

  private async withLines<R extends OrderRow>(row: R | undefined): Promise<(R & { lines: OrderLineRow[] }) | undefined> {
    return row && { ...row, lines: await this.linesById.all(row.id) };
  }

  /** Rows with their lines, in one query for all of them. */
  async allWithLines<R extends OrderRow>(rows: R[]): Promise<(R & { lines: OrderLineRow[] })[]> {
    if (!rows.length) return [];
    const lines = await this.db.selectFrom("orders.order_lines").selectAll().where("order_id", "in", rows.map((r) => r.id))
      .orderBy("order_id").orderBy("position").execute();
    const by = new Map<string, OrderLineRow[]>();
    for (const l of lines) by.set(l.order_id, [...(by.get(l.order_id) ?? []), l]);
    return rows.map((r) => ({ ...r, lines: by.get(r.id) ?? [] }));
  }

  async get(id: string): Promise<OrderWithLines | undefined> {
    return this.withLines(await this.byId.first(id));
  }

  async byRequest(userId: string, requestId: string): Promise<OrderWithLines | undefined> {
    return this.withLines(await this.byRequestId.first(userId, requestId));
  }

  /** Whether the reservation of this order id was given up (abandon()). */
  async abandoned(orderId: string): Promise<boolean> {
    return !!(await this.db.selectFrom("orders.abandoned_reservations").select("order_id").where("order_id", "=", orderId).executeTakeFirst());
  }

  /**
   * Create an order once per (user_id, request_id), whose id is derived from
   * both: concurrent calls with the same key insert one row and all get that
   * row. Its lines and OrderCreated go in the same transaction, which commits
   * only while the database clock is before `commitBefore` (the check is the
   * transaction's last statement), else CommitDeadlinePassed and nothing is
   * written. An order id given up by abandon() is ReservationAbandoned.
   */
  async create(o: NewOrder): Promise<{ order: OrderWithLines; created: boolean }> {
    const inserted = await this.db.transaction().execute(async (trx) => {
      await lockOrder(trx, o.id);
      const gone = await trx.selectFrom("orders.abandoned_reservations").select("order_id").where("order_id", "=", o.id).executeTakeFirst();
      if (gone) throw new ReservationAbandoned(o.id);
      const total = o.lines.reduce((t, l) => t + l.unitPriceMinor * BigInt(l.quantity), 0n);
      const row = await trx
        .insertInto("orders.orders")
        .values({ id: o.id, user_id: o.userId, request_id: o.requestId, currency: o.currency, total_minor: total.toString() })
        // The id or (user_id, request_id): both name this request.
        .onConflict((oc) => oc.doNothing())
        .returningAll()
        .executeTakeFirst();
      if (!row) return undefined;
      const lines = await trx
        .insertInto("orders.order_lines")
        .values(o.lines.map((l, position) => ({
          order_id: o.id,
          position,
          product_id: l.productId,
          sku: l.sku,
          name: l.name,
          quantity: l.quantity,
          unit_price_minor: l.unitPriceMinor.toString(),
          currency: l.currency,
        })))
        .returningAll()
        .execute();
      const order = { ...row, lines: lines.sort((a, b) => a.position - b.position) };
      await enqueue(trx, SCHEMA, orderCreated(order));
      // Last: the reservation must still be live, with the margin, when this commits.
      const { rows } = await sql<{ ok: boolean }>`select clock_timestamp() < ${o.commitBefore.toISOString()}::timestamptz as ok`.execute(trx);
      if (rows[0]?.ok !== true) throw new CommitDeadlinePassed();
      return order;
    });
    if (inserted) {
      notifyRelays(this.db, SCHEMA);
      return { order: inserted, created: true };
    }
    // The conflicting row is committed (the insert waited for it): read it.
    const existing = await this.byRequest(o.userId, o.requestId);
    if (!existing) throw new Error("order insert conflicted but no order exists");
    return { order: existing, created: false };
  }

  /**
   * Give up the reservation of an order id that has no order: recorded first,
   * under the lock create() takes, so the order can never be inserted after
   * (create() then answers ReservationAbandoned). True when the caller may
   * release the reservation; false when the order exists (keep it).
   */
  async abandon(orderId: string, reason: string): Promise<boolean> {
    return (await this.settle(orderId, reason)) === undefined;
  }

  /**
   * The status of the order with this id if it exists; otherwise the id is
   * marked abandoned (`reason`), under the lock create() takes, so it can never
   * be inserted after, and undefined. Idempotent: once marked, always undefined.
   */
  async settle(orderId: string, reason: string): Promise<Status | undefined> {
    return this.db.transaction().execute(async (trx) => {
      await lockOrder(trx, orderId);
      const order = await trx.selectFrom("orders.orders").select("status").where("id", "=", orderId).executeTakeFirst();
      if (order) return order.status;
      await trx.insertInto("orders.abandoned_reservations").values({ order_id: orderId, reason }).onConflict((oc) => oc.doNothing()).execute();
      return undefined;
    });
  }

  /** One owner's orders newest first, keyset (created_at, id) before `after`. */
  list(q: { userId: string; status?: Status; after?: Keyset; limit: number }): Promise<(OrderWithLines & { cursor_ts: string })[]> {
    return this.listAll(q);
  }

  /** Every order matching the filters, newest first, keyset (created_at, id) before `after`; with their lines. */
  async listAll(q: {
    userId?: string;
    status?: Status;
    productId?: string;
    createdAfter?: Date;
    createdBefore?: Date;
    after?: Keyset;
    limit: number;
  }): Promise<(OrderWithLines & { cursor_ts: string })[]> {
    let query = this.db
      .selectFrom("orders.orders")
      .selectAll()
      .select(cursorTs("created_at").as("cursor_ts"))
      .where(keysetWhere("created_at", "id", q.after, "desc"));
    if (q.userId) query = query.where("user_id", "=", q.userId);
    if (q.status) query = query.where("status", "=", q.status);
    if (q.productId) query = query.where("id", "in", this.db.selectFrom("orders.order_lines").select("order_id").where("product_id", "=", q.productId));
    if (q.createdAfter) query = query.where("created_at", ">=", q.createdAfter);
    if (q.createdBefore) query = query.where("created_at", "<", q.createdBefore);
    const rows = await query.orderBy("created_at", "desc").orderBy("id", "desc").limit(q.limit).execute();
    return this.allWithLines(rows);
  }

  /**
   * Compare-and-set the status; undefined (and no event) when the order is
   * gone or no longer in `from`. The change's OrderStatusChanged, and for a
   * cancellation OrderCancelled with `cancelReason`, go into the outbox in the
   * same transaction.
   */
  async setStatus(id: string, from: Status, to: Status, cancelReason: CancelReason): Promise<OrderWithLines | undefined> {
    const updated = await this.db.transaction().execute(async (trx) => {
      const row = await trx
        .updateTable("orders.orders")
        .set({ status: to, updated_at: sql<Date>`now()` })
        .where("id", "=", id)
        .where("status", "=", from)
        .returningAll()
        .executeTakeFirst();
      for (const e of row ? statusChangeEvents(row, from, cancelReason) : []) await enqueue(trx, SCHEMA, e);
      return row;
    });
    if (updated) notifyRelays(this.db, SCHEMA);
    return this.withLines(updated);
  }

  async delete(id: string): Promise<boolean> {
    const r = await this.db.deleteFrom("orders.orders").where("id", "=", id).executeTakeFirst();
    return r.numDeletedRows > 0n;
  }

  /** Mark every order of a deleted user; the number of orders newly marked. */
  async markOwnerDeleted(userId: string): Promise<number> {
    const r = await this.db
      .updateTable("orders.orders")
      .set({ owner_deleted: true, updated_at: sql<Date>`now()` })
      .where("user_id", "=", userId)
      .where("owner_deleted", "=", false)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  /**
   * Cancel orders still PENDING after `ttlSeconds`, in batches. Safe with
   * several instances sweeping at once: each batch locks its rows with SKIP
   * LOCKED (another sweeper takes other rows) and the UPDATE re-checks
   * status = 'PENDING' (a concurrent cancel/confirm wins). Each order's
   * OrderStatusChanged and OrderCancelled (reason "expired") are written in
   * its batch's transaction. Returns the ids cancelled.
   */
  async cancelExpiredPending(ttlSeconds: number, batchSize = 500): Promise<string[]> {
    const cancelled: string[] = [];
    for (;;) {
      const rows = await this.db.transaction().execute(async (trx) => {
        const { rows } = await sql<OrderRow>`
          update orders.orders set status = 'CANCELLED', updated_at = now()
          where status = 'PENDING' and id in (
            select id from orders.orders
            where status = 'PENDING' and created_at < now() - make_interval(secs => ${ttlSeconds})
            order by created_at
            limit ${batchSize}
            for update skip locked)
          returning *`.execute(trx);
        for (const row of rows) for (const e of statusChangeEvents(row, "PENDING", CANCEL_REASON.expired)) await enqueue(trx, SCHEMA, e);
        return rows;
      });
      if (rows.length) notifyRelays(this.db, SCHEMA);
      cancelled.push(...rows.map((r) => r.id));
      if (rows.length < batchSize) return cancelled;
    }
  }
}
