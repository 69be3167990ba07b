// gRPC, gRPC-Web and Connect calls on the edge's port: the same header
// hygiene and the same rate-limit counters as REST (fake services, fixed clock).
import { strict as assert } from "node:assert";
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { AuthService } from "../../gen/acme/auth/v1/auth_pb.js";
import { UserService } from "../../gen/acme/user/v1/user_pb.js";
import { signToken, startEdgeServer, testKeys, type EdgeServer } from "./support.js";

const NOW = Math.floor(Date.now() / 1000);

/** The JSON body of every edge-local 429 (edge/errors.ts LOCAL_REPLIES: RESOURCE_EXHAUSTED, the table's message). */
const RATE_LIMITED = { code: 8, message: "rate limit exceeded" };

/** A REST refusal by the rate limiter: 429 with the JSON local reply. */
async function assertRateLimited(res: Response) {
  assert.equal(res.status, 429);
  assert.equal(res.headers.get("content-type"), "application/json");
  assert.deepEqual(await res.json(), RATE_LIMITED);
}

const headers = (h: Record<string, string>): Interceptor[] => [
  (next) => (req) => {
    for (const [k, v] of Object.entries(h)) req.header.set(k, v);
    return next(req);
  },
];

const transports: Record<string, (baseUrl: string, h: Record<string, string>) => Transport> = {
  grpc: (baseUrl, h) => createGrpcTransport({ baseUrl, interceptors: headers(h) }),
  "grpc-web": (baseUrl, h) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors: headers(h) }),
  connect: (baseUrl, h) => createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors: headers(h) }),
};

