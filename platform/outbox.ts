// The transactional outbox: a service writes an event into `<schema>.outbox`
// in the same transaction as the change it describes (enqueue), and a relay
// publishes the rows to the bus afterwards, in seq order, marking each sent
// once the broker confirmed it. A change is never committed without its event,
// nor an event published for a change that was rolled back. Delivery is
// at-least-once (a crash between confirm and mark publishes again); consumers
// dedupe by event id. Generic: the schema, exchange and events are the caller's
// (the services build theirs with services/envelope.ts).
//
// Order: one relay per schema works at a time (a transaction-level advisory
// lock), reading unsent rows in seq order and publishing each aggregate's rows
// one after the other (different aggregates side by side), an aggregate
// stopping at its first refused publish, so rows of one aggregate leave in the
// order they were written as long as its writers serialise on the aggregate's
// row (as an update or a unique insert does).
import { METRIC, metrics } from "./telemetry/metrics.js";
import { sql, type ColumnType, type Generated, type Kysely, type Migration, type Transaction } from "kysely";
import { backoffWithJitter, type BusMessage, type Publisher } from "./bus/bus.js";
import type { Logger } from "./logger.js";

interface OutboxDb {
  outbox: {
    seq: Generated<string>;
    event_id: string;
    aggregate_id: string;
    type: string;
    routing_key: string;
    /** pg returns Buffer, PGlite Uint8Array. */
    body: Uint8Array;
    headers: ColumnType<Record<string, string>, string, never>;
    created_at: Generated<Date>;
    sent_at: Date | null;
  };
}

/** One event as the outbox keeps it and the bus carries it. */
export interface OutboxEvent {
  /** UUID: the message id, the consumers' idempotency key. */
  readonly id: string;
  readonly type: string;
  readonly routingKey: string;
  readonly aggregateId: string;
  readonly body: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
}

/** `<schema>.outbox` and its indexes, as a migration of the owning service. */
export function outboxMigration(schema: string): Migration {
  return {
    async up(db) {
      const table = sql.table(`${schema}.outbox`);
      await sql`
        create table ${table} (
          seq bigint generated always as identity primary key,
          event_id uuid not null unique,
          aggregate_id text not null,
          type text not null,
          routing_key text not null,
          -- the binary acme.events.v1.Envelope
          body bytea not null,
          headers jsonb not null default '{}',
          created_at timestamptz not null default now(),
          sent_at timestamptz
        )`.execute(db);
      // The relay: unsent rows in seq order (and lagMs, the oldest of them).
      await sql`create index outbox_unsent on ${table} (seq) where sent_at is null`.execute(db);
      // Cleanup: sent rows by age.
      await sql`create index outbox_sent on ${table} (sent_at) where sent_at is not null`.execute(db);
    },
  };
}

/** Drop an event the relay has not sent yet (its change is being undone), inside the undoing transaction. */
export async function discardUnsent(trx: Transaction<any>, schema: string, eventId: string): Promise<void> {
  await (trx as unknown as Kysely<OutboxDb>).withSchema(schema).deleteFrom("outbox").where("event_id", "=", eventId).where("sent_at", "is", null).execute();
}

/** Write `event` to `<schema>.outbox`: call inside the transaction that makes the change. */
export async function enqueue(trx: Transaction<any>, schema: string, event: OutboxEvent): Promise<void> {
  if (!trx.isTransaction) throw new Error("outbox: enqueue runs inside the caller's transaction");
  await (trx as unknown as Kysely<OutboxDb>)
    .withSchema(schema)
    .insertInto("outbox")
    .values({
      event_id: event.id,
      aggregate_id: event.aggregateId,
      type: event.type,
      routing_key: event.routingKey,
      body: event.body,
      headers: JSON.stringify(event.headers),
    })
    .execute();
}

// ---- the relay

