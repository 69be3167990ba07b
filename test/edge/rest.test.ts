// The REST edge end to end in front of fake services (test/edge/support.ts):
// routing, transcoding both ways, error conversion, JWT answers, header
// hygiene, CORS, size limits, HTTP/2.
import { strict as assert } from "node:assert";
import http from "node:http";
import http2 from "node:http2";
import { revokeSessions } from "../../platform/auth/revocation.js";
import { signToken, startEdgeServer, testKeys, type EdgeServer } from "./support.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe("edge REST (fake services)", () => {
  let s: EdgeServer;
  let token: string;
  before(async () => {
    s = await startEdgeServer({ env: { MAX_BODY_BYTES: "2048", CORS_ORIGINS: "http://app.test,http://other.test" } });
    token = s.token({ sub: "u-42" });
  });
  after(async () => s?.stop());
  beforeEach(() => (s.calls.length = 0));

  const call = (path: string, init: RequestInit & { token?: string | null } = {}) => {
    const headers = new Headers(init.headers);
    const t = init.token === undefined ? token : init.token;
    if (t) headers.set("authorization", `Bearer ${t}`);
    if (init.body !== undefined && !headers.has("content-type")) headers.set("content-type", "application/json");
    return fetch(s.url + path, { ...init, headers });
  };
  const last = () => {
    assert.ok(s.calls.length > 0, "the service was not called");
    return s.calls[s.calls.length - 1];
  };
  /** An edge-local refusal: JSON {code, message} (edge/errors.ts localReply), nothing else in the body. */
  const refusedWith = async (res: Response, status: number, body: { code: number; message: string }, what = "") => {
    assert.equal(res.status, status, what);
    assert.equal(res.headers.get("content-type"), "application/json", what);
    assert.deepEqual(await res.json(), body, what);
  };

  describe("routing", () => {
    it("prefers a literal segment: GET /v1/users/me is GetMe", async () => {
      const res = await call("/v1/users/me");
      assert.equal(res.status, 200);
      assert.equal(last().rpc, "GetMe");
      assert.deepEqual(await res.json(), { user: { id: "u-42", name: "Me", role: "user", active: true } });
    });

    it("falls back to the variable when the literal has no such method: DELETE /v1/users/me is DeleteUser{id: me}", async () => {
      // DeleteUser is owner-only (the fake services apply the contract's owner rule): as an admin.
      const res = await call("/v1/users/me", { method: "DELETE", token: s.token({ roles: ["admin"] }) });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), {});
      assert.deepEqual(last(), { ...last(), rpc: "DeleteUser", request: { id: "me" } });
    });

    it("binds a single-segment variable fully percent-decoded", async () => {
      assert.equal((await call("/v1/users/a%20b%3Ac%C3%A9", { token: s.token({ roles: ["admin"] }) })).status, 200);
      assert.deepEqual(last().request, { id: "a b:cé" });
    });

    it("routes a custom verb and leaves unknown verbs in the segment", async () => {
      const res = await call("/v1/orders/o-7:cancel", { method: "POST" });
      assert.equal(res.status, 200);
      assert.equal(last().rpc, "CancelOrder");
      assert.deepEqual(last().request, { id: "o-7" });
      assert.deepEqual(await res.json(), { order: { id: "o-7", status: "ORDER_STATUS_CANCELLED" } });
      assert.equal((await call("/v1/orders/o-7:nope")).status, 200);
      assert.deepEqual(last(), { ...last(), rpc: "GetOrder", request: { id: "o-7:nope" } });
    });

    it("ignores a trailing slash and merges slashes", async () => {
      assert.equal((await call("/v1/users/me/")).status, 200);
      assert.equal(last().rpc, "GetMe");
      assert.equal((await call("/v1//orders")).status, 200);
      assert.equal(last().rpc, "ListOrders");
    });

    it("answers 404 for an unknown path under the API prefix, with the table's message (Envoy's router has no text)", async () => {
      for (const path of ["/v1/nope", "/v1/users/a/b", "/.well-known/nope"]) {
        await refusedWith(await call(path), 404, { code: 5, message: "no route matches this path" }, path);
      }
      assert.equal(s.calls.length, 0);
    });

    it("answers 405 with Allow for a known path and the wrong method", async () => {
      let res = await call("/v1/users/me", { method: "PUT", body: "{}" });
      assert.equal(res.headers.get("allow"), "DELETE, GET, PATCH");
      await refusedWith(res, 405, { code: 12, message: "Method PUT is not allowed on /v1/users/me; allowed: DELETE, GET, PATCH." });
      res = await call("/v1/orders/o-1:cancel");
      assert.equal(res.headers.get("allow"), "POST");
      await refusedWith(res, 405, { code: 12, message: "Method GET is not allowed on /v1/orders/o-1:cancel; allowed: POST." });
      assert.equal(s.calls.length, 0);
    });

    it("rejects escaped slashes in the path", async () => {
      await refusedWith(await call("/v1/users/a%2Fb"), 400, { code: 3, message: "escaped slashes are not allowed in the path" });
      assert.equal(s.calls.length, 0);
    });

    it("leaves paths it does not own to the next handlers (here the RPC router's 404)", async () => {
      const res = await call("/nope");
      assert.equal(res.status, 404);
      assert.equal(res.headers.get("content-type"), "application/json");
      // platform/server.ts's answer, not the REST edge's local reply ("no route matches this path").
      assert.deepEqual(await res.json(), { code: 5, message: "no route matches this path" });
    });
  });

  describe("requests", () => {
    it("maps query parameters (camelCase and snake_case, enum by name or number)", async () => {
      let res = await call("/v1/orders?pageSize=5&page_token=t%2B1+x&status=ORDER_STATUS_PENDING&userId=u-9&flag");
      assert.equal(res.status, 200);
      assert.deepEqual(last().request, { pageSize: 5, pageToken: "t+1+x", status: "ORDER_STATUS_PENDING", userId: "u-9" });
      assert.deepEqual(await res.json(), { orders: [{ id: "o-1", status: "ORDER_STATUS_PENDING" }], nextPageToken: "next" });
      res = await call("/v1/orders?status=3");
      assert.equal(res.status, 200);
      assert.deepEqual(last().request, { status: "ORDER_STATUS_SHIPPED" });
    });

    it("refuses an unknown query parameter with 400 naming it", async () => {
      await refusedWith(await call("/v1/orders?pageSize=5&colour=red"), 400, {
        code: 3,
        message: 'Could not find field "colour" in the type "acme.order.v1.ListOrdersRequest".',
      });
      assert.equal(s.calls.length, 0);
    });

    it("refuses a bad query value with 400 naming the parameter", async () => {
      for (const [query, message] of [
        ["pageSize=ten", /^invalid value for query parameter "pageSize": .*int32/],
        ["status=ORDER_STATUS_LOST", /^invalid value for query parameter "status": .*ORDER_STATUS_LOST/],
      ] as const) {
        const res = await call(`/v1/orders?${query}`);
        assert.equal(res.status, 400, query);
        assert.equal(res.headers.get("content-type"), "application/json", query);
        const body = (await res.json()) as Record<string, unknown>;
        assert.deepEqual(Object.keys(body), ["code", "message"], query);
        assert.equal(body.code, 3, query);
        assert.match(String(body.message), message, query);
      }
      assert.equal(s.calls.length, 0);
    });

    it("maps a body: \"*\" JSON body (int64 as string, snake_case accepted) and returns the whole response message", async () => {
      const res = await call("/v1/orders", {
        method: "POST",
        body: JSON.stringify({ product: "book", quantity: 2, unit_price_cents: "12345678901234", requestId: "r-1" }),
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "application/json");
      assert.deepEqual(last().request, { product: "book", quantity: 2, unitPriceCents: "12345678901234", requestId: "r-1" });
      // No response_body in the contract (Envoy refuses it for non-HttpBody fields): {"order": {...}}.
      assert.deepEqual(await res.json(), {
        order: {
          id: "o-1",
          product: "book",
          quantity: 2,
          unitPriceCents: "12345678901234",
          totalCents: "24691357802468",
          status: "ORDER_STATUS_PENDING",
          requestId: "r-1",
        },
      });
    });

    it("maps body: \"user\" to the field, path variables to nested fields and a FieldMask from the query; refuses a body id that contradicts the path", async () => {
      const conflict = await call("/v1/users/u-9?updateMask=role,active", {
        method: "PATCH",
        body: JSON.stringify({ id: "someone-else", role: "admin" }),
        token: s.token({ roles: ["admin"] }),
      });
      assert.equal(conflict.status, 400);
      assert.deepEqual(await conflict.json(), { code: 3, message: 'The binding value "u-9" of the field id is conflicting with the value "someone-else" in the body.' });
      const res = await call("/v1/users/u-9?updateMask=role,active", {
        method: "PATCH",
        body: JSON.stringify({ id: "u-9", role: "admin", active: false }),
        token: s.token({ roles: ["admin"] }),
      });
      assert.equal(res.status, 200);
      assert.deepEqual(last(), { ...last(), rpc: "UpdateUser", request: { user: { id: "u-9", role: "admin" }, updateMask: "role,active" } });
      assert.deepEqual(await res.json(), { user: { id: "u-9", role: "admin" } });
    });

    it("treats an empty body as an empty message and ignores the body of rules without one", async () => {
      assert.equal((await call("/v1/orders", { method: "POST" })).status, 200);
      assert.deepEqual(last().request, {});
      assert.equal((await call("/v1/users/x", { method: "DELETE", body: "not json", token: s.token({ roles: ["admin"] }) })).status, 200);
      assert.deepEqual(last().request, { id: "x" });
    });

    it("refuses malformed JSON, unknown fields and wrong types with 400 naming the problem", async () => {
      const cases: [string, RegExp][] = [
        ["{bad", /^Invalid JSON payload received\. .*JSON/],
        ['{"product":"a","colour":"red"}', /key "colour" is unknown/],
        ['{"quantity":"many"}', /quantity.*int32/],
        ["[1,2]", /acme\.order\.v1\.CreateOrderRequest/],
      ];
      const refusal = async (res: Response, message: RegExp, what: string) => {
        assert.equal(res.status, 400, what);
        assert.equal(res.headers.get("content-type"), "application/json", what);
        const json = (await res.json()) as Record<string, unknown>;
        assert.deepEqual(Object.keys(json), ["code", "message"], what);
        assert.equal(json.code, 3, what);
        assert.match(String(json.message), message, what);
      };
      for (const [body, message] of cases) await refusal(await call("/v1/orders", { method: "POST", body }), message, body);
      await refusal(await call("/v1/users/me", { method: "PATCH", body: '{"nickname":"x"}' }), /acme\.user\.v1\.User.*key "nickname" is unknown/, "nickname");
      assert.equal(s.calls.length, 0);
    });

    it("serves a google.api.HttpBody response with its own content type (the JWKS, public)", async () => {
      const res = await call("/.well-known/jwks.json", { token: null });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "application/jwk-set+json");
      assert.equal(await res.text(), '{"keys":[]}');
    });
  });

  describe("errors (convert_grpc_status)", () => {
    it("maps NOT_FOUND to 404 with the google.rpc.Status as JSON", async () => {
      const res = await call("/v1/users/missing");
      assert.equal(res.status, 404);
      assert.equal(res.headers.get("content-type"), "application/json");
      assert.deepEqual(await res.json(), { code: 5, message: "user not found" });
    });

    it("renders details as google.protobuf.Any JSON (BadRequest field violations)", async () => {
      const res = await call("/v1/users/invalid");
      assert.equal(res.status, 400);
      const text = await res.text();
      assert.deepEqual(JSON.parse(text), {
        code: 3,
        message: "id: must be a UUID",
        details: [{ "@type": "type.googleapis.com/google.rpc.BadRequest", fieldViolations: [{ field: "id", description: "must be a UUID" }] }],
      });
      assert.ok(text.indexOf('"@type"') < text.indexOf('"fieldViolations"'), "@type comes first, as Envoy prints it");
    });

    it("maps UNIMPLEMENTED to 501 and PERMISSION_DENIED (the service's role check) to 403", async () => {
      let res = await call("/v1/auth/logout", { method: "POST", body: "{}", token: null });
      assert.equal(res.status, 501);
      assert.equal((await res.json()).code, 12);
      res = await call("/v1/users");
      assert.equal(res.status, 403);
      assert.deepEqual(await res.json(), { code: 7, message: "permission denied" });
      res = await call("/v1/users", { token: s.token({ roles: ["admin"] }) });
      assert.equal(res.status, 200);
    });
  });

  describe("JWT (jwt_authn answers)", () => {
    const realm = (path: string) => `Bearer realm="http://127.0.0.1:${s.port}${path}"`;

    it("401 Jwt is missing without a bearer token, with www-authenticate", async () => {
      for (const authorization of [undefined, "Basic dXNlcjpwdw=="]) {
        const res = await call("/v1/users/me", { token: null, headers: authorization ? { authorization } : {} });
        assert.equal(res.headers.get("www-authenticate"), realm("/v1/users/me"));
        await refusedWith(res, 401, { code: 16, message: "Jwt is missing" }, authorization);
      }
      assert.equal(s.calls.length, 0);
    });

    it("401 with jwt_authn's reason and error=\"invalid_token\" for a bad token", async () => {
      const other = testKeys(s.keys.kid);
      const now = Math.floor(Date.now() / 1000);
      const cases: [string, number, string][] = [
        ["not-a-jwt", 401, "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"],
        [`${Buffer.from("nope").toString("base64url")}.e30.c2ln`, 401, "Jwt header is an invalid JSON"],
        [signToken(other, { sub: "u-1" }), 401, "Jwt verification fails"],
        [signToken(testKeys("unknown-kid")), 401, "Jwks doesn't have key to match kid or alg from Jwt"],
        [s.token({ exp: now - 3600, iat: now - 7200 }), 401, "Jwt is expired"],
        [s.token({ nbf: now + 3600 }), 401, "Jwt not yet valid"],
        [s.token({ iss: "someone-else" }), 401, "Jwt issuer is not configured"],
        [s.token({ aud: "acme-user" }), 403, "Audiences in Jwt are not allowed"],
      ];
      for (const [t, status, reason] of cases) {
        const res = await call("/v1/orders", { token: t });
        assert.equal(res.headers.get("www-authenticate"), `${realm("/v1/orders")}, error="invalid_token"`);
        // UNAUTHENTICATED (16) for 401, PERMISSION_DENIED (7) for 403; the message is jwt_authn's reason.
        await refusedWith(res, status, { code: status === 403 ? 7 : 16, message: reason }, reason);
      }
      assert.equal(s.calls.length, 0);
    });

    it("lets a token of a revoked session through, as jwt_authn does: the service refuses it with a JSON 401", async () => {
      const t = s.token({ sid: "s-revoked" });
      await revokeSessions(s.kv, ["s-revoked"], 900);
      const res = await call("/v1/users/me", { token: t });
      assert.equal(res.status, 401);
      assert.equal(res.headers.get("content-type"), "application/json");
      assert.deepEqual(await res.json(), { code: 16, message: "invalid access token" });
    });

    it("does not check tokens on public RPCs", async () => {
      const res = await call("/v1/auth/login", { method: "POST", body: '{"email":"a@b.c","password":"pw"}', token: "garbage" });
      assert.equal(res.status, 200);
      assert.equal(last().headers.authorization, "Bearer garbage");
    });
  });

  describe("headers", () => {
    it("generates x-request-id, echoes it and passes it on; keeps a sane client one", async () => {
      let res = await call("/v1/users/me");
      const id = res.headers.get("x-request-id");
      assert.match(id ?? "", UUID);
      assert.equal(last().headers["x-request-id"], id);
      res = await call("/v1/users/me", { headers: { "x-request-id": "client-id-1" } });
      assert.equal(res.headers.get("x-request-id"), "client-id-1");
      assert.equal(last().headers["x-request-id"], "client-id-1");
      res = await call("/v1/users/me", { headers: { "x-request-id": "has space" } });
      assert.match(res.headers.get("x-request-id") ?? "", UUID);
    });

    it("strips edge-only headers, sets the client address and forwards only the allowed headers", async () => {
      await call("/v1/users/me", {
        headers: {
          "x-envoy-external-address": "6.6.6.6",
          "x-forwarded-for": "6.6.6.6",
          "x-jwt-payload": "e30",
          "x-acme-user": "admin",
          "x-custom": "1",
          "user-agent": "edge-test/1",
          traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
          tracestate: "k=v",
        },
      });
      const seen = last();
      assert.equal(seen.clientIp, "127.0.0.1");
      assert.equal(seen.headers["x-envoy-external-address"], "127.0.0.1");
      assert.equal(seen.headers["user-agent"], "edge-test/1");
      assert.equal(seen.headers.traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
      assert.equal(seen.headers.tracestate, "k=v");
      assert.equal(seen.headers.authorization, `Bearer ${token}`);
      for (const h of ["x-forwarded-for", "x-jwt-payload", "x-acme-user", "x-custom"]) assert.equal(seen.headers[h], undefined, h);
    });

    it("sets security headers on every answer, and cache-control: no-store on credential endpoints", async () => {
      for (const [path, init] of [
        ["/v1/users/me", {}],
        ["/v1/nope", {}],
        ["/v1/auth/login", { method: "POST", body: "{}" }],
      ] as const) {
        const res = await call(path, init);
        assert.equal(res.headers.get("x-content-type-options"), "nosniff", path);
        assert.equal(res.headers.get("x-frame-options"), "DENY", path);
      }
      assert.equal((await call("/v1/auth/login", { method: "POST", body: "{}" })).headers.get("cache-control"), "no-store");
      // Every routed answer is no-store unless the service sets its own cache-control (the JWKS does).
      assert.equal((await call("/v1/auth/sessions")).headers.get("cache-control"), "no-store");
      assert.equal((await call("/v1/users/me")).headers.get("cache-control"), "no-store");
    });
  });

  describe("CORS", () => {
    it("answers a preflight from an allowed origin without a JWT, on REST and RPC paths", async () => {
      for (const path of ["/v1/users/me", "/acme.user.v1.UserService/GetMe"]) {
        const res = await call(path, {
          method: "OPTIONS",
          token: null,
          headers: { origin: "http://app.test", "access-control-request-method": "PATCH", "access-control-request-headers": "authorization" },
        });
        assert.equal(res.status, 200, path);
        assert.equal(res.headers.get("access-control-allow-origin"), "http://app.test");
        assert.match(res.headers.get("access-control-allow-methods") ?? "", /PATCH/);
        assert.match(res.headers.get("access-control-allow-headers") ?? "", /authorization/);
        assert.match(res.headers.get("access-control-allow-headers") ?? "", /content-type/);
        assert.equal(res.headers.get("access-control-max-age"), "600");
      }
      assert.equal(s.calls.length, 0);
    });

    it("does not answer for other origins", async () => {
      const res = await call("/v1/users/me", {
        method: "OPTIONS",
        token: null,
        headers: { origin: "http://evil.test", "access-control-request-method": "GET" },
      });
      assert.equal(res.headers.get("access-control-allow-origin"), null);
      // Not a preflight the CORS filter answers: the request goes on to routing, where OPTIONS is no method of the path.
      await refusedWith(res, 405, { code: 12, message: "Method OPTIONS is not allowed on /v1/users/me; allowed: DELETE, GET, PATCH." });
    });

    it("adds allow-origin and exposed headers to actual requests from allowed origins", async () => {
      let res = await call("/v1/users/me", { headers: { origin: "http://other.test" } });
      assert.equal(res.headers.get("access-control-allow-origin"), "http://other.test");
      assert.match(res.headers.get("access-control-expose-headers") ?? "", /x-request-id/);
      assert.match(res.headers.get("access-control-expose-headers") ?? "", /x-ratelimit-limit/);
      res = await call("/v1/users/me", { headers: { origin: "http://evil.test" } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("access-control-allow-origin"), null);
    });
  });

  describe("body size", () => {
    it("413 when content-length exceeds MAX_BODY_BYTES", async () => {
      const res = await call("/v1/orders", { method: "POST", body: JSON.stringify({ product: "x".repeat(3000) }) });
      await refusedWith(res, 413, { code: 8, message: "request body too large" });
      assert.equal(s.calls.length, 0);
    });

    it("413 when a chunked body grows past the limit", async () => {
      const { status, contentType, body } = await new Promise<{ status: number; contentType?: string; body: string }>((resolve, reject) => {
        const req = http.request(`${s.url}/v1/orders`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "transfer-encoding": "chunked" },
        });
        req.on("response", (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (d) => (body += d));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, contentType: res.headers["content-type"], body }));
          res.on("error", reject);
        });
        req.on("error", reject);
        req.write('{"product":"');
        for (let i = 0; i < 5; i++) req.write("x".repeat(1000));
        req.end('"}');
      });
      assert.equal(status, 413);
      assert.equal(contentType, "application/json");
      assert.deepEqual(JSON.parse(body), { code: 8, message: "request body too large" });
      assert.equal(s.calls.length, 0);
    });

    it("accepts a body at the limit", async () => {
      const body = JSON.stringify({ product: "" }).replace('""', `"${"x".repeat(2048 - 14)}"`);
      assert.equal(Buffer.byteLength(body), 2048);
      assert.equal((await call("/v1/orders", { method: "POST", body })).status, 200);
    });
  });

  it("serves REST over HTTP/2 (h2c prior knowledge) the same way", async () => {
    const session = http2.connect(s.url);
    try {
      const { status, headers, body } = await new Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }>((resolve, reject) => {
        const req = session.request({ ":method": "GET", ":path": "/v1/orders/o-9", authorization: `Bearer ${token}` });
        let body = "";
        let headers: http2.IncomingHttpHeaders = {};
        req.setEncoding("utf8");
        req.on("response", (h) => (headers = h));
        req.on("data", (d) => (body += d));
        req.on("end", () => resolve({ status: Number(headers[":status"]), headers, body }));
        req.on("error", reject);
        req.end();
      });
      assert.equal(status, 200);
      assert.deepEqual(JSON.parse(body), { order: { id: "o-9", status: "ORDER_STATUS_CONFIRMED" } });
      assert.match(String(headers["x-request-id"]), UUID);
    } finally {
      session.close();
    }
  });
});
