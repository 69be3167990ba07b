// Data access for the notification service (schema "notify"). Types first, SQL visible.
// Functions that take `ex` run on whatever they are given: the consumer's
// transaction (platform/consumer.ts) or the plain database.
import { createHash } from "node:crypto";
import { sql, type ColumnType, type Generated, type Kysely, type Selectable, type Transaction } from "kysely";
import { cursorTs, keysetWhere, type Keyset } from "../../platform/pagination.js";
import type { ATTEMPT_OUTCOMES, DELIVERY_STATUSES } from "./migrations.js";
import type { Category, Kind, RecipientChange } from "./notices.js";

export type Status = (typeof DELIVERY_STATUSES)[number];
export type Outcome = (typeof ATTEMPT_OUTCOMES)[number];

type Now = ColumnType<Date, never, Date>;

export interface RecipientTable {
  user_id: string;
  /** Null once the user was erased (AccountDeleted): the row stays as a tombstone. */
  email: string | null;
  occurred_at: Date;
  updated_at: Generated<Date>;
  erased_at: Date | null;
}

export interface PreferenceTable {
  user_id: string;
  account: Generated<boolean>;
  orders: Generated<boolean>;
  updated_at: Generated<Date>;
}

export interface DeliveryTable {
  id: string;
  event_id: string;
  kind: Kind;
  category: Category;
  user_id: string;
  recipient: string;
  subject: string;
  status: Status;
  attempts: Generated<number>;
  last_error: string | null;
  created_at: Now;
  updated_at: Generated<Date>;
  sent_at: Date | null;
}

export interface AttemptTable {
  delivery_id: string;
  number: number;
  bus_attempt: number;
  attempted_at: Date;
  duration_ms: number;
  outcome: Outcome;
  smtp_code: number | null;
  error: string | null;
}

export interface NotifyDb {
  "notify.recipients": RecipientTable;
  "notify.preferences": PreferenceTable;
  "notify.deliveries": DeliveryTable;
  "notify.delivery_attempts": AttemptTable;
}

export type DeliveryRow = Selectable<DeliveryTable>;
export type AttemptRow = Selectable<AttemptTable>;
export type Executor = Kysely<NotifyDb> | Transaction<NotifyDb>;

/** What a delivery is, before anything happened to it. */
export interface NewDelivery {
  id: string;
  eventId: string;
  kind: Kind;
  category: Category;
  userId: string;
  recipient: string;
  subject: string;
}

/** One attempt to hand a mail over, and the status it leaves the delivery in. */
export interface AttemptRecord {
  busAttempt: number;
  startedAt: Date;
  durationMs: number;
  outcome: Outcome;
  smtpCode?: number;
  error?: string;
  status: Extract<Status, "SENT" | "RETRYING" | "FAILED">;
}

export interface PreferenceValues {
  account: boolean;
  orders: boolean;
}

export const DEFAULT_PREFERENCES: PreferenceValues = { account: true, orders: true };

/** The recipient of an erased user's deliveries (the column needs 3..254 characters). */
export const ERASED = "(erased)";

/** An address in a stored error text, masked or not (smtp-errors.ts masks them as "a***@example.com"). */
const ADDRESS_IN_TEXT = `[^[:space:]<>()"',;:@]+@[^[:space:]<>()"',;:@]+`;

