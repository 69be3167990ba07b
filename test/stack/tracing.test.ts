// Tracing through the real edge: a REST call to Envoy makes ONE trace in Jaeger
// with Envoy's spans (service envoy-edge), the order service's CreateOrder, the
// user service's CheckUser (through the order service's client span) and the
// order service's Postgres queries (instrumentation-pg), each under the right
// parent; and a client's W3C traceparent is continued (same trace id, Envoy's
// span a child of the client's span). Read back through Jaeger's HTTP query
// API (the v1 JSON API, which Jaeger v2 still serves on its query port).
// Export is batched (the services every 200 ms, Envoy every 5 s), so the trace
// is polled until it is complete.
import { strict as assert } from "node:assert";
import { randomBytes, randomUUID } from "node:crypto";
import { sharedEdgeStack, type EdgeStack } from "../support/edge-stack.js";
import { ancestors, jaegerGet, parseTrace, render, traceById as traceOf, type Trace } from "./jaeger.js";
import { eventually, rest } from "./support.js";
import { makeStackProduct } from "../support/products.js";

const ENVOY = "envoy-edge";
const CREATE = "acme.order.v1.OrderService/CreateOrder";
const CHECK = "acme.user.v1.UserInternalService/CheckUser";
const PASSWORD = "stack-tracing-password-1";

