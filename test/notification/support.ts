// Shared by the notification suites: the product with the notification service
// on an in-process bus, a real SMTP sink on loopback, events made by hand, and
// waits on the delivery log.
import { randomUUID } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient, type Client } from "@connectrpc/connect";
import { sql } from "kysely";
import { EnvelopeSchema, type Envelope } from "../../gen/acme/events/v1/events_pb.js";
import { NotificationService } from "../../gen/acme/notification/v1/notification_pb.js";
import type { BusMessage } from "../../platform/bus/bus.js";
import { memoryBus, type MemoryBus } from "../../platform/bus/memory.js";
import { QUEUES } from "../../services/notification/consumers.js";
import type { DeliveryRow } from "../../services/notification/store.js";
import { startTestSystem, type TestSystem, type TestSystemOptions } from "../support/system.js";
import { startSmtpSink, type SmtpSink } from "./smtp-sink.js";

export { QUEUES };

export interface NotificationSystem {
  t: TestSystem;
  bus: MemoryBus;
  sink?: SmtpSink;
  notifications(token?: string): Client<typeof NotificationService>;
  stop(): Promise<void>;
}

/** Retries fast: 5 deliveries, backoff 50 ms doubling to 200 ms (with jitter). */
export const FAST_RETRIES = { NOTIFY_MAX_ATTEMPTS: "5", NOTIFY_RETRY_BASE_MS: "50", NOTIFY_RETRY_MAX_MS: "200" };

export async function startNotificationSystem(opts: { smtp?: boolean } & Pick<TestSystemOptions, "database" | "store" | "edge" | "env" | "log"> = {}): Promise<NotificationSystem> {
  const sink = opts.smtp === false ? undefined : await startSmtpSink();
  const bus = memoryBus();
  const t = await startTestSystem({
    services: ["auth", "user", "order", "notification", "catalogue"],
    edge: opts.edge ?? false,
    database: opts.database,
    store: opts.store,
    log: opts.log,
    bus,
    env: {
      ...(sink ? { SMTP_URL: sink.url } : {}),
      ...FAST_RETRIES,
      ORDER_SWEEP_INTERVAL_MS: "0",
      ...opts.env,
    },
  });
  return {
    t,
    bus,
    sink,
    notifications: (token) => createClient(NotificationService, t.transport(token)),
    stop: async () => {
      await t.stop();
      await sink?.close();
    },
  };
}

/** A bus message carrying `event` in an envelope, as the producers' outboxes publish it. */
export function eventMessage(routingKey: string, event: Envelope["event"], opts: { id?: string; occurredAt?: Date; headers?: Record<string, string> } = {}): BusMessage {
  const id = opts.id ?? randomUUID();
  const type = event.case ? event.value.$typeName : "acme.events.v1.Unknown";
  const envelope = create(EnvelopeSchema, { eventId: id, type, aggregateId: "", occurredAt: timestampFromDate(opts.occurredAt ?? new Date()), schemaVersion: 1, event });
  return { id, type, routingKey, body: toBinary(EnvelopeSchema, envelope), headers: opts.headers ?? {} };
}

export async function deliveriesOf(s: NotificationSystem, userId: string): Promise<DeliveryRow[]> {
  const { rows } = await sql<DeliveryRow>`select * from notify.deliveries where user_id = ${userId} order by created_at, id`.execute(s.t.system.db.db);
  return rows;
}

/** Wait until fn holds (bounded); for background effects, never for timing. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The delivery of `kind` for a user once it reached one of `statuses`. */
export function deliveryReaching(s: NotificationSystem, userId: string, kind: string, statuses: string[]): Promise<DeliveryRow> {
  return until(`a ${kind} delivery for ${userId} in ${statuses.join("/")}`, async () =>
    (await deliveriesOf(s, userId)).find((d) => d.kind === kind && statuses.includes(d.status)),
  );
}

/** The mails the sink accepted for an address. */
export const mailsTo = (sink: SmtpSink, address: string) => sink.mails.filter((m) => m.to.includes(address));
