// REST transcoding, Envoy against the embedded edge: every google.api.http route
// of every service is called through the real Envoy (its own stack of separate
// processes) and through the embedded edge (the whole product in process) with
// the same JSON requests, and the answers (status, body, meaningful headers) are
// compared. The requests come from the descriptors alone (edge/routes.ts
// compileRoutes(): template, body rule, input message, policy), so a new route,
// field or service is covered without new test code:
//
// - path variables are filled from fixtures by the field's resource type (an
//   `id` of a request in user.proto is a User id, `order.id` an Order id,
//   `user_id` a User id; unknown resources get a UUID that exists nowhere);
// - bodies and query parameters are generated from the input message: every
//   field with a sample value chosen by type and name (fresh values, or values
//   naming the fixtures), one field at a time, no field at all, no body, a body
//   repeating a path-bound field, paging with a next_page_token, and
//   deliberately invalid variants (a wrong JSON type per field, malformed
//   JSON, an array as the body, an unknown or ill-typed query
//   parameter, another HTTP method on the route's path);
// - callers come from the policy: no token, another user, the owner of the
//   fixtures, an admin.
//
// Each route gets its own fixtures (an owner and another user, each with an
// order and a session; a fresh admin login), created the same way in the same
// order on both edges, so the mutating routes (delete, cancel, logout,
// password change, deactivation) cannot break the routes after them, and each
// request runs on both edges in step. Mail is made asynchronously (when the
// notification service consumes the events): each fixture waits until its
// welcome mail, then its order confirmation, is sent before the next step, so
// the delivery logs hold the same mails in the same order on both edges (both
// products send to the stack's Mailpit). What legitimately differs between two
// deployments is normalised: UUIDs, JWTs and opaque tokens (refresh tokens,
// page tokens, key material) must correspond one to one across the run (a
// bijection learnt from the answers, seeded with the fixtures), and so must
// short ids (the first 8 hex digits of a UUID, as in a mail's subject), timestamps
// must be RFC 3339 on both sides, durations a clock measured are not compared,
// fixture emails differ only by a per-edge suffix, realms only by the base URL.
// Differences that cannot be removed are listed in ALLOWED below with the
// reason; everything else must be identical.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { loadRateLimitConfig } from "../../edge/ratelimit.js";
import { compileRoutes } from "../../edge/routes.js";
import { call, loginAdmin, PASSWORD, startTarget, type Target, type User } from "../edge/conformance/target.js";
import { GENEROUS_LIMITS, tempRateLimitConfig } from "../edge/support.js";
import { startEdgeStack } from "../support/edge-stack.js";

import { learn, Pairing, render, seen, type Seen } from "./transcode/compare.js";
import { casesFor, MISSING_ID, routeKey, ROUTES, type Case, type EdgeState, type HttpRequest, type Party } from "./transcode/requests.js";
// ---------------------------------------------------------------------------
// Differences that cannot be removed, each with its reason. Everything else is strict.

interface Allowance {
  name: string;
  reason: string;
  applies(c: Case, a: Seen, b: Seen): boolean;
}

/** An edge's own refusal: {"code", "message"} and nothing else (a service's error may carry details). */
const isLocalReply = (x: Seen, status: number, code: number) => {
  const b = x.body as { code?: unknown; message?: unknown } | undefined;
  return x.status === status && !!b && typeof b === "object" && b.code === code && typeof b.message === "string" && Object.keys(b).every((k) => ["code", "message"].includes(k));
};

const ALLOWED: Allowance[] = [
  {
    name: "the wording of a transcoding error",
    reason:
      "A request that cannot be transcoded is refused by each edge's own JSON/protobuf parser (protobuf-es in " +
      "the embedded edge, protobuf's C++ JSON parser in Envoy's transcoder) in that parser's words " +
      '("expected string, got 12345" / "invalid value 12345 for type TYPE_STRING"); the contract is the status, ' +
      "the code and the error shape (edge/README.md: the message is the edge's own text). Both must refuse it " +
      "before any service, with the same status, code, shape and headers.",
    applies: (c, a, b) =>
      (c.invalid === "json" || c.invalid === "query") && isLocalReply(a, 400, 3) && isLocalReply(b, 400, 3) && JSON.stringify(a.headers) === JSON.stringify(b.headers),
  },
  {
    name: "405 from the embedded edge where Envoy answers 404",
    reason:
      "A path some route has, with a method none has: Envoy's transcoder looks method and path up together " +
      "(reject_unknown_method) and answers 404; the embedded edge answers 405 with Allow (edge/README.md, " +
      '"Where it differs from Envoy, on purpose"). Both refuse before the JWT check and any service.',
    applies: (c, a, b) =>
      c.invalid === "method" &&
      isLocalReply(a, 405, 12) &&
      !!a.headers.allow &&
      isLocalReply(b, 404, 5) &&
      (b.body as { message: string }).message === "no route matches this path" &&
      a.headers["content-type"] === b.headers["content-type"] &&
      a.headers["cache-control"] === b.headers["cache-control"],
  },
];

