// The notification service's consumers: one queue for the auth service's
// events (acme.user, "user.*"), one for the order service's (acme.order,
// "order.*"), one for the catalogue's (acme.catalogue, "catalogue.*": no mail
// yet, StockLow is logged for the operators). For each message:
//   1. decode it (notices.ts); undecodable or unknown: PoisonMessage, dead-lettered at once;
//   2. on the plain database: keep the address it carries (idempotent by itself: the newest
//      event wins), find the address of the mail it asks for (none known yet: a plain error,
//      so the bus retries with backoff), render the mail, record the delivery as QUEUED;
//   3. in the idempotent transaction (platform/consumer.ts, processed_events): the user's
//      preference (off: SUPPRESSED, no mail), then the send, then the SENT attempt; all of it
//      commits with the record that the event was processed, so a redelivery after the
//      commit sends nothing;
//      AccountDeleted asks for no mail: in that transaction, the user's address is erased
//      (store.ts, erase), and later events about the user are ignored (no address kept, no mail);
//   4. a failed send rolls that transaction back; its attempt is then recorded on the plain
//      database (RETRYING, or FAILED) and the error goes to the bus: a temporary one as a
//      plain Error (retried with backoff and jitter), a permanent one (5xx) as PoisonMessage
//      (dead-lettered at once with the reason; a replay sends it again).
// The delivery log is never written inside the transaction while other connections wait
// on it: with the embedded database (one connection) that would deadlock.
import { context } from "@opentelemetry/api";
import type { Kysely, Transaction } from "kysely";
import { PoisonMessage, type ConsumerSpec, type Delivery, type MessageHandler } from "../../platform/bus/bus.js";
import { idempotent } from "../../platform/consumer.js";
import type { Logger } from "../../platform/logger.js";
import { extractFromHeaders } from "../../platform/telemetry/propagation.js";
import { concurrencyLimit, serialByKey } from "./limiter.js";
import type { Mailer } from "./mailer.js";
import { SCHEMA } from "./migrations.js";
import { decodeEnvelope, decodeEvent, type DecodedEvent, type Notice } from "./notices.js";
import { classifySendError, SendFailure } from "./smtp-errors.js";
import { deliveryIdOf, type NewDelivery, type NotificationStore, type NotifyDb } from "./store.js";
import { render, type RenderedMail } from "./templates/index.js";

/** The queues, exchanges and bindings (the exchanges are the producers' outboxes: services/auth/events.ts, services/order/events.ts). */
export const QUEUES = {
  userEvents: { queue: "notification.user-events", exchange: "acme.user", bindings: ["user.*"] },
  orderEvents: { queue: "notification.order-events", exchange: "acme.order", bindings: ["order.*"] },
  catalogueEvents: { queue: "notification.catalogue-events", exchange: "acme.catalogue", bindings: ["catalogue.*"] },
} as const;

export interface ConsumerDeps {
  db: Kysely<NotifyDb>;
  store: NotificationStore;
  mailer: Mailer;
  log: Logger;
  /** Deliveries of one message before it is dead-lettered (NOTIFY_MAX_ATTEMPTS). */
  maxAttempts: number;
  /** Delay before retry n, jitter included. */
  backoffMs(attempt: number): number;
  /** Messages handled at once, both queues together (NOTIFY_CONCURRENCY). */
  concurrency: number;
  /** Base of the links in mails (NOTIFY_ACCOUNT_URL). */
  accountUrl: string;
}

/** A mail to send for an event: its delivery row and its rendered parts. */
interface Planned {
  notice: Notice;
  row: NewDelivery;
  mail: RenderedMail;
}

/** A send that failed inside the transaction, with the time it took (recorded after the rollback). */
class FailedAttempt extends Error {
  constructor(
    readonly failure: SendFailure,
    readonly startedAt: Date,
    readonly durationMs: number,
  ) {
    super(failure.message);
  }
}

export function notificationConsumers(deps: ConsumerDeps): { spec: ConsumerSpec; handler: MessageHandler }[] {
  const limit = concurrencyLimit(deps.concurrency);
  const serial = serialByKey();
  return Object.values(QUEUES).map((q) => {
    const handler = eventHandler(q.queue, deps);
    // One aggregate's events one at a time (in order), each holding a slot of the limit only while it runs.
    return { spec: { ...q, maxAttempts: deps.maxAttempts, backoffMs: deps.backoffMs }, handler: (d) => serial(aggregateOf(d), () => limit(() => handler(d))) };
  });
}

/** The aggregate a message's event is about (undefined when it cannot be read: the handler dead-letters it). */
function aggregateOf(d: Delivery): string | undefined {
  try {
    return decodeEnvelope(d.message).aggregateId || undefined;
  } catch {
    return undefined;
  }
}