export interface RelayOptions {
  /** The root handle, the one the service writes with (notifyRelays finds the relay by it). */
  db: Kysely<any>;
  schema: string;
  bus: Publisher;
  exchange: string;
  log: Logger;
  /** Rows per transaction (100); pause between polls (1000 ms); longest pause after failed publishes (30 s; the first retry waits min(intervalMs, 200 ms)). */
  batchSize?: number;
  intervalMs?: number;
  maxBackoffMs?: number;
  /** Sent rows older than this are deleted (7 days), every cleanupIntervalMs (min(cleanupAfterMs, 60 s)). */
  cleanupAfterMs?: number;
  cleanupIntervalMs?: number;
}

export interface Relay {
  /** Relay now (an enqueue was committed); ignored while backing off after a failure. */
  notify(): void;
  /** Publish until nothing is left, a publish fails or another relay holds the schema; the number published. */
  flush(): Promise<number>;
  /** Delete sent rows older than cleanupAfterMs now; the number deleted. */
  cleanup(): Promise<number>;
  /** Age of the oldest unsent row in ms, 0 when none. */
  lagMs(): Promise<number>;
  stop(): Promise<void>;
}

/** Relays running in this process, by root handle and schema (notifyRelays). */
/** How often a relay refreshes its lag gauge. */
const LAG_EVERY_MS = 5000;

const running = new WeakMap<object, Map<string, Set<Relay>>>();

/** Wake this process's relays of `schema` on `db`: call after committing an enqueue. */
export function notifyRelays(db: Kysely<any>, schema: string): void {
  for (const r of running.get(db)?.get(schema) ?? []) r.notify();
}

/** flush() stopped at a publish the bus refused (the row stays unsent). */
export class PublishFailed extends Error {}