// ---------------------------------------------------------------------------

describe("transcoding: Envoy answers every REST route as the embedded edge does", function () {
  this.timeout(600_000);
  const edges: EdgeState[] = [];
  const pairing = new Pairing();
  const stats = { routes: 0, requests: 0, allowed: new Map<string, number>() };
  let failures = 0;

  before(async function () {
    this.timeout(300_000);
    const rl = tempRateLimitConfig(GENEROUS_LIMITS);
    // Its own stack (not the shared one): lists (ListUsers, ListDeliveries) must hold the same users and mails on both edges.
    const stack = await startEdgeStack({ ratelimitConfig: rl.path });
    // The embedded product sends its mail to the stack's Mailpit too: the delivery log (SMTP reply codes) is the same.
    const embedded = await startTarget("embedded", { env: { SMTP_URL: stack.smtpUrl } }).catch(async (err) => {
      await stack.close();
      throw err;
    });
    const envoy: Target = {
      kind: "envoy",
      url: stack.edgeUrl,
      embedded: false,
      limits: loadRateLimitConfig(rl.path),
      admin: stack.admin,
      stack,
      stop: async () => {
        await stack.close();
        rl.remove();
      },
    };
    for (const [name, t] of [["embedded", embedded], ["envoy", envoy]] as const) edges.push({ name, t, sfx: randomBytes(5).toString("hex"), routeIndex: -1 });
    const admins = await Promise.all(edges.map((e) => firstAdminLogin(e.t)));
    pairing.seed("<admin.id>", admins[0].id, admins[1].id);
    // The product the fixtures order: the same sku and price on both edges (its ids are paired when seen).
    const sku = `TRANSCODE-${randomBytes(3).toString("hex").toUpperCase()}`;
    for (const [i, e] of edges.entries()) {
      const p = await call(e.t, "POST", "/v1/admin/products", {
        token: admins[i].access,
        body: { sku, name: "fixture widget", price: { amountMinor: "250", currency: "EUR" }, initialStock: 1_000_000 },
      });
      assert.equal(p.status, 200, `${e.name} fixture product: ${p.text}`);
      e.productId = p.json.product.id;
    }
  });

  after(async () => {
    await Promise.all(edges.map((e) => e.t.stop()));
    const allowed = [...stats.allowed].map(([k, n]) => `${k}: ${n}`).join("; ");
    console.log(`      transcode: ${stats.routes} routes, ${stats.requests} requests compared (Envoy vs embedded)${allowed ? `; allowed differences: ${allowed}` : ""}${failures ? `; ${failures} differences` : ""}`);
  });

  /** The admin is created in the background at the first start of either edge: wait for it. */
  async function firstAdminLogin(t: Target): Promise<User> {
    for (let i = 0; ; i++) {
      try {
        return await loginAdmin(t);
      } catch (err) {
        if (i >= 100) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** The mail of `kind` in the caller's delivery log once it is sent (the events are consumed after the answer). */
  async function sentMail(e: EdgeState, access: string, kind: string, what: string): Promise<{ id: string }> {
    const end = Date.now() + 60_000;
    for (;;) {
      const a = await call(e.t, "GET", "/v1/notifications?pageSize=100", { token: access });
      assert.equal(a.status, 200, `${e.name} ${what}: ${a.text}`);
      const mail = (a.json.notifications ?? []).find((n: { kind: string; status: string }) => n.kind === `NOTIFICATION_KIND_${kind}` && n.status === "DELIVERY_STATUS_SENT");
      if (mail) return mail;
      if (Date.now() > end) assert.fail(`${e.name} ${what}: not sent within 60 s: ${a.text}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** One route's fixtures on one edge: an owner and another user, each with an order, a session and their mails; a fresh admin login. */
  async function fixtures(e: EdgeState, i: number): Promise<void> {
    e.routeIndex = i;
    const party = async (tag: string): Promise<Party> => {
      const email = `${tag}-${e.sfx}@example.com`;
      const reg = await call(e.t, "POST", "/v1/auth/register", { body: { email, password: PASSWORD, name: `Fixture ${tag}` } });
      assert.equal(reg.status, 200, `${e.name} fixture register ${tag}: ${reg.text}`);
      const login = await call(e.t, "POST", "/v1/auth/login", { body: { email, password: PASSWORD } });
      assert.equal(login.status, 200, `${e.name} fixture login ${tag}: ${login.text}`);
      const access = login.json.tokens.accessToken as string;
      // Each mail sent before the next step: the same mails, in the same order, on both edges.
      await sentMail(e, access, "WELCOME", `fixture welcome mail ${tag}`);
      const requestId = `fixture-${tag}`;
      const order = await call(e.t, "POST", "/v1/orders", { token: access, body: { lines: [{ productId: e.productId, quantity: 1 }], requestId } });
      assert.equal(order.status, 200, `${e.name} fixture order ${tag}: ${order.text}`);
      const confirmation = await sentMail(e, access, "ORDER_CONFIRMATION", `fixture order mail ${tag}`);
      const sessions = await call(e.t, "GET", "/v1/auth/sessions", { token: access });
      assert.equal(sessions.status, 200, `${e.name} fixture sessions ${tag}: ${sessions.text}`);
      const current = (sessions.json.sessions as { id: string; current?: boolean }[]).find((x) => x.current);
      assert.ok(current, `${e.name} fixture session ${tag}: ${sessions.text}`);
      return {
        tag, id: login.json.user.id, email, access, refresh: login.json.tokens.refreshToken, orderId: order.json.order.id, requestId, sessionId: current.id,
        notificationId: confirmation.id,
      };
    };
    e.owner = await party(`owner${i}`);
    e.other = await party(`other${i}`);
    e.admin = await loginAdmin(e.t);
    e.last = undefined;
  }

  function seedFixtures(i: number) {
    const [a, b] = edges;
    for (const who of ["owner", "other"] as const) {
      const pa = a[who]!;
      const pb = b[who]!;
      for (const k of ["id", "access", "refresh", "orderId", "sessionId", "notificationId"] as const) pairing.seed(`<${pa.tag}.${k}>`, pa[k], pb[k]);
    }
    pairing.seed(`<admin.access#${i}>`, a.admin!.access, b.admin!.access);
    pairing.seed(`<admin.refresh#${i}>`, a.admin!.refresh, b.admin!.refresh);
    pairing.seed("<missing-id>", MISSING_ID, MISSING_ID);
  }

  const describeRequest = (req: HttpRequest) =>
    `${req.method} ${req.path}${req.body ? ` ${"raw" in req.body ? req.body.raw : JSON.stringify(req.body.json)}` : ""}`;

  ROUTES.forEach((route, i) => {
    it(`${routeKey(route)} (${route.method.parent.name}.${route.method.name})`, async () => {
      await Promise.all(edges.map((e) => fixtures(e, i)));
      seedFixtures(i);
      stats.routes++;
      const problems: string[] = [];
      for (const c of casesFor(route)) {
        const reqs = edges.map((e) => c.build(e));
        const answers = await Promise.all(
          edges.map((e, k) => {
            const req = reqs[k];
            const body = req.body === undefined ? undefined : "raw" in req.body ? req.body.raw : req.body.json;
            return call(e.t, req.method, req.path, { token: req.token, body, headers: body !== undefined ? { "content-type": "application/json" } : {} });
          }),
        );
        edges.forEach((e, k) => (e.last = answers[k]));
        stats.requests++;
        const [sa, sb] = edges.map((e, k) => seen(e, answers[k]).raw);
        learn(pairing, sa.body, sb.body);
        learn(pairing, sa.headers, sb.headers);
        const ra = { status: sa.status, headers: render(pairing, "a", sa.headers), body: render(pairing, "a", sa.body) };
        const rb = { status: sb.status, headers: render(pairing, "b", sb.headers), body: render(pairing, "b", sb.body) };
        if (JSON.stringify(ra) === JSON.stringify(rb)) continue;
        const allowance = ALLOWED.find((x) => x.applies(c, sa, sb));
        if (allowance) {
          stats.allowed.set(allowance.name, (stats.allowed.get(allowance.name) ?? 0) + 1);
          continue;
        }
        failures++;
        problems.push(
          [
            `${routeKey(route)} | ${c.variant} | caller: ${c.caller}`,
            `  request:  ${render(pairing, "a", describeRequest(reqs[0]))}${reqs[0].token ? " (with a token)" : ""}`,
            `  embedded: ${ra.status} ${JSON.stringify(ra.headers)} ${JSON.stringify(ra.body)}`,
            `  envoy:    ${rb.status} ${JSON.stringify(rb.headers)} ${JSON.stringify(rb.body)}`,
          ].join("\n"),
        );
      }
      if (problems.length) assert.fail(`${problems.length} answer(s) differ between the edges:\n${problems.join("\n")}`);
    });
  });

  it("every allowed difference was seen (a stale entry in ALLOWED is removed)", function () {
    // Meaningful only when every route ran (not a --grep run) and agreed: a failing route may hide its allowed difference.
    if (stats.routes < ROUTES.length || failures > 0) this.skip();
    const unused = ALLOWED.filter((a) => !stats.allowed.has(a.name)).map((a) => a.name);
    assert.deepEqual(unused, [], "allowances never needed: remove them");
  });
});
