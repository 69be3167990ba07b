// The notification service end to end: events from the product (Register,
// CreateOrder) or made by hand reach its consumers on the in-process bus, and
// mail reaches a real SMTP server on loopback (smtp-sink.ts), which can refuse
// with a 4xx or a 5xx on demand. Asserts on the raw MIME the server received.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { sql } from "kysely";
import { OrderCreatedSchema, OrderStatusChangedSchema, UserRegisteredSchema } from "../../gen/acme/events/v1/events_pb.js";
import { AttemptOutcome, DeliveryStatus } from "../../gen/acme/notification/v1/notification_pb.js";
import { OrderStatus } from "../../gen/acme/order/v1/order_pb.js";
import { metrics } from "../../platform/telemetry/metrics.js";
import { rejectsWith, signUp, signUpAdmin, type TestUser } from "../user/helpers.js";
import { parseMime, type ParsedMail } from "./mime.js";
import type { SmtpSink } from "./smtp-sink.js";
import { deliveriesOf, deliveryReaching, eventMessage, mailsTo, QUEUES, startNotificationSystem, until, type NotificationSystem } from "./support.js";
import { line, linesOf, makeProduct } from "../support/products.js";

const registered = (userId: string, email: string, id?: string) =>
  eventMessage("user.registered", { case: "userRegistered", value: create(UserRegisteredSchema, { userId, email }) }, { id });

const newUser = () => {
  const userId = randomUUID();
  return { userId, email: `n-${userId.slice(0, 8)}@example.com` };
};

/** The one mail the sink accepted for an address (with a subject), parsed. */
function onlyMailTo(sink: SmtpSink, address: string, subject?: string): ParsedMail {
  const mails = mailsTo(sink, address).map((m) => parseMime(m.raw)).filter((m) => subject === undefined || m.header("subject") === subject);
  assert.equal(mails.length, 1, `one mail to ${address}${subject ? ` about "${subject}"` : ""}, got ${mails.length}`);
  return mails[0];
}

/** Subjects of the mails an address received (a login may add a new-device notice). */
const subjectsTo = (sink: SmtpSink, address: string) => mailsTo(sink, address).map((m) => parseMime(m.raw).header("subject"));

const retried = async (queue: string) => {
  const m = new RegExp(`acme_events_consumed_total\\{outcome="retried",queue="${queue.replace(/\./g, "\\.")}"\\} (\\d+)`).exec(await metrics.render());
  return m ? Number(m[1]) : 0;
};

