// Refused tokens (the bad-token matrix) and service tokens (client credentials).
import { strict as assert } from "node:assert";
import { createHash, createHmac, generateKeyPairSync, sign } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { createVerifier, TokenError, type TokenVerifier } from "../../platform/auth/verifier.js";
import { loadSecrets, type Secrets } from "../../platform/secrets.js";
import { SERVICE_NAMES } from "../../app/services.js";
import { signJwt } from "../../services/auth/tokens.js";
import type { TestSystem } from "../support/system.js";
import { authModule, decodeJwt, query, register, rejectsWith, startAuthSystem } from "./helpers.js";

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

describe("auth: tokens", () => {
  let t: TestSystem;
  let secrets: Secrets;
  let verifier: TokenVerifier;
  before(async () => {
    t = await startAuthSystem();
    secrets = loadSecrets(t.dataDir, t.env, SERVICE_NAMES);
    verifier = createVerifier({
      issuer: "acme-auth",
      userAudience: "acme-api",
      serviceAudiences: ["acme-auth", "acme-user", "acme-order"],
      keys: authModule(t).keySource!,
      kv: t.system.kv,
    });
  });
  after(async () => t?.stop());

  const serviceToken = async (clientId: string, secret: string, audience: string) =>
    (await t.auth().issueServiceToken({ clientId, clientSecret: secret, audience })).accessToken;

  describe("bad-token matrix against a protected RPC (AuthService.ListSessions)", () => {
    const cases: { name: string; reason?: RegExp; make: () => Promise<string> | string }[] = [];
    let good: string;
    let claims: Record<string, unknown>;
    let kid: string;
    const now = () => Math.floor(Date.now() / 1000);
    const key = () => authModule(t).internals.keys.current();

    before(async () => {
      good = (await register(t)).access;
      ({ claims } = decodeJwt(good));
      kid = key().kid;
    });

    cases.push(
      { name: "alg none, empty signature", reason: /malformed/, make: () => `${b64({ alg: "none", typ: "at+jwt", kid })}.${b64(claims)}.` },
      { name: "alg none, some signature", reason: /algorithm not allowed/, make: () => `${b64({ alg: "none", typ: "at+jwt", kid })}.${b64(claims)}.AAAA` },
      {
        name: "HS256 signed with the public key (PEM) as the HMAC secret",
        reason: /algorithm not allowed/,
        make: () => {
          const input = `${b64({ alg: "HS256", typ: "at+jwt", kid })}.${b64(claims)}`;
          const pem = key().publicKey.export({ format: "pem", type: "spki" });
          return `${input}.${createHmac("sha256", pem).update(input).digest("base64url")}`;
        },
      },
      {
        name: "HS256 signed with the public JWK as the HMAC secret",
        reason: /algorithm not allowed/,
        make: () => {
          const input = `${b64({ alg: "HS256", typ: "at+jwt", kid })}.${b64(claims)}`;
          return `${input}.${createHmac("sha256", JSON.stringify(key().jwk)).update(input).digest("base64url")}`;
        },
      },
      {
        name: "unknown kid (signed by a key we never published)",
        reason: /unknown kid/,
        make: () => {
          const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
          const input = `${b64({ alg: "ES256", typ: "at+jwt", kid: "not-a-published-kid" })}.${b64(claims)}`;
          return `${input}.${sign("sha256", Buffer.from(input), { key: privateKey, dsaEncoding: "ieee-p1363" }).toString("base64url")}`;
        },
      },
      {
        name: "published kid, signed by another key",
        reason: /bad signature/,
        make: () => {
          const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
          const input = `${b64({ alg: "ES256", typ: "at+jwt", kid })}.${b64(claims)}`;
          return `${input}.${sign("sha256", Buffer.from(input), { key: privateKey, dsaEncoding: "ieee-p1363" }).toString("base64url")}`;
        },
      },
      { name: "missing kid", reason: /missing kid/, make: () => signJwt(key(), claims, { kid: undefined }) },
      { name: "wrong iss", reason: /wrong issuer/, make: () => signJwt(key(), { ...claims, iss: "https://evil.example" }) },
      { name: "wrong aud", reason: /wrong audience/, make: () => signJwt(key(), { ...claims, aud: "acme-other" }) },
      { name: "typ JWT instead of at+jwt", reason: /wrong typ/, make: () => signJwt(key(), claims, { typ: "JWT" }) },
      { name: "no typ", reason: /wrong typ/, make: () => signJwt(key(), claims, { typ: undefined }) },
      { name: "expired (beyond the 30 s skew)", reason: /expired/, make: () => signJwt(key(), { ...claims, iat: now() - 1000, nbf: now() - 1000, exp: now() - 60 }) },
      { name: "no exp", reason: /expired/, make: () => signJwt(key(), { ...claims, exp: undefined }) },
      { name: "not yet valid (nbf in an hour)", reason: /not yet valid/, make: () => signJwt(key(), { ...claims, nbf: now() + 3600 }) },
      { name: "issued in the future", reason: /bad iat/, make: () => signJwt(key(), { ...claims, iat: now() + 3600 }) },
      {
        name: "tampered payload (roles: admin), original signature",
        reason: /bad signature/,
        make: () => {
          const [h, , s] = good.split(".");
          return `${h}.${b64({ ...claims, roles: ["admin"] })}.${s}`;
        },
      },
      { name: "truncated signature", reason: /bad signature|malformed/, make: () => good.slice(0, -8) },
      { name: "truncated to two parts", reason: /malformed/, make: () => good.split(".").slice(0, 2).join(".") },
      { name: "10 KB header", reason: /too large/, make: () => signJwt(key(), claims, { pad: "x".repeat(10 * 1024) }) },
      { name: "user token without sid", reason: /missing sid/, make: () => signJwt(key(), { ...claims, sid: undefined }) },
      { name: "garbage", reason: /malformed/, make: () => "not.a.jwt!" },
    );

    it("the untouched token works (control)", async () => {
      const r = await t.auth(good).listSessions({});
      assert.equal(r.sessions.length, 1);
    });

    for (const c of cases) {
      it(`refuses: ${c.name}`, async () => {
        const token = await c.make();
        await rejectsWith(t.auth(token).listSessions({}), Code.Unauthenticated, "invalid access token");
        // The same token fails in the shared verifier for the intended reason, not by accident.
        await assert.rejects(verifier.verify(token), (e: unknown) => e instanceof TokenError && (!c.reason || c.reason.test(e.reason)));
      });
    }

    it("refuses a service token used as a user token (PERMISSION_DENIED)", async () => {
      const token = await serviceToken("user-service", secrets.clientSecrets.user, "acme-auth");
      await rejectsWith(t.auth(token).listSessions({}), Code.PermissionDenied);
      // Even when it asks for the user audience, a client cannot get one.
      await rejectsWith(t.auth().issueServiceToken({ clientId: "user-service", clientSecret: secrets.clientSecrets.user, audience: "acme-api" }), Code.PermissionDenied);
    });

    it("refuses a user token used as a service token (PERMISSION_DENIED)", async () => {
      await rejectsWith(t.authInternal(good).revokeUserSessions({ userId: String(claims.sub), reason: "x" }), Code.PermissionDenied);
      await rejectsWith(t.authInternal(good).deleteAccount({ userId: String(claims.sub) }), Code.PermissionDenied);
      // A forged "service" token needs our signature too.
      const forged = `${b64({ alg: "ES256", typ: "at+jwt", kid })}.${b64({ ...claims, client_id: "user-service", aud: "acme-auth", scope: "auth.sessions.revoke" })}.${good.split(".")[2]}`;
      await rejectsWith(t.authInternal(forged).revokeUserSessions({ userId: String(claims.sub) }), Code.Unauthenticated);
    });

    it("refuses a missing or malformed authorization header", async () => {
      await rejectsWith(t.auth().listSessions({}), Code.Unauthenticated);
      await rejectsWith(t.auth(`${good} extra`).listSessions({}), Code.Unauthenticated);
    });
  });

  describe("service tokens (IssueServiceToken)", () => {
    it("issues ES256 tokens with client_id, audience, the client's scopes and a rate limit", async () => {
      const r = await t.auth().issueServiceToken({ clientId: "user-service", clientSecret: secrets.clientSecrets.user, audience: "acme-order" });
      assert.equal(r.tokenType, "Bearer");
      assert.equal(r.expiresIn, 600);
      const { header, claims } = decodeJwt(r.accessToken);
      assert.equal(header.typ, "at+jwt");
      assert.equal(header.alg, "ES256");
      assert.equal(claims.client_id, "user-service");
      assert.equal(claims.sub, "user-service");
      assert.equal(claims.aud, "acme-order");
      assert.equal(claims.iss, "acme-auth");
      assert.equal(claims.scope, "auth.sessions.revoke auth.accounts.delete orders.owner.mark");
      assert.equal(typeof claims.rate_limit, "number");
      assert.ok(Number(claims.rate_limit) > 0);
      assert.ok(!("sid" in claims) && !("roles" in claims));
      const p = await verifier.verify(r.accessToken);
      assert.ok(p.kind === "service" && p.clientId === "user-service");
    });

    it("gives each built-in client exactly its audiences", async () => {
      const allowed: [string, string, string[]][] = [
        ["auth-service", secrets.clientSecrets.auth, ["acme-user"]],
        ["user-service", secrets.clientSecrets.user, ["acme-auth", "acme-order"]],
        ["order-service", secrets.clientSecrets.order, ["acme-user", "acme-catalogue"]],
      ];
      for (const [clientId, secret, auds] of allowed) {
        for (const aud of ["acme-auth", "acme-user", "acme-order", "acme-catalogue"]) {
          const call = t.auth().issueServiceToken({ clientId, clientSecret: secret, audience: aud });
          if (auds.includes(aud)) assert.equal(decodeJwt((await call).accessToken).claims.aud, aud);
          else await rejectsWith(call, Code.PermissionDenied, "audience not allowed for this client");
        }
      }
      const order = decodeJwt(await serviceToken("order-service", secrets.clientSecrets.order, "acme-user")).claims;
      assert.equal(order.scope, "users.check catalogue.reserve");
    });

    it("refuses a wrong secret and an unknown client with the same UNAUTHENTICATED", async () => {
      const a = await rejectsWith(t.auth().issueServiceToken({ clientId: "user-service", clientSecret: secrets.clientSecrets.order, audience: "acme-auth" }), Code.Unauthenticated);
      const b = await rejectsWith(t.auth().issueServiceToken({ clientId: "nobody-service", clientSecret: secrets.clientSecrets.user, audience: "acme-auth" }), Code.Unauthenticated);
      const c = await rejectsWith(t.auth().issueServiceToken({ clientId: "", clientSecret: "", audience: "acme-auth" }), Code.Unauthenticated);
      assert.equal(a.rawMessage, b.rawMessage);
      assert.equal(b.rawMessage, c.rawMessage);
      const refused = await query<{ reason: string }>(t, "select reason from auth.auth_events where type = 'token_refused'");
      assert.ok(refused.length >= 3);
    });

    it("stores only a SHA-256 of each secret", async () => {
      const rows = await query<{ client_id: string; secret_hash: Buffer }>(t, "select client_id, secret_hash from auth.service_clients order by client_id");
      assert.deepEqual(rows.map((r) => r.client_id), ["auth-service", "catalogue-service", "notification-service", "order-service", "user-service"]);
      const byName = {
        "auth-service": secrets.clientSecrets.auth,
        "catalogue-service": secrets.clientSecrets.catalogue,
        "notification-service": secrets.clientSecrets.notification,
        "order-service": secrets.clientSecrets.order,
        "user-service": secrets.clientSecrets.user,
      } as Record<string, string>;
      for (const r of rows) {
        assert.deepEqual(Buffer.from(r.secret_hash), createHash("sha256").update(byName[r.client_id]).digest());
      }
      const dump = JSON.stringify(await query(t, "select * from auth.service_clients"));
      for (const s of Object.values(byName)) assert.ok(!dump.includes(s));
    });

    it("service tokens open exactly the RPCs whose policy names one of their scopes, at their audience", async () => {
      const r = await register(t);
      const userSvc = await serviceToken("user-service", secrets.clientSecrets.user, "acme-auth");
      assert.equal((await t.authInternal(userSvc).revokeUserSessions({ userId: r.user.id, reason: "test" })).revoked, 1);
      // order-service holds only users.check: CheckUser's scope.
      const orderSvc = await serviceToken("order-service", secrets.clientSecrets.order, "acme-user");
      assert.equal((await t.usersInternal(orderSvc).checkUser({ userId: r.user.id })).exists, true);
      await rejectsWith(t.usersInternal(orderSvc).createProfile({ userId: r.user.id, email: "x@y.z", name: "x" }), Code.PermissionDenied);
      await rejectsWith(t.authInternal(orderSvc).revokeUserSessions({ userId: r.user.id }), Code.PermissionDenied);
      // The auth service's own token (minted in process) may create profiles, and nothing in auth.
      const authSvc = await authModule(t).internals.tokens.token("acme-user");
      assert.equal(decodeJwt(authSvc).claims.scope, "users.profiles.create users.check");
      assert.equal((await t.usersInternal(authSvc).checkUser({ userId: r.user.id })).exists, true);
      const err = await t.authInternal(authSvc).revokeUserSessions({ userId: r.user.id }).catch((e) => ConnectError.from(e));
      assert.ok(err instanceof ConnectError && err.code === Code.PermissionDenied);
    });
  });
});
