// Conformance scenarios of the account-lifecycle routes (docs/accounts.md):
// verification, email change, password reset, the second factor and other
// sessions, each through the edge under test, with the mailed tokens read
// from the target's inbox (Mailpit behind Envoy, the .eml files of the
// embedded product). Merged into routes.test.ts's table.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { Secret, TOTP } from "otpauth";
import { tokenFromMail, type MailSource, type TokenLink } from "../../support/mail-token.js";
import { call, expectGrpcError, expectLocalReply, expectStatus, login, PASSWORD, register, type Answer, type Target, type User } from "./target.js";

const BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest";

/** The fields a 400 names (google.rpc.BadRequest). */
const fieldsOf = (a: Answer): string[] =>
  (a.json.details ?? []).filter((d: { "@type": string }) => d["@type"] === BAD_REQUEST).flatMap((d: { fieldViolations: { field: string }[] }) => d.fieldViolations.map((v) => v.field));

function expectFieldError(a: Answer, field: string, what: string): void {
  expectGrpcError(a, 400, Code.InvalidArgument, what);
  assert.ok(fieldsOf(a).includes(field), `${what}: ${field} named in ${a.text}`);
}

function mailOf(t: Target): MailSource {
  if (t.system) return { dataDir: t.system.dataDir };
  if (t.stack?.mailpitUrl) return { mailpitUrl: t.stack.mailpitUrl };
  throw new Error("this target's mail cannot be read (EDGE_URL)");
}

/** A TOTP code `steps` periods from now (each step is accepted once per account). */
const codeAt = (secret: string, steps: number) =>
  new TOTP({ secret: Secret.fromBase32(secret), digits: 6, period: 30, algorithm: "SHA1" }).generate({ timestamp: Date.now() + steps * 30_000 });

