// Two-factor login with TOTP (RFC 6238) and recovery codes (issue 18): enrol,
// confirm, the two-step login, the replay guard (a code is never accepted
// twice), wrong codes counted against the challenge and the sign-in
// throttles, recovery codes single use, disable, regenerate, the admin reset,
// the REST error shape. Codes are made with otpauth from the returned secret,
// at the auth service's clock (moved forward instead of sleeping).
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { fromBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { Secret, TOTP } from "otpauth";
import { EnvelopeSchema } from "../../gen/acme/events/v1/events_pb.js";
import { THROTTLED } from "../../services/auth/throttled.js";
import { INVALID_CHALLENGE, INVALID_CODE } from "../../services/auth/mfa/login.js";
import { GENEROUS_LIMITS, tempRateLimitConfig } from "../edge/support.js";
import { rest } from "../support/http.js";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { authFrom, authModule, email, freshIp, login, PASSWORD, query, register, rejectsWith, startAuthSystem, violations } from "./helpers.js";

const ADMIN_PASSWORD = "first admin password";
const STEP_MS = 30_000;

/** A code of `secret` at the service's time plus `steps` time steps. */
function codeAt(t: TestSystem, secret: string, steps = 0): string {
  return TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: authModule(t).internals.clock.now() + steps * STEP_MS });
}

/** Six digits that are no code of `secret` anywhere near now. */
function wrongCode(t: TestSystem, secret: string): string {
  const near = new Set([-2, -1, 0, 1, 2].map((s) => codeAt(t, secret, s)));
  for (let n = 123456; ; n = (n + 1) % 1_000_000) if (!near.has(String(n).padStart(6, "0"))) return String(n).padStart(6, "0");
}

/** What the second factor of a user is in the database (to show that refused calls change nothing). */
async function factorRows(t: TestSystem, userId: string) {
  const totp = await query(t, "select encode(secret_enc, 'hex') s, confirmed_at, last_step from auth.totp where user_id = $1", [userId]);
  const codes = await query(t, "select encode(code_hash, 'hex') h, used_at from auth.recovery_codes where user_id = $1 order by 1", [userId]);
  return JSON.stringify({ totp, codes });
}

/** SecondFactorChanged events of a user, in order: their `change`. */
async function changes(t: TestSystem, userId: string): Promise<string[]> {
  const rows = await query<{ body: Uint8Array }>(t, "select body from auth.outbox where aggregate_id = $1 and routing_key = 'user.second_factor_changed' order by seq", [userId]);
  return rows.map((r) => {
    const e = fromBinary(EnvelopeSchema, r.body).event;
    assert.equal(e.case, "secondFactorChanged");
    return e.value.change;
  });
}

