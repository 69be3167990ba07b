// One JSON error body for every error a client can see, whichever edge and
// whichever layer refused: {"code": <google.rpc.Code>, "message": "..."} (plus
// "details" from a service), content-type application/json. Table-driven, run
// through each edge; the same case gives the same status and code on both.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { freePort } from "../../support/servers.js";
import { startTestSystem } from "../../support/system.js";
import { call, EDGE_KINDS, maxBodyBytes, register, startTarget, type Answer, type Target } from "./target.js";

interface ErrorCase {
  name: string;
  status: number;
  code: Code;
  /** The message, when both edges must say exactly the same. */
  message?: string | RegExp;
  /** The rate-limit config of the target (default: generous). */
  rateLimitYaml?: string;
  request(t: Target): Promise<Answer>;
}

const ONE_PER_MINUTE = `
domain: acme
descriptors:
  - key: remote_address
    rate_limit: { unit: minute, requests_per_unit: 1 }
`;

/** REST calls while the order service cannot be reached (`fn` gets the edge to call). */
async function withOrderServiceDown(t: Target, fn: (edge: Target) => Promise<Answer>): Promise<Answer> {
  if (t.stack) {
    await t.stack.stop("order");
    try {
      return await fn(t);
    } finally {
      await t.stack.start("order");
    }
  }
  // The embedded edge in front of auth and user, with the order service at a closed port.
  const down = await startTestSystem({ services: ["auth", "user"], env: { ORDER_URL: `http://127.0.0.1:${await freePort()}` } });
  try {
    return await fn({ ...t, url: down.url });
  } finally {
    await down.stop();
  }
}

const CASES: ErrorCase[] = [
  {
    name: "jwt_authn: no token",
    status: 401, code: Code.Unauthenticated, message: "Jwt is missing",
    request: (t) => call(t, "GET", "/v1/users/me"),
  },
  {
    name: "jwt_authn: a token that is not a JWT",
    status: 401, code: Code.Unauthenticated, message: "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
    request: (t) => call(t, "GET", "/v1/users/me", { token: "not-a-jwt" }),
  },
  {
    name: "no route",
    status: 404, code: Code.NotFound, message: "no route matches this path",
    request: (t) => call(t, "GET", "/v1/nowhere/at/all"),
  },
  {
    name: "malformed JSON",
    status: 400, code: Code.InvalidArgument,
    request: (t) => call(t, "POST", "/v1/auth/login", { body: '{"email": "a@example.com", "password": ' }),
  },
  {
    name: "a JSON field of the wrong type",
    status: 400, code: Code.InvalidArgument,
    request: (t) => call(t, "POST", "/v1/auth/login", { body: { email: 42, password: ["x"] } }),
  },
  {
    name: "an unknown query parameter",
    status: 400, code: Code.InvalidArgument, message: /colour/,
    request: (t) => call(t, "GET", "/.well-known/jwks.json?colour=red"),
  },
  {
    name: "a JSON body sent as text/plain (no CORS preflight for it in a browser)",
    status: 415, code: Code.InvalidArgument, message: /text\/plain/,
    request: (t) => call(t, "POST", "/v1/auth/login", { body: '{"email":"a@example.com","password":"x"}', headers: { "content-type": "text/plain" } }),
  },
  {
    name: "body too large",
    status: 413, code: Code.ResourceExhausted, message: "request body too large",
    request: (t) => call(t, "POST", "/v1/auth/login", { body: JSON.stringify({ email: "x".repeat(maxBodyBytes() + 1), password: "x" }) }),
  },
  {
    name: "rate limited",
    status: 429, code: Code.ResourceExhausted, message: "rate limit exceeded", rateLimitYaml: ONE_PER_MINUTE,
    request: async (t) => {
      let last: Answer | undefined;
      for (let i = 0; i < 3; i++) last = await call(t, "GET", "/.well-known/jwks.json", { waitForQuota: false });
      return last!;
    },
  },
  {
    name: "a service's error (convert_grpc_status): an order that does not exist",
    status: 404, code: Code.NotFound,
    request: async (t) => call(t, "GET", `/v1/orders/${randomUUID()}`, { token: (await register(t, "errors")).access }),
  },
  {
    name: "a service's validation error, with details",
    status: 400, code: Code.InvalidArgument,
    request: (t) => call(t, "POST", "/v1/auth/register", { body: { email: "not-an-email", password: "short" } }),
  },
  {
    name: "upstream down",
    status: 503, code: Code.Unavailable,
    request: (t) =>
      withOrderServiceDown(t, async (edge) => {
        const user = await register(edge, "down");
        return call(edge, "POST", "/v1/orders", { token: user.access, body: { lines: [{ productId: randomUUID(), quantity: 1 }], requestId: randomUUID() } });
      }),
  },
];

for (const kind of EDGE_KINDS) {
  describe(`edge conformance (${kind}): one JSON error body`, function () {
    this.timeout(120_000);
    for (const c of CASES) {
      it(`${c.name}: ${c.status}, ${Code[c.code]}`, async () => {
        const t = await startTarget(kind, c.rateLimitYaml ? { rateLimitYaml: c.rateLimitYaml } : {});
        try {
          const a = await c.request(t);
          assert.equal(a.status, c.status, `${c.name}: ${a.status} ${a.text.slice(0, 300)}`);
          assert.match(a.headers.get("content-type") ?? "", /^application\/json/, `${c.name}: content-type`);
          assert.ok(a.json && typeof a.json === "object", `${c.name}: a JSON object, got ${a.text.slice(0, 200)}`);
          const extra = Object.keys(a.json).filter((k) => !["code", "message", "details"].includes(k));
          assert.deepEqual(extra, [], `${c.name}: only code, message and details: ${a.text}`);
          assert.equal(a.json.code, c.code, `${c.name}: code in ${a.text}`);
          assert.equal(typeof a.json.message, "string", c.name);
          assert.ok(a.json.message.length > 0, `${c.name}: a message`);
          if (typeof c.message === "string") assert.equal(a.json.message, c.message);
          else if (c.message) assert.match(a.json.message, c.message);
          if (a.json.details !== undefined) {
            assert.ok(Array.isArray(a.json.details), c.name);
            for (const d of a.json.details) assert.match(d["@type"], /^type\.googleapis\.com\//, c.name);
          }
          assert.doesNotMatch(a.text, /\bat \S+ \(|node_modules|\.ts:\d+/, `${c.name}: no stack trace`);
        } finally {
          await t.stop();
        }
      });
    }
  });
}