function eventHandler(consumer: string, deps: ConsumerDeps): MessageHandler {
  const { db } = deps;
  return async (delivery) => {
    const event = decodeEvent(delivery.message, deps.accountUrl);
    if (event.stockLow) deps.log.warn("stock low", { product_id: event.stockLow.productId, sku: event.stockLow.sku, available: event.stockLow.available, threshold: event.stockLow.threshold });
    // The steps outside the consumer span still belong to the producer's trace.
    const parent = extractFromHeaders(new Headers(delivery.message.headers), context.active());
    const planned = await context.with(parent, () => plan(event, delivery, deps));
    const processOnce = idempotent({
      db,
      schema: SCHEMA,
      consumer,
      handle: (d, trx) => {
        if (planned) return deliver(planned, d, trx as Transaction<NotifyDb>, deps);
        if (event.erasure) return erase(event, trx as Transaction<NotifyDb>, deps);
        return Promise.resolve();
      },
    });
    try {
      await processOnce(delivery);
    } catch (err) {
      if (!(err instanceof FailedAttempt) || !planned) throw err;
      await context.with(parent, () => recordFailure(err, planned, delivery, deps));
    }
  };
}

/** Step 2: the address the event carries, the mail it asks for, its QUEUED row. */
async function plan(event: DecodedEvent, delivery: Delivery, deps: ConsumerDeps): Promise<Planned | undefined> {
  const { db, store, log } = deps;
  const userId = event.recipient?.userId ?? event.notice?.userId;
  if (event.erasure || !userId) return undefined;
  if (await store.isErased(db, userId)) {
    // Deleted: an event that was late or replayed keeps no address and sends no mail.
    log.info("event about a deleted user ignored", { user_id: userId, type: event.envelope.type });
    return undefined;
  }
  if (event.recipient) await store.saveRecipient(db, event.recipient);
  const notice = event.notice;
  if (!notice) return undefined;
  const to = notice.to ?? (await store.recipientOf(db, notice.userId));
  if (!to) {
    log.warn("no address known yet; the event will be retried", { user_id: notice.userId, kind: notice.kind, bus_attempt: delivery.attempt });
    throw new Error(`no address known yet for user ${notice.userId}`);
  }
  let mail: RenderedMail;
  try {
    mail = render(notice.kind, notice.data);
  } catch (err) {
    // Handlebars names the missing field, never a value (the data may hold a link token).
    throw new PoisonMessage(`cannot render the ${notice.kind} mail: ${(err as Error).message}`.slice(0, 300));
  }
  const eventId = delivery.message.id;
  const row: NewDelivery = {
    id: deliveryIdOf(eventId, notice.kind),
    eventId,
    kind: notice.kind,
    category: notice.category,
    userId: notice.userId,
    recipient: to,
    subject: mail.subject,
  };
  await store.queue(row);
  return { notice, row, mail };
}

/** Step 3, in the consumer's transaction: the preference, the send, the SENT attempt. */
async function deliver(p: Planned, delivery: Delivery, trx: Transaction<NotifyDb>, deps: ConsumerDeps): Promise<void> {
  const { store, mailer } = deps;
  const current = await store.delivery(trx, p.row.id);
  if (current?.status === "SENT" || current?.status === "SUPPRESSED") return; // decided before
  if (await store.isErased(trx, p.notice.userId)) {
    // Erased since step 2: no mail, and the row just queued loses its address too.
    await store.suppress(trx, p.row);
    return store.eraseDeliveries(trx, p.notice.userId);
  }
  if (p.notice.category !== "security") {
    const prefs = await store.preferences(trx, p.notice.userId);
    if (!prefs[p.notice.category]) return store.suppress(trx, p.row);
  }
  const startedAt = new Date();
  const t0 = performance.now();
  let smtpCode: number | undefined;
  try {
    ({ smtpCode } = await mailer.send({ deliveryId: p.row.id, kind: p.notice.kind, to: p.row.recipient, ...p.mail }));
  } catch (err) {
    throw new FailedAttempt(classifySendError(err), startedAt, performance.now() - t0);
  }
  // From here to the commit the mail is out but not yet recorded: a crash in this window
  // sends it again on redelivery (with the same Message-ID). README.md, "Exactly once?".
  await store.recordAttempt(trx, p.row, { busAttempt: delivery.attempt, startedAt, durationMs: performance.now() - t0, outcome: "SENT", smtpCode, status: "SENT" });
}

/** AccountDeleted, in the consumer's transaction: forget the user's address. */
async function erase(event: DecodedEvent, trx: Transaction<NotifyDb>, deps: ConsumerDeps): Promise<void> {
  const { userId, occurredAt } = event.erasure!;
  await deps.store.erase(trx, userId, occurredAt);
  deps.log.info("deleted user's address erased", { user_id: userId });
}

/** Step 4: the failed attempt on the plain database, then the error the bus acts on. */
async function recordFailure(f: FailedAttempt, p: Planned, delivery: Delivery, deps: ConsumerDeps): Promise<never> {
  const { store, log, maxAttempts } = deps;
  const { permanent, smtpCode, message: reason } = f.failure;
  // Out of attempts: the bus dead-letters it now, so the log says FAILED too.
  const status = permanent || delivery.attempt >= maxAttempts ? "FAILED" : "RETRYING";
  await store.recordAttemptAlone(p.row, {
    busAttempt: delivery.attempt,
    startedAt: f.startedAt,
    durationMs: f.durationMs,
    outcome: permanent ? "PERMANENT_FAILURE" : "TEMPORARY_FAILURE",
    smtpCode,
    error: reason,
    status,
  });
  log.warn("mail not sent", { delivery_id: p.row.id, kind: p.notice.kind, status, smtp_code: smtpCode, reason, bus_attempt: delivery.attempt });
  throw permanent ? new PoisonMessage(reason) : new Error(reason);
}
