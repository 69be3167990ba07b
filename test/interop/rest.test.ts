// curl against the embedded edge, driven by gen/openapi.json: each call's
// method and path come from the document (by operationId) and every answer is
// checked against the documented schema, so the document describes what the
// edge really serves (JSON names, int64 strings, enum names, date-times,
// error bodies, the JWKS media type).
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { onPath, relaxedRateLimits, root, run, skipWithout, uniqueEmail } from "./support.js";
import { makeProduct } from "../support/products.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any>;
const doc = JSON.parse(readFileSync(join(root, "gen/openapi.json"), "utf8")) as Obj;

function operation(id: string): { method: string; path: string; op: Obj } {
  for (const [path, item] of Object.entries(doc.paths as Obj)) {
    for (const [method, op] of Object.entries(item as Obj)) if (op.operationId === id) return { method: method.toUpperCase(), path, op };
  }
  throw new Error(`no operation ${id} in gen/openapi.json`);
}

const deref = (s: Obj): Obj => (s?.$ref ? (s.$ref as string).slice(2).split("/").reduce((x: Obj, k) => x[k], doc) : s);

/** Checks a JSON value against the subset of JSON Schema the generator emits. */
function conforms(value: unknown, schema: Obj, at = "$"): void {
  const s = deref(schema);
  const types = s.type === undefined ? [] : Array.isArray(s.type) ? s.type : [s.type];
  if (types.length) {
    const actual = value === null ? "null" : Array.isArray(value) ? "array" : Number.isInteger(value) ? "integer" : typeof value;
    const ok = types.includes(actual) || (actual === "integer" && types.includes("number"));
    assert.ok(ok, `${at}: ${JSON.stringify(value)} is not ${types.join("|")}`);
  }
  if (s.enum) assert.ok(s.enum.includes(value), `${at}: ${JSON.stringify(value)} not in ${s.enum}`);
  if (s.pattern && typeof value === "string") assert.match(value, new RegExp(s.pattern), at);
  if (s.format === "date-time") assert.ok(!Number.isNaN(Date.parse(value as string)) && /T/.test(value as string), `${at}: date-time`);
  if (Array.isArray(value) && s.items) value.forEach((v, i) => conforms(v, s.items, `${at}[${i}]`));
  if (value && typeof value === "object" && !Array.isArray(value) && s.properties) {
    for (const [k, v] of Object.entries(value)) {
      if (s.properties[k]) conforms(v, s.properties[k], `${at}.${k}`);
      else assert.ok(s.additionalProperties, `${at}.${k} is not in the documented schema`);
    }
  }
}

