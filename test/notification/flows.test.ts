// Mails for the other events: a cancelled order (the order service publishes
// OrderStatusChanged and OrderCancelled: one mail, with the reason), and a
// changed address (a notice to the old one; later mail goes to the new one).
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { EmailChangedSchema, OrderCreatedSchema, UserRegisteredSchema } from "../../gen/acme/events/v1/events_pb.js";
import { OrderStatus } from "../../gen/acme/order/v1/order_pb.js";
import { signUp } from "../user/helpers.js";
import { parseMime } from "./mime.js";
import { deliveriesOf, deliveryReaching, eventMessage, mailsTo, QUEUES, startNotificationSystem, until, type NotificationSystem } from "./support.js";
import { linesOf } from "../support/products.js";

describe("notification: cancellations and address changes", function () {
  let s: NotificationSystem;
  before(async () => {
    s = await startNotificationSystem();
  });
  after(async () => s?.stop());

  it("CancelOrder: one order_status mail saying cancelled, with the reason", async () => {
    const u = await signUp(s.t);
    const { order } = await s.t.orders(u.token).createOrder({ lines: await linesOf(s.t, 2), requestId: randomUUID() });
    await deliveryReaching(s, u.id, "order_confirmation", ["SENT"]);
    await s.t.orders(u.token).cancelOrder({ id: order!.id });
    const d = await deliveryReaching(s, u.id, "order_status", ["SENT"]);
    await s.bus.idle();
    assert.equal(d.subject, `Order ${order!.id.slice(0, 8)} is cancelled`);
    assert.equal((await deliveriesOf(s, u.id)).filter((x) => x.kind === "order_status").length, 1, "one mail for the cancellation");
    const mail = parseMime(mailsTo(s.sink!, u.email).find((m) => parseMime(m.raw).header("subject") === d.subject)!.raw);
    assert.match(mail.text, /is now cancelled \(it was pending\)\. Reason: requested\./);
  });

  it("EmailChanged: a security notice to the previous address; the next order mail goes to the new one", async () => {
    const userId = randomUUID();
    const oldEmail = `old-${userId.slice(0, 8)}@example.com`;
    const newEmail = `new-${userId.slice(0, 8)}@example.com`;
    const t0 = Date.now();
    await s.bus.publish(QUEUES.userEvents.exchange, eventMessage("user.registered", { case: "userRegistered", value: create(UserRegisteredSchema, { userId, email: oldEmail }) }, { occurredAt: new Date(t0) }));
    await deliveryReaching(s, userId, "welcome", ["SENT"]);
    await s.bus.publish(QUEUES.userEvents.exchange, eventMessage("user.email_changed", { case: "emailChanged", value: create(EmailChangedSchema, { userId, oldEmail, newEmail }) }, { occurredAt: new Date(t0 + 1000) }));
    const notice = await deliveryReaching(s, userId, "email_changed", ["SENT"]);
    assert.deepEqual([notice.recipient, notice.category], [oldEmail, "security"]);
    const mail = parseMime(mailsTo(s.sink!, oldEmail).find((m) => parseMime(m.raw).header("subject") === notice.subject)!.raw);
    assert.match(mail.text, /changed from this address to n\*\*\*@example\.com/);
    // A registration event arriving late (older) does not bring the old address back.
    await s.bus.publish(QUEUES.userEvents.exchange, eventMessage("user.registered", { case: "userRegistered", value: create(UserRegisteredSchema, { userId, email: oldEmail }) }, { occurredAt: new Date(t0 - 1000) }));
    await s.bus.publish(QUEUES.orderEvents.exchange, eventMessage("order.created", {
      case: "orderCreated",
      value: create(OrderCreatedSchema, { orderId: randomUUID(), userId, product: "Pen", quantity: 1, unitPriceCents: 100n, totalCents: 100n, status: OrderStatus.PENDING }),
    }));
    const order = await deliveryReaching(s, userId, "order_confirmation", ["SENT"]);
    assert.equal(order.recipient, newEmail);
    await until("the order mail at the new address", () => mailsTo(s.sink!, newEmail).length === 1);
  });
});
