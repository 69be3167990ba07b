// Edge conformance, route by route: every REST route of the contract is
// called through the edge with real services behind it, checking status,
// canonical JSON (lowerCamelCase, int64 strings, enum names), the response messages,
// error bodies (convert_grpc_status) and headers. A route added to the
// contract without a scenario here fails the run.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import {
  call,
  expectGrpcError,
  expectLocalReply,
  expectStatus,
  loginAdmin,
  login,
  PASSWORD,
  register,
  ROUTES,
  routeKey,
  startTarget,
  uniqueEmail,
  type Target,
  type User,
  EDGE_KINDS,
} from "./target.js";
import { accountScenarios } from "./account-routes.js";
import { catalogueScenarios } from "./catalogue-routes.js";

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

function expectUser(u: Record<string, unknown>, who: { id?: string; email?: string }) {
  if (who.id) assert.equal(u.id, who.id);
  if (who.email) assert.equal(u.email, who.email);
  assert.match(String(u.createdAt), RFC3339);
  for (const k of Object.keys(u)) assert.ok(["id", "email", "name", "role", "active", "createdAt", "updatedAt"].includes(k), `unexpected user field ${k}`);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** One entry of a user's own delivery log (acme.notification.v1.Notification). */
interface Notice {
  id: string;
  kind: string;
  category: string;
  recipient: string;
  subject: string;
  status: string;
  createdAt: string;
  sentAt?: string;
}

function expectNotice(n: Record<string, unknown>, recipient: string) {
  assert.match(String(n.id), UUID);
  assert.equal(n.recipient, recipient);
  assert.equal(typeof n.subject, "string");
  assert.match(String(n.kind), /^NOTIFICATION_KIND_[A-Z_]+$/, "enums by name");
  assert.match(String(n.category), /^CATEGORY_[A-Z]+$/);
  assert.match(String(n.createdAt), RFC3339);
  if (n.status === "DELIVERY_STATUS_SENT") assert.match(String(n.sentAt), RFC3339);
  else assert.equal(n.sentAt, undefined, "sentAt only once sent");
  for (const k of Object.keys(n)) assert.ok(["id", "kind", "category", "recipient", "subject", "status", "createdAt", "sentAt"].includes(k), `unexpected notification field ${k}`);
}

/** A delivery as admins see it (acme.notification.v1.Delivery), against the owner's view of it. */
function expectDelivery(d: Record<string, unknown>, owner: { id: string; email: string }, notice?: Notice) {
  assert.match(String(d.id), UUID);
  assert.match(String(d.eventId), UUID);
  assert.equal(d.userId, owner.id);
  assert.equal(d.recipient, owner.email);
  assert.match(String(d.createdAt), RFC3339);
  assert.match(String(d.updatedAt), RFC3339);
  assert.ok(typeof d.attemptCount === "number" && d.attemptCount >= 1, `attemptCount ${d.attemptCount}`);
  if (notice) {
    for (const k of ["id", "kind", "category", "subject", "status", "createdAt", "sentAt"] as const) assert.equal(d[k], notice[k], `delivery ${k} as the owner sees it`);
  }
  for (const k of Object.keys(d)) {
    assert.ok(["id", "eventId", "kind", "category", "userId", "recipient", "subject", "status", "attemptCount", "lastError", "createdAt", "updatedAt", "sentAt"].includes(k), `unexpected delivery field ${k}`);
  }
}

function expectTokens(tokens: Record<string, unknown>) {
  assert.equal(typeof tokens.accessToken, "string");
  assert.equal((tokens.accessToken as string).split(".").length, 3);
  assert.equal(typeof tokens.refreshToken, "string");
  assert.equal(typeof tokens.expiresIn, "number");
  assert.equal(tokens.tokenType, "Bearer");
}

const BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest";

for (const kind of EDGE_KINDS) {
  describe(`edge conformance (${kind}): every REST route`, function () {
    // Against a real edge, calls wait out its rate limits (see target.ts `call`).
    this.timeout(kind === "embedded" ? 60_000 : 300_000);
    let t: Target;
    let alice: User;
    let bob: User;
    let admin: User;
    let productId: string;
    before(async () => {
      t = await startTarget(kind);
      [alice, bob] = [await register(t, "alice"), await register(t, "bob")];
      admin = await loginAdmin(t);
      // The catalogue product every order of these scenarios names (plenty of stock).
      const p = await call(t, "POST", "/v1/admin/products", {
        token: admin.access,
        body: { sku: `CONF-${randomUUID().slice(0, 8).toUpperCase()}`, name: "conformance widget", price: { amountMinor: "1999", currency: "EUR" }, initialStock: 1_000_000 },
      });
      expectStatus(p, 200, "create product");
      productId = p.json.product.id;
    });
    after(async () => t?.stop());

    const newOrder = async (u: User, extra: Record<string, unknown> = {}) => {
      const a = await call(t, "POST", "/v1/orders", {
        token: u.access,
        body: { lines: [{ productId, quantity: 2 }], requestId: randomUUID(), ...extra },
      });
      expectStatus(a, 200, "create order");
      return a.json.order as Record<string, unknown>;
    };

    // Mail is made when the notification service consumes the events, after the request that caused
    // them has been answered: scenarios wait for the deliveries they look at, through the API.
    const sentMail = (kind: string) => (ns: Notice[]) => ns.some((n) => n.kind === `NOTIFICATION_KIND_${kind}` && n.status === "DELIVERY_STATUS_SENT");
    const notificationsWhen = async (u: User, what: string, ready: (ns: Notice[]) => boolean): Promise<Notice[]> => {
      const end = Date.now() + (t.embedded ? 20_000 : 90_000);
      for (;;) {
        const a = await call(t, "GET", "/v1/notifications?pageSize=100", { token: u.access });
        expectStatus(a, 200, `notifications while waiting for ${what}`);
        const ns = (a.json.notifications ?? []) as Notice[];
        if (ready(ns)) return ns;
        if (Date.now() > end) assert.fail(`timed out waiting for ${what}: ${a.text}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    /**
     * A user with two mails sent, made once per target and only read afterwards: the welcome, then
     * the confirmation of an order placed once the welcome was out (the order mail goes to the
     * address UserRegistered carried, and comes second: the newest-first order is fixed).
     */
    let mailed: Promise<{ user: User; order: Record<string, unknown>; notices: Notice[] }> | undefined;
    const withMail = () =>
      (mailed ??= (async () => {
        const user = await register(t, "mailed");
        await notificationsWhen(user, "the welcome and verification mails", (ns) => sentMail("WELCOME")(ns) && sentMail("VERIFY_EMAIL")(ns));
        const order = await newOrder(user);
        const notices = await notificationsWhen(user, "the order confirmation", sentMail("ORDER_CONFIRMATION"));
        return { user, order, notices };
      })());

    const scenarios: Record<string, () => Promise<void>> = {
      ...accountScenarios(() => t, () => admin),
      ...catalogueScenarios(() => t, () => ({ admin, alice })),
      "POST /v1/auth/register": async () => {
        const email = uniqueEmail("reg");
        const a = await call(t, "POST", "/v1/auth/register", { body: { email, password: PASSWORD, name: "Reg" } });
        expectStatus(a, 200);
        assert.equal(a.headers.get("cache-control"), "no-store");
        assert.deepEqual(a.json, { status: "accepted" });
        const l = await call(t, "POST", "/v1/auth/login", { body: { email, password: PASSWORD } });
        expectStatus(l, 200);
        expectUser(l.json.user, { email });
        assert.equal(l.json.user.role, "user");
        assert.equal(l.json.user.active, true);
        // A taken email: the same status and body (no enumeration).
        const again = await call(t, "POST", "/v1/auth/register", { body: { email, password: PASSWORD, name: "Again" } });
        expectStatus(again, 200);
        assert.equal(again.text, a.text);
        const bad = await call(t, "POST", "/v1/auth/register", { body: { email: uniqueEmail("short"), password: "short", name: "X" } });
        expectGrpcError(bad, 400, Code.InvalidArgument);
        const violation = bad.json.details?.find((d: { "@type": string }) => d["@type"] === BAD_REQUEST);
        assert.ok(violation, `BadRequest details: ${bad.text}`);
        assert.ok(violation.fieldViolations.some((v: { field: string }) => v.field === "password"), bad.text);
        // An unknown JSON field: the embedded edge refuses it; Envoy's transcoder drops it, so the
        // service refuses the request for the field that is missing (docs/edges.md).
        const typo = await call(t, "POST", "/v1/auth/register", { body: { email, pasword: PASSWORD } });
        if (t.embedded) expectLocalReply(typo, 400, /pasword/, "unknown JSON field");
        else expectGrpcError(typo, 400, Code.InvalidArgument, "unknown JSON field, dropped by Envoy");
      },

      "POST /v1/auth/login": async () => {
        const a = await call(t, "POST", "/v1/auth/login", { body: { email: alice.email, password: PASSWORD } });
        expectStatus(a, 200);
        assert.equal(a.headers.get("cache-control"), "no-store");
        expectUser(a.json.user, { id: alice.id, email: alice.email });
        expectTokens(a.json.tokens);
        expectGrpcError(await call(t, "POST", "/v1/auth/login", { body: { email: bob.email, password: "not-the-password" } }), 401, Code.Unauthenticated);
      },

      "POST /v1/auth/refresh": async () => {
        const u = await register(t, "refresh");
        const a = await call(t, "POST", "/v1/auth/refresh", { body: { refreshToken: u.refresh } });
        expectStatus(a, 200);
        assert.equal(a.headers.get("cache-control"), "no-store");
        expectTokens(a.json.tokens);
        assert.notEqual(a.json.tokens.refreshToken, u.refresh);
        expectGrpcError(await call(t, "POST", "/v1/auth/refresh", { body: { refreshToken: "made-up" } }), 401, Code.Unauthenticated);
      },

      "POST /v1/auth/logout": async () => {
        const u = await register(t, "logout");
        const a = await call(t, "POST", "/v1/auth/logout", { body: { refreshToken: u.refresh } });
        expectStatus(a, 200);
        assert.deepEqual(a.json, {});
        expectGrpcError(await call(t, "POST", "/v1/auth/refresh", { body: { refreshToken: u.refresh } }), 401, Code.Unauthenticated);
      },

      "POST /v1/auth/logout-all": async () => {
        const u = await register(t, "logoutall");
        const a = await call(t, "POST", "/v1/auth/logout-all", { token: u.access, body: {} });
        expectStatus(a, 200);
        assert.deepEqual(a.json, {});
        // The access token dies at once: the edge may let it pass (jwt_authn does not know about
        // revocation) and then the service refuses it, or the edge refuses it; 401 either way.
        expectStatus(await call(t, "GET", "/v1/users/me", { token: u.access }), 401, "revoked token");
      },

      "GET /v1/auth/sessions": async () => {
        const a = await call(t, "GET", "/v1/auth/sessions", { token: alice.access });
        expectStatus(a, 200);
        assert.equal(a.headers.get("cache-control"), "no-store");
        assert.ok(Array.isArray(a.json.sessions) && a.json.sessions.length >= 1, a.text);
        const current = a.json.sessions.filter((s: { current?: boolean }) => s.current);
        assert.equal(current.length, 1, a.text);
        assert.match(current[0].createdAt, RFC3339);
        expectLocalReply(await call(t, "GET", "/v1/auth/sessions?pageSize=1", { token: alice.access }), 400, /pageSize/, "unknown query parameter");
      },

      "DELETE /v1/auth/sessions/{id}": async () => {
        const u = await register(t, "delsession");
        const second = await login(t, u.email, PASSWORD);
        const list = await call(t, "GET", "/v1/auth/sessions", { token: u.access });
        const other = list.json.sessions.find((s: { current?: boolean }) => !s.current);
        assert.ok(other, list.text);
        const a = await call(t, "DELETE", `/v1/auth/sessions/${other.id}`, { token: u.access });
        expectStatus(a, 200);
        assert.deepEqual(a.json, {});
        expectStatus(await call(t, "GET", "/v1/users/me", { token: second.access }), 401, "token of the deleted session");
        expectGrpcError(await call(t, "DELETE", `/v1/auth/sessions/${randomUUID()}`, { token: u.access }), 404, Code.NotFound);
      },

      "POST /v1/auth/password": async () => {
        const u = await register(t, "password");
        const wrong = await call(t, "POST", "/v1/auth/password", { token: u.access, body: { currentPassword: "wrong-password-x", newPassword: "another-password-2" } });
        assert.ok(wrong.status >= 400 && wrong.status < 500 && wrong.json?.code, `wrong current password: ${wrong.status} ${wrong.text}`);
        const a = await call(t, "POST", "/v1/auth/password", { token: u.access, body: { currentPassword: PASSWORD, newPassword: "another-password-2" } });
        expectStatus(a, 200);
        assert.deepEqual(a.json, {});
        assert.equal(a.headers.get("cache-control"), "no-store");
        await login(t, u.email, "another-password-2");
      },

      "POST /v1/auth/token": async () => {
        const a = await call(t, "POST", "/v1/auth/token", { body: { clientId: "nobody", clientSecret: "nothing", audience: "acme-user" } });
        expectGrpcError(a, 401, Code.Unauthenticated);
        assert.equal(a.headers.get("cache-control"), "no-store");
      },

      "GET /.well-known/jwks.json": async () => {
        const a = await call(t, "GET", "/.well-known/jwks.json");
        expectStatus(a, 200);
        assert.match(a.headers.get("content-type") ?? "", /^application\/(jwk-set\+)?json/);
        assert.match(a.headers.get("cache-control") ?? "", /max-age=\d+/, "the service's cache-control is passed on");
        const kid = JSON.parse(Buffer.from(alice.access.split(".")[0], "base64url").toString()).kid;
        const key = a.json.keys.find((k: { kid: string }) => k.kid === kid);
        assert.ok(key, `the signing key ${kid} is published`);
        assert.equal(key.kty, "EC");
        assert.equal(key.d, undefined, "no private part");
      },

      "GET /v1/users/me": async () => {
        const a = await call(t, "GET", "/v1/users/me", { token: alice.access });
        expectStatus(a, 200);
        expectUser(a.json.user, { id: alice.id, email: alice.email });
        assert.deepEqual(Object.keys(a.json), ["user"], "the response message: {user}");
        assert.equal(a.json.user.role, "user");
        assert.equal(a.headers.get("cache-control"), "no-store", "personal data is never cached");
      },

      "PATCH /v1/users/me": async () => {
        const u = await register(t, "updateme");
        const a = await call(t, "PATCH", "/v1/users/me?updateMask=name", { token: u.access, body: { name: "Renamed Person" } });
        expectStatus(a, 200);
        expectUser(a.json.user, { id: u.id });
        assert.equal(a.json.user.name, "Renamed Person");
        assert.equal((await call(t, "GET", "/v1/users/me", { token: u.access })).json.user.name, "Renamed Person");
        const nick = await call(t, "PATCH", "/v1/users/me", { token: u.access, body: { nickname: "x" } });
        if (t.embedded) expectLocalReply(nick, 400, /nickname/, "unknown field");
        else expectGrpcError(nick, 400, Code.InvalidArgument, "unknown field, dropped by Envoy"); // docs/edges.md
      },

      "GET /v1/users/{id}": async () => {
        const a = await call(t, "GET", `/v1/users/${alice.id}`, { token: alice.access });
        expectStatus(a, 200);
        expectUser(a.json.user, { id: alice.id, email: alice.email });
        expectGrpcError(await call(t, "GET", `/v1/users/${alice.id}`, { token: bob.access }), 404, Code.NotFound, "someone else");
        expectStatus(await call(t, "GET", `/v1/users/${alice.id}`, { token: admin.access }), 200, "admin");
      },

      "GET /v1/users": async () => {
        expectGrpcError(await call(t, "GET", "/v1/users", { token: alice.access }), 403, Code.PermissionDenied);
        const a = await call(t, "GET", "/v1/users?pageSize=1", { token: admin.access });
        expectStatus(a, 200);
        assert.equal(a.json.users.length, 1);
        expectUser(a.json.users[0], {});
        assert.equal(typeof a.json.nextPageToken, "string");
        const next = await call(t, "GET", `/v1/users?page_size=1&pageToken=${encodeURIComponent(a.json.nextPageToken)}`, { token: admin.access });
        expectStatus(next, 200);
        assert.notEqual(next.json.users[0].id, a.json.users[0].id);
      },

      "PATCH /v1/users/{user.id}": async () => {
        const u = await register(t, "deactivate");
        expectGrpcError(await call(t, "PATCH", `/v1/users/${u.id}?updateMask=active`, { token: alice.access, body: { active: false } }), 403, Code.PermissionDenied);
        const a = await call(t, "PATCH", `/v1/users/${u.id}?updateMask=active`, { token: admin.access, body: { active: false } });
        expectStatus(a, 200);
        expectUser(a.json.user, { id: u.id });
        assert.equal(a.json.user.active, undefined, "false is the default: omitted");
        expectStatus(await call(t, "GET", "/v1/users/me", { token: u.access }), 401, "deactivated user's token");
        // An id in the body that contradicts the path is refused, not silently preferred.
        const conflict = await call(t, "PATCH", `/v1/users/${u.id}?updateMask=name`, { token: admin.access, body: { id: alice.id, name: "Nobody" } });
        expectLocalReply(conflict, 400, /conflicting/, "a body id against the path's");
        assert.notEqual((await call(t, "GET", "/v1/users/me", { token: alice.access })).json?.user?.name, "Nobody");
      },

      "DELETE /v1/users/{id}": async () => {
        const u = await register(t, "delete");
        expectGrpcError(await call(t, "DELETE", `/v1/users/${u.id}`, { token: bob.access }), 404, Code.NotFound, "someone else");
        const order = await newOrder(u);
        const a = await call(t, "DELETE", `/v1/users/${u.id}`, { token: u.access });
        expectStatus(a, 200);
        assert.deepEqual(a.json, {});
        expectStatus(await call(t, "GET", "/v1/users/me", { token: u.access }), 401, "deleted user's token");
        const kept = await call(t, "GET", `/v1/orders/${order.id}`, { token: admin.access });
        expectStatus(kept, 200, "the order stays");
        assert.equal(kept.json.order.ownerDeleted, true);
      },

      "POST /v1/orders": async () => {
        const requestId = randomUUID();
        // proto field names are accepted on input (product_id), lowerCamelCase is what comes back.
        const body = { lines: [{ product_id: productId, quantity: 3 }], requestId };
        const a = await call(t, "POST", "/v1/orders", { token: alice.access, body });
        expectStatus(a, 200);
        assert.equal(a.json.order.userId, alice.id);
        assert.deepEqual(a.json.order.lines, [{
          productId, sku: a.json.order.lines[0].sku, name: "conformance widget", quantity: 3,
          unitPrice: { amountMinor: "1999", currency: "EUR" }, lineTotal: { amountMinor: "5997", currency: "EUR" },
        }], "int64 as a string");
        assert.deepEqual(a.json.order.total, { amountMinor: "5997", currency: "EUR" });
        assert.equal(a.json.order.totalCents, "5997", "the deprecated field, still filled");
        assert.equal(a.json.order.status, "ORDER_STATUS_PENDING", "enums by name");
        assert.equal(a.json.order.requestId, requestId);
        assert.match(a.json.order.createdAt, RFC3339);
        assert.equal(a.json.order.ownerDeleted, undefined, "defaults omitted");
        const again = await call(t, "POST", "/v1/orders", { token: alice.access, body });
        expectStatus(again, 200);
        assert.equal(again.json.order.id, a.json.order.id, "same request_id, same order");
        const bad = await call(t, "POST", "/v1/orders", { token: alice.access, body: { lines: [{ productId, quantity: 0 }], requestId: randomUUID() } });
        expectGrpcError(bad, 400, Code.InvalidArgument);
        assert.ok(bad.json.details?.some((d: { "@type": string }) => d["@type"] === BAD_REQUEST), bad.text);
        // A client-chosen price is refused by name at both edges (a deprecated field the service refuses: Envoy drops unknown fields).
        const priced = await call(t, "POST", "/v1/orders", { token: alice.access, body: { lines: [{ productId, quantity: 1 }], unitPriceCents: "1", requestId: randomUUID() } });
        expectGrpcError(priced, 400, Code.InvalidArgument);
        assert.match(priced.text, /unitPriceCents/);
        const gone = await call(t, "POST", "/v1/orders", { token: alice.access, body: { lines: [{ productId: randomUUID(), quantity: 1 }], requestId: randomUUID() } });
        expectGrpcError(gone, 400, Code.FailedPrecondition, "an unknown product");
        expectLocalReply(await call(t, "POST", "/v1/orders", { token: alice.access, body: "{not json" }), 400, undefined, "malformed JSON");
      },

      "GET /v1/admin/orders": async () => {
        const o = await newOrder(bob);
        const a = await call(t, "GET", `/v1/admin/orders?productId=${productId}&userId=${bob.id}&status=ORDER_STATUS_PENDING&pageSize=1`, { token: admin.access });
        expectStatus(a, 200);
        assert.equal(a.json.orders[0].id, o.id, "newest first");
        expectGrpcError(await call(t, "GET", "/v1/admin/orders", { token: alice.access }), 403, Code.PermissionDenied, "not an admin");
        expectGrpcError(await call(t, "GET", "/v1/admin/orders?productId=nope", { token: admin.access }), 400, Code.InvalidArgument);
      },

      "GET /v1/orders/{id}": async () => {
        const o = await newOrder(alice);
        const a = await call(t, "GET", `/v1/orders/${o.id}`, { token: alice.access });
        expectStatus(a, 200);
        assert.deepEqual(a.json, { order: o });
        expectGrpcError(await call(t, "GET", `/v1/orders/${o.id}`, { token: bob.access }), 404, Code.NotFound, "someone else's");
        expectStatus(await call(t, "GET", `/v1/orders/${o.id}`, { token: admin.access }), 200, "admin");
      },

      "GET /v1/orders": async () => {
        const u = await register(t, "lister");
        const first = await newOrder(u);
        const second = await newOrder(u);
        await call(t, "POST", `/v1/orders/${first.id}:cancel`, { token: u.access, body: {} });
        const all = await call(t, "GET", "/v1/orders", { token: u.access });
        expectStatus(all, 200);
        assert.deepEqual(
          all.json.orders.map((o: { id: string }) => o.id),
          [second.id, first.id],
          "newest first",
        );
        const pending = await call(t, "GET", "/v1/orders?status=ORDER_STATUS_PENDING", { token: u.access });
        expectStatus(pending, 200);
        assert.deepEqual(
          pending.json.orders.map((o: { id: string }) => o.id),
          [second.id],
        );
        const page = await call(t, "GET", "/v1/orders?pageSize=1", { token: u.access });
        expectStatus(page, 200);
        assert.equal(page.json.orders.length, 1);
        assert.ok(page.json.nextPageToken, page.text);
        expectLocalReply(await call(t, "GET", "/v1/orders?status=ORDER_STATUS_LOST", { token: u.access }), 400, /ORDER_STATUS_LOST/, "bad enum name");
      },

      "POST /v1/orders/{id}:cancel": async () => {
        const o = await newOrder(alice);
        const a = await call(t, "POST", `/v1/orders/${o.id}:cancel`, { token: alice.access, body: {} });
        expectStatus(a, 200);
        assert.equal(a.json.order.id, o.id);
        assert.equal(a.json.order.status, "ORDER_STATUS_CANCELLED");
        expectGrpcError(await call(t, "POST", `/v1/orders/${o.id}:cancel`, { token: alice.access, body: {} }), 400, Code.FailedPrecondition);
      },

      "PATCH /v1/orders/{order.id}": async () => {
        const o = await newOrder(alice);
        const path = `/v1/orders/${o.id}?updateMask=status`;
        expectGrpcError(await call(t, "PATCH", path, { token: alice.access, body: { status: "ORDER_STATUS_CONFIRMED" } }), 403, Code.PermissionDenied);
        const a = await call(t, "PATCH", path, { token: admin.access, body: { status: "ORDER_STATUS_CONFIRMED" } });
        expectStatus(a, 200);
        assert.equal(a.json.order.id, o.id);
        assert.equal(a.json.order.status, "ORDER_STATUS_CONFIRMED");
      },

      "DELETE /v1/orders/{id}": async () => {
        const o = await newOrder(alice);
        expectGrpcError(await call(t, "DELETE", `/v1/orders/${o.id}`, { token: alice.access }), 403, Code.PermissionDenied);
        const a = await call(t, "DELETE", `/v1/orders/${o.id}`, { token: admin.access });
        expectStatus(a, 200);
        assert.deepEqual(a.json, {});
        expectGrpcError(await call(t, "GET", `/v1/orders/${o.id}`, { token: admin.access }), 404, Code.NotFound);
      },

      "GET /v1/notifications": async () => {
        const { user, order, notices } = await withMail();
        const a = await call(t, "GET", "/v1/notifications", { token: user.access });
        expectStatus(a, 200);
        assert.equal(a.headers.get("cache-control"), "no-store", "personal data is never cached");
        assert.deepEqual(Object.keys(a.json), ["notifications"], "the response message: {notifications}, no next page token on the last page");
        const list = a.json.notifications as Notice[];
        const shown = (n: Notice) => [n.kind, n.category, n.status];
        assert.deepEqual(shown(list[0]), ["NOTIFICATION_KIND_ORDER_CONFIRMATION", "CATEGORY_ORDERS", "DELIVERY_STATUS_SENT"], "newest first, enums by name");
        // The welcome and the verification mail come from one registration: either may be first.
        assert.deepEqual(list.slice(1).map(shown).sort(), [
          ["NOTIFICATION_KIND_VERIFY_EMAIL", "CATEGORY_SECURITY", "DELIVERY_STATUS_SENT"],
          ["NOTIFICATION_KIND_WELCOME", "CATEGORY_ACCOUNT", "DELIVERY_STATUS_SENT"],
        ]);
        for (const n of a.json.notifications) expectNotice(n, user.email);
        assert.deepEqual(list, notices, "the same answer as while waiting");
        const confirmation = list[0];
        const welcome = list.find((n) => n.kind === "NOTIFICATION_KIND_WELCOME")!;
        assert.equal(confirmation.subject, `Order ${String(order.id).slice(0, 8)} received`);
        assert.equal(welcome.subject, "Welcome to Acme");
        // Page by page.
        const p1 = await call(t, "GET", "/v1/notifications?pageSize=1", { token: user.access });
        expectStatus(p1, 200);
        assert.deepEqual(p1.json.notifications.map((n: Notice) => n.id), [confirmation.id]);
        assert.equal(typeof p1.json.nextPageToken, "string");
        const p2 = await call(t, "GET", `/v1/notifications?page_size=2&pageToken=${encodeURIComponent(p1.json.nextPageToken)}`, { token: user.access });
        expectStatus(p2, 200);
        assert.deepEqual(p2.json.notifications.map((n: Notice) => n.id), [list[1].id, list[2].id]);
        assert.equal(p2.json.nextPageToken, undefined, "the last page");
        // Someone else sees none of them, and cannot use their page token.
        const others = await call(t, "GET", "/v1/notifications", { token: bob.access });
        expectStatus(others, 200, "someone else");
        assert.ok(!(others.json.notifications ?? []).some((n: Notice) => n.id === confirmation.id || n.id === welcome.id), others.text);
        expectGrpcError(
          await call(t, "GET", `/v1/notifications?pageSize=1&pageToken=${encodeURIComponent(p1.json.nextPageToken)}`, { token: bob.access }),
          400, Code.InvalidArgument, "another user's page token",
        );
        const ownOnly = await call(t, "GET", "/v1/notifications", { token: admin.access });
        expectStatus(ownOnly, 200, "admin");
        assert.ok(!(ownOnly.json.notifications ?? []).some((n: Notice) => n.id === confirmation.id), "an admin's own log, not everyone's");
        expectLocalReply(await call(t, "GET", "/v1/notifications"), 401, undefined, "anonymous");
        const bad = await call(t, "GET", "/v1/notifications?pageSize=-1", { token: user.access });
        expectGrpcError(bad, 400, Code.InvalidArgument, "negative page size");
        assert.ok(bad.json.details?.some((d: { "@type": string }) => d["@type"] === BAD_REQUEST), bad.text);
        expectLocalReply(await call(t, "GET", "/v1/notifications?status=DELIVERY_STATUS_SENT", { token: user.access }), 400, /status/, "unknown query parameter");
      },

      "GET /v1/notifications/preferences": async () => {
        const u = await register(t, "prefs");
        const a = await call(t, "GET", "/v1/notifications/preferences", { token: u.access });
        expectStatus(a, 200);
        assert.equal(a.headers.get("cache-control"), "no-store");
        assert.deepEqual(a.json, { preferences: { security: true, account: true, orders: true } }, "the defaults, every field set (false would be printed: optional)");
        expectStatus(await call(t, "PATCH", "/v1/notifications/preferences", { token: u.access, body: { orders: false } }), 200, "turn orders off");
        const changed = await call(t, "GET", "/v1/notifications/preferences", { token: u.access });
        expectStatus(changed, 200);
        assert.deepEqual(changed.json, { preferences: { security: true, account: true, orders: false } }, "false is printed: the fields are optional");
        const others = await call(t, "GET", "/v1/notifications/preferences", { token: bob.access });
        expectStatus(others, 200, "someone else");
        assert.deepEqual(others.json, { preferences: { security: true, account: true, orders: true } }, "someone else's own, unchanged");
        expectStatus(await call(t, "GET", "/v1/notifications/preferences", { token: admin.access }), 200, "admin (their own)");
        expectLocalReply(await call(t, "GET", "/v1/notifications/preferences"), 401, undefined, "anonymous");
        expectLocalReply(await call(t, "GET", "/v1/notifications/preferences?orders=false", { token: u.access }), 400, /orders/, "unknown query parameter");
      },

      "PATCH /v1/notifications/preferences": async () => {
        const u = await register(t, "prefpatch");
        // Before any change: the welcome mail is sent under the default preferences.
        await notificationsWhen(u, "the welcome mail", sentMail("WELCOME"));
        const path = "/v1/notifications/preferences";
        const a = await call(t, "PATCH", path, { token: u.access, body: { orders: false } });
        expectStatus(a, 200);
        assert.equal(a.headers.get("cache-control"), "no-store");
        assert.deepEqual(a.json, { preferences: { security: true, account: true, orders: false } }, "no mask: the fields set");
        // A path in the mask with no value means false (AIP-134); security true is accepted and changes nothing.
        const masked = await call(t, "PATCH", `${path}?updateMask=account`, { token: u.access, body: {} });
        expectStatus(masked, 200, "mask naming an unset field");
        assert.deepEqual(masked.json, { preferences: { security: true, account: false, orders: false } });
        const back = await call(t, "PATCH", path, { token: u.access, body: { security: true, account: true } });
        expectStatus(back, 200, "security true");
        assert.deepEqual(back.json, { preferences: { security: true, account: true, orders: false } });
        // Security cannot be turned off, with or without a mask.
        for (const [what, p, body] of [["security false", path, { security: false }], ["security in the mask, unset", `${path}?updateMask=security`, {}]] as const) {
          const refused = await call(t, "PATCH", p, { token: u.access, body });
          expectGrpcError(refused, 400, Code.InvalidArgument, what);
          const violation = refused.json.details?.find((d: { "@type": string }) => d["@type"] === BAD_REQUEST);
          assert.ok(violation?.fieldViolations.some((v: { field: string }) => v.field === "preferences.security"), `${what}: ${refused.text}`);
        }
        const kept = await call(t, "GET", path, { token: u.access });
        assert.deepEqual(kept.json, { preferences: { security: true, account: true, orders: false } }, "refused changes change nothing");
        const others = await call(t, "GET", path, { token: alice.access });
        assert.deepEqual(others.json, { preferences: { security: true, account: true, orders: true } }, "someone else's untouched");
        // An unknown JSON field: the embedded edge refuses it; Envoy's transcoder drops it, and the service
        // refuses preferences with nothing set and no mask (docs/edges.md).
        const typo = await call(t, "PATCH", path, { token: u.access, body: { marketing: false } });
        if (t.embedded) expectLocalReply(typo, 400, /marketing/, "unknown JSON field");
        else expectGrpcError(typo, 400, Code.InvalidArgument, "unknown JSON field, dropped by Envoy");
        expectLocalReply(await call(t, "PATCH", path, { token: u.access, body: { orders: 1 } }), 400, undefined, "a number for a bool");
        expectLocalReply(await call(t, "PATCH", path, { token: u.access, body: { account: "maybe" } }), 400, undefined, "a string for a bool");
        // A string that names a bool: the embedded edge refuses it (proto3 JSON); Envoy's transcoder reads
        // "true"/"false"/"yes"/"no"/"1"/"0" as bools (protobuf's JSON converter), here "no": false, as it already is.
        const named = await call(t, "PATCH", path, { token: u.access, body: { orders: "no" } });
        if (t.embedded) expectLocalReply(named, 400, /orders/, "a string naming a bool");
        else {
          expectStatus(named, 200, "a string naming a bool, read by Envoy's transcoder");
          assert.deepEqual(named.json, { preferences: { security: true, account: true, orders: false } });
        }
        expectLocalReply(await call(t, "PATCH", path, { token: u.access, body: "{not json" }), 400, undefined, "malformed JSON");
        expectLocalReply(await call(t, "PATCH", path, { body: { orders: true } }), 401, undefined, "anonymous");
        // The preference takes effect: the next order's confirmation is recorded, not sent.
        const order = await newOrder(u);
        const after = await notificationsWhen(u, "the suppressed order confirmation", (ns) => ns.some((n) => n.kind === "NOTIFICATION_KIND_ORDER_CONFIRMATION" && n.status === "DELIVERY_STATUS_SUPPRESSED"));
        const suppressed = after.find((n) => n.kind === "NOTIFICATION_KIND_ORDER_CONFIRMATION")!;
        assert.equal(suppressed.subject, `Order ${String(order.id).slice(0, 8)} received`);
        assert.equal(suppressed.sentAt, undefined);
      },

      "GET /v1/admin/notifications": async () => {
        const { user, notices } = await withMail();
        const path = "/v1/admin/notifications";
        expectGrpcError(await call(t, "GET", `${path}?userId=${user.id}`, { token: user.access }), 403, Code.PermissionDenied, "the owner: an admin RPC");
        expectLocalReply(await call(t, "GET", path), 401, undefined, "anonymous");
        const a = await call(t, "GET", `${path}?userId=${user.id}`, { token: admin.access });
        expectStatus(a, 200);
        assert.equal(a.headers.get("cache-control"), "no-store");
        assert.deepEqual(Object.keys(a.json), ["deliveries"], "the response message: {deliveries}, no next page token on the last page");
        assert.deepEqual(a.json.deliveries.map((d: { id: string }) => d.id), notices.map((n) => n.id), "the user's, newest first");
        a.json.deliveries.forEach((d: Record<string, unknown>, i: number) => expectDelivery(d, user, notices[i]));
        // By status.
        const sent = await call(t, "GET", `${path}?userId=${user.id}&status=DELIVERY_STATUS_SENT`, { token: admin.access });
        expectStatus(sent, 200);
        assert.deepEqual(sent.json.deliveries.map((d: { id: string }) => d.id), notices.map((n) => n.id));
        const failed = await call(t, "GET", `${path}?user_id=${user.id}&status=DELIVERY_STATUS_FAILED`, { token: admin.access });
        expectStatus(failed, 200);
        assert.deepEqual(failed.json, {}, "none: an empty list is omitted");
        // Everyone's (other suites' too: only the shape is certain).
        const anyone = await call(t, "GET", `${path}?status=DELIVERY_STATUS_SENT&pageSize=1`, { token: admin.access });
        expectStatus(anyone, 200);
        assert.equal(anyone.json.deliveries.length, 1);
        assert.equal(anyone.json.deliveries[0].status, "DELIVERY_STATUS_SENT");
        assert.equal(typeof anyone.json.nextPageToken, "string", "the user's two and more: another page");
        // Page by page; a token only for the filters it was issued for.
        const p1 = await call(t, "GET", `${path}?userId=${user.id}&pageSize=1`, { token: admin.access });
        expectStatus(p1, 200);
        assert.deepEqual(p1.json.deliveries.map((d: { id: string }) => d.id), [notices[0].id]);
        const token = encodeURIComponent(p1.json.nextPageToken);
        const p2 = await call(t, "GET", `${path}?userId=${user.id}&pageSize=1&pageToken=${token}`, { token: admin.access });
        expectStatus(p2, 200);
        assert.deepEqual(p2.json.deliveries.map((d: { id: string }) => d.id), [notices[1].id]);
        expectGrpcError(await call(t, "GET", `${path}?pageSize=1&pageToken=${token}`, { token: admin.access }), 400, Code.InvalidArgument, "a page token of other filters");
        const bad = await call(t, "GET", `${path}?userId=not-a-user`, { token: admin.access });
        expectGrpcError(bad, 400, Code.InvalidArgument, "a userId that is no UUID");
        const violation = bad.json.details?.find((d: { "@type": string }) => d["@type"] === BAD_REQUEST);
        assert.ok(violation?.fieldViolations.some((v: { field: string }) => v.field === "userId"), bad.text);
        expectLocalReply(await call(t, "GET", `${path}?status=DELIVERY_STATUS_LOST`, { token: admin.access }), 400, /DELIVERY_STATUS_LOST/, "bad enum name");
      },

      "GET /v1/admin/notifications/{id}": async () => {
        const { user, notices } = await withMail();
        const confirmation = notices.find((n) => n.kind === "NOTIFICATION_KIND_ORDER_CONFIRMATION")!;
        const path = `/v1/admin/notifications/${confirmation.id}`;
        expectGrpcError(await call(t, "GET", path, { token: user.access }), 403, Code.PermissionDenied, "the owner: an admin RPC");
        expectGrpcError(await call(t, "GET", path, { token: bob.access }), 403, Code.PermissionDenied, "someone else");
        expectLocalReply(await call(t, "GET", path), 401, undefined, "anonymous");
        const a = await call(t, "GET", path, { token: admin.access });
        expectStatus(a, 200, "admin");
        assert.equal(a.headers.get("cache-control"), "no-store");
        assert.deepEqual(Object.keys(a.json).sort(), ["attempts", "delivery"]);
        expectDelivery(a.json.delivery, user, confirmation);
        const attempts = a.json.attempts as Record<string, unknown>[];
        assert.equal(attempts.length, a.json.delivery.attemptCount, "every attempt, oldest first");
        attempts.forEach((x, i) => {
          assert.equal(x.number, i + 1);
          assert.match(String(x.attemptedAt), RFC3339);
          assert.ok(typeof x.busAttempt === "number" && x.busAttempt >= 1, JSON.stringify(x));
          for (const k of Object.keys(x)) assert.ok(["number", "attemptedAt", "durationMs", "outcome", "smtpCode", "error", "busAttempt"].includes(k), `unexpected attempt field ${k}`);
        });
        const last = attempts[attempts.length - 1];
        assert.equal(last.outcome, "ATTEMPT_OUTCOME_SENT");
        assert.equal(last.error, undefined, "no error: omitted");
        // 250 from a mail server; none (0, omitted) when the mail was written to a file (no SMTP_URL).
        assert.ok(last.smtpCode === 250 || last.smtpCode === undefined, `smtpCode ${last.smtpCode}`);
        expectGrpcError(await call(t, "GET", `/v1/admin/notifications/${randomUUID()}`, { token: admin.access }), 404, Code.NotFound);
        expectGrpcError(await call(t, "GET", "/v1/admin/notifications/not-an-id", { token: admin.access }), 400, Code.InvalidArgument, "malformed id");
      },
    };

    it("has a scenario for every route of the contract, and none for routes that are gone", () => {
      const keys = ROUTES.map(routeKey);
      assert.deepEqual(
        keys.filter((k) => !scenarios[k]),
        [],
        "routes without a conformance scenario",
      );
      assert.deepEqual(
        Object.keys(scenarios).filter((k) => !keys.includes(k)),
        [],
        "scenarios for routes no longer in the contract",
      );
    });

    for (const r of ROUTES) {
      it(routeKey(r), async () => {
        const scenario = scenarios[routeKey(r)];
        assert.ok(scenario, `no conformance scenario for ${routeKey(r)}`);
        await scenario();
      });
    }
  });
}