describe("interop: curl against the REST edge, per gen/openapi.json", function () {
  this.timeout(60_000);
  let t: TestSystem | undefined;
  let dir: string;

  /** One curl call; returns status, content type and parsed body. `extraQuery`: parameters the document does not have (to provoke a refusal). */
  async function curl(
    id: string,
    opts: { params?: Record<string, string>; query?: Record<string, string>; extraQuery?: Record<string, string>; body?: unknown; token?: string } = {},
  ) {
    const { method, path, op } = operation(id);
    const url = new URL(t!.url + path.replace(/\{([^}]+)\}/g, (_m, name: string) => encodeURIComponent(opts.params?.[name] ?? "")));
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      assert.ok((op.parameters as Obj[]).some((p) => p.in === "query" && p.name === k), `${id} documents query ${k}`);
      url.searchParams.set(k, v);
    }
    for (const [k, v] of Object.entries(opts.extraQuery ?? {})) {
      assert.ok(!(op.parameters as Obj[]).some((p) => p.in === "query" && p.name === k), `${id} does not document query ${k}`);
      url.searchParams.set(k, v);
    }
    const headerFile = join(dir, `headers-${randomUUID()}`);
    const args = ["-sS", "-X", method, "-D", headerFile, "-w", "\n%{http_code} %{content_type}", url.toString()];
    if (opts.token) args.push("-H", `authorization: Bearer ${opts.token}`);
    if (opts.body !== undefined) args.push("-H", "content-type: application/json", "-d", JSON.stringify(opts.body));
    const r = await run("curl", args);
    assert.equal(r.code, 0, r.stderr);
    const nl = r.stdout.lastIndexOf("\n");
    const [status, contentType] = r.stdout.slice(nl + 1).split(" ");
    const text = r.stdout.slice(0, nl);
    const headers = new Map(
      readFileSync(headerFile, "utf8")
        .split("\r\n")
        .filter((l) => l.includes(":"))
        .map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]),
    );
    const json = /^application\/([a-z-]+\+)?json/.test(contentType);
    const body = json ? JSON.parse(text) : text;
    // The answer matches the documented response: status, media type, schema, headers.
    // Success must be documented by status; errors may fall under "default".
    assert.ok(op.responses[status] || (Number(status) >= 400 && op.responses.default), `${id}: status ${status} is not documented: ${text}`);
    const response = deref(op.responses[status] ?? op.responses.default);
    const media = Object.keys(response.content ?? {});
    const documented = media.find((m) => contentType.startsWith(m));
    assert.ok(documented, `${id}: content type ${contentType}, documented ${media}`);
    conforms(body, response.content[documented].schema, id);
    for (const [name, h] of Object.entries((response.headers ?? {}) as Obj)) {
      if (name.startsWith("x-ratelimit") || name === "www-authenticate") assert.ok(headers.has(name), `${id} ${status}: header ${name}`);
      if (headers.has(name)) conforms(deref(h).schema.type === "integer" ? Number(headers.get(name)) : headers.get(name), deref(h).schema, `${id} ${name}`);
    }
    return { status: Number(status), body: body as Obj };
  }

  before(async function () {
    skipWithout(this, (await onPath("curl")) ? [] : ["curl"], ["curl"]);
    dir = mkdtempSync(join(tmpdir(), "acme-rest-"));
    t = await startTestSystem({ env: { RATELIMIT_CONFIG: relaxedRateLimits(dir) } });
  });
  after(async () => {
    await t?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("register -> login -> create order -> get order -> list orders", async () => {
    const email = uniqueEmail("curl");
    const password = "correct horse battery";
    const reg = await curl("AuthService_Register", { body: { email, password, name: "Curl" } });
    assert.equal(reg.status, 200);
    assert.deepEqual(reg.body, { status: "accepted" });
    const login = await curl("AuthService_Login", { body: { email, password } });
    assert.equal(login.body.user.email, email);
    const token = login.body.tokens.accessToken as string;

    const product = await makeProduct(t!, { priceMinor: 1999n });
    const created = await curl("OrderService_CreateOrder", { token, body: { lines: [{ productId: product.id, quantity: 2 }], requestId: randomUUID() } });
    assert.equal(created.status, 200);
    // The whole CreateOrderResponse (no response_body): {"order": {...}}; int64 as a string.
    assert.deepEqual(Object.keys(created.body), ["order"]);
    const order = created.body.order as Obj;
    assert.deepEqual(order.total, { amountMinor: "3998", currency: "EUR" });
    assert.equal((order.lines as Obj[])[0].productId, product.id);
    assert.equal(order.userId, login.body.user.id);
    assert.equal(order.status, "ORDER_STATUS_PENDING");
    const got = await curl("OrderService_GetOrder", { token, params: { id: order.id } });
    assert.deepEqual(got.body, { order });
    const list = await curl("OrderService_ListOrders", { token, query: { pageSize: "10", status: "ORDER_STATUS_PENDING" } });
    assert.deepEqual(list.body.orders.map((o: Obj) => o.id), [order.id]);
  });

  it("answers errors as documented: google.rpc.Status JSON from services and from the edge's own refusals", async () => {
    const email = uniqueEmail("curl");
    await curl("AuthService_Register", { body: { email, password: "correct horse battery", name: "Err" } });
    const token = (await curl("AuthService_Login", { body: { email, password: "correct horse battery" } })).body.tokens.accessToken as string;
    const missing = await curl("OrderService_GetOrder", { token, params: { id: randomUUID() } });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, 5);
    const anonymous = await curl("OrderService_GetOrder", { params: { id: randomUUID() } });
    assert.equal(anonymous.status, 401);
    assert.deepEqual(anonymous.body, { code: 16, message: "Jwt is missing" }, "the edge's local reply: JSON {code, message}");
    const unknownQuery = await curl("OrderService_ListOrders", { token, query: { pageSize: "10" }, extraQuery: { colour: "red" } });
    assert.equal(unknownQuery.status, 400);
    assert.deepEqual(unknownQuery.body, { code: 3, message: 'Could not find field "colour" in the type "acme.order.v1.ListOrdersRequest".' });
    const invalid = await curl("OrderService_CreateOrder", { token, body: { lines: [{ productId: randomUUID(), quantity: 0 }], requestId: randomUUID() } });
    assert.equal(invalid.status, 400);
    assert.equal(invalid.body.code, 3);
    const badRequest = (invalid.body.details as Obj[]).find((d) => d["@type"] === "type.googleapis.com/google.rpc.BadRequest");
    assert.ok(badRequest?.fieldViolations.some((v: Obj) => v.field === "lines[0].quantity"), JSON.stringify(invalid.body));
  });

  it("serves the JWKS with its documented media type, without a token", async () => {
    const jwks = await curl("AuthService_GetJwks");
    assert.equal(jwks.status, 200);
    assert.ok(jwks.body.keys.length >= 1);
  });
});
