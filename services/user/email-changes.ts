// The user service's one consumer: EmailChanged (the auth service's outbox,
// exchange acme.user, "user.email_changed") moves the profile's address to the
// new one, so GetMe and the user in Login answers show it and the old address
// can be registered again. Idempotent (platform/consumer.ts): a redelivery
// changes nothing. The update names the old address too, so an older event
// arriving after a newer one (two changes in a row) cannot undo it.
import { fromBinary } from "@bufbuild/protobuf";
import { sql, type Kysely } from "kysely";
import { EnvelopeSchema } from "../../gen/acme/events/v1/events_pb.js";
import { backoffWithJitter, PoisonMessage, type ConsumerSpec, type MessageHandler } from "../../platform/bus/bus.js";
import { idempotent } from "../../platform/consumer.js";
import { UUID_RE } from "../../platform/validate.js";
import { SCHEMA } from "./migrations.js";
import type { UserDb } from "./store.js";

export const EMAIL_CHANGES: Omit<ConsumerSpec, "backoffMs"> = {
  queue: "user.email-changes",
  exchange: "acme.user",
  bindings: ["user.email_changed"],
  maxAttempts: 10,
};

export function emailChangesConsumer(db: Kysely<UserDb>): { spec: ConsumerSpec; handler: MessageHandler } {
  const handler = idempotent({
    db,
    schema: SCHEMA,
    consumer: EMAIL_CHANGES.queue,
    async handle(delivery, trx) {
      let event;
      try {
        event = fromBinary(EnvelopeSchema, delivery.message.body).event;
      } catch {
        throw new PoisonMessage("body is not an acme.events.v1.Envelope");
      }
      if (event.case !== "emailChanged") throw new PoisonMessage("not an EmailChanged event");
      const { userId, oldEmail, newEmail } = event.value;
      if (!UUID_RE.test(userId) || !newEmail || newEmail.length > 254) throw new PoisonMessage("EmailChanged without a valid user_id or new_email");
      await (trx as unknown as Kysely<UserDb>)
        .updateTable("users.profiles")
        .set({ email: newEmail, updated_at: sql<Date>`now()` })
        .where("id", "=", userId.toLowerCase())
        .where("email", "=", oldEmail)
        .execute();
    },
  });
  return { spec: { ...EMAIL_CHANGES, backoffMs: backoffWithJitter(200, 30_000) }, handler };
}
