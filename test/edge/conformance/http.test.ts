// Edge conformance, HTTP level: what any edge of this product (the embedded
// one, or Envoy with EDGE_URL) answers, whatever the services do.
import { strict as assert } from "node:assert";
import { Access, isInternal } from "../../../platform/policy.js";
import { productServices } from "../../../app/contract.js";
import { allowedOrigins, call, EDGE_KINDS, expectLocalReply, expectStatus, maxBodyBytes, ROUTES, routeKey, startTarget, type Target } from "./target.js";

/** A concrete path for a route template ({var} and * become "x1"). */
const samplePath = (template: string) => template.replace(/\{([^}=]+)(=[^}]*)?\}/g, "x1").replace(/\*\*?/g, "x1");

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

for (const kind of EDGE_KINDS) {
  describe(`edge conformance (${kind}): HTTP`, function () {
    // Against a real edge, calls wait out its rate limits (see target.ts `call`).
    this.timeout(kind === "embedded" ? 60_000 : 300_000);
    let t: Target;
    before(async () => (t = await startTarget(kind)));
    after(async () => t?.stop());

    describe("routing", () => {
      it("answers 404 for paths no route has", async () => {
        for (const path of ["/v1/no-such-thing", "/v1/users/a/b/c", "/v1/orders/x1/items"]) {
          expectLocalReply(await call(t, "GET", path), 404, "no route matches this path", path);
        }
      });

      it("answers 405 with Allow for a route's path with another method", async () => {
        // Envoy's transcoder itself answers 404 here (it looks up method and path together); the
        // embedded edge answers 405 with Allow. Both refuse without reaching a service.
        const a = await call(t, "PUT", "/v1/users/me", { body: {} });
        // docs/edges.md lists this difference.
        if (t.embedded) {
          expectLocalReply(a, 405, /^Method PUT is not allowed on \/v1\/users\/me/);
          assert.equal(a.headers.get("allow"), "DELETE, GET, PATCH");
        } else expectLocalReply(a, 404, "no route matches this path");
      });

      it("refuses unknown query parameters with 400, before the JWT check", async () => {
        const a = await call(t, "GET", "/v1/orders?pageSize=1&colour=red");
        expectLocalReply(a, 400, /colour/);
      });

      it("serves the OpenAPI document at /openapi.json without a token, listing every REST route", async () => {
        const a = await call(t, "GET", "/openapi.json");
        expectStatus(a, 200);
        assert.match(a.headers.get("content-type") ?? "", /application\/json/);
        const doc = JSON.parse(a.text) as { openapi: string; paths: Record<string, Record<string, unknown>> };
        assert.match(doc.openapi, /^3\./);
        for (const r of ROUTES) {
          const path = r.template.replace(/\{([^}=]+)(=[^}]*)?\}/g, "{$1}");
          assert.ok(doc.paths[path]?.[r.httpMethod.toLowerCase()], `${routeKey(r)} missing from /openapi.json`);
        }
      });

      it("has no REST route into internal services", () => {
        const internal = productServices.filter(isInternal);
        assert.ok(internal.length > 0);
        for (const r of ROUTES) assert.ok(!isInternal(r.service), `${routeKey(r)} routes into ${r.service.typeName}`);
      });

      it("does not route the gRPC paths of internal services for clients without a service token", async () => {
        // Envoy: 404 (direct_response). The embedded edge: the services of the all-in-one process
        // call each other through the port, so the path exists but needs a service token (401).
        for (const s of productServices.filter(isInternal)) {
          const a = await call(t, "POST", `/${s.typeName}/${s.methods[0].name}`, { body: {}, headers: { "connect-protocol-version": "1" } });
          if (t.embedded) expectStatus(a, 401, s.typeName);
          else assert.ok([401, 404].includes(a.status), `${s.typeName}: got ${a.status} ${a.text}`);
        }
      });
    });

    describe("JWT", () => {
      for (const r of ROUTES.filter((x) => x.policy.access !== Access.PUBLIC)) {
        it(`${routeKey(r)}: 401 "Jwt is missing" without a token`, async () => {
          const path = samplePath(r.template);
          const a = await call(t, r.httpMethod, path, r.body ? { body: {} } : {});
          expectLocalReply(a, 401, "Jwt is missing");
          assert.equal(a.headers.get("www-authenticate"), `Bearer realm="${t.url}${path}"`);
        });
      }

      it("401 with error=\"invalid_token\" for a token that is not a JWT", async () => {
        const a = await call(t, "GET", "/v1/users/me", { token: "not-a-jwt" });
        expectLocalReply(a, 401, "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections");
        assert.equal(a.headers.get("www-authenticate"), `Bearer realm="${t.url}/v1/users/me", error="invalid_token"`);
      });

      it("public routes need no token", async () => {
        const a = await call(t, "GET", "/.well-known/jwks.json");
        expectStatus(a, 200);
      });
    });

    describe("headers", () => {
      it("generates an x-request-id for every answer", async () => {
        for (const path of ["/.well-known/jwks.json", "/v1/users/me", "/v1/nope"]) {
          assert.match((await call(t, "GET", path)).headers.get("x-request-id") ?? "", UUID, path);
        }
      });

      it("echoes a client's x-request-id", async () => {
        const a = await call(t, "GET", "/.well-known/jwks.json", { headers: { "x-request-id": "conformance-req-1" } });
        assert.equal(a.headers.get("x-request-id"), "conformance-req-1");
      });

      it("sends x-content-type-options: nosniff and x-frame-options: DENY", async () => {
        for (const path of ["/.well-known/jwks.json", "/v1/users/me"]) {
          const a = await call(t, "GET", path);
          assert.equal(a.headers.get("x-content-type-options"), "nosniff", path);
          assert.equal(a.headers.get("x-frame-options"), "DENY", path);
        }
      });

      it("marks credential endpoints cache-control: no-store", async () => {
        const a = await call(t, "POST", "/v1/auth/login", { body: { email: "nobody@example.com", password: "wrong-password-1" } });
        assert.equal(a.headers.get("cache-control"), "no-store", a.text);
      });
    });

    describe("CORS", () => {
      it("answers a preflight from an allowed origin without a JWT", async () => {
        const origin = allowedOrigins()[0];
        const a = await call(t, "OPTIONS", "/v1/users/me", {
          headers: { origin, "access-control-request-method": "GET", "access-control-request-headers": "authorization,content-type" },
        });
        expectStatus(a, 200);
        assert.equal(a.headers.get("access-control-allow-origin"), origin);
        assert.match(a.headers.get("access-control-allow-methods") ?? "", /GET/);
        assert.match(a.headers.get("access-control-allow-methods") ?? "", /PATCH/);
        assert.match(a.headers.get("access-control-allow-headers") ?? "", /authorization/);
        assert.match(a.headers.get("access-control-allow-headers") ?? "", /content-type/);
        assert.ok(Number(a.headers.get("access-control-max-age")) > 0);
      });

      it("exposes x-request-id and the rate-limit headers to allowed origins", async () => {
        const origin = allowedOrigins()[0];
        const a = await call(t, "GET", "/.well-known/jwks.json", { headers: { origin } });
        assert.equal(a.headers.get("access-control-allow-origin"), origin);
        const exposed = (a.headers.get("access-control-expose-headers") ?? "").split(/,\s*/);
        for (const h of ["x-request-id", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"]) assert.ok(exposed.includes(h), h);
      });

      it("gives other origins nothing", async () => {
        const a = await call(t, "OPTIONS", "/v1/users/me", { headers: { origin: "http://evil.example", "access-control-request-method": "GET" } });
        assert.equal(a.headers.get("access-control-allow-origin"), null);
        const b = await call(t, "GET", "/.well-known/jwks.json", { headers: { origin: "http://evil.example" } });
        assert.equal(b.headers.get("access-control-allow-origin"), null);
      });
    });

    describe("limits", () => {
      it("413 for a body larger than the limit", async () => {
        const body = JSON.stringify({ email: "x".repeat(maxBodyBytes() + 1), password: "x" });
        const a = await call(t, "POST", "/v1/auth/login", { body });
        expectLocalReply(a, 413, "request body too large");
      });
    });
  });
}
