// NotificationService: the caller's own delivery log and preferences, the
// admins' view of every delivery with its attempts, and the contract's roles;
// over gRPC, and over REST through the embedded edge.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { DeliveryStatus, NotificationKind } from "../../gen/acme/notification/v1/notification_pb.js";
import { GENEROUS_LIMITS, tempRateLimitConfig } from "../edge/support.js";
import { rejectsWith, signUp, signUpAdmin, type TestUser } from "../user/helpers.js";
import { deliveriesOf, deliveryReaching, startNotificationSystem, type NotificationSystem } from "./support.js";
import { linesOf } from "../support/products.js";

describe("notification: the RPCs", function () {
  let s: NotificationSystem;
  let alice: TestUser;
  let bob: TestUser;
  let admin: TestUser;
  let limits: { path: string; remove(): void };
  before(async () => {
    limits = tempRateLimitConfig(GENEROUS_LIMITS);
    s = await startNotificationSystem({ edge: true, env: { RATELIMIT_CONFIG: limits.path } });
    [alice, bob, admin] = await Promise.all([signUp(s.t, "Alice"), signUp(s.t, "Bob"), signUpAdmin(s.t)]);
    await s.t.orders(alice.token).createOrder({ lines: await linesOf(s.t, 1), requestId: randomUUID() });
    await deliveryReaching(s, alice.id, "order_confirmation", ["SENT"]);
    await deliveryReaching(s, bob.id, "welcome", ["SENT"]);
    await s.bus.idle();
  });
  after(async () => {
    await s?.stop();
    limits?.remove();
  });

  it("ListMyNotifications: the caller's own mails only, newest first, page by page", async () => {
    const mine = await deliveriesOf(s, alice.id);
    assert.ok(mine.length >= 2, "welcome and order confirmation (and maybe a new-device notice)");
    const n = s.notifications(alice.token);
    const seen: string[] = [];
    let pageToken = "";
    for (let i = 0; i < 10; i++) {
      const page = await n.listMyNotifications({ pageSize: 1, pageToken });
      assert.ok(page.notifications.length <= 1);
      seen.push(...page.notifications.map((x) => x.id));
      pageToken = page.nextPageToken;
      if (!pageToken) break;
    }
    assert.deepEqual(seen, [...mine].reverse().map((d) => d.id), "every one of hers, newest first");
    const all = await n.listMyNotifications({});
    assert.ok(all.notifications.every((x) => x.recipient === alice.email));
    const order = all.notifications.find((x) => x.kind === NotificationKind.ORDER_CONFIRMATION)!;
    assert.equal(order.status, DeliveryStatus.SENT);
    assert.ok(order.sentAt && order.createdAt);

    const bobs = await s.notifications(bob.token).listMyNotifications({});
    assert.ok(bobs.notifications.length >= 1);
    assert.ok(bobs.notifications.every((x) => x.recipient === bob.email && !seen.includes(x.id)), "none of Alice's");
    // A page token is bound to the caller it was issued to.
    const first = await n.listMyNotifications({ pageSize: 1 });
    await rejectsWith(s.notifications(bob.token).listMyNotifications({ pageSize: 1, pageToken: first.nextPageToken }), Code.InvalidArgument, ["pageToken"]);
    await rejectsWith(n.listMyNotifications({ pageSize: -1 }), Code.InvalidArgument, ["pageSize"]);
  });

  it("preferences: defaults, partial updates, masks", async () => {
    const u = await signUp(s.t);
    const n = s.notifications(u.token);
    const show = (p: { security?: boolean; account?: boolean; orders?: boolean } | undefined) => [p?.security, p?.account, p?.orders];
    assert.deepEqual(show((await n.getMyPreferences({})).preferences), [true, true, true]);
    assert.deepEqual(show((await n.updateMyPreferences({ preferences: { account: false } })).preferences), [true, false, true]);
    assert.deepEqual(show((await n.updateMyPreferences({ preferences: { orders: false } })).preferences), [true, false, false], "account kept");
    // A path in the mask with no value set means false (AIP-134); true for security is accepted and changes nothing.
    assert.deepEqual(show((await n.updateMyPreferences({ preferences: { security: true, orders: true }, updateMask: { paths: ["security", "orders"] } })).preferences), [true, false, true]);
    assert.deepEqual(show((await n.updateMyPreferences({ preferences: {}, updateMask: { paths: ["orders"] } })).preferences), [true, false, false]);
    assert.deepEqual(show((await n.getMyPreferences({})).preferences), [true, false, false]);
    await rejectsWith(n.updateMyPreferences({ preferences: {} }), Code.InvalidArgument, ["updateMask"]);
    await rejectsWith(n.updateMyPreferences({}), Code.InvalidArgument, ["preferences"]);
    await rejectsWith(n.updateMyPreferences({ preferences: { orders: true }, updateMask: { paths: ["marketing"] } }), Code.InvalidArgument, ["updateMask"]);
  });

  it("ListDeliveries and GetDelivery are for admins: a plain user gets PERMISSION_DENIED", async () => {
    const n = s.notifications(alice.token);
    await rejectsWith(n.listDeliveries({}), Code.PermissionDenied);
    await rejectsWith(n.getDelivery({ id: (await deliveriesOf(s, alice.id))[0].id }), Code.PermissionDenied);
    await rejectsWith(s.notifications().listMyNotifications({}), Code.Unauthenticated);
  });

  it("ListDeliveries: everyone's, by user, by status, page by page; GetDelivery: one with its attempts", async () => {
    const n = s.notifications(admin.token);
    const byAlice = await n.listDeliveries({ userId: alice.id });
    assert.deepEqual(byAlice.deliveries.map((d) => d.id), (await deliveriesOf(s, alice.id)).reverse().map((d) => d.id));
    const sent = await n.listDeliveries({ status: DeliveryStatus.SENT, pageSize: 100 });
    assert.ok(sent.deliveries.length >= 4 && sent.deliveries.every((d) => d.status === DeliveryStatus.SENT));
    assert.ok(sent.deliveries.some((d) => d.userId === bob.id) && sent.deliveries.some((d) => d.userId === alice.id));
    const p1 = await n.listDeliveries({ pageSize: 2 });
    const p2 = await n.listDeliveries({ pageSize: 2, pageToken: p1.nextPageToken });
    assert.equal(p1.deliveries.length, 2);
    assert.ok(!p2.deliveries.some((d) => p1.deliveries.some((x) => x.id === d.id)));
    await rejectsWith(n.listDeliveries({ pageSize: 2, pageToken: p1.nextPageToken, userId: alice.id }), Code.InvalidArgument, ["pageToken"]);
    await rejectsWith(n.listDeliveries({ status: 99 as DeliveryStatus, userId: "nope" }), Code.InvalidArgument, ["status", "userId"]);

    const order = byAlice.deliveries.find((d) => d.kind === NotificationKind.ORDER_CONFIRMATION)!;
    const { delivery, attempts } = await n.getDelivery({ id: order.id });
    assert.equal(delivery?.recipient, alice.email);
    assert.equal(delivery?.attemptCount, 1);
    assert.equal(attempts.length, 1);
    assert.deepEqual([attempts[0].number, attempts[0].smtpCode, attempts[0].busAttempt, attempts[0].error], [1, 250, 1, ""]);
    await rejectsWith(n.getDelivery({ id: randomUUID() }), Code.NotFound);
    await rejectsWith(n.getDelivery({ id: "nope" }), Code.InvalidArgument, ["id"]);
  });

  it("REST through the embedded edge: GET /v1/notifications, GET and PATCH /v1/notifications/preferences, admin routes", async () => {
    const u = await signUp(s.t);
    const call = (method: string, path: string, token: string, body?: unknown) =>
      fetch(`${s.t.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
    const prefs = await call("GET", "/v1/notifications/preferences", u.token);
    assert.equal(prefs.status, 200);
    assert.deepEqual(await prefs.json(), { preferences: { security: true, account: true, orders: true } });
    const patched = await call("PATCH", "/v1/notifications/preferences", u.token, { orders: false });
    assert.equal(patched.status, 200);
    assert.deepEqual(await patched.json(), { preferences: { security: true, account: true, orders: false } });
    const refused = await call("PATCH", "/v1/notifications/preferences", u.token, { security: false });
    assert.equal(refused.status, 400);
    assert.match(JSON.stringify(await refused.json()), /preferences\.security/);
    const list = await call("GET", "/v1/notifications?pageSize=5", u.token);
    assert.equal(list.status, 200);
    assert.ok(Array.isArray(((await list.json()) as { notifications?: unknown[] }).notifications ?? []));
    assert.equal((await call("GET", "/v1/admin/notifications", u.token)).status, 403);
    const asAdmin = await call("GET", `/v1/admin/notifications?userId=${alice.id}&status=DELIVERY_STATUS_SENT`, admin.token);
    assert.equal(asAdmin.status, 200);
    const { deliveries } = (await asAdmin.json()) as { deliveries: { id: string }[] };
    const one = await call("GET", `/v1/admin/notifications/${deliveries[0].id}`, admin.token);
    assert.equal(one.status, 200);
    const body = (await one.json()) as { delivery: { status: string }; attempts: { outcome: string; smtpCode: number }[] };
    assert.equal(body.delivery.status, "DELIVERY_STATUS_SENT");
    assert.deepEqual(body.attempts.map((a) => [a.outcome, a.smtpCode]), [["ATTEMPT_OUTCOME_SENT", 250]]);
  });
});
