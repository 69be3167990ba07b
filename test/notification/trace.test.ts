// One trace from the request to the mail: Register (the caller's traceparent)
// -> the outbox and the bus -> the notification consumer's span -> "smtp send",
// a CLIENT span with the server's address and no recipient's.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { SpanKind } from "@opentelemetry/api";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService } from "../../gen/acme/auth/v1/auth_pb.js";
import { installMemoryTracing, type MemoryTracing } from "../observability/support/memory-otel.js";
import { PASSWORD } from "../user/helpers.js";
import { QUEUES, startNotificationSystem, until, type NotificationSystem } from "./support.js";

describe("notification: the trace of a mail", function () {
  let otel: MemoryTracing;
  let s: NotificationSystem;
  before(async () => {
    otel = installMemoryTracing();
    s = await startNotificationSystem();
  });
  after(async () => {
    await s?.stop();
    await otel?.uninstall();
  });

  it("Register's trace continues in the consumer's span and ends in an smtp send span", async () => {
    const traceId = randomUUID().replaceAll("-", "");
    const email = `trace-${randomUUID().slice(0, 8)}@example.com`;
    const auth = createClient(
      AuthService,
      createGrpcTransport({ baseUrl: s.t.url, interceptors: [(next) => (req) => (req.header.set("traceparent", `00-${traceId}-00f067aa0ba902b7-01`), next(req))] }),
    );
    await auth.register({ email, password: PASSWORD, name: "Tracy" });
    // The consumer's span ends after the smtp send span, once its transaction committed.
    const consumer = await until("the consumer's span in the caller's trace", () => otel.trace(traceId).find((x) => x.name === `${QUEUES.userEvents.queue} process`));
    const send = otel.trace(traceId).find((x) => x.name === "smtp send");
    assert.ok(send, "an smtp send span in the trace");
    assert.equal(consumer.kind, SpanKind.CONSUMER);
    assert.equal(send.kind, SpanKind.CLIENT);
    assert.equal(send.parentSpanContext?.spanId, consumer.spanContext().spanId, "smtp send is a child of the consumer span");
    assert.equal(send.attributes["server.address"], "127.0.0.1");
    assert.equal(send.attributes["server.port"], s.sink!.port);
    assert.equal(send.attributes["acme.smtp.response_code"], 250);
    assert.equal(send.attributes["acme.notification.kind"], "welcome");
    const text = JSON.stringify([send.attributes, consumer.attributes, send.status, send.events]);
    assert.ok(!text.includes(email) && !text.includes(email.split("@")[0]), "no address of the recipient on the spans");
  });
});
