// Events the auth service publishes (acme.events.v1), written to its outbox
// (auth.outbox, platform/outbox.ts) in the transaction of the change.
import { create } from "@bufbuild/protobuf";
import { UserRegisteredSchema } from "../../gen/acme/events/v1/events_pb.js";
import type { OutboxEvent } from "../../platform/outbox.js";
import { envelopeEvent } from "../envelope.js";
import { SCHEMA } from "./migrations.js";

/** Where the relay of this service's outbox reads and publishes (app/ starts it). */
export const OUTBOX = { schema: SCHEMA, exchange: "acme.user" } as const;

/** Routing keys on OUTBOX.exchange. */
export const ROUTING = { userRegistered: "user.registered" } as const;

/** An account was created by registration: its id and the address the welcome mail goes to. */
export function userRegistered(userId: string, email: string): OutboxEvent {
  return envelopeEvent({
    routingKey: ROUTING.userRegistered,
    aggregateId: userId,
    event: { case: "userRegistered", value: create(UserRegisteredSchema, { userId, email }) },
  });
}
