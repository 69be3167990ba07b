// The real topology (`npm run stack`): a register through Envoy leaves the auth
// service's outbox for RabbitMQ, confirmed, and reaches a queue bound to the
// exchange.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { fromBinary } from "@bufbuild/protobuf";
import pg from "pg";
import { EnvelopeSchema } from "../../gen/acme/events/v1/events_pb.js";
import { amqpBus } from "../../platform/bus/amqp.js";
import type { BusMessage } from "../../platform/bus/bus.js";
import { OUTBOX } from "../../services/auth/events.js";
import { sharedEdgeStack } from "../support/edge-stack.js";

describe("events on the real stack: outbox -> RabbitMQ", function () {
  this.timeout(60_000);

  it("a register through Envoy is published to RabbitMQ (confirmed: the outbox row is marked sent) and consumed", async () => {
    const stack = await sharedEdgeStack();
    const bus = amqpBus(stack.amqpUrl);
    const got: BusMessage[] = [];
    const consumer = await bus.consume(
      { queue: `test-${randomUUID()}`, exchange: OUTBOX.exchange, bindings: ["user.registered"], maxAttempts: 1, backoffMs: () => 0 },
      async (d) => void got.push(d.message),
    );
    const db = new pg.Client({ connectionString: stack.databaseUrl });
    await db.connect();
    try {
      const email = `mq-${randomUUID()}@example.com`;
      const res = await fetch(`${stack.edgeUrl}/v1/auth/register`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email, password: "correct horse battery", name: "Mq" }),
      });
      assert.equal(res.status, 200, await res.text());
      const { rows } = await db.query<{ id: string }>("select id from auth.accounts where email = $1", [email]);
      assert.equal(rows.length, 1);
      const id = rows[0].id;
      const until = Date.now() + 20_000;
      let sent = false;
      while (Date.now() < until && !(sent && got.some((m) => fromBinary(EnvelopeSchema, m.body).aggregateId === id && m.type === "acme.events.v1.UserRegistered"))) {
        const r = await db.query<{ sent_at: Date | null }>("select sent_at from auth.outbox where aggregate_id = $1 and type = 'acme.events.v1.UserRegistered'", [id]);
        sent = r.rows.length === 1 && r.rows[0].sent_at !== null;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(sent, "the outbox row is marked sent (RabbitMQ confirmed it)");
      const mine = got.filter((m) => fromBinary(EnvelopeSchema, m.body).aggregateId === id && m.type === "acme.events.v1.UserRegistered");
      assert.equal(mine.length, 1, "consumed once");
      assert.equal(mine[0].type, "acme.events.v1.UserRegistered");
    } finally {
      await db.end();
      await consumer.stop();
      await bus.close();
    }
  });
});