describe("notification: mail over SMTP", function () {
  let s: NotificationSystem;
  let sink: SmtpSink;
  let admin: TestUser;
  before(async () => {
    s = await startNotificationSystem({ env: { NOTIFY_MAX_ATTEMPTS: "8" } });
    sink = s.sink!;
    admin = await signUpAdmin(s.t);
  });
  afterEach(() => sink.accept());
  after(async () => s?.stop());

  it("Register sends a welcome mail to the new address: From, To, Subject, a text and an HTML part, Message-ID from the delivery id", async () => {
    const u = await signUp(s.t, "Ada");
    const d = await deliveryReaching(s, u.id, "welcome", ["SENT"]);
    const mail = onlyMailTo(sink, u.email, "Welcome to Acme");
    assert.equal(mail.header("to"), u.email);
    assert.equal(mail.header("from"), "Acme <no-reply@acme.local>");
    assert.equal(mail.header("subject"), "Welcome to Acme");
    assert.equal(mail.header("message-id"), `<${d.id}@acme.local>`);
    assert.match(mail.contentType, /^multipart\/alternative;/);
    assert.match(mail.text, new RegExp(`your Acme account for ${u.email.replace(/\./g, "\\.")} is ready`));
    assert.match(mail.html, new RegExp(`<strong>${u.email.replace(/\./g, "\\.")}</strong>`));
    assert.match(mail.html, /^<!doctype html>/);
    assert.deepEqual([d.status, d.category, d.recipient, d.subject, d.attempts], ["SENT", "account", u.email, "Welcome to Acme", 1]);
    assert.ok(d.sent_at);
  });

  it("CreateOrder sends an order confirmation; text from the event is escaped in the HTML part and only there", async () => {
    const u = await signUp(s.t);
    await deliveryReaching(s, u.id, "welcome", ["SENT"]);
    const product = `Widget <b>"big"</b> & co`;
    const p = await makeProduct(s.t, { name: product, priceMinor: 1999n });
    const { order } = await s.t.orders(u.token).createOrder({ lines: line(p.id, 3), requestId: randomUUID() });
    const d = await deliveryReaching(s, u.id, "order_confirmation", ["SENT"]);
    const mail = onlyMailTo(sink, u.email, `Order ${order!.id.slice(0, 8)} received`);
    assert.equal(d.subject, mail.header("subject"));
    assert.match(mail.text, new RegExp(`Order: +${order!.id}`));
    assert.ok(mail.text.includes(`Product:    ${product}`), mail.text);
    assert.match(mail.text, /Quantity: +3\n/);
    assert.match(mail.text, /Unit price: 19\.99 EUR\n/);
    assert.match(mail.text, /Total: +59\.97 EUR\n/);
    assert.ok(mail.html.includes("Widget &lt;b&gt;&quot;big&quot;&lt;/b&gt; &amp; co"), mail.html);
    assert.ok(!mail.html.includes("<b>"), "no markup from the event in the HTML");
    assert.match(mail.html, /<strong>59\.97 EUR<\/strong>/);
  });

  it("an order status change sends a status mail; a cancellation announced by OrderStatusChanged sends none (OrderCancelled does)", async () => {
    const u = await signUp(s.t);
    await deliveryReaching(s, u.id, "welcome", ["SENT"]);
    const orderId = randomUUID();
    const changed = (to: OrderStatus) =>
      eventMessage("order.status_changed", {
        case: "orderStatusChanged",
        value: create(OrderStatusChangedSchema, { orderId, userId: u.id, fromStatus: OrderStatus.PENDING, toStatus: to }),
      });
    await s.bus.publish(QUEUES.orderEvents.exchange, changed(OrderStatus.CANCELLED));
    await s.bus.publish(QUEUES.orderEvents.exchange, changed(OrderStatus.CONFIRMED));
    const d = await deliveryReaching(s, u.id, "order_status", ["SENT"]);
    await s.bus.idle();
    assert.equal(d.subject, `Order ${orderId.slice(0, 8)} is confirmed`);
    assert.equal((await deliveriesOf(s, u.id)).filter((x) => x.kind === "order_status").length, 1);
    const mail = onlyMailTo(sink, u.email, d.subject);
    assert.match(mail.text, /is now confirmed \(it was pending\)\./);
  });

  it("orders turned off: the order's delivery is SUPPRESSED and no mail goes out; turned on again, the next one is sent", async () => {
    const u = await signUp(s.t);
    await deliveryReaching(s, u.id, "welcome", ["SENT"]);
    const n = s.notifications(u.token);
    const off = await n.updateMyPreferences({ preferences: { orders: false } });
    assert.deepEqual([off.preferences?.security, off.preferences?.account, off.preferences?.orders], [true, true, false]);
    await s.t.orders(u.token).createOrder({ lines: await linesOf(s.t, 1), requestId: randomUUID() });
    const d = await deliveryReaching(s, u.id, "order_confirmation", ["SUPPRESSED"]);
    await s.bus.idle();
    assert.equal(d.attempts, 0);
    assert.deepEqual(subjectsTo(sink, u.email).filter((x) => x?.startsWith("Order")), [], "no order mail");

    await n.updateMyPreferences({ preferences: { orders: true } });
    await s.t.orders(u.token).createOrder({ lines: await linesOf(s.t, 1), requestId: randomUUID() });
    const sent = await until("a sent order mail", async () => (await deliveriesOf(s, u.id)).find((x) => x.kind === "order_confirmation" && x.status === "SENT"));
    assert.deepEqual(subjectsTo(sink, u.email).filter((x) => x?.startsWith("Order")), [sent.subject]);
  });

  it("security notices cannot be turned off: INVALID_ARGUMENT naming preferences.security", async () => {
    const u = await signUp(s.t);
    const n = s.notifications(u.token);
    await rejectsWith(n.updateMyPreferences({ preferences: { security: false } }), Code.InvalidArgument, ["preferences.security"]);
    await rejectsWith(n.updateMyPreferences({ preferences: {}, updateMask: { paths: ["security"] } }), Code.InvalidArgument, ["preferences.security"]);
    await rejectsWith(n.updateMyPreferences({ preferences: { security: false, orders: false } }), Code.InvalidArgument, ["preferences.security"]);
    const now = await n.getMyPreferences({});
    assert.deepEqual([now.preferences?.security, now.preferences?.account, now.preferences?.orders], [true, true, true], "nothing changed");
  });

  it("the same event delivered again (a redelivery, a consumer killed before its ack) sends one mail", async () => {
    const { userId, email } = newUser();
    const m = registered(userId, email);
    await s.bus.publish(QUEUES.userEvents.exchange, m);
    await deliveryReaching(s, userId, "welcome", ["SENT"]);
    await s.bus.publish(QUEUES.userEvents.exchange, m);
    await s.bus.publish(QUEUES.userEvents.exchange, m);
    await s.bus.idle();
    onlyMailTo(sink, email);
    const [d] = await deliveriesOf(s, userId);
    assert.equal(d.attempts, 1);
    const { rows } = await sql`select 1 from notify.processed_events where event_id = ${m.id}`.execute(s.t.system.db.db);
    assert.equal(rows.length, 1);
  });

  it("4xx for a while: RETRYING, each attempt in the log with the backoff between them, delivered once the server recovers", async () => {
    sink.refuse(451, "4.3.0 try again later");
    const { userId, email } = newUser();
    await s.bus.publish(QUEUES.userEvents.exchange, registered(userId, email));
    await until("two failed attempts", async () => {
      const [d] = await deliveriesOf(s, userId);
      return d?.status === "RETRYING" && d.attempts >= 2;
    });
    sink.accept();
    const d = await deliveryReaching(s, userId, "welcome", ["SENT"]);
    await s.bus.idle();
    onlyMailTo(sink, email);

    const { delivery, attempts } = await s.notifications(admin.token).getDelivery({ id: d.id });
    assert.equal(delivery?.status, DeliveryStatus.SENT);
    assert.equal(delivery?.attemptCount, attempts.length);
    assert.match(delivery!.lastError, /^temporary failure: 451 4\.3\.0 try again later/);
    assert.ok(attempts.length >= 3 && attempts.length <= 8, `${attempts.length} attempts`);
    const failed = attempts.slice(0, -1);
    const last = attempts[attempts.length - 1];
    for (const a of failed) {
      assert.deepEqual([a.outcome, a.smtpCode], [AttemptOutcome.TEMPORARY_FAILURE, 451]);
      assert.match(a.error, /451/);
    }
    assert.deepEqual([last.outcome, last.smtpCode, last.error], [AttemptOutcome.SENT, 250, ""]);
    assert.deepEqual(attempts.map((a) => a.number), attempts.map((_, i) => i + 1));
    assert.deepEqual(attempts.map((a) => a.busAttempt), attempts.map((_, i) => i + 1), "one attempt per delivery of the event");
    // Backoff with jitter: retry n waits at least a tenth of min(200, 50 * 2^(n-1)) ms after the attempt before it ended.
    const at = attempts.map((a) => Number(a.attemptedAt!.seconds) * 1000 + a.attemptedAt!.nanos / 1e6);
    for (let i = 1; i < at.length; i++) {
      const step = Math.min(200, 50 * 2 ** (i - 1));
      const gap = at[i] - (at[i - 1] + attempts[i - 1].durationMs);
      assert.ok(gap >= step / 10 - 1, `gap before attempt ${i + 1}: ${gap} ms`);
    }
  });

  it("4xx until the attempts run out: FAILED and dead-lettered with the reason; a replay sends it", async () => {
    sink.refuse(421, "4.7.0 server busy");
    const { userId, email } = newUser();
    const m = registered(userId, email);
    await s.bus.publish(QUEUES.userEvents.exchange, m);
    const dl = await until("a dead letter", () => s.bus.deadLetters(QUEUES.userEvents.queue).find((x) => x.message.id === m.id));
    assert.equal(dl.attempts, 8);
    assert.match(dl.reason, /temporary failure: 421 4\.7\.0 server busy/);
    const [d] = await deliveriesOf(s, userId);
    assert.deepEqual([d.status, d.attempts], ["FAILED", 8]);
    sink.accept();
    await s.bus.publish(dl.exchange, dl.message);
    await deliveryReaching(s, userId, "welcome", ["SENT"]);
    onlyMailTo(sink, email);
  });

  it("5xx: FAILED with the reason, dead-lettered at once (address masked); a replay from the dead-letter queue sends it once", async () => {
    const { userId, email } = newUser();
    sink.refuse(550, `5.1.1 <${email}> mailbox unavailable`);
    const m = registered(userId, email);
    await s.bus.publish(QUEUES.userEvents.exchange, m);
    const dl = await until("a dead letter", () => s.bus.deadLetters(QUEUES.userEvents.queue).find((x) => x.message.id === m.id));
    assert.equal(dl.attempts, 1, "not retried");
    assert.match(dl.reason, /permanent failure: 550 5\.1\.1 <n\*\*\*@example\.com> mailbox unavailable/);
    assert.ok(!dl.reason.includes(email), "no full address in the reason");
    const [failed] = await deliveriesOf(s, userId);
    assert.equal(failed.status, "FAILED");
    assert.match(failed.last_error!, /550/);
    assert.equal(mailsTo(sink, email).length, 0);

    // What `npm run admin -- dlq replay` does on RabbitMQ: the message goes back to its queue.
    sink.accept();
    await s.bus.publish(dl.exchange, dl.message);
    const d = await deliveryReaching(s, userId, "welcome", ["SENT"]);
    await s.bus.idle();
    onlyMailTo(sink, email);
    const { attempts } = await s.notifications(admin.token).getDelivery({ id: d.id });
    assert.deepEqual(attempts.map((a) => [a.outcome, a.smtpCode]), [[AttemptOutcome.PERMANENT_FAILURE, 550], [AttemptOutcome.SENT, 250]]);
  });

  it("poison: an undecodable body or an unknown event is dead-lettered at once, and the next message is still consumed", async () => {
    const garbage = { id: randomUUID(), type: "acme.events.v1.UserRegistered", routingKey: "user.registered", body: new Uint8Array([0xff, 0xff, 0xff]), headers: {} };
    const unknown = eventMessage("user.unknown", { case: undefined });
    const { userId, email } = newUser();
    await s.bus.publish(QUEUES.userEvents.exchange, garbage);
    await s.bus.publish(QUEUES.userEvents.exchange, unknown);
    await s.bus.publish(QUEUES.userEvents.exchange, registered(userId, email));
    await deliveryReaching(s, userId, "welcome", ["SENT"]);
    await s.bus.idle();
    const dead = s.bus.deadLetters(QUEUES.userEvents.queue);
    const g = dead.find((x) => x.message.id === garbage.id);
    const u = dead.find((x) => x.message.id === unknown.id);
    assert.ok(g && u, "both dead-lettered");
    assert.deepEqual([g.attempts, u.attempts], [1, 1]);
    assert.match(g.reason, /not an acme\.events\.v1\.Envelope/);
    assert.match(u.reason, /unknown event type/);
    onlyMailTo(sink, email);
  });

  it("an order event for a user whose address is not known yet is retried through the bus until it is", async () => {
    const { userId, email } = newUser();
    const orderId = randomUUID();
    const before = await retried(QUEUES.orderEvents.queue);
    await s.bus.publish(
      QUEUES.orderEvents.exchange,
      eventMessage("order.created", {
        case: "orderCreated",
        value: create(OrderCreatedSchema, { orderId, userId, product: "Early", quantity: 1, unitPriceCents: 5n, totalCents: 5n, status: OrderStatus.PENDING }),
      }),
    );
    await until("a retry", async () => (await retried(QUEUES.orderEvents.queue)) > before);
    assert.equal((await deliveriesOf(s, userId)).length, 0, "no delivery without an address");
    await s.bus.publish(QUEUES.userEvents.exchange, registered(userId, email));
    const d = await deliveryReaching(s, userId, "order_confirmation", ["SENT"]);
    assert.equal(d.recipient, email);
    await s.bus.idle();
    assert.deepEqual(subjectsTo(sink, email).sort(), ["Order " + orderId.slice(0, 8) + " received", "Welcome to Acme"]);
  });
});
