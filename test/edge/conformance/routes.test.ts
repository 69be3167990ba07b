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

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

function expectUser(u: Record<string, unknown>, who: { id?: string; email?: string }) {
  if (who.id) assert.equal(u.id, who.id);
  if (who.email) assert.equal(u.email, who.email);
  assert.match(String(u.createdAt), RFC3339);
  for (const k of Object.keys(u)) assert.ok(["id", "email", "name", "role", "active", "createdAt", "updatedAt"].includes(k), `unexpected user field ${k}`);
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
    before(async () => {
      t = await startTarget(kind);
      [alice, bob] = [await register(t, "alice"), await register(t, "bob")];
      admin = await loginAdmin(t);
    });
    after(async () => t?.stop());

    const newOrder = async (u: User, extra: Record<string, unknown> = {}) => {
      const a = await call(t, "POST", "/v1/orders", {
        token: u.access,
        body: { product: "conformance widget", quantity: 2, unitPriceCents: "1999", requestId: randomUUID(), ...extra },
      });
      expectStatus(a, 200, "create order");
      return a.json.order as Record<string, unknown>;
    };

    const scenarios: Record<string, () => Promise<void>> = {
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
        const body = { product: "book", quantity: 3, unit_price_cents: "9876543210", requestId };
        const a = await call(t, "POST", "/v1/orders", { token: alice.access, body });
        expectStatus(a, 200);
        assert.equal(a.json.order.userId, alice.id);
        assert.equal(a.json.order.product, "book");
        assert.equal(a.json.order.quantity, 3);
        assert.equal(a.json.order.unitPriceCents, "9876543210", "int64 as a string");
        assert.equal(a.json.order.totalCents, "29629629630");
        assert.equal(a.json.order.status, "ORDER_STATUS_PENDING", "enums by name");
        assert.equal(a.json.order.requestId, requestId);
        assert.match(a.json.order.createdAt, RFC3339);
        assert.equal(a.json.order.ownerDeleted, undefined, "defaults omitted");
        const again = await call(t, "POST", "/v1/orders", { token: alice.access, body });
        expectStatus(again, 200);
        assert.equal(again.json.order.id, a.json.order.id, "same request_id, same order");
        const bad = await call(t, "POST", "/v1/orders", { token: alice.access, body: { product: "x", quantity: 0, unitPriceCents: "1", requestId: randomUUID() } });
        expectGrpcError(bad, 400, Code.InvalidArgument);
        assert.ok(bad.json.details?.some((d: { "@type": string }) => d["@type"] === BAD_REQUEST), bad.text);
        expectLocalReply(await call(t, "POST", "/v1/orders", { token: alice.access, body: "{not json" }), 400, undefined, "malformed JSON");
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