/** The delivery id of (event, kind): the same on every redelivery, so the same row and Message-ID. */
export function deliveryIdOf(eventId: string, kind: Kind): string {
  const h = createHash("sha256").update(`acme.notification\0${eventId}\0${kind}`).digest();
  h[6] = (h[6] & 0x0f) | 0x80; // version 8 (RFC 9562: custom)
  h[8] = (h[8] & 0x3f) | 0x80; // variant 10
  const x = h.subarray(0, 16).toString("hex");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

const newRow = (d: NewDelivery, status: Status) => ({
  id: d.id, event_id: d.eventId, kind: d.kind, category: d.category, user_id: d.userId, recipient: d.recipient, subject: d.subject, status,
});

export class NotificationStore {
  constructor(readonly db: Kysely<NotifyDb>) {}

  // ---- recipients and preferences

  /**
   * Keep the address an event carries, unless a later event already set one or
   * the user was erased. (The condition is checked on the row as it is when
   * the upsert gets its lock, so an erasure committing meanwhile wins.)
   */
  async saveRecipient(ex: Executor, r: RecipientChange): Promise<void> {
    await ex
      .insertInto("notify.recipients")
      .values({ user_id: r.userId, email: r.email, occurred_at: r.occurredAt })
      .onConflict((oc) =>
        oc.column("user_id").doUpdateSet({ email: sql`excluded.email`, occurred_at: sql`excluded.occurred_at`, updated_at: sql`now()` })
          .where("notify.recipients.occurred_at", "<=", sql<Date>`excluded.occurred_at`)
          .where("notify.recipients.erased_at", "is", null),
      )
      .execute();
  }

  async recipientOf(ex: Executor, userId: string): Promise<string | undefined> {
    const row = await ex.selectFrom("notify.recipients").select("email").where("user_id", "=", userId).executeTakeFirst();
    return row?.email ?? undefined;
  }

  /** Whether AccountDeleted erased this user (for good: user ids are never reused). */
  async isErased(ex: Executor, userId: string): Promise<boolean> {
    const row = await ex.selectFrom("notify.recipients").select("user_id").where("user_id", "=", userId).where("erased_at", "is not", null).executeTakeFirst();
    return row !== undefined;
  }

  /**
   * Forget a deleted user's address, in `trx` (the consumer's): the recipient row
   * becomes a tombstone (no address), the preferences go, and the delivery log
   * keeps its rows and attempts with the recipient ERASED and any address in an
   * error text (masked ones too) replaced. Idempotent.
   */
  async erase(trx: Transaction<NotifyDb>, userId: string, occurredAt: Date): Promise<void> {
    await trx
      .insertInto("notify.recipients")
      .values({ user_id: userId, email: null, occurred_at: occurredAt, erased_at: sql<Date>`now()` })
      .onConflict((oc) =>
        oc.column("user_id").doUpdateSet({
          email: null,
          occurred_at: sql`greatest(notify.recipients.occurred_at, excluded.occurred_at)`,
          erased_at: sql`coalesce(notify.recipients.erased_at, excluded.erased_at)`,
          updated_at: sql`now()`,
        }),
      )
      .execute();
    await trx.deleteFrom("notify.preferences").where("user_id", "=", userId).execute();
    await this.eraseDeliveries(trx, userId);
  }

  /** The erasure of the delivery log: every row and attempt stays, with no address in it. */
  async eraseDeliveries(trx: Transaction<NotifyDb>, userId: string): Promise<void> {
    const scrub = (column: string) => sql<string | null>`regexp_replace(${sql.ref(column)}, ${ADDRESS_IN_TEXT}, ${ERASED}, 'g')`;
    await trx
      .updateTable("notify.deliveries")
      .set({ recipient: ERASED, last_error: scrub("last_error"), updated_at: sql`now()` })
      .where("user_id", "=", userId)
      .where((eb) => eb.or([eb("recipient", "<>", ERASED), eb("last_error", "~", ADDRESS_IN_TEXT)]))
      .execute();
    await trx
      .updateTable("notify.delivery_attempts")
      .set({ error: scrub("error") })
      .where("delivery_id", "in", (eb) => eb.selectFrom("notify.deliveries").select("id").where("user_id", "=", userId))
      .where("error", "~", ADDRESS_IN_TEXT)
      .execute();
  }

  async preferences(ex: Executor, userId: string): Promise<PreferenceValues> {
    const row = await ex.selectFrom("notify.preferences").select(["account", "orders"]).where("user_id", "=", userId).executeTakeFirst();
    return row ?? DEFAULT_PREFERENCES;
  }

  /** Change some preferences (the others keep their value, or the default); the result. */
  async updatePreferences(userId: string, change: Partial<PreferenceValues>): Promise<PreferenceValues> {
    const values = { ...DEFAULT_PREFERENCES, ...change };
    return this.db
      .insertInto("notify.preferences")
      .values({ user_id: userId, ...values })
      .onConflict((oc) => oc.column("user_id").doUpdateSet({ ...change, updated_at: sql`now()` }))
      .returning(["account", "orders"])
      .executeTakeFirstOrThrow();
  }

  // ---- deliveries

  async delivery(ex: Executor, id: string): Promise<DeliveryRow | undefined> {
    return ex.selectFrom("notify.deliveries").selectAll().where("id", "=", id).executeTakeFirst();
  }

  /** Record a planned delivery (QUEUED) unless it exists, whatever its status. */
  async queue(d: NewDelivery): Promise<void> {
    await this.db.insertInto("notify.deliveries").values(newRow(d, "QUEUED")).onConflict((oc) => oc.column("id").doNothing()).execute();
  }

  /** Not sent: the user turned the category off. */
  async suppress(ex: Executor, d: NewDelivery): Promise<void> {
    await ex
      .insertInto("notify.deliveries")
      .values(newRow(d, "SUPPRESSED"))
      .onConflict((oc) => oc.column("id").doUpdateSet({ status: "SUPPRESSED", updated_at: sql`now()` }))
      .execute();
  }

  /** One attempt and the delivery's new status, in `trx` (the consumer's, or one of its own). */
  async recordAttempt(trx: Transaction<NotifyDb>, d: NewDelivery, a: AttemptRecord): Promise<number> {
    const sentAt = a.status === "SENT" ? new Date() : null;
    const { attempts } = await trx
      .insertInto("notify.deliveries")
      .values({ ...newRow(d, a.status), attempts: 1, last_error: a.error ?? null, sent_at: sentAt })
      .onConflict((oc) =>
        oc.column("id").doUpdateSet({
          status: a.status,
          attempts: sql`notify.deliveries.attempts + 1`,
          // The last failure stays visible after a later success.
          last_error: sql`coalesce(excluded.last_error, notify.deliveries.last_error)`,
          sent_at: sentAt,
          updated_at: sql`now()`,
        }),
      )
      .returning("attempts")
      .executeTakeFirstOrThrow();
    await trx
      .insertInto("notify.delivery_attempts")
      .values({
        delivery_id: d.id,
        number: attempts,
        bus_attempt: a.busAttempt,
        attempted_at: a.startedAt,
        duration_ms: Math.max(0, Math.round(a.durationMs)),
        outcome: a.outcome,
        smtp_code: a.smtpCode ?? null,
        error: a.error ?? null,
      })
      .execute();
    return attempts;
  }

  /** recordAttempt in a transaction of its own (after the consumer's rolled back). */
  recordAttemptAlone(d: NewDelivery, a: AttemptRecord): Promise<number> {
    return this.db.transaction().execute((trx) => this.recordAttempt(trx, d, a));
  }

  /** Deliveries newest first by (created_at, id), before `after`; by user and/or status. */
  list(q: { userId?: string; status?: Status; after?: Keyset; limit: number }): Promise<(DeliveryRow & { cursor_ts: string })[]> {
    let query = this.db
      .selectFrom("notify.deliveries")
      .selectAll()
      .select(cursorTs("created_at").as("cursor_ts"))
      .where(keysetWhere("created_at", "id", q.after, "desc"));
    if (q.userId) query = query.where("user_id", "=", q.userId);
    if (q.status) query = query.where("status", "=", q.status);
    return query.orderBy("created_at", "desc").orderBy("id", "desc").limit(q.limit).execute();
  }

  /** The last `limit` attempts of a delivery, oldest first. */
  async attempts(deliveryId: string, limit: number): Promise<AttemptRow[]> {
    const rows = await this.db
      .selectFrom("notify.delivery_attempts")
      .selectAll()
      .where("delivery_id", "=", deliveryId)
      .orderBy("number", "desc")
      .limit(limit)
      .execute();
    return rows.reverse();
  }
}