describe("edge RPC interceptor (fake services)", () => {
  describe("header hygiene", () => {
    let s: EdgeServer;
    before(async () => (s = await startEdgeServer({ now: () => NOW })));
    after(async () => s?.stop());

    for (const [protocol, make] of Object.entries(transports)) {
      it(`strips edge-only headers and sets the client address (${protocol})`, async () => {
        const users = createClient(
          UserService,
          make(s.url, {
            authorization: `Bearer ${s.token({ sub: "u-7" })}`,
            "x-envoy-external-address": "6.6.6.6",
            "x-forwarded-for": "6.6.6.6",
            "x-jwt-payload": "e30",
            "x-request-id": "rpc-req-1",
          }),
        );
        let responseHeader: Headers | undefined;
        const res = await users.getMe({}, { onHeader: (h) => (responseHeader = h) });
        assert.equal(res.user?.id, "u-7");
        const seen = s.calls[s.calls.length - 1];
        assert.equal(seen.clientIp, "127.0.0.1");
        assert.equal(seen.headers["x-envoy-external-address"], "127.0.0.1");
        assert.equal(seen.headers["x-forwarded-for"], undefined);
        assert.equal(seen.headers["x-jwt-payload"], undefined);
        assert.equal(seen.headers["x-request-id"], "rpc-req-1");
        assert.equal(responseHeader?.get("x-request-id"), "rpc-req-1");
        assert.equal(responseHeader?.get("x-content-type-options"), "nosniff");
        assert.match(responseHeader?.get("x-ratelimit-limit") ?? "", /;w=/);
      });
    }
  });

  const limited = (yaml: string) => {
    const ctx = { s: undefined as unknown as EdgeServer };
    before(async () => (ctx.s = await startEdgeServer({ now: () => NOW, rateLimitYaml: `domain: acme\ndescriptors:\n${yaml}` })));
    after(async () => ctx.s?.stop());
    return ctx;
  };
  const refusal = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );

  describe("per-user limits, shared with REST", () => {
    const ctx = limited(`
  - key: remote_address
    rate_limit: { unit: hour, requests_per_unit: 1000 }
  - key: user_per_second
    rate_limit: { unit: second, requests_per_unit: 2 }
`);

    it("counts a user's REST, gRPC, gRPC-Web and Connect calls together, and refuses with RESOURCE_EXHAUSTED", async () => {
      const { s } = ctx;
      const token = s.token({ sub: "u-rl" });
      const rest = await fetch(`${s.url}/v1/users/me`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(rest.status, 200);
      assert.equal(rest.headers.get("x-ratelimit-remaining"), "1");
      await createClient(UserService, transports.grpc(s.url, { authorization: `Bearer ${token}` })).getMe({});
      for (const protocol of ["grpc", "grpc-web", "connect"]) {
        const users = createClient(UserService, transports[protocol](s.url, { authorization: `Bearer ${token}` }));
        const err = await refusal(users.getMe({}));
        assert.ok(err, `${protocol}: expected a refusal`);
        assert.equal(err.code, Code.ResourceExhausted, protocol);
        assert.equal(err.rawMessage, RATE_LIMITED.message, `${protocol}: the same message as the REST body`);
        assert.equal(err.metadata.get("x-ratelimit-remaining"), "0", protocol);
        assert.equal(err.metadata.get("x-ratelimit-limit"), "2, 1000;w=3600, 2;w=1", protocol);
        assert.equal(err.metadata.get("retry-after"), "1", protocol);
      }
      const refused = await fetch(`${s.url}/v1/orders`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(refused.headers.get("x-ratelimit-remaining"), "0");
      assert.equal(refused.headers.get("retry-after"), "1");
      assert.equal(refused.headers.get("x-envoy-ratelimited"), "true");
      await assertRateLimited(refused);
      assert.equal(await s.kv.get(`acme_user_per_second_u-rl_${NOW}`), "6");
      // Another user is not limited by this one.
      const other = await fetch(`${s.url}/v1/users/me`, { headers: { authorization: `Bearer ${s.token({ sub: "u-other" })}` } });
      assert.equal(other.status, 200);
    });

    it("adds no per-user descriptor for a token that does not verify (the service refuses the call)", async () => {
      const { s } = ctx;
      const forged = signToken(testKeys(s.keys.kid), { sub: "u-forged" });
      const users = createClient(UserService, transports.grpc(s.url, { authorization: `Bearer ${forged}` }));
      for (let i = 0; i < 3; i++) assert.equal((await refusal(users.getMe({})))?.code, Code.Unauthenticated);
      assert.equal(await s.kv.get(`acme_user_per_second_u-forged_${NOW}`), null);
    });
  });

  describe("rate class limits", () => {
    const ctx = limited(`
  - key: remote_address
    rate_limit: { unit: hour, requests_per_unit: 1000 }
  - key: user_per_second
    rate_limit: { unit: second, requests_per_unit: 1000 }
  - key: rate_class
    value: auth
    descriptors:
      - key: remote_address
        rate_limit: { unit: minute, requests_per_unit: 1 }
`);

    it("limits the auth class per IP on gRPC and REST alike; public RPCs get no per-user descriptor", async () => {
      const { s } = ctx;
      const auth = createClient(AuthService, transports.connect(s.url, { authorization: `Bearer ${s.token({ sub: "u-auth" })}` }));
      await auth.login({ email: "a@b.c", password: "x" });
      assert.equal((await refusal(auth.login({ email: "a@b.c", password: "x" })))?.code, Code.ResourceExhausted);
      const rest = await fetch(`${s.url}/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
      assert.equal(rest.headers.get("x-ratelimit-limit"), "1, 1000;w=3600, 1;w=60");
      await assertRateLimited(rest);
      assert.equal(await s.kv.get(`acme_rate_class_auth_remote_address_127.0.0.1_${Math.floor(NOW / 60) * 60}`), "3");
      assert.equal(await s.kv.get(`acme_user_per_second_u-auth_${NOW}`), null);
      // Other RPCs are not in the class.
      assert.equal((await fetch(`${s.url}/v1/users/me`, { headers: { authorization: `Bearer ${s.token()}` } })).status, 200);
    });
  });

  describe("per-IP backstop", () => {
    const ctx = limited(`
  - key: remote_address
    rate_limit: { unit: hour, requests_per_unit: 3 }
`);

    it("counts every routed call by client IP whatever the protocol", async () => {
      const { s } = ctx;
      const token = s.token();
      assert.equal((await fetch(`${s.url}/v1/users/me`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
      await createClient(UserService, transports["grpc-web"](s.url, { authorization: `Bearer ${token}` })).getMe({});
      await createClient(UserService, transports.connect(s.url, { authorization: `Bearer ${token}` })).getMe({});
      const err = await refusal(createClient(UserService, transports.grpc(s.url, { authorization: `Bearer ${token}` })).getMe({}));
      assert.equal(err?.code, Code.ResourceExhausted);
      const rest = await fetch(`${s.url}/.well-known/jwks.json`);
      assert.equal(rest.headers.get("x-ratelimit-limit"), "3, 3;w=3600");
      await assertRateLimited(rest);
      assert.equal(await s.kv.get(`acme_remote_address_127.0.0.1_${Math.floor(NOW / 3600) * 3600}`), "5");
    });
  });
});