export function accountScenarios(t: () => Target, admin: () => User): Record<string, () => Promise<void>> {
  const mailed = (u: User, link: TokenLink) => tokenFromMail(mailOf(t()), u.email, link, t().embedded ? 20_000 : 60_000);
  const post = (path: string, body: unknown, token?: string) => call(t(), "POST", path, { token, body });
  const verified = async (tag: string) => {
    const u = await register(t(), tag);
    expectStatus(await post("/v1/auth/email/verify", { token: await mailed(u, "verify-email") }), 200, "verify");
    return u;
  };
  /** A user with TOTP on (enrolled and confirmed with the current code): its secret and recovery codes. */
  const withTotp = async (tag: string) => {
    const u = await register(t(), tag);
    const start = await post("/v1/auth/mfa/totp", { currentPassword: PASSWORD }, u.access);
    expectStatus(start, 200, "enrol");
    const confirm = await post("/v1/auth/mfa/totp/confirm", { code: codeAt(start.json.secret, 0) }, u.access);
    expectStatus(confirm, 200, "confirm");
    return { u, secret: start.json.secret as string, recovery: confirm.json.recoveryCodes as string[] };
  };

  return {
    "POST /v1/auth/email/verify": async () => {
      const u = await register(t(), "verify");
      const token = await mailed(u, "verify-email");
      const a = await post("/v1/auth/email/verify", { token });
      expectStatus(a, 200);
      assert.deepEqual(a.json, { email: u.email });
      const used = await post("/v1/auth/email/verify", { token });
      expectFieldError(used, "token", "a used token");
      const madeUp = await post("/v1/auth/email/verify", { token: "A".repeat(43) });
      expectFieldError(madeUp, "token", "a made-up token");
      assert.equal(madeUp.text, used.text, "one answer for every token that does not apply");
      // An unknown JSON field: the embedded edge refuses it; Envoy's transcoder drops it (docs/edges.md).
      const extra = await post("/v1/auth/email/verify", { token, extra: 1 });
      if (t().embedded) expectLocalReply(extra, 400, /extra/, "an unknown field");
      else expectFieldError(extra, "token", "an unknown field, dropped by Envoy");
    },

    "POST /v1/auth/email/verification": async () => {
      const u = await register(t(), "resend");
      const soon = await post("/v1/auth/email/verification", {}, u.access);
      expectGrpcError(soon, 429, Code.ResourceExhausted, "right after the registration's mail");
      assert.ok(Number(soon.headers.get("retry-after")) >= 1, "Retry-After");
      expectLocalReply(await post("/v1/auth/email/verification", {}), 401, undefined, "anonymous");
      const v = await verified("resent");
      const a = await post("/v1/auth/email/verification", {}, v.access);
      expectStatus(a, 200);
      assert.deepEqual(a.json, { status: "already_verified" });
    },

    "POST /v1/auth/email": async () => {
      const u = await register(t(), "change");
      expectFieldError(await post("/v1/auth/email", { newEmail: `new-${randomUUID()}@example.com`, currentPassword: "wrong password" }, u.access), "currentPassword", "a wrong password");
      expectFieldError(await post("/v1/auth/email", { newEmail: "not an address", currentPassword: PASSWORD }, u.access), "newEmail", "a bad address");
      expectLocalReply(await post("/v1/auth/email", { newEmail: "x@example.com", currentPassword: PASSWORD }), 401, undefined, "anonymous");
      const next = `moved-${randomUUID().slice(0, 8)}@example.com`;
      const a = await post("/v1/auth/email", { newEmail: next, currentPassword: PASSWORD }, u.access);
      expectStatus(a, 200);
      assert.deepEqual(a.json, { status: "pending" });
      const token = await mailed({ ...u, email: next }, "verify-email");
      const done = await post("/v1/auth/email/verify", { token });
      expectStatus(done, 200, "verify the new address");
      assert.deepEqual(done.json, { email: next });
      await login(t(), next, PASSWORD);
    },

    "POST /v1/auth/password/forgot": async () => {
      const u = await register(t(), "forgot");
      const known = await post("/v1/auth/password/forgot", { email: u.email });
      expectStatus(known, 200);
      assert.equal(known.headers.get("cache-control"), "no-store");
      assert.deepEqual(known.json, { status: "accepted" });
      const unknown = await post("/v1/auth/password/forgot", { email: `nobody-${randomUUID().slice(0, 8)}@example.com` });
      assert.deepEqual([unknown.status, unknown.text], [known.status, known.text], "the same for an unknown address");
      expectFieldError(await post("/v1/auth/password/forgot", { email: "not an address" }), "email", "a bad address");
    },

    "POST /v1/auth/password/reset": async () => {
      const u = await register(t(), "reset");
      expectStatus(await post("/v1/auth/password/forgot", { email: u.email }), 200, "forgot");
      const token = await mailed(u, "reset-password");
      expectFieldError(await post("/v1/auth/password/reset", { token, newPassword: "short" }), "newPassword", "a short password");
      const a = await post("/v1/auth/password/reset", { token, newPassword: "a brand new password" });
      expectStatus(a, 200);
      assert.deepEqual(a.json, {});
      expectFieldError(await post("/v1/auth/password/reset", { token, newPassword: "another new password" }), "token", "a used token");
      expectGrpcError(await post("/v1/auth/refresh", { refreshToken: u.refresh }), 401, Code.Unauthenticated, "the sessions before the reset");
      await login(t(), u.email, "a brand new password");
    },

    "POST /v1/auth/login/second-factor": async () => {
      const { u, secret, recovery } = await withTotp("2fa-login");
      const first = await post("/v1/auth/login", { email: u.email, password: PASSWORD });
      expectStatus(first, 200, "password step");
      assert.deepEqual(Object.keys(first.json), ["secondFactor"], "no user and no tokens before the second factor");
      assert.deepEqual(first.json.secondFactor.methods, ["totp", "recovery_code"]);
      assert.equal(typeof first.json.secondFactor.expiresIn, "number");
      expectFieldError(await post("/v1/auth/login/second-factor", { challenge: first.json.secondFactor.challenge, code: "12" }), "code", "a malformed code");
      const a = await post("/v1/auth/login/second-factor", { challenge: first.json.secondFactor.challenge, code: codeAt(secret, 1) });
      expectStatus(a, 200);
      assert.deepEqual(Object.keys(a.json).sort(), ["tokens", "user"]);
      assert.equal(a.json.user.id, u.id);
      expectGrpcError(await post("/v1/auth/login/second-factor", { challenge: first.json.secondFactor.challenge, code: codeAt(secret, 1) }), 401, Code.Unauthenticated, "a used challenge");
      const second = await post("/v1/auth/login", { email: u.email, password: PASSWORD });
      expectStatus(await post("/v1/auth/login/second-factor", { challenge: second.json.secondFactor.challenge, recoveryCode: recovery[0] }), 200, "a recovery code");
      expectGrpcError(await post("/v1/auth/login/second-factor", { challenge: "not-a-challenge", code: "123456" }), 401, Code.Unauthenticated, "a made-up challenge");
    },

    "GET /v1/auth/mfa": async () => {
      const fresh = await register(t(), "mfa-none");
      const none = await call(t(), "GET", "/v1/auth/mfa", { token: fresh.access });
      expectStatus(none, 200);
      assert.notEqual(none.json.totpEnabled, true);
      const { u } = await withTotp("mfa-on");
      const on = await call(t(), "GET", "/v1/auth/mfa", { token: u.access });
      expectStatus(on, 200);
      assert.equal(on.json.totpEnabled, true);
      assert.equal(on.json.recoveryCodesLeft, 10);
      expectLocalReply(await call(t(), "GET", "/v1/auth/mfa"), 401, undefined, "anonymous");
    },

    "POST /v1/auth/mfa/totp": async () => {
      const u = await register(t(), "enrol");
      expectFieldError(await post("/v1/auth/mfa/totp", { currentPassword: "wrong password" }, u.access), "currentPassword", "a wrong password");
      const a = await post("/v1/auth/mfa/totp", { currentPassword: PASSWORD }, u.access);
      expectStatus(a, 200);
      assert.deepEqual(Object.keys(a.json).sort(), ["expiresIn", "otpauthUri", "qrSvg", "secret"]);
      assert.match(a.json.otpauthUri, /^otpauth:\/\/totp\/.+secret=/);
      assert.match(a.json.qrSvg, /^<svg|<\?xml/);
      expectLocalReply(await post("/v1/auth/mfa/totp", { currentPassword: PASSWORD }), 401, undefined, "anonymous");
    },

    "POST /v1/auth/mfa/totp/confirm": async () => {
      const u = await register(t(), "confirm");
      const start = await post("/v1/auth/mfa/totp", { currentPassword: PASSWORD }, u.access);
      expectFieldError(await post("/v1/auth/mfa/totp/confirm", { code: "abc" }, u.access), "code", "a malformed code");
      const a = await post("/v1/auth/mfa/totp/confirm", { code: codeAt(start.json.secret, 0) }, u.access);
      expectStatus(a, 200);
      assert.equal(a.json.recoveryCodes.length, 10);
      assert.equal(new Set(a.json.recoveryCodes).size, 10);
    },

    "POST /v1/auth/mfa/totp/disable": async () => {
      const { u, recovery } = await withTotp("disable");
      expectFieldError(await post("/v1/auth/mfa/totp/disable", { code: "000000" }, u.access), "code", "a wrong code");
      const a = await post("/v1/auth/mfa/totp/disable", { recoveryCode: recovery[1] }, u.access);
      expectStatus(a, 200);
      assert.deepEqual(a.json, {});
      const after = await call(t(), "GET", "/v1/auth/mfa", { token: u.access });
      assert.notEqual(after.json.totpEnabled, true, "off");
    },

    "POST /v1/auth/mfa/recovery-codes": async () => {
      const { u, secret, recovery } = await withTotp("regen");
      const a = await post("/v1/auth/mfa/recovery-codes", { code: codeAt(secret, 1) }, u.access);
      expectStatus(a, 200);
      assert.equal(a.json.recoveryCodes.length, 10);
      assert.ok(!a.json.recoveryCodes.includes(recovery[0]), "new codes");
      const login1 = await post("/v1/auth/login", { email: u.email, password: PASSWORD });
      expectGrpcError(await post("/v1/auth/login/second-factor", { challenge: login1.json.secondFactor.challenge, recoveryCode: recovery[0] }), 401, Code.Unauthenticated, "an old recovery code");
    },

    "POST /v1/auth/users/{user_id}/mfa/reset": async () => {
      const { u } = await withTotp("admin-reset");
      expectGrpcError(await post(`/v1/auth/users/${u.id}/mfa/reset`, {}, u.access), 403, Code.PermissionDenied, "not an admin");
      const a = await post(`/v1/auth/users/${u.id}/mfa/reset`, {}, admin().access);
      expectStatus(a, 200);
      assert.deepEqual(a.json, {});
      const next = await post("/v1/auth/login", { email: u.email, password: PASSWORD });
      expectStatus(next, 200);
      assert.equal(typeof next.json.tokens?.accessToken, "string", "one step again");
      expectFieldError(await post("/v1/auth/users/not-a-uuid/mfa/reset", {}, admin().access), "userId", "a malformed id");
      expectGrpcError(await post(`/v1/auth/users/${randomUUID()}/mfa/reset`, {}, admin().access), 404, Code.NotFound, "an unknown user");
    },

    "POST /v1/auth/sessions/revoke-others": async () => {
      const u = await register(t(), "others");
      const other = await login(t(), u.email, PASSWORD);
      const a = await post("/v1/auth/sessions/revoke-others", {}, u.access);
      expectStatus(a, 200);
      assert.deepEqual(a.json, { revoked: 1 });
      expectGrpcError(await post("/v1/auth/refresh", { refreshToken: other.refresh }), 401, Code.Unauthenticated, "the other session");
      expectStatus(await call(t(), "GET", "/v1/auth/sessions", { token: u.access }), 200, "this session continues");
      expectLocalReply(await post("/v1/auth/sessions/revoke-others", {}), 401, undefined, "anonymous");
    },
  };
}
