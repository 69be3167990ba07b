// AccountDeleted: the notification service forgets the person. The address goes
// (notify.recipients keeps a tombstone), the preferences go, the delivery log
// keeps its rows and attempts with no address in them; a late event about the
// user keeps no address and sends no mail; a redelivery changes nothing.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { sql } from "kysely";
import { AccountDeletedSchema, OrderCreatedSchema, UserRegisteredSchema } from "../../gen/acme/events/v1/events_pb.js";
import { OrderStatus } from "../../gen/acme/order/v1/order_pb.js";
import { ERASED } from "../../services/notification/store.js";
import { signUp, signUpAdmin, type TestUser } from "../user/helpers.js";
import { deliveriesOf, deliveryReaching, eventMessage, mailsTo, QUEUES, startNotificationSystem, until, type NotificationSystem } from "./support.js";
import { linesOf } from "../support/products.js";

interface Erased {
  recipient?: { email: string | null; erased_at: Date | null; updated_at: Date };
  preferences: number;
  attempts: { delivery_id: string; number: number; error: string | null }[];
}

describe("notification: AccountDeleted erases the user's address", function () {
  let s: NotificationSystem;
  let admin: TestUser;
  before(async () => {
    s = await startNotificationSystem();
    admin = await signUpAdmin(s.t);
  });
  after(async () => s?.stop());

  const query = async <T>(q: ReturnType<typeof sql<T>>) => (await q.execute(s.t.system.db.db)).rows;
  const state = async (userId: string): Promise<Erased> => ({
    recipient: (await query(sql<NonNullable<Erased["recipient"]>>`select email, erased_at, updated_at from notify.recipients where user_id = ${userId}`))[0],
    preferences: (await query(sql`select 1 from notify.preferences where user_id = ${userId}`)).length,
    attempts: await query(sql<Erased["attempts"][number]>`select a.delivery_id, a.number, a.error from notify.delivery_attempts a
      join notify.deliveries d on d.id = a.delivery_id where d.user_id = ${userId} order by a.delivery_id, a.number`),
  });
  const processed = async (eventId: string) => (await query(sql`select 1 from notify.processed_events where event_id = ${eventId}`)).length;
  const publishUser = (key: string, event: Parameters<typeof eventMessage>[1], opts?: Parameters<typeof eventMessage>[2]) =>
    s.bus.publish(QUEUES.userEvents.exchange, eventMessage(key, event, opts));

  it("DeleteUser: recipient and preferences gone, deliveries kept without the address (errors too); late events bring nothing back", async () => {
    const u = await signUp(s.t);
    await s.notifications(u.token).updateMyPreferences({ preferences: { orders: true } });
    await deliveryReaching(s, u.id, "welcome", ["SENT"]);
    // One refusal naming the address: the order mail is retried, its first attempt's error has the (masked) address.
    s.sink!.refuse(450, `4.2.1 <${u.email}>: mailbox busy`, 1);
    await s.t.orders(u.token).createOrder({ lines: await linesOf(s.t, 1), requestId: randomUUID() });
    await deliveryReaching(s, u.id, "order_confirmation", ["SENT"]);
    await s.bus.idle();
    const before = await deliveriesOf(s, u.id);
    const had = await state(u.id);
    assert.equal(had.recipient?.email, u.email);
    assert.equal(had.preferences, 1);
    assert.ok(before.every((d) => d.recipient === u.email));
    assert.ok(had.attempts.some((a) => a.error?.includes(`${u.email[0]}***@example.com`)), "the refusal is in the log, masked");
    const mails = s.sink!.mails.length;

    await s.t.users(u.token).deleteUser({ id: u.id });
    await until("the erasure", async () => (await state(u.id)).recipient?.erased_at);
    await s.bus.idle();
    const after = await deliveriesOf(s, u.id);
    const gone = await state(u.id);
    assert.equal(gone.recipient?.email, null, "a tombstone, no address");
    assert.equal(gone.preferences, 0);
    assert.deepEqual(after.map((d) => [d.id, d.kind, d.status, d.attempts, d.recipient]), before.map((d) => [d.id, d.kind, d.status, d.attempts, ERASED]));
    assert.deepEqual(gone.attempts.map((a) => [a.delivery_id, a.number]), had.attempts.map((a) => [a.delivery_id, a.number]), "every attempt kept");
    const texts = [...gone.attempts.map((a) => a.error), ...after.map((d) => d.last_error)].filter((e) => e !== null);
    assert.ok(texts.length >= 2 && texts.every((e) => !e.includes("@") && !e.includes(u.email)), JSON.stringify(texts));
    assert.ok(texts.some((e) => e.includes(`<${ERASED}>`)));
    // What an admin sees.
    const listed = await s.notifications(admin.token).listDeliveries({ userId: u.id });
    assert.deepEqual(listed.deliveries.map((d) => d.recipient), before.map(() => ERASED));
    for (const d of after) {
      const got = await s.notifications(admin.token).getDelivery({ id: d.id });
      assert.equal(got.delivery?.recipient, ERASED);
      assert.ok(got.attempts.every((a) => !a.error.includes("@")));
    }

    // A registration arriving late (older), then an order event: no address kept, no mail, no delivery, processed.
    const late = eventMessage("user.registered", { case: "userRegistered", value: create(UserRegisteredSchema, { userId: u.id, email: u.email }) }, { occurredAt: new Date(Date.now() - 60_000) });
    await s.bus.publish(QUEUES.userEvents.exchange, late);
    const order = eventMessage("order.created", {
      case: "orderCreated",
      value: create(OrderCreatedSchema, { orderId: randomUUID(), userId: u.id, product: "Pen", quantity: 1, unitPriceCents: 100n, totalCents: 100n, status: OrderStatus.PENDING }),
    });
    await s.bus.publish(QUEUES.orderEvents.exchange, order);
    await s.bus.idle();
    assert.deepEqual([await processed(late.id), await processed(order.id)], [1, 1]);
    assert.deepEqual(s.bus.deadLetters(QUEUES.userEvents.queue).concat(s.bus.deadLetters(QUEUES.orderEvents.queue)).filter((d) => [late.id, order.id].includes(d.message.id)), []);
    assert.equal((await state(u.id)).recipient?.email, null, "the late registration did not bring the address back");
    assert.equal((await deliveriesOf(s, u.id)).length, before.length);
    assert.equal(s.sink!.mails.length, mails, "no mail since the deletion");
    assert.equal(mailsTo(s.sink!, u.email).length, before.length);
  });

  it("AccountDeleted: ListMyNotifications shows no address, preferences are back to the defaults; a redelivery changes nothing", async () => {
    // A hand-made event for a user auth still knows, so the user's own RPCs can be called after it.
    const u = await signUp(s.t);
    const n = s.notifications(u.token);
    await n.updateMyPreferences({ preferences: { account: false } });
    await deliveryReaching(s, u.id, "welcome", ["SENT"]);
    const deleted = eventMessage("user.deleted", { case: "accountDeleted", value: create(AccountDeletedSchema, { userId: u.id }) });
    await s.bus.publish(QUEUES.userEvents.exchange, deleted);
    await s.bus.idle();
    const mine = await n.listMyNotifications({});
    assert.ok(mine.notifications.length >= 1);
    assert.ok(mine.notifications.every((x) => x.recipient === ERASED));
    assert.deepEqual((await n.getMyPreferences({})).preferences?.account, true, "the stored preferences are gone");
    const first = await state(u.id);
    const firstRows = await deliveriesOf(s, u.id);

    // The same message again (the broker's at-least-once), and another event erasing the same user.
    await s.bus.publish(QUEUES.userEvents.exchange, deleted);
    await publishUser("user.deleted", { case: "accountDeleted", value: create(AccountDeletedSchema, { userId: u.id }) });
    await s.bus.idle();
    assert.equal(await processed(deleted.id), 1);
    const again = await state(u.id);
    assert.deepEqual(again.recipient?.erased_at, first.recipient?.erased_at, "erased once: the first time stays");
    assert.deepEqual([again.recipient?.email, again.preferences, again.attempts], [null, 0, first.attempts]);
    assert.deepEqual(await deliveriesOf(s, u.id), firstRows, "the delivery log untouched (nothing left to erase)");
    // A new-address event after the deletion: ignored too.
    await publishUser("user.registered", { case: "userRegistered", value: create(UserRegisteredSchema, { userId: u.id, email: `new-${u.email}` }) });
    await s.bus.idle();
    assert.equal((await state(u.id)).recipient?.email, null);
    assert.equal(mailsTo(s.sink!, `new-${u.email}`).length, 0);
  });
});