/** Start relaying `<schema>.outbox` to `exchange`. */
export function startRelay(opts: RelayOptions): Relay {
  const { db, schema, bus, exchange, log } = opts;
  const batchSize = opts.batchSize ?? 100;
  const intervalMs = opts.intervalMs ?? 1000;
  const cleanupAfterMs = opts.cleanupAfterMs ?? 7 * 86_400_000;
  // Retries after a failed publish start small (not at the poll interval) and grow to maxBackoffMs.
  const maxBackoffMs = opts.maxBackoffMs ?? 30_000;
  const backoff = backoffWithJitter(Math.min(intervalMs, 200, maxBackoffMs), maxBackoffMs);
  const odb = (db as unknown as Kysely<OutboxDb>).withSchema(schema);
  const lockKey = `outbox:${schema}`;

  let stopped = false;
  let failures = 0;
  let busy = false;
  let wanted = false;
  let timer: NodeJS.Timeout | undefined;
  let chain: Promise<unknown> = Promise.resolve();
  /** One batch or cleanup at a time in this relay. */
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = chain.then(fn);
    chain = p.catch(() => {});
    return p;
  };

  /** One batch under the schema's lock: published rows are marked sent in the same transaction. */
  const batch = (): Promise<{ published: number; locked: boolean; failed: boolean }> =>
    db.transaction().execute(async (trx) => {
      const { rows } = await sql<{ locked: boolean }>`select pg_try_advisory_xact_lock(hashtext(${lockKey})) as locked`.execute(trx);
      if (!rows[0]?.locked) return { published: 0, locked: false, failed: false };
      const t = (trx as unknown as Kysely<OutboxDb>).withSchema(schema);
      const pending = await t
        .selectFrom("outbox")
        .select(["seq", "event_id", "aggregate_id", "type", "routing_key", "body", "headers"])
        .where("sent_at", "is", null)
        .orderBy("seq")
        .limit(batchSize)
        .execute();
      // Each aggregate's rows are published one after the other, in seq order, and the
      // aggregates side by side: the confirms of different aggregates are awaited together
      // (the broker confirms a persistent message once it is on disk, and groups those
      // writes). An aggregate stops at its first refused publish: that row and its later
      // ones stay unsent, and the next batch starts again from them.
      const chains = new Map<string, typeof pending>();
      for (const row of pending) chains.set(row.aggregate_id, [...(chains.get(row.aggregate_id) ?? []), row]);
      const sent: string[] = [];
      let failed = false;
      await Promise.all(
        [...chains.values()].map(async (chain) => {
          for (const row of chain) {
            try {
              await bus.publish(exchange, { id: row.event_id, type: row.type, routingKey: row.routing_key, body: new Uint8Array(row.body), headers: row.headers ?? {} } satisfies BusMessage);
            } catch (err) {
              if (!failed) {
                metrics.counter(METRIC.eventsPublishFailures, { exchange });
                if (failures === 0) log.warn("outbox: publish failed; keeping the row and retrying", { schema, exchange, eventId: row.event_id, type: row.type, err });
              }
              failed = true;
              return;
            }
            sent.push(String(row.seq));
          }
        }),
      );
      if (sent.length > 0) {
        await t.updateTable("outbox").set({ sent_at: sql<Date>`now()` }).where("seq", "in", sent).execute();
        metrics.counter(METRIC.eventsPublished, { exchange }, sent.length);
      }
      return { published: sent.length, locked: true, failed };
    });

  const flush = (): Promise<number> =>
    serial(async () => {
      let total = 0;
      for (;;) {
        const r = await batch();
        total += r.published;
        if (r.failed) throw new PublishFailed(`outbox ${schema}: publish to ${exchange} failed after ${total} events`);
        if (!r.locked || r.published < batchSize) return total;
      }
    });

  const schedule = (ms: number) => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(tick, ms).unref();
  };

  async function lagMs(): Promise<number> {
    const row = await odb
      .selectFrom("outbox")
      .select(sql<number>`extract(epoch from (now() - created_at)) * 1000`.as("lag"))
      .where("sent_at", "is", null)
      .orderBy("seq")
      .limit(1)
      .executeTakeFirst();
    return row ? Math.max(0, Number(row.lag)) : 0;
  }
  let lagMeasuredAt = 0;

  async function tick(): Promise<void> {
    if (stopped || busy) return void (wanted = true);
    busy = true;
    wanted = false;
    try {
      await flush();
      if (failures > 0) log.info("outbox: publishing again", { schema, exchange });
      failures = 0;
    } catch (err) {
      // A refused publish was logged by the batch; anything else (Postgres down) here, once per outage.
      if (failures === 0 && !(err instanceof PublishFailed)) log.warn("outbox: relay failed; retrying", { schema, err });
      failures++;
    } finally {
      busy = false;
    }
    // The lag gauge (age of the oldest unsent event), at most every LAG_EVERY_MS: not a query per event.
    if (Date.now() - lagMeasuredAt >= LAG_EVERY_MS) {
      lagMeasuredAt = Date.now();
      await lagMs().then((ms) => metrics.gauge(METRIC.outboxLag, { schema }, ms / 1000), () => {});
    }
    schedule(failures > 0 ? backoff(failures) : wanted ? 0 : intervalMs);
  }

  const cleanup = (): Promise<number> =>
    serial(async () => {
      const r = await odb
        .deleteFrom("outbox")
        .where("sent_at", "is not", null)
        .where("sent_at", "<", sql<Date>`now() - make_interval(secs => ${cleanupAfterMs / 1000})`)
        .executeTakeFirst();
      return Number(r.numDeletedRows);
    });
  const cleanupTimer = setInterval(
    () => void cleanup().catch((err) => log.warn("outbox: cleanup failed", { schema, err })),
    opts.cleanupIntervalMs ?? Math.min(cleanupAfterMs, 60_000),
  ).unref();

  const relay: Relay = {
    notify() {
      if (stopped || failures > 0) return;
      if (busy) wanted = true;
      else schedule(0);
    },
    flush,
    cleanup,
    lagMs,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      clearInterval(cleanupTimer);
      running.get(db)?.get(schema)?.delete(relay);
      await chain;
    },
  };
  const bySchema = running.get(db) ?? running.set(db, new Map()).get(db)!;
  (bySchema.get(schema) ?? bySchema.set(schema, new Set()).get(schema)!).add(relay);
  schedule(0);
  return relay;
}
