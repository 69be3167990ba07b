// Idempotent consumers: a delivery's effect and the record that its event was
// processed commit in one Postgres transaction, so a redelivery (the broker's
// at-least-once, a consumer killed before its ack) changes nothing. The
// consumer's span continues the producer's trace from the message headers.
//
//   await bus.consume(spec, idempotent({ db, schema: "notify", consumer: "welcome-mail", handle }));
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { sql, type Kysely, type Migration, type Transaction } from "kysely";
import type { Delivery, MessageHandler } from "./bus/bus.js";
import { extractFromHeaders } from "./telemetry/propagation.js";
import { tracer } from "./telemetry/rpc-span.js";

/** `<schema>.processed_events`: one row per (consumer, event) whose effect committed. */
export function processedEventsMigration(schema: string): Migration {
  return {
    async up(db) {
      await sql`
        create table ${sql.table(`${schema}.processed_events`)} (
          consumer text not null,
          event_id text not null,
          processed_at timestamptz not null default now(),
          primary key (consumer, event_id)
        )`.execute(db);
    },
  };
}

export interface IdempotentOptions {
  db: Kysely<any>;
  schema: string;
  /** Name of this consumer (one event may be processed by several consumers). */
  consumer: string;
  /** The effect, in the transaction that records the event as processed. */
  handle(delivery: Delivery, trx: Transaction<any>): Promise<void>;
}

/** A handler that runs `handle` at most once per event id for this consumer. */
export function idempotent(opts: IdempotentOptions): MessageHandler {
  const table = sql.table(`${opts.schema}.processed_events`);
  return (delivery) => {
    const parent = extractFromHeaders(new Headers(delivery.message.headers));
    const span = tracer().startSpan(
      `${opts.consumer} process`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          "messaging.operation.type": "process",
          "messaging.message.id": delivery.message.id,
          "messaging.destination.name": delivery.message.routingKey,
          "messaging.consumer.group.name": opts.consumer,
          "acme.delivery.attempt": delivery.attempt,
        },
      },
      parent,
    );
    // The effect runs in the consumer span: its queries and calls are children of it.
    return context.with(trace.setSpan(parent, span), async () => {
      try {
        const ran = await opts.db.transaction().execute(async (trx) => {
          const first = await sql`insert into ${table} (consumer, event_id) values (${opts.consumer}, ${delivery.message.id})
            on conflict do nothing returning event_id`.execute(trx);
          if (first.rows.length === 0) return false; // processed before: nothing to do
          await opts.handle(delivery, trx);
          return true;
        });
        span.setAttribute("acme.duplicate", !ran);
      } catch (err) {
        span.recordException(err as Error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message });
        throw err;
      } finally {
        span.end();
      }
    });
  };
}
