// Data access for the order service (schema "orders"). Types first, SQL visible.
// Money is integer cents in bigint columns; drivers return bigint as a string
// (pg) or a number (PGlite), so rows are normalised with BigInt() in convert.ts.
import { randomUUID } from "node:crypto";
import { sql, type Kysely } from "kysely";
import { enqueue, notifyRelays } from "../../platform/outbox.js";
import { cursorTs, keysetWhere, type Keyset } from "../../platform/pagination.js";
import { prepared, type Prepared } from "../../platform/prepared.js";
import { CANCEL_REASON, orderCreated, statusChangeEvents, type CancelReason } from "./events.js";
import { SCHEMA } from "./migrations.js";
import type { OrderDb, OrderRow, Status } from "./tables.js";

export { STATUSES, type OrderDb, type OrderRow, type OrderTable, type Status } from "./tables.js";

export interface NewOrder {
  userId: string;
  product: string;
  quantity: number;
  unitPriceCents: bigint;
  requestId: string;
}

export class OrderStore {
  // Point reads of GetOrder, CancelOrder and a repeated CreateOrder: compiled once.
  private readonly byId: Prepared<[id: string], OrderRow>;
  private readonly byRequestId: Prepared<[userId: string, requestId: string], OrderRow>;

  constructor(private readonly db: Kysely<OrderDb>) {
    this.byId = prepared(db, (id: string) => db.selectFrom("orders.orders").selectAll().where("id", "=", id));
    this.byRequestId = prepared(db, (userId: string, requestId: string) =>
      db.selectFrom("orders.orders").selectAll().where("user_id", "=", userId).where("request_id", "=", requestId),
    );
  }

  get(id: string): Promise<OrderRow | undefined> {
    return this.byId.first(id);
  }

  byRequest(userId: string, requestId: string): Promise<OrderRow | undefined> {
    return this.byRequestId.first(userId, requestId);
  }

  /**
   * Create an order once per (user_id, request_id): concurrent calls with the
   * same key insert one row (the unique index decides) and all get that row.
   * A new order's OrderCreated goes into the outbox in the same transaction.
   */
  async create(o: NewOrder): Promise<{ order: OrderRow; created: boolean }> {
    const inserted = await this.db.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto("orders.orders")
        .values({
          id: randomUUID(),
          user_id: o.userId,
          product: o.product,
          quantity: o.quantity,
          unit_price_cents: o.unitPriceCents.toString(),
          total_cents: (o.unitPriceCents * BigInt(o.quantity)).toString(),
          request_id: o.requestId,
        })
        .onConflict((oc) => oc.columns(["user_id", "request_id"]).doNothing())
        .returningAll()
        .executeTakeFirst();
      if (row) await enqueue(trx, SCHEMA, orderCreated(row));
      return row;
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

  /** One owner's orders newest first, keyset (created_at, id) before `after`. */
  list(q: { userId: string; status?: Status; after?: Keyset; limit: number }): Promise<(OrderRow & { cursor_ts: string })[]> {
    let query = this.db
      .selectFrom("orders.orders")
      .selectAll()
      .select(cursorTs("created_at").as("cursor_ts"))
      .where("user_id", "=", q.userId)
      .where(keysetWhere("created_at", "id", q.after, "desc"));
    if (q.status) query = query.where("status", "=", q.status);
    return query.orderBy("created_at", "desc").orderBy("id", "desc").limit(q.limit).execute();
  }

  /**
   * Compare-and-set the status; undefined (and no event) when the order is
   * gone or no longer in `from`. The change's OrderStatusChanged, and for a
   * cancellation OrderCancelled with `cancelReason`, go into the outbox in the
   * same transaction.
   */
  async setStatus(id: string, from: Status, to: Status, cancelReason: CancelReason): Promise<OrderRow | undefined> {
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
    return updated;
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
