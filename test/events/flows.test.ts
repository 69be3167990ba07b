// The events of the account and order flows, each written to its service's
// outbox in the transaction of the change (services/auth/events.ts,
// services/order/events.ts): one row per change, with its routing key,
// aggregate and payload, and none for a flow that fails or changes nothing.
// Through the product's APIs on the test Postgres.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { create, fromBinary } from "@bufbuild/protobuf";
import { FieldMaskSchema, timestampDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { sql, type Kysely } from "kysely";
import { EnvelopeSchema, type Envelope } from "../../gen/acme/events/v1/events_pb.js";
import { OrderSchema, OrderStatus } from "../../gen/acme/order/v1/order_pb.js";
import { UserSchema } from "../../gen/acme/user/v1/user_pb.js";
import { memoryBus } from "../../platform/bus/memory.js";
import { deviceId, deviceIdSql } from "../../services/auth/devices.js";
import { ROUTING as AUTH } from "../../services/auth/events.js";
import type { DomainEvent } from "../../services/envelope.js";
import { EmailTakenError } from "../../services/auth/store.js";
import { ROUTING as ORDER } from "../../services/order/events.js";
import type { OrderModule } from "../../services/order/index.js";
import { authFrom, authModule, decodeJwt, email, freshIp, PASSWORD, register } from "../auth/helpers.js";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { rejectsWith, signUp, signUpAdmin, type TestUser } from "../user/helpers.js";
import { linesOf } from "../support/products.js";

interface Event {
  routingKey: string;
  body: Uint8Array;
  envelope: Envelope;
}

/** The outbox rows of `aggregateId` in `schema` with `routingKey`, in seq order, decoded. */
async function events(db: Kysely<any>, schema: "auth" | "orders", aggregateId: string, routingKey: string): Promise<Event[]> {
  const { rows } = await sql<{ routing_key: string; body: Uint8Array; aggregate_id: string }>`
    select routing_key, body, aggregate_id from ${sql.table(`${schema}.outbox`)}
    where aggregate_id = ${aggregateId} and routing_key = ${routingKey} order by seq`.execute(db);
  return rows.map((r) => {
    const envelope = fromBinary(EnvelopeSchema, new Uint8Array(r.body));
    assert.equal(envelope.aggregateId, r.aggregate_id);
    return { routingKey: r.routing_key, body: new Uint8Array(r.body), envelope };
  });
}

/** The one event's payload, asserting there is exactly one and of `kind`. */
/** Each event's payload type by its oneof case. */
type Payloads = { [E in DomainEvent as E["case"]]: E["value"] };

function only<K extends keyof Payloads>(es: Event[], kind: K): Payloads[K] {
  assert.equal(es.length, 1, `one ${kind} event, got ${es.length}`);
  const e = es[0].envelope.event as DomainEvent;
  assert.equal(e.case, kind);
  return e.value as Payloads[K];
}

const noSecrets = (e: Event, ...secrets: string[]) => {
  for (const s of secrets) assert.equal(Buffer.from(e.body).includes(s), false, "no password or token in the event");
};

describe("events: emitted by the account and order flows, in the transaction of the change", function () {
  let t: TestSystem;
  let db: Kysely<any>;
  const lockedWaitMs = 60_000;
  before(async () => {
    t = await startTestSystem({
      edge: false,
      services: ["auth", "user", "order", "catalogue"],
      bus: memoryBus(),
      env: { ORDER_SWEEP_INTERVAL_MS: "0", ORDER_PENDING_TTL_SECONDS: "1", OUTBOX_POLL_MS: "60000", LOCKOUT_THRESHOLD: "3", LOCKOUT_BASE_SECONDS: String(lockedWaitMs / 1000) },
    });
    db = t.system.db.db;
  });
  after(async () => t?.stop());
  const authEvents = (userId: string, key: string) => events(db, "auth", userId, key);
  const orderEvents = (orderId: string, key: string) => events(db, "orders", orderId, key);

  describe("auth (exchange acme.user)", () => {
    it("user.password_changed: one for ChangePassword with the owner's id and email; none for a wrong current password", async () => {
      const u = await signUp(t);
      await rejectsWith(t.auth(u.token).changePassword({ currentPassword: "not the password", newPassword: "a new password 1" }), Code.InvalidArgument);
      assert.equal((await authEvents(u.id, AUTH.passwordChanged)).length, 0);
      await t.auth(u.token).changePassword({ currentPassword: PASSWORD, newPassword: "a new password 1" });
      const es = await authEvents(u.id, AUTH.passwordChanged);
      const v = only(es, "passwordChanged");
      assert.deepEqual([v.userId, v.email], [u.id, u.email]);
      assert.equal(es[0].envelope.type, "acme.events.v1.PasswordChanged");
      noSecrets(es[0], PASSWORD, "a new password 1", u.token, u.refreshToken);
    });

    it("user.login_new_device: none for the account's first device; once for each new user agent; none for a known device from another address or a failed login", async () => {
      const e = email("dev");
      const r = await register(t, { email: e, ip: freshIp(), ua: "Firefox/1 (device A)" });
      const id = r.user.id;
      assert.equal((await authEvents(id, AUTH.loginNewDevice)).length, 0, "the first device is not a new one");
      const ip = freshIp();
      const b = await authFrom(t, ip, { "user-agent": "Edge (device B)" }).login({ email: e, password: PASSWORD });
      const first = only(await authEvents(id, AUTH.loginNewDevice), "loginFromNewDevice");
      assert.deepEqual(
        { userId: first.userId, email: first.email, sessionId: first.sessionId, deviceId: first.deviceId, ip: first.ip, userAgent: first.userAgent },
        { userId: id, email: e, sessionId: decodeJwt(b.tokens!.accessToken).claims.sid, deviceId: deviceId("Edge (device B)"), ip, userAgent: "Edge (device B)" },
      );
      await authFrom(t, freshIp(), { "user-agent": "Firefox/1 (device A)" }).login({ email: e, password: PASSWORD });
      await rejectsWith(authFrom(t, freshIp(), { "user-agent": "Curl (device D)" }).login({ email: e, password: "wrong password" }), Code.Unauthenticated);
      assert.equal((await authEvents(id, AUTH.loginNewDevice)).length, 1, "known device, or no login: no event");
      // Three concurrent logins from one new device: one event.
      await Promise.all([1, 2, 3].map(() => authFrom(t, freshIp(), { "user-agent": "Safari (device C)" }).login({ email: e, password: PASSWORD })));
      const all = await authEvents(id, AUTH.loginNewDevice);
      assert.equal(all.length, 2);
      assert.equal(all[1].envelope.event.case === "loginFromNewDevice" && all[1].envelope.event.value.userAgent, "Safari (device C)");
      noSecrets(all[0], PASSWORD, r.access, r.refresh);
      // The id migration 007 gives the devices of existing sessions is the same.
      for (const ua of ["Safari (device C)", "", "Ünïcode ✓"]) {
        const { rows } = await sql<{ id: string }>`select ${deviceIdSql(sql.val(ua))} as id`.execute(db);
        assert.equal(rows[0].id, deviceId(ua));
      }
    });

    it("user.locked: once when the failures lock the account from an address (not per refused attempt), again for the next lock; none for an unknown email", async () => {
      const r = await register(t);
      const id = r.user.id;
      const attacker = freshIp();
      const wrong = () => authFrom(t, attacker).login({ email: r.email, password: "wrong password" });
      await rejectsWith(wrong(), Code.Unauthenticated);
      assert.equal((await authEvents(id, AUTH.locked)).length, 0);
      // The 2nd and 3rd failures race: one lock, one event.
      await Promise.all([1, 2, 3].map(() => wrong().catch(() => {})));
      const before = Date.now();
      for (let i = 0; i < 3; i++) await rejectsWith(wrong(), Code.ResourceExhausted);
      const lock = only(await authEvents(id, AUTH.locked), "accountLocked");
      assert.equal(lock.userId, id);
      assert.equal(lock.email, r.email);
      assert.match(lock.reason, /^account_address: \d+ failures$/);
      const until = timestampDate(lock.lockedUntil!).getTime();
      assert.ok(until > before && until <= Date.now() + 4 * lockedWaitMs, `locked until ${new Date(until).toISOString()}`);
      // The wait over, the next failure locks again (longer): a second event.
      authModule(t).internals.clock.advance(4 * lockedWaitMs + 1000);
      await rejectsWith(wrong(), Code.Unauthenticated);
      assert.equal((await authEvents(id, AUTH.locked)).length, 2);

      const count = async () => Number((await sql<{ n: string }>`select count(*) as n from auth.outbox where routing_key = ${AUTH.locked}`.execute(db)).rows[0].n);
      const n = await count();
      const nobody = email("nobody");
      for (let i = 0; i < 4; i++) await authFrom(t, attacker).login({ email: nobody, password: "wrong password" }).catch(() => {});
      assert.equal(await count(), n, "no account, no event");
    });

    it("user.session_revoked: one per session ended by logout, DeleteSession, LogoutAll, a password change or deactivation; none when nothing was live", async () => {
      const u = await signUp(t);
      const reasons = async () =>
        (await authEvents(u.id, AUTH.sessionRevoked)).map((e) => {
          const v = e.envelope.event.case === "sessionRevoked" ? e.envelope.event.value : assert.fail("not SessionRevoked");
          assert.equal(v.userId, u.id);
          return `${v.reason} ${v.sessionId}`;
        });
      const sid = (token: string) => String(decodeJwt(token).claims.sid);
      const login = () => t.auth().login({ email: u.email, password: PASSWORD }).then((r) => r.tokens!);

      await t.auth().logout({ refreshToken: u.refreshToken });
      await t.auth().logout({ refreshToken: u.refreshToken });
      assert.deepEqual(await reasons(), [`logout ${sid(u.token)}`], "a repeated logout: no second event");

      const [a, b, c] = [await login(), await login(), await login()];
      await t.auth(a.accessToken).deleteSession({ id: sid(b.accessToken) });
      await rejectsWith(t.auth(a.accessToken).deleteSession({ id: sid(b.accessToken) }), Code.NotFound);
      assert.deepEqual((await reasons()).slice(1), [`session_deleted ${sid(b.accessToken)}`]);

      await t.auth(a.accessToken).changePassword({ currentPassword: PASSWORD, newPassword: PASSWORD });
      assert.deepEqual((await reasons()).slice(2), [`password_change ${sid(c.accessToken)}`], "the other live session, not the caller's");

      const d = await login();
      await t.auth(a.accessToken).logoutAll({});
      assert.deepEqual((await reasons()).slice(3).sort(), [`logout_all ${sid(a.accessToken)}`, `logout_all ${sid(d.accessToken)}`].sort());

      const e = await login();
      const admin = await signUpAdmin(t);
      const deactivate = () =>
        t.users(admin.token).updateUser({ user: create(UserSchema, { id: u.id, active: false }), updateMask: create(FieldMaskSchema, { paths: ["active"] }) });
      await deactivate();
      await deactivate(); // revokes again: nothing is live
      assert.deepEqual((await reasons()).slice(5), [`deactivated ${sid(e.accessToken)}`]);
    });

    it("user.email_changed: AuthStore.changeEmail commits the address with its event; the same address or a taken one writes none (no RPC changes an email yet)", async () => {
      const u = await signUp(t);
      const other = await signUp(t);
      const store = authModule(t).internals.store;
      const next = email("moved");
      assert.deepEqual(await store.changeEmail(u.id, next, new Date()), { oldEmail: u.email, changed: true });
      const v = only(await authEvents(u.id, AUTH.emailChanged), "emailChanged");
      assert.deepEqual([v.userId, v.oldEmail, v.newEmail], [u.id, u.email, next]);
      assert.deepEqual(await store.changeEmail(u.id, next, new Date()), { oldEmail: next, changed: false });
      await assert.rejects(store.changeEmail(u.id, other.email, new Date()), EmailTakenError);
      assert.equal((await authEvents(u.id, AUTH.emailChanged)).length, 1);
      assert.equal((await store.getAccount(u.id))?.email, next);
    });

    it("user.deleted: one for DeleteUser (the account removed in its transaction) with the id only; none when refused or repeated", async () => {
      const u = await signUp(t);
      const other = await signUp(t);
      await rejectsWith(t.users(other.token).deleteUser({ id: u.id }), Code.NotFound); // not the owner
      assert.equal((await authEvents(u.id, AUTH.accountDeleted)).length, 0, "refused: no event");
      await t.users(u.token).deleteUser({ id: u.id });
      const es = await authEvents(u.id, AUTH.accountDeleted);
      assert.equal(only(es, "accountDeleted").userId, u.id);
      assert.equal(es[0].envelope.type, "acme.events.v1.AccountDeleted");
      noSecrets(es[0], u.email, PASSWORD, u.token, u.refreshToken);
      assert.equal(await authModule(t).internals.store.getAccount(u.id), undefined, "the account is gone with its event");
      // Repeated: through the product (the profile is gone) and in auth itself (no account left).
      await rejectsWith(t.users((await signUpAdmin(t)).token).deleteUser({ id: u.id }), Code.NotFound);
      assert.equal(await authModule(t).internals.store.deleteAccount(u.id), false);
      assert.equal((await authEvents(u.id, AUTH.accountDeleted)).length, 1);
    });
  });

  describe("order (exchange acme.order)", () => {
    let alice: TestUser;
    let admin: TestUser;
    before(async () => {
      alice = await signUp(t, "Alice");
      admin = await signUpAdmin(t);
    });
    const newOrder = async () =>
      (await t.orders(alice.token).createOrder({ lines: await linesOf(t, 2), requestId: randomUUID() })).order!.id;
    const update = (id: string, status: OrderStatus) => t.orders(admin.token).updateOrder({ order: create(OrderSchema, { id, status }) });
    const changes = async (id: string) =>
      (await orderEvents(id, ORDER.orderStatusChanged)).map((e) => {
        const v = e.envelope.event.case === "orderStatusChanged" ? e.envelope.event.value : assert.fail("not OrderStatusChanged");
        assert.deepEqual([v.orderId, v.userId], [id, alice.id]);
        return `${OrderStatus[v.fromStatus]}->${OrderStatus[v.toStatus]}`;
      });
    const cancellations = async (id: string) =>
      (await orderEvents(id, ORDER.orderCancelled)).map((e) => {
        const v = e.envelope.event.case === "orderCancelled" ? e.envelope.event.value : assert.fail("not OrderCancelled");
        assert.deepEqual([v.orderId, v.userId], [id, alice.id]);
        return `${OrderStatus[v.fromStatus]} ${v.reason}`;
      });

    it("order.status_changed: one per UpdateOrder transition; an invalid or repeated one writes none", async () => {
      const id = await newOrder();
      await update(id, OrderStatus.CONFIRMED);
      assert.deepEqual(await changes(id), ["PENDING->CONFIRMED"]);
      await rejectsWith(update(id, OrderStatus.CONFIRMED), Code.FailedPrecondition);
      await rejectsWith(update(id, OrderStatus.PENDING), Code.FailedPrecondition);
      await update(id, OrderStatus.SHIPPED);
      await rejectsWith(update(id, OrderStatus.CANCELLED), Code.FailedPrecondition);
      assert.deepEqual(await changes(id), ["PENDING->CONFIRMED", "CONFIRMED->SHIPPED"]);
      assert.deepEqual(await cancellations(id), []);
    });

    it("order.cancelled: CancelOrder by the owner (requested) or an admin, UpdateOrder to CANCELLED (admin), each with its status change; a repeated cancel writes none", async () => {
      const mine = await newOrder();
      await t.orders(alice.token).cancelOrder({ id: mine });
      await rejectsWith(t.orders(alice.token).cancelOrder({ id: mine }), Code.FailedPrecondition);
      assert.deepEqual(await cancellations(mine), ["PENDING requested"]);
      assert.deepEqual(await changes(mine), ["PENDING->CANCELLED"]);

      const byAdmin = await newOrder();
      await t.orders(admin.token).cancelOrder({ id: byAdmin });
      assert.deepEqual(await cancellations(byAdmin), ["PENDING admin"]);

      const confirmed = await newOrder();
      await update(confirmed, OrderStatus.CONFIRMED);
      await update(confirmed, OrderStatus.CANCELLED);
      assert.deepEqual(await changes(confirmed), ["PENDING->CONFIRMED", "CONFIRMED->CANCELLED"]);
      assert.deepEqual(await cancellations(confirmed), ["CONFIRMED admin"]);
    });

    it("order.cancelled: the pending-order sweeper cancels with reason expired, once", async () => {
      const stale = await newOrder();
      const confirmed = await newOrder();
      await update(confirmed, OrderStatus.CONFIRMED);
      await new Promise((r) => setTimeout(r, 1100)); // ORDER_PENDING_TTL_SECONDS=1
      const sweeper = t.system.modules.find((m) => m.name === "order") as OrderModule;
      assert.ok((await sweeper.sweepNow()).includes(stale));
      await sweeper.sweepNow();
      assert.deepEqual(await cancellations(stale), ["PENDING expired"]);
      assert.deepEqual(await changes(stale), ["PENDING->CANCELLED"]);
      assert.deepEqual(await cancellations(confirmed), [], "only PENDING orders expire");
    });
  });
});
