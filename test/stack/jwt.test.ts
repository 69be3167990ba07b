// JWT at the real Envoy: jwt_authn fed by the auth service's real JWKS endpoint
// refuses the bad-token matrix before any service sees it; signing keys rotate
// with an overlap and a retired key is refused after Envoy's JWKS refresh; Envoy
// keeps serving tokens it trusts while the auth service restarts.
import { strict as assert } from "node:assert";
import { createHmac, generateKeyPairSync, sign } from "node:crypto";
import pg from "pg";
import { signJwt } from "../../services/auth/tokens.js";
import { GENEROUS_LIMITS, tempRateLimitConfig } from "../edge/support.js";
import { startEdgeStack, type EdgeStack } from "../support/edge-stack.js";
import { eventually, rest, stackKeys } from "./support.js";

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);
const kidOf = (token: string) => JSON.parse(Buffer.from(token.split(".")[0], "base64url").toString()).kid as string;
const PASSWORD = "stack-jwt-password-1";

describe("real edge: JWT at Envoy", function () {
  this.timeout(120_000);
  let stack: EdgeStack;
  let keys: Awaited<ReturnType<typeof stackKeys>>;
  let good: string;
  let claims: Record<string, unknown>;
  const me = (token: string) => rest(stack.edgeUrl, "GET", "/v1/users/me", { token });
  const login = async (email: string) => {
    const a = await rest(stack.edgeUrl, "POST", "/v1/auth/login", { body: { email, password: PASSWORD } });
    assert.equal(a.status, 200, a.text);
    return a.body.tokens.accessToken as string;
  };

  // Keys: the auth service re-reads them every second and publishes a new one 3 s before it
  // signs; Envoy refetches the JWKS every 2 s.
  const KEY_ENV = { KEY_CHECK_SECONDS: "1", JWKS_MAX_AGE_SECONDS: "1", KEY_PUBLISH_AHEAD_SECONDS: "3" };

  before(async () => {
    // Generous limits: the test logs the same user in and calls as them many times a second.
    const rl = tempRateLimitConfig(GENEROUS_LIMITS);
    stack = await startEdgeStack({
      ratelimitConfig: rl.path,
      env: KEY_ENV,
      edge: (s) => ({ ...s, jwt: { ...s.jwt, jwks_cache_duration: "2s" } }),
    });
    rl.remove(); // the stack keeps the config's text
    const reg = await rest(stack.edgeUrl, "POST", "/v1/auth/register", { body: { email: "jwt-owner@example.com", password: PASSWORD, name: "Jwt Owner" } });
    assert.equal(reg.status, 200, reg.text);
    const login = await rest(stack.edgeUrl, "POST", "/v1/auth/login", { body: { email: "jwt-owner@example.com", password: PASSWORD } });
    assert.equal(login.status, 200, login.text);
    good = login.body.tokens.accessToken;
    claims = JSON.parse(Buffer.from(good.split(".")[1], "base64url").toString());
    keys = await stackKeys(stack, KEY_ENV);
  });
  after(async () => {
    await keys?.close();
    await stack?.close();
  });

  /** Refused by Envoy itself: 401 in the JSON error shape with jwt_authn's reason, never the service's. */
  function refusedByEnvoy(a: Awaited<ReturnType<typeof me>>, what: string, reason?: RegExp, status = 401) {
    assert.equal(a.status, status, `${what}: ${a.status} ${a.text}`);
    assert.equal(a.body?.code, status === 403 ? 7 : 16, `${what}: ${a.text}`);
    assert.notEqual(a.body?.message, "invalid access token", `${what}: reached the service (its message), not refused by Envoy`);
    assert.equal(a.body?.details, undefined, `${what}: a service error has details`);
    assert.match(a.headers.get("www-authenticate") ?? "", /^Bearer realm=".*\/v1\/users\/me", error="invalid_token"$/, what);
    if (reason) assert.match(a.body.message, reason, what);
  }

  it("accepts the untouched token (control)", async () => {
    const a = await me(good);
    assert.equal(a.status, 200, a.text);
    assert.equal(a.body.user.email, "jwt-owner@example.com");
  });

  const matrix: { name: string; reason?: RegExp; status?: number; make: () => string | Promise<string> }[] = [
    { name: "alg none, empty signature", make: () => `${b64({ alg: "none", typ: "at+jwt", kid: kidOf(good) })}.${b64(claims)}.` },
    { name: "alg none, some signature", make: () => `${b64({ alg: "none", typ: "at+jwt", kid: kidOf(good) })}.${b64(claims)}.AAAA` },
    {
      name: "HS256 signed with the public key (PEM) as the HMAC secret",
      make: () => {
        const input = `${b64({ alg: "HS256", typ: "at+jwt", kid: kidOf(good) })}.${b64(claims)}`;
        const pem = keys.current().publicKey.export({ format: "pem", type: "spki" });
        return `${input}.${createHmac("sha256", pem).update(input).digest("base64url")}`;
      },
    },
    {
      name: "unknown kid (a key never published)",
      reason: /Jwks doesn't have key to match kid or alg from Jwt/,
      make: () => {
        const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
        const input = `${b64({ alg: "ES256", typ: "at+jwt", kid: "not-a-published-kid" })}.${b64(claims)}`;
        return `${input}.${sign("sha256", Buffer.from(input), { key: privateKey, dsaEncoding: "ieee-p1363" }).toString("base64url")}`;
      },
    },
    { name: "wrong iss", reason: /issuer/i, make: () => signJwt(keys.current(), { ...claims, iss: "https://evil.example" }) },
    // jwt_authn answers a token for another audience with 403 (PERMISSION_DENIED), as the embedded edge.
    { name: "wrong aud", reason: /Audiences in Jwt are not allowed/, status: 403, make: () => signJwt(keys.current(), { ...claims, aud: "acme-other" }) },
    { name: "expired (beyond the 30 s skew)", reason: /Jwt is expired/, make: () => signJwt(keys.current(), { ...claims, iat: now() - 1000, nbf: now() - 1000, exp: now() - 120 }) },
    { name: "no exp (require_expiration)", make: () => signJwt(keys.current(), { ...claims, exp: undefined }) },
    { name: "not yet valid (nbf in an hour)", reason: /Jwt not yet valid/, make: () => signJwt(keys.current(), { ...claims, nbf: now() + 3600 }) },
    {
      name: "tampered payload (roles: admin), original signature",
      reason: /Jwt verification fails/,
      make: () => {
        const [h, , s] = good.split(".");
        return `${h}.${b64({ ...claims, roles: ["admin"] })}.${s}`;
      },
    },
    { name: "truncated to two parts", make: () => good.split(".").slice(0, 2).join(".") },
  ];

  for (const c of matrix) {
    it(`refuses at Envoy: ${c.name}`, async () => refusedByEnvoy(await me(await c.make()), c.name, c.reason, c.status));
  }

  it("refuses an oversized token at Envoy (431: request headers over max_request_headers_kb)", async () => {
    const token = await signJwt(keys.current(), claims, { pad: "x".repeat(stack.settings.max_request_headers_kb * 1024) });
    const a = await me(token);
    assert.equal(a.status, 431, a.text);
    assert.deepEqual(a.body, { code: 8, message: "request headers too large" });
  });

  it("passes a token Envoy accepts but the service refuses (typ JWT): the service's 401, zero trust", async () => {
    const a = await me(await signJwt(keys.current(), claims, { typ: "JWT" }));
    assert.equal(a.status, 401, a.text);
    assert.equal(a.body.message, "invalid access token", "refused by the user service behind Envoy");
  });

  it("rotates keys: the new key is published before it signs, old tokens stay valid, a retired key is refused after Envoy's JWKS refresh", async () => {
    const oldKid = kidOf(good);
    const oldKey = keys.current();
    assert.equal(oldKey.kid, oldKid);
    const newKid = await keys.keys.rotate();
    assert.notEqual(newKid, oldKid);
    // The auth service signs with the new key once it activates (3 s), and Envoy already has it.
    const fresh = await eventually(async () => {
      const t = await login("jwt-owner@example.com");
      return kidOf(t) === newKid ? t : undefined;
    }, "a token signed with the new key", 20_000);
    const onNew = await me(fresh);
    assert.equal(onNew.status, 200, `new key at Envoy: ${onNew.text}`);
    assert.equal((await me(good)).status, 200, "a token of the old key during the overlap");

    // Retire the old key as its schedule would once its last tokens expired: the auth service stops
    // publishing it, and after Envoy's next JWKS fetch a token signed with it is refused by Envoy.
    // A token of the old key that Envoy verifies (and so remembers: jwt_cache_config) before
    // the key goes.
    const seenBefore = await signJwt(oldKey, { ...claims, jti: "verified-before-retirement" });
    assert.equal((await me(seenBefore)).status, 200);
    const db = new pg.Client(stack.databaseUrl);
    await db.connect();
    try {
      await db.query("update auth.signing_keys set retires_at = now() - interval '1 hour', expires_at = now() - interval '1 second' where kid = $1", [oldKid]);
    } finally {
      await db.end();
    }
    await eventually(async () => {
      const jwks = await rest(stack.serviceUrl("auth"), "GET", "/.well-known/jwks.json");
      return !jwks.body.keys.some((k: { kid: string }) => k.kid === oldKid);
    }, "the auth service drops the retired key from its JWKS");
    // Each try a token Envoy has not seen: refused by jwt_authn once its JWKS refresh dropped the key.
    let n = 0;
    const refused = await eventually(async () => {
      const a = await me(await signJwt(oldKey, { ...claims, jti: `after-retirement-${n++}` }));
      return a.status === 401 && a.body?.message !== "invalid access token" ? a : undefined;
    }, "Envoy refuses the retired key after its JWKS refresh", 15_000);
    refusedByEnvoy(refused, "retired key", /Jwks doesn't have key to match kid or alg from Jwt/);
    // The token Envoy verified before may still pass Envoy (its verified-token cache keeps a token
    // until it expires, seen with Envoy 1.40), but the service behind refuses it: the services
    // verify every token again, so it is refused by one layer or the other.
    const cached = await eventually(async () => {
      const a = await me(seenBefore);
      return a.status === 401 ? a : undefined;
    }, "the retired key's token Envoy remembers is refused");
    assert.match(cached.body.message, /^(invalid access token|Jwks doesn't have key to match kid or alg from Jwt)$/, cached.text);
    assert.equal((await me(fresh)).status, 200, "the new key still works");
  });

  it("keeps serving tokens it trusts while the auth service is down, and logins come back with it", async () => {
    const token = await login("jwt-owner@example.com");
    assert.equal((await me(token)).status, 200);
    await stack.stop("auth");
    try {
      // Longer than Envoy's JWKS cache (2 s): its refetches fail meanwhile.
      for (let i = 0; i < 5; i++) {
        const a = await me(token);
        assert.equal(a.status, 200, `while auth is down (${i}): ${a.text}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
      const login503 = await rest(stack.edgeUrl, "POST", "/v1/auth/login", { body: { email: "jwt-owner@example.com", password: PASSWORD } });
      assert.equal(login503.status, 503, `login while auth is down: ${login503.text}`);
      assert.equal(login503.body.code, 14);
    } finally {
      await stack.start("auth");
    }
    await eventually(async () => (await rest(stack.edgeUrl, "POST", "/v1/auth/login", { body: { email: "jwt-owner@example.com", password: PASSWORD } })).status === 200,
      "logins through Envoy once auth is back", 20_000);
  });
});

