// The envelope every service's events travel in (acme.events.v1.Envelope,
// proto/acme/events/v1/events.proto): a new event id, the time, the schema
// version and the current W3C trace context, around one event of the oneof.
// What a service enqueues in its outbox (platform/outbox.ts).
import { randomUUID } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { context, type Context } from "@opentelemetry/api";
import { EnvelopeSchema, type Envelope } from "../gen/acme/events/v1/events_pb.js";
import type { OutboxEvent } from "../platform/outbox.js";
import { injectIntoHeaders } from "../platform/telemetry/propagation.js";

/** An event message of the envelope's oneof, e.g. {case: "userRegistered", value: create(UserRegisteredSchema, ...)}. */
export type DomainEvent = Exclude<Envelope["event"], { case: undefined }>;

/**
 * The W3C trace context of `ctx` (default: the active one) as headers: only
 * traceparent and tracestate (never baggage); empty when tracing is off.
 */
export function traceHeaders(ctx: Context = context.active()): Record<string, string> {
  const h = new Headers();
  injectIntoHeaders(h, ctx);
  return Object.fromEntries(["traceparent", "tracestate"].flatMap((name) => (h.get(name) ? [[name, h.get(name)!]] : [])));
}

/** An outbox event: `event` in an Envelope with a new id, the time and the current trace context. */
export function envelopeEvent(e: { routingKey: string; aggregateId: string; event: DomainEvent; occurredAt?: Date; ctx?: Context }): OutboxEvent {
  const id = randomUUID();
  const type = e.event.value.$typeName;
  const headers = traceHeaders(e.ctx);
  const occurredAt = timestampFromDate(e.occurredAt ?? new Date());
  const { traceparent = "", tracestate = "" } = headers;
  const envelope = create(EnvelopeSchema, { eventId: id, type, aggregateId: e.aggregateId, occurredAt, schemaVersion: 1, traceparent, tracestate, event: e.event });
  return { id, type, routingKey: e.routingKey, aggregateId: e.aggregateId, body: toBinary(EnvelopeSchema, envelope), headers };
}
