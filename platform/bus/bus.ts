// The message bus the services publish events to and consume them from:
// RabbitMQ in `npm run stack` and compose (platform/bus/amqp.ts), an
// in-process stand-in with the same semantics in `npm start`
// (platform/bus/memory.ts). Generic: no event or service names here.
//
// Semantics both give:
//  - publish resolves only once the broker has taken the message (publisher
//    confirms) into at least one queue; it rejects when the broker is down, and
//    when no queue is bound for the routing key yet (RabbitMQ's mandatory flag:
//    a consumer that has not declared its queue yet would otherwise never see
//    the event), so the outbox keeps the row and publishes it again later;
//  - at-least-once delivery to each consumer queue; consumers are idempotent
//    (processed-events table keyed by the message id);
//  - a handler that throws is retried after backoffMs(attempt) with jitter,
//    up to maxAttempts deliveries; then the message is dead-lettered with the
//    failure reason and the attempt count;
//  - a handler that throws PoisonMessage (undecodable, unknown type) is
//    dead-lettered at once, and the consumer carries on.

import { METRIC, metrics } from "../telemetry/metrics.js";

/** One message: an event envelope's bytes and its headers. */
export interface BusMessage {
  /** The event id: the message id, and the consumers' idempotency key. */
  readonly id: string;
  /** Event type, e.g. "acme.events.v1.UserRegistered". */
  readonly type: string;
  /** Topic routing key, e.g. "user.registered". */
  readonly routingKey: string;
  /** The binary envelope. */
  readonly body: Uint8Array;
  /** traceparent, tracestate and anything else the producer adds. */
  readonly headers: Readonly<Record<string, string>>;
}

export interface Publisher {
  /** Resolves once the broker has the message (confirmed); rejects otherwise. */
  publish(exchange: string, message: BusMessage): Promise<void>;
}

export interface ConsumerSpec {
  /** Durable queue of this consumer, e.g. "notification.user-events". */
  readonly queue: string;
  /** Topic exchange it binds to, e.g. "acme.user". */
  readonly exchange: string;
  /** Binding patterns, e.g. ["user.*"]. */
  readonly bindings: readonly string[];
  /** Deliveries before dead-lettering, the first included. */
  readonly maxAttempts: number;
  /** Delay before retry `attempt` (1 = the first retry), jitter included (backoffWithJitter gives one). */
  backoffMs(attempt: number): number;
}

export interface Delivery {
  readonly message: BusMessage;
  /** 1 on the first delivery. */
  readonly attempt: number;
}

export type MessageHandler = (delivery: Delivery) => Promise<void>;

/** Thrown by a handler for a message it can never process: dead-lettered at once. */
export class PoisonMessage extends Error {
  override readonly name = "PoisonMessage";
}

/** A publish no queue was bound to take (yet): refused, so the outbox keeps the event. */
export class UnroutableMessage extends Error {
  override readonly name = "UnroutableMessage";
  constructor(exchange: string, routingKey: string) {
    super(`bus: no queue is bound to ${exchange || "(default exchange)"} for "${routingKey}" (yet): kept to publish again`);
  }
}

/** A message that failed for good, as its dead-letter queue keeps it. */
export interface DeadLetter {
  readonly message: BusMessage;
  readonly exchange: string;
  /** The handler's error (truncated). */
  readonly reason: string;
  /** Deliveries made, the first included. */
  readonly attempts: number;
  /** ISO time. */
  readonly failedAt: string;
}

export interface Consumer {
  stop(): Promise<void>;
}

export interface Bus extends Publisher {
  /** Which broker: "rabbitmq" or the in-process "memory" stand-in (health). */
  readonly kind: "rabbitmq" | "memory";
  /** Declare the consumer's topology (queue, retry, dead letter) and start consuming. */
  consume(spec: ConsumerSpec, handler: MessageHandler): Promise<Consumer>;
  /** Whether the broker answers (health). */
  healthy(): Promise<boolean>;
  close(): Promise<void>;
}

/** The rule both buses apply to a failed delivery: retry, unless it is poison or out of attempts. */
export function shouldRetry(err: unknown, attempt: number, spec: ConsumerSpec): boolean {
  return !(err instanceof PoisonMessage) && attempt < spec.maxAttempts;
}

/** What became of a delivery: counted per queue (acme_events_consumed_total). */
export type DeliveryOutcome = "ok" | "retried" | "dead_lettered";

export function countDelivery(queue: string, outcome: DeliveryOutcome): void {
  metrics.counter(METRIC.eventsConsumed, { queue, outcome });
}

/**
 * Exponential backoff with full jitter: a random delay in [0, min(max, base * 2^(attempt-1))],
 * never below a tenth of the exponential step (so retries stay spread but not immediate).
 */
export function backoffWithJitter(baseMs: number, maxMs: number, random: () => number = Math.random): (attempt: number) => number {
  return (attempt) => {
    const step = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
    return Math.round(step / 10 + random() * (step - step / 10));
  };
}