describe("real edge: one trace per request in Jaeger (Envoy, services, Postgres)", function () {
  this.timeout(120_000);
  let stack: EdgeStack;
  let token: string;
  let productId: string;

  before(async () => {
    stack = await sharedEdgeStack();
    productId = await makeStackProduct(stack, { name: "widget" });
    const email = `tracing-${randomBytes(4).toString("hex")}@example.com`;
    const reg = await rest(stack.edgeUrl, "POST", "/v1/auth/register", { body: { email, password: PASSWORD, name: "Tracing Owner" } });
    assert.equal(reg.status, 200, reg.text);
    const login = await rest(stack.edgeUrl, "POST", "/v1/auth/login", { body: { email, password: PASSWORD } });
    assert.equal(login.status, 200, login.text);
    token = login.body.tokens.accessToken;
    assert.ok(token, login.text);
  });

  /** The one REST call: POST /v1/orders through Envoy. */
  async function createOrder(headers: Record<string, string> = {}) {
    const requestId = randomUUID();
    const a = await rest(stack.edgeUrl, "POST", "/v1/orders", {
      token,
      headers,
      body: { lines: [{ productId, quantity: 2 }], requestId },
    });
    assert.equal(a.status, 200, a.text);
    assert.equal(a.body.order?.product, "widget", a.text);
    assert.equal(a.body.order?.requestId, requestId, a.text);
    const xRequestId = a.headers.get("x-request-id");
    assert.ok(xRequestId, "Envoy answers with x-request-id");
    return { xRequestId };
  }

  const jaeger = (path: string) => jaegerGet(stack.jaegerUrl, path);
  const traceById = (traceId: string) => traceOf(stack.jaegerUrl, traceId);

  /** The trace whose Envoy span carries this x-request-id (Envoy's guid:x-request-id tag). */
  async function traceByRequestId(xRequestId: string): Promise<Trace | undefined> {
    const tags = encodeURIComponent(JSON.stringify({ "guid:x-request-id": xRequestId }));
    const tagged = await jaeger(`/api/traces?service=${ENVOY}&tags=${tags}&lookback=1h&limit=20`);
    // Filtered here as well: the answer must be this request's trace whatever the search did with tags.
    const found = (tagged?.data ?? []).map(parseTrace).find((t: Trace) => t.spans.some((s) => s.service === ENVOY && s.tags["guid:x-request-id"] === xRequestId));
    if (found) return found;
    const recent = await jaeger(`/api/traces?service=${ENVOY}&lookback=1h&limit=200`);
    return (recent?.data ?? []).map(parseTrace).find((t: Trace) => t.spans.some((s) => s.service === ENVOY && s.tags["guid:x-request-id"] === xRequestId));
  }

  /** The spans the assertions need, once all of them have arrived (else undefined, to poll again). */
  function parts(tr: Trace, xRequestId: string) {
    const envoy = tr.spans.find((s) => s.service === ENVOY && s.kind === "server" && s.tags["guid:x-request-id"] === xRequestId);
    const orderServer = tr.spans.filter((s) => s.service === "order" && s.op === CREATE && s.kind === "server");
    const userServer = tr.spans.filter((s) => s.service === "user" && s.op === CHECK && s.kind === "server");
    const orderInsert = tr.spans.find((s) => s.service === "order" && s.op.startsWith("pg.query:INSERT") && /insert into "orders"\."orders"/i.test(String(s.tags["db.query.text"] ?? "")));
    const userQuery = tr.spans.find((s) => s.service === "user" && s.op.startsWith("pg.query:"));
    // Every parent that is a span of ours has arrived (only the root's parent may be missing: the client's).
    const dangling = tr.spans.filter((s) => s.parentId && !tr.byId.has(s.parentId));
    if (!envoy || orderServer.length === 0 || userServer.length === 0 || !orderInsert || !userQuery || dangling.some((s) => s !== envoy)) return undefined;
    return { envoy, orderServer, userServer, orderInsert, userQuery, dangling };
  }

  async function completeTrace(find: () => Promise<Trace | undefined>, xRequestId: string, what: string) {
    let last: Trace | undefined;
    try {
      return await eventually(async () => {
        const tr = await find();
        if (tr) last = tr;
        return tr && parts(tr, xRequestId) ? tr : undefined;
      }, what, 30_000);
    } catch (err) {
      if (last) console.log(`incomplete ${render(last)}`);
      throw err;
    }
  }

  /** The structure both requests must have. */
  function assertOneConnectedTrace(tr: Trace, xRequestId: string) {
    const p = parts(tr, xRequestId)!;
    console.log(render(tr));
    assert.ok(tr.spans.every((s) => s.traceId === tr.traceId), "every span in the trace id");
    for (const service of [ENVOY, "order", "user"]) assert.ok(tr.spans.some((s) => s.service === service), `spans from ${service}`);

    assert.equal(p.orderServer.length, 1, "one CreateOrder server span");
    const [orderServer] = p.orderServer;
    // order <- Envoy: CreateOrder's parent is Envoy's span of the request ("ingress": one span per request,
    // Envoy's default), or, with the connection manager's tracing.spawn_upstream_span, the router's
    // upstream span ("router order egress", CLIENT) under it.
    const orderParent = orderServer.parentId ? tr.byId.get(orderServer.parentId) : undefined;
    assert.ok(orderParent?.service === ENVOY, `CreateOrder's parent is an Envoy span (is ${orderParent?.service} ${orderParent?.op})`);
    if (orderParent !== p.envoy) {
      assert.equal(orderParent.kind, "client", `CreateOrder's parent: Envoy's span of the request or its upstream span (is ${orderParent.op})`);
      assert.equal(orderParent.parentId, p.envoy.id, "Envoy's upstream span is under its span of the request");
    }

    // user <- order: CheckUser (server, user) <- CheckUser (client, order) <- ... <- CreateOrder (server, order).
    assert.equal(p.userServer.length, 1, "one CheckUser server span");
    const [userServer] = p.userServer;
    const checkClient = userServer.parentId ? tr.byId.get(userServer.parentId) : undefined;
    assert.equal(checkClient?.service, "order", `CheckUser's parent is in the order service (is ${checkClient?.service} ${checkClient?.op})`);
    assert.equal(checkClient?.op, CHECK);
    assert.equal(checkClient?.kind, "client");
    assert.ok(ancestors(tr, userServer).includes(orderServer), "CheckUser (user) descends from CreateOrder (order)");

    // Postgres <- order: instrumentation-pg's query span in the order service, under CreateOrder.
    assert.equal(p.orderInsert.tags["db.system.name"] ?? p.orderInsert.tags["db.system"], "postgresql");
    assert.equal(p.orderInsert.kind, "client");
    assert.match(String(p.orderInsert.tags["otel.scope.name"] ?? p.orderInsert.tags["otel.library.name"]), /instrumentation-pg/);
    assert.ok(ancestors(tr, p.orderInsert).includes(orderServer), "the INSERT into orders descends from CreateOrder");
    // ...and the user service's own query under its CheckUser.
    assert.ok(ancestors(tr, p.userQuery).includes(userServer), "the user service's pg.query span is under its CheckUser");

    // ONE trace: every span but Envoy's request span has its parent in this trace.
    assert.deepEqual(p.dangling.filter((s) => s !== p.envoy).map((s) => `${s.service} ${s.op}`), [], "spans whose parent is not in the trace");
    return p;
  }

  it("a REST call through Envoy is one trace: Envoy -> order CreateOrder -> user CheckUser, and Postgres", async () => {
    const { xRequestId } = await createOrder();
    const tr = await completeTrace(() => traceByRequestId(xRequestId), xRequestId, `the trace of x-request-id ${xRequestId} in Jaeger`);
    assert.notEqual(xRequestId.replace(/-/g, ""), tr.traceId, "x-request-id is not the trace id");
    const p = assertOneConnectedTrace(tr, xRequestId);
    assert.equal(p.envoy.parentId, undefined, "no traceparent sent: Envoy's span is the root");
    // The same trace by its id.
    const again = await traceById(tr.traceId);
    assert.equal(again?.spans.length, tr.spans.length, "GET /api/traces/{id} answers the same trace");
  });

  it("continues a client's W3C traceparent: same trace id, Envoy's span a child of the client's span", async () => {
    const traceId = randomBytes(16).toString("hex");
    const clientSpanId = randomBytes(8).toString("hex");
    const { xRequestId } = await createOrder({ traceparent: `00-${traceId}-${clientSpanId}-01` });
    const tr = await completeTrace(() => traceById(traceId), xRequestId, `trace ${traceId} in Jaeger`);
    assert.equal(tr.traceId, traceId);
    const p = assertOneConnectedTrace(tr, xRequestId);
    assert.equal(p.envoy.traceId, traceId);
    assert.equal(p.envoy.parentId, clientSpanId, "Envoy's span is a child of the client's span");
    assert.deepEqual(p.dangling.map((s) => s.id), [p.envoy.id], "only Envoy's span has its parent outside the trace (the client's)");
  });
});