describe("auth: second factor (TOTP, recovery codes)", function () {
  this.timeout(60_000);
  let t: TestSystem;
  const adminEmail = email("mfa-admin");
  before(async () => {
    t = await startAuthSystem({ env: { ADMIN_EMAIL: adminEmail, ADMIN_PASSWORD } });
    await authModule(t).internals.bootstrapped;
  });
  after(async () => t?.stop());
  const clock = () => authModule(t).internals.clock;
  const nextStep = () => clock().advance(STEP_MS);

  /** A user with TOTP on: its address, access token, secret and recovery codes. */
  async function enrolled() {
    const ip = freshIp();
    const u = await register(t, { ip });
    const me = authFrom(t, ip, {}, u.access);
    const e = await me.startTotpEnrollment({ currentPassword: PASSWORD });
    const { recoveryCodes } = await me.confirmTotp({ code: codeAt(t, e.secret) });
    return { ...u, ip, me, secret: e.secret, recoveryCodes };
  }

  /** Login (password right) from `ip`: only the challenge. */
  async function challenge(e: string, ip: string): Promise<string> {
    const r = await authFrom(t, ip).login({ email: e, password: PASSWORD });
    assert.equal(r.tokens, undefined);
    assert.equal(r.user, undefined);
    assert.ok(r.secondFactor);
    return r.secondFactor.challenge;
  }

  const complete = (ip: string, c: string, f: { code?: string; recoveryCode?: string }) => authFrom(t, ip).completeLogin({ challenge: c, ...f });

  it("enrol -> confirm -> login gives only a challenge -> CompleteLogin with a code gives tokens", async () => {
    const ip = freshIp();
    const u = await register(t, { ip });
    const me = authFrom(t, ip, {}, u.access);
    assert.deepEqual(await me.getSecondFactor({}).then((s) => [s.totpEnabled, s.recoveryCodesLeft]), [false, 0]);

    const e = await me.startTotpEnrollment({ currentPassword: PASSWORD });
    assert.match(e.secret, /^[A-Z2-7]{32}$/, "160 bits, base32");
    const uri = new URL(e.otpauthUri);
    assert.equal(uri.protocol, "otpauth:");
    assert.equal(uri.host, "totp");
    assert.equal(decodeURIComponent(uri.pathname), `/Acme:${u.email}`);
    assert.deepEqual(
      Object.fromEntries(uri.searchParams),
      { issuer: "Acme", secret: e.secret, algorithm: "SHA1", digits: "6", period: "30" },
    );
    assert.match(e.qrSvg, /^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.equal(e.expiresIn, 600);
    // Pending, and sealed at rest: the secret's bytes are not in the row.
    const [row] = await query<{ s: string; confirmed_at: Date | null }>(t, "select encode(secret_enc, 'hex') s, confirmed_at from auth.totp where user_id = $1", [u.user.id]);
    assert.equal(row.confirmed_at, null);
    assert.ok(!row.s.includes(Buffer.from(Secret.fromBase32(e.secret).bytes).toString("hex")));
    assert.ok((await login(t, u.email)).access, "a pending enrolment changes nothing for login");

    const { recoveryCodes } = await me.confirmTotp({ code: codeAt(t, e.secret) });
    assert.equal(recoveryCodes.length, 10);
    assert.equal(new Set(recoveryCodes).size, 10);
    for (const c of recoveryCodes) assert.match(c, /^[2-9a-hjkmnp-tw-z]{5}-[2-9a-hjkmnp-tw-z]{5}$/);
    const hashes = await query<{ h: string }>(t, "select encode(code_hash, 'hex') h from auth.recovery_codes where user_id = $1", [u.user.id]);
    assert.equal(hashes.length, 10);
    assert.ok(hashes.every((h) => h.h.length === 64), "only SHA-256 hashes are stored");
    const s = await me.getSecondFactor({});
    assert.equal(s.totpEnabled, true);
    assert.ok(s.totpEnabledAt);
    assert.equal(s.recoveryCodesLeft, 10);
    assert.deepEqual(await changes(t, u.user.id), ["totp_enabled"]);

    const l = await authFrom(t, ip).login({ email: u.email, password: PASSWORD });
    assert.equal(l.tokens, undefined);
    assert.equal(l.user, undefined);
    assert.match(l.secondFactor!.challenge, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(l.secondFactor!.expiresIn, 300);
    assert.deepEqual(l.secondFactor!.methods, ["totp", "recovery_code"]);
    const [ch] = await query<{ n: number }>(t, "select count(*)::int n from auth.login_challenges where user_id = $1 and used_at is null", [u.user.id]);
    assert.equal(ch.n, 1);

    nextStep(); // the confirming code's step is spent
    const code = codeAt(t, e.secret);
    const done = await complete(ip, l.secondFactor!.challenge, { code: `${code.slice(0, 3)} ${code.slice(3)}` });
    assert.equal(done.user!.id, u.user.id);
    assert.ok(done.tokens!.accessToken && done.tokens!.refreshToken);
    await authFrom(t, ip, {}, done.tokens!.accessToken).listSessions({});
    // The challenge is spent.
    await rejectsWith(complete(ip, l.secondFactor!.challenge, { code: codeAt(t, e.secret, 1) }), Code.Unauthenticated, INVALID_CHALLENGE);
    const audit = await query<{ type: string; reason: string | null }>(t, "select type, reason from auth.auth_events where user_id = $1 order by id", [u.user.id]);
    assert.ok(audit.some((a) => a.type === "login_second_factor_required"));
    assert.ok(audit.some((a) => a.type === "totp_enabled"));
    assert.deepEqual(audit.filter((a) => a.type === "login_success").map((a) => a.reason), [null, null, "totp"]);
  });

  it("a code is never accepted twice: the same code, an earlier step in the window, 3 steps back or ahead are refused", async () => {
    const u = await enrolled();
    nextStep();
    const code = codeAt(t, u.secret);
    await complete(u.ip, await challenge(u.email, u.ip), { code });
    const c = await challenge(u.email, u.ip);
    await rejectsWith(complete(u.ip, c, { code }), Code.Unauthenticated, INVALID_CODE);
    await rejectsWith(complete(u.ip, c, { code: codeAt(t, u.secret, -1) }), Code.Unauthenticated, INVALID_CODE);
    await rejectsWith(complete(u.ip, c, { code: codeAt(t, u.secret, -3) }), Code.Unauthenticated, INVALID_CODE);
    await rejectsWith(complete(u.ip, c, { code: codeAt(t, u.secret, 3) }), Code.Unauthenticated, INVALID_CODE);
    const [{ failures }] = await query<{ failures: number }>(t, "select failures from auth.login_challenges where user_id = $1 and used_at is null", [u.user.id]);
    assert.equal(failures, 4);
    const reasons = await query<{ reason: string }>(t, "select reason from auth.auth_events where user_id = $1 and type = 'login_failure' order by id", [u.user.id]);
    assert.deepEqual(reasons.map((r) => r.reason), ["reused_code", "reused_code", "bad_code", "bad_code"]);
    nextStep();
    assert.ok((await complete(u.ip, c, { code: codeAt(t, u.secret) })).tokens, "the next step's code works");

    // Two challenges racing with one fresh code: exactly one signs in.
    nextStep();
    const [c1, c2] = [await challenge(u.email, u.ip), await challenge(u.email, u.ip)];
    const fresh = codeAt(t, u.secret);
    const results = await Promise.allSettled([complete(u.ip, c1, { code: fresh }), complete(u.ip, c2, { code: fresh })]);
    assert.deepEqual(results.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
  });

  it("wrong codes count: 5 kill the challenge and throttle the address like wrong passwords (Retry-After); elsewhere the owner signs in", async () => {
    const u = await enrolled();
    const attacker = freshIp();
    const c = await challenge(u.email, attacker);
    const wrong = wrongCode(t, u.secret);
    for (let i = 0; i < 5; i++) await rejectsWith(complete(attacker, c, { code: wrong }), Code.Unauthenticated, INVALID_CODE);
    const [{ failures }] = await query<{ failures: number }>(t, "select failures from auth.login_challenges where user_id = $1", [u.user.id]);
    assert.equal(failures, 5);
    // The 5 wrong codes are 5 failures of this account from this address: the password waits too.
    const refused = await rejectsWith(authFrom(t, attacker).login({ email: u.email, password: PASSWORD }), Code.ResourceExhausted, THROTTLED);
    assert.equal(refused.metadata.get("retry-after"), "60");
    // The challenge is dead: even the right code is refused with it.
    await rejectsWith(complete(attacker, c, { code: codeAt(t, u.secret) }), Code.Unauthenticated, INVALID_CHALLENGE);
    nextStep(); // the confirming code's step is spent
    // A challenge from another address, tried from the throttled one: refused before the code is looked at.
    const owner = freshIp();
    const c2 = await challenge(u.email, owner);
    const err = await rejectsWith(complete(attacker, c2, { code: codeAt(t, u.secret) }), Code.ResourceExhausted, THROTTLED);
    assert.ok(Number(err.metadata.get("retry-after")) >= 1);
    assert.ok((await complete(owner, c2, { code: codeAt(t, u.secret) })).tokens, "the owner elsewhere signs in");
    assert.ok((await query(t, "select 1 from auth.auth_events where user_id = $1 and type = 'throttle_started'", [u.user.id])).length);
    // After the wait, the address may try again.
    clock().advance(61_000);
    const c3 = await challenge(u.email, attacker);
    assert.ok((await complete(attacker, c3, { code: codeAt(t, u.secret) })).tokens);
  });

  it("a recovery code signs in once (typed in any case, with or without the hyphen); the second time it is refused", async () => {
    const u = await enrolled();
    const rc = u.recoveryCodes[3];
    const first = await complete(u.ip, await challenge(u.email, u.ip), { recoveryCode: ` ${rc.toUpperCase().replace("-", " ")} ` });
    assert.ok(first.tokens);
    assert.equal((await u.me.getSecondFactor({})).recoveryCodesLeft, 9);
    const c = await challenge(u.email, u.ip);
    await rejectsWith(complete(u.ip, c, { recoveryCode: rc }), Code.Unauthenticated, INVALID_CODE);
    const audit = await query<{ type: string; reason: string }>(t, "select type, reason from auth.auth_events where user_id = $1 and type in ('recovery_code_used', 'login_success', 'login_failure') order by id", [u.user.id]);
    assert.deepEqual(audit.slice(-3).map((a) => `${a.type} ${a.reason}`), ["recovery_code_used 9 left", "login_success recovery_code", "login_failure bad_recovery_code"]);
    // Malformed input names its field and costs the challenge nothing.
    const before = await query(t, "select failures from auth.login_challenges where user_id = $1 and used_at is null", [u.user.id]);
    assert.deepEqual(violations(await rejectsWith(complete(u.ip, c, { recoveryCode: "not-a-code!" }), Code.InvalidArgument)), ["recoveryCode"]);
    assert.deepEqual(violations(await rejectsWith(complete(u.ip, c, { code: "12345" }), Code.InvalidArgument)), ["code"]);
    assert.deepEqual(violations(await rejectsWith(complete(u.ip, c, { code: "12345a" }), Code.InvalidArgument)), ["code"]);
    assert.deepEqual(violations(await rejectsWith(complete(u.ip, c, {}), Code.InvalidArgument)), ["code"]);
    assert.deepEqual(violations(await rejectsWith(complete(u.ip, c, { code: "123456", recoveryCode: u.recoveryCodes[0] }), Code.InvalidArgument)), ["recoveryCode"]);
    assert.deepEqual(await query(t, "select failures from auth.login_challenges where user_id = $1 and used_at is null", [u.user.id]), before);
  });

  it("an expired, unknown or malformed challenge is refused; cleanup removes expired challenges", async () => {
    const u = await enrolled();
    const c = await challenge(u.email, u.ip);
    clock().advance(301_000);
    await rejectsWith(complete(u.ip, c, { code: codeAt(t, u.secret) }), Code.Unauthenticated, INVALID_CHALLENGE);
    await rejectsWith(complete(u.ip, "A".repeat(43), { code: codeAt(t, u.secret) }), Code.Unauthenticated, INVALID_CHALLENGE);
    await rejectsWith(complete(u.ip, "nonsense", { code: codeAt(t, u.secret) }), Code.Unauthenticated, INVALID_CHALLENGE);
    assert.equal((await query(t, "select 1 from auth.login_challenges where user_id = $1", [u.user.id])).length, 1);
    await authModule(t).internals.cleanup.runOnce();
    assert.equal((await query(t, "select 1 from auth.login_challenges where user_id = $1", [u.user.id])).length, 0);
  });

  it("StartTotpEnrollment: the current password (wrong: currentPassword, counted); a new start replaces a pending one; expiry; refused once on", async () => {
    const ip = freshIp();
    const u = await register(t, { ip });
    const me = authFrom(t, ip, {}, u.access);
    const bad = await rejectsWith(me.startTotpEnrollment({ currentPassword: "wrong password" }), Code.InvalidArgument);
    assert.deepEqual(violations(bad), ["currentPassword"]);
    assert.equal((await authModule(t).internals.lockout.pairStatus(u.email, ip)).failures, 1);
    assert.equal(await factorRows(t, u.user.id), JSON.stringify({ totp: [], codes: [] }));
    await rejectsWith(me.confirmTotp({ code: "123456" }), Code.FailedPrecondition);

    const first = await me.startTotpEnrollment({ currentPassword: PASSWORD });
    const second = await me.startTotpEnrollment({ currentPassword: PASSWORD });
    assert.notEqual(first.secret, second.secret);
    const pending = await factorRows(t, u.user.id);
    assert.deepEqual(violations(await rejectsWith(me.confirmTotp({ code: codeAt(t, first.secret) }), Code.InvalidArgument)), ["code"]);
    assert.deepEqual(violations(await rejectsWith(me.confirmTotp({ code: "12 34" }), Code.InvalidArgument)), ["code"]);
    assert.equal(await factorRows(t, u.user.id), pending, "refused confirmations change nothing");
    clock().advance(601_000);
    await rejectsWith(me.confirmTotp({ code: codeAt(t, second.secret) }), Code.FailedPrecondition, /expired/);

    const third = await me.startTotpEnrollment({ currentPassword: PASSWORD });
    await me.confirmTotp({ code: codeAt(t, third.secret) });
    const on = await factorRows(t, u.user.id);
    await rejectsWith(me.startTotpEnrollment({ currentPassword: PASSWORD }), Code.FailedPrecondition);
    await rejectsWith(me.confirmTotp({ code: codeAt(t, third.secret) }), Code.FailedPrecondition);
    assert.equal(await factorRows(t, u.user.id), on);
  });

  it("DisableTotp needs a current code (replay-guarded) or a recovery code; refused calls change nothing", async () => {
    const u = await enrolled();
    const on = await factorRows(t, u.user.id);
    assert.deepEqual(violations(await rejectsWith(u.me.disableTotp({}), Code.InvalidArgument)), ["code"]);
    assert.deepEqual(violations(await rejectsWith(u.me.disableTotp({ code: wrongCode(t, u.secret) }), Code.InvalidArgument)), ["code"]);
    // The confirming code's step is spent already.
    assert.deepEqual(violations(await rejectsWith(u.me.disableTotp({ code: codeAt(t, u.secret) }), Code.InvalidArgument)), ["code"]);
    assert.deepEqual(violations(await rejectsWith(u.me.disableTotp({ recoveryCode: "2345678923" }), Code.InvalidArgument)), ["recoveryCode"]);
    assert.equal(await factorRows(t, u.user.id), on);
    const reasons = await query<{ reason: string }>(t, "select reason from auth.auth_events where user_id = $1 and type = 'second_factor_failure' order by id", [u.user.id]);
    assert.deepEqual(reasons.map((r) => r.reason), ["disable: bad_code", "disable: reused_code", "disable: bad_recovery_code"]);

    nextStep();
    await u.me.disableTotp({ code: codeAt(t, u.secret) });
    assert.equal(await factorRows(t, u.user.id), JSON.stringify({ totp: [], codes: [] }));
    const s = await u.me.getSecondFactor({});
    assert.deepEqual([s.totpEnabled, s.recoveryCodesLeft, s.totpEnabledAt], [false, 0, undefined]);
    assert.deepEqual(await changes(t, u.user.id), ["totp_enabled", "totp_disabled"]);
    assert.ok((await login(t, u.email, PASSWORD, u.ip)).access, "login gives tokens again");
    await rejectsWith(u.me.disableTotp({ code: codeAt(t, u.secret, 1) }), Code.FailedPrecondition);

    const v = await enrolled();
    await v.me.disableTotp({ recoveryCode: v.recoveryCodes[9] });
    assert.equal((await v.me.getSecondFactor({})).totpEnabled, false);
  });

  it("RegenerateRecoveryCodes: a current code; the old codes stop working, the new ones work; the code cannot be used again", async () => {
    const u = await enrolled();
    const on = await factorRows(t, u.user.id);
    assert.deepEqual(violations(await rejectsWith(u.me.regenerateRecoveryCodes({ code: wrongCode(t, u.secret) }), Code.InvalidArgument)), ["code"]);
    assert.deepEqual(violations(await rejectsWith(u.me.regenerateRecoveryCodes({ code: "" }), Code.InvalidArgument)), ["code"]);
    assert.equal(await factorRows(t, u.user.id), on);
    nextStep();
    const code = codeAt(t, u.secret);
    const { recoveryCodes } = await u.me.regenerateRecoveryCodes({ code });
    assert.equal(recoveryCodes.length, 10);
    assert.equal(recoveryCodes.filter((c) => u.recoveryCodes.includes(c)).length, 0);
    await rejectsWith(u.me.regenerateRecoveryCodes({ code }), Code.InvalidArgument);
    assert.deepEqual(await changes(t, u.user.id), ["totp_enabled", "recovery_codes_regenerated"]);
    const c = await challenge(u.email, u.ip);
    await rejectsWith(complete(u.ip, c, { recoveryCode: u.recoveryCodes[0] }), Code.Unauthenticated, INVALID_CODE);
    assert.ok((await complete(u.ip, c, { recoveryCode: recoveryCodes[0] })).tokens);
  });

  it("ResetSecondFactor: admin only (PERMISSION_DENIED otherwise), userId a UUID, unknown -> NOT_FOUND; sessions stay", async () => {
    const u = await enrolled();
    const other = await register(t);
    const on = await factorRows(t, u.user.id);
    await rejectsWith(authFrom(t, freshIp(), {}, other.access).resetSecondFactor({ userId: u.user.id }), Code.PermissionDenied);
    await rejectsWith(u.me.resetSecondFactor({ userId: u.user.id }), Code.PermissionDenied);
    const admin = await login(t, adminEmail, ADMIN_PASSWORD);
    const asAdmin = authFrom(t, freshIp(), {}, admin.access);
    assert.deepEqual(violations(await rejectsWith(asAdmin.resetSecondFactor({ userId: "not-a-uuid" }), Code.InvalidArgument)), ["userId"]);
    await rejectsWith(asAdmin.resetSecondFactor({ userId: randomUUID() }), Code.NotFound);
    assert.equal(await factorRows(t, u.user.id), on);

    await asAdmin.resetSecondFactor({ userId: u.user.id });
    assert.equal((await u.me.getSecondFactor({})).totpEnabled, false, "the user's own session still works");
    assert.equal(await factorRows(t, u.user.id), JSON.stringify({ totp: [], codes: [] }));
    assert.deepEqual(await changes(t, u.user.id), ["totp_enabled", "reset_by_admin"]);
    const [ev] = await query<{ reason: string }>(t, "select reason from auth.auth_events where user_id = $1 and type = 'second_factor_reset'", [u.user.id]);
    assert.equal(ev.reason, `by admin ${admin.user.id}`);
    assert.ok((await login(t, u.email, PASSWORD, u.ip)).access);
  });
});

describe("auth: second factor over REST (embedded edge)", function () {
  this.timeout(60_000);
  const rl = tempRateLimitConfig(GENEROUS_LIMITS);
  let t: TestSystem;
  before(async () => (t = await startTestSystem({ env: { RATELIMIT_CONFIG: rl.path } })));
  after(async () => {
    await t?.stop();
    rl.remove();
  });

  const fields = (body: { details?: { fieldViolations?: { field: string }[] }[] }) => (body.details ?? []).flatMap((d) => d.fieldViolations ?? []).map((v) => v.field);
  /** The one JSON error shape: code, message, and (for a field problem) details naming the field. */
  function isError(a: { status: number; headers: Headers; body: Record<string, unknown> }, status: number, code: Code) {
    assert.equal(a.status, status, JSON.stringify(a.body));
    assert.match(a.headers.get("content-type") ?? "", /^application\/json/);
    assert.deepEqual(Object.keys(a.body).filter((k) => !["code", "message", "details"].includes(k)), []);
    assert.equal(a.body.code, code);
    assert.equal(typeof a.body.message, "string");
  }

  it("enrol, login, complete; errors have the one JSON shape and name the field", async () => {
    const u = await register(t);
    const token = u.access;
    const wrongPw = await rest(t.url, "POST", "/v1/auth/mfa/totp", { token, body: { currentPassword: "wrong password" } });
    isError(wrongPw, 400, Code.InvalidArgument);
    assert.deepEqual(fields(wrongPw.body), ["currentPassword"]);
    const e = await rest(t.url, "POST", "/v1/auth/mfa/totp", { token, body: { currentPassword: PASSWORD } });
    assert.equal(e.status, 200, e.text);
    const secret = e.body.secret as string;
    const badShape = await rest(t.url, "POST", "/v1/auth/mfa/totp/confirm", { token, body: { code: "abc" } });
    isError(badShape, 400, Code.InvalidArgument);
    assert.deepEqual(fields(badShape.body), ["code"]);
    const confirmed = await rest(t.url, "POST", "/v1/auth/mfa/totp/confirm", { token, body: { code: codeAt(t, secret) } });
    assert.equal(confirmed.status, 200, confirmed.text);
    assert.equal(confirmed.body.recoveryCodes.length, 10);
    const status = await rest(t.url, "GET", "/v1/auth/mfa", { token });
    assert.equal(status.body.totpEnabled, true);
    assert.equal(status.body.recoveryCodesLeft, 10);

    const l = await rest(t.url, "POST", "/v1/auth/login", { body: { email: u.email, password: PASSWORD } });
    assert.equal(l.status, 200, l.text);
    assert.deepEqual(Object.keys(l.body), ["secondFactor"]);
    const challenge = l.body.secondFactor.challenge as string;
    const unknown = await rest(t.url, "POST", "/v1/auth/login/second-factor", { body: { challenge: "x".repeat(43), code: "123456" } });
    isError(unknown, 401, Code.Unauthenticated);
    assert.equal(unknown.body.message, INVALID_CHALLENGE);
    const both = await rest(t.url, "POST", "/v1/auth/login/second-factor", { body: { challenge, code: "123456", recoveryCode: confirmed.body.recoveryCodes[0] } });
    isError(both, 400, Code.InvalidArgument);
    assert.deepEqual(fields(both.body), ["recoveryCode"]);
    const wrong = await rest(t.url, "POST", "/v1/auth/login/second-factor", { body: { challenge, code: wrongCode(t, secret) } });
    isError(wrong, 401, Code.Unauthenticated);
    assert.equal(wrong.body.message, INVALID_CODE);
    authModule(t).internals.clock.advance(STEP_MS);
    const done = await rest(t.url, "POST", "/v1/auth/login/second-factor", { body: { challenge, code: codeAt(t, secret) } });
    assert.equal(done.status, 200, done.text);
    assert.ok(done.body.tokens.accessToken);
    assert.equal(done.body.user.id, u.user.id);

    const denied = await rest(t.url, "POST", `/v1/auth/users/${u.user.id}/mfa/reset`, { token, body: {} });
    isError(denied, 403, Code.PermissionDenied);
    const disable = await rest(t.url, "POST", "/v1/auth/mfa/totp/disable", { token, body: { recoveryCode: "short" } });
    isError(disable, 400, Code.InvalidArgument);
    assert.deepEqual(fields(disable.body), ["recoveryCode"]);
  });
});
