// Email verification, resend, email change and the registration notice (issue
// 18): tokens read from the outbox event that carries them to the mail; every
// bad token gets one answer (INVALID_ARGUMENT naming token, one JSON shape over
// REST) and changes nothing; a taken address in ChangeEmail looks like a free
// one. Password reset: password-reset.test.ts.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { INVALID_CREDENTIALS } from "../../services/auth/accounts.js";
import type { TestSystem } from "../support/system.js";
import { authFrom, email, freshIp, login, PASSWORD, query, register, rejectsWith, violations } from "./helpers.js";
import { eventsOf, expectRefusedTokenJson, latestToken, post, refusedToken, sha256, snapshot, startMailSystem, verificationMails } from "./mailed.js";

describe("auth: email verification and email change (mailed tokens)", function () {
  this.timeout(120_000);
  let t: TestSystem;
  before(async () => (t = await startMailSystem()));
  after(async () => t?.stop());

  const verifiedAt = async (id: string) => (await query<{ v: Date | null }>(t, "select email_verified_at as v from auth.accounts where id = $1", [id]))[0].v;
  /** As if the last mail of the kind went out `seconds` ago (the resend limits count from created_at). */
  const age = (id: string, purpose: string, seconds: number) =>
    query(t, `update auth.account_tokens set created_at = created_at - make_interval(secs => $3) where user_id = $1 and purpose = $2`, [id, purpose, seconds]);

  it("Register mails a verification token (stored only as its hash); VerifyEmail verifies once, a second use is refused", async () => {
    const u = await register(t);
    const [mail] = await verificationMails(t, u.user.id, "verify");
    assert.equal(mail.email, u.email);
    assert.match(mail.token, /^[A-Za-z0-9_-]{43}$/);
    const lifetime = timestampDate(mail.expiresAt!).getTime() - Date.now();
    assert.ok(Math.abs(lifetime - 86_400_000) < 60_000, `lifetime ${lifetime} ms`);
    const rows = await query<{ token_hash: Uint8Array; purpose: string; used_at: Date | null }>(t, "select * from auth.account_tokens where user_id = $1", [u.user.id]);
    assert.equal(rows.length, 1);
    assert.deepEqual(Buffer.from(rows[0].token_hash), sha256(mail.token));
    assert.equal(rows[0].purpose, "verify_email");
    assert.equal(await verifiedAt(u.user.id), null);

    assert.deepEqual((await t.auth().verifyEmail({ token: mail.token })).email, u.email);
    assert.ok(await verifiedAt(u.user.id));
    await refusedToken(t.auth().verifyEmail({ token: mail.token }), "second use");
    const [ev] = await query(t, "select 1 from auth.auth_events where type = 'email_verified' and user_id = $1", [u.user.id]);
    assert.ok(ev, "audited");
  });

  it("refuses expired, tampered, made-up, malformed, other-purpose and spent tokens alike (gRPC and REST) and changes nothing", async () => {
    const [a, b, c] = [await register(t), await register(t), await register(t)];
    const ta = await latestToken(t, a.user.id, "verify");
    await t.auth().requestPasswordReset({ email: b.email });
    const resetB = await latestToken(t, b.user.id, "reset");
    const expired = await latestToken(t, c.user.id, "verify");
    await query(t, "update auth.account_tokens set expires_at = now() - interval '1 second' where user_id = $1", [c.user.id]);
    const spent = await register(t);
    const spentToken = await latestToken(t, spent.user.id, "verify");
    await t.auth().verifyEmail({ token: spentToken });

    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === "A" ? "B" : "A") + s.slice(i + 1);
    const bad: Record<string, string> = {
      expired,
      "tampered (first char)": flip(ta, 0),
      "tampered (last char)": flip(ta, 42),
      "made up": randomBytes(32).toString("base64url"),
      "a reset token": resetB,
      spent: spentToken,
      empty: "",
      short: ta.slice(0, 20),
      "one char longer": `${ta}A`,
      padded: `${ta}=`,
      "not base64url": `${ta.slice(0, 42)}+`,
      huge: "x".repeat(10_000),
    };
    const ids = [a, b, c, spent].map((x) => x.user.id);
    const before = await snapshot(t, ids);
    const bodies = new Set<string>();
    for (const [what, token] of Object.entries(bad)) {
      await refusedToken(t.auth().verifyEmail({ token }), what);
      const r = await post(t, "/v1/auth/email/verify", { token });
      expectRefusedTokenJson(r, what);
      bodies.add(r.text);
    }
    // A verification token is not a reset token either.
    await refusedToken(t.auth().resetPassword({ token: ta, newPassword: "a brand new password" }), "verify token for reset");
    expectRefusedTokenJson(await post(t, "/v1/auth/password/reset", { token: ta, newPassword: "a brand new password" }), "verify token for reset");
    assert.equal(bodies.size, 1, "one JSON error body for every bad token");
    assert.deepEqual(await snapshot(t, ids), before, "nothing changed");
    // The good tokens still work: only its own account is verified, whoever calls.
    assert.equal((await t.auth(b.access).verifyEmail({ token: ta })).email, a.email);
    assert.equal(await verifiedAt(b.user.id), null);
  });

  it("ResendVerification: one per account per AUTH_VERIFY_RESEND_SECONDS (Retry-After), retires the earlier token, then already_verified", async () => {
    const u = await register(t);
    const first = await latestToken(t, u.user.id, "verify");
    // The registration mail counts: too soon.
    const err = await rejectsWith(t.auth(u.access).resendVerification({}), Code.ResourceExhausted);
    const retry = Number(err.metadata.get("retry-after"));
    assert.ok(retry >= 1 && retry <= 60, `retry-after ${retry}`);
    const viaRest = await post(t, "/v1/auth/email/verification", {}, u.access);
    assert.equal(viaRest.status, 429, viaRest.text);
    assert.ok(Number(viaRest.headers.get("retry-after")) >= 1);

    await age(u.user.id, "verify_email", 61);
    assert.equal((await t.auth(u.access).resendVerification({})).status, "sent");
    const second = await latestToken(t, u.user.id, "verify");
    assert.notEqual(second, first);
    assert.equal((await verificationMails(t, u.user.id, "verify")).length, 2);
    await rejectsWith(t.auth(u.access).resendVerification({}), Code.ResourceExhausted);
    await refusedToken(t.auth().verifyEmail({ token: first }), "retired by the resend");
    assert.equal((await t.auth().verifyEmail({ token: second })).email, u.email);
    assert.equal((await t.auth(u.access).resendVerification({})).status, "already_verified");
    await rejectsWith(t.auth().resendVerification({}), Code.Unauthenticated);
  });

  it("Register of a taken email: the same answer; the owner gets one SignupAttempted per 10 minutes, however often", async () => {
    const owner = await register(t);
    for (let i = 0; i < 3; i++) {
      const r = await authFrom(t, freshIp()).register({ email: owner.email, password: "someone else's", name: "Mallory" });
      assert.equal(r.status, "accepted");
    }
    const notices = (await eventsOf(t, owner.user.id)).filter((e) => e.case === "signupAttempted");
    assert.equal(notices.length, 1);
    assert.deepEqual({ ...notices[0].value, $typeName: undefined }, { $typeName: undefined, userId: owner.user.id, email: owner.email });
    await login(t, owner.email);
  });

  it("ChangeEmail: checks the password and the address; a taken address looks exactly like a free one and is not mailed", async () => {
    const u = await register(t);
    const other = await register(t);
    const me = t.auth(u.access);
    const wrong = await rejectsWith(me.changeEmail({ newEmail: email("new"), currentPassword: "not my password" }), Code.InvalidArgument);
    assert.deepEqual(violations(wrong), ["currentPassword"]);
    for (const bad of [u.email, u.email.toUpperCase(), "not an address", `\u0430lice-${Date.now()}@example.com`]) {
      assert.deepEqual(violations(await rejectsWith(me.changeEmail({ newEmail: bad, currentPassword: PASSWORD }), Code.InvalidArgument)), ["newEmail"], bad);
    }
    await rejectsWith(t.auth().changeEmail({ newEmail: email("new"), currentPassword: PASSWORD }), Code.Unauthenticated);

    const taken = await post(t, "/v1/auth/email", { newEmail: other.email, currentPassword: PASSWORD }, u.access);
    await age(u.user.id, "change_email", 61);
    const free = await post(t, "/v1/auth/email", { newEmail: email("free"), currentPassword: PASSWORD }, u.access);
    assert.equal(taken.status, 200, taken.text);
    assert.deepEqual([taken.status, taken.body], [free.status, free.body]);
    assert.deepEqual(taken.body, { status: "pending" });
    const mails = await verificationMails(t, u.user.id, "change_email");
    assert.equal(mails.length, 1, "only the free address was mailed");
    assert.notEqual(mails[0].email, other.email);
    assert.equal((await eventsOf(t, other.user.id)).filter((e) => e.case !== "userRegistered" && e.case !== "emailVerificationRequested").length, 0);
    // One change per AUTH_VERIFY_RESEND_SECONDS: the new address is a stranger's until verified.
    await rejectsWith(me.changeEmail({ newEmail: email("again"), currentPassword: PASSWORD }), Code.ResourceExhausted);
  });

  it("VerifyEmail with a change_email token makes the new address the sign-in address (EmailChanged); old tokens and old address stop working", async () => {
    const u = await register(t);
    const oldVerify = await latestToken(t, u.user.id, "verify");
    const next = email("moved");
    assert.equal((await t.auth(u.access).changeEmail({ newEmail: next.toUpperCase(), currentPassword: PASSWORD })).status, "pending");
    const token = await latestToken(t, u.user.id, "change_email");
    assert.equal((await verificationMails(t, u.user.id, "change_email"))[0].email, next);
    assert.equal((await t.auth().verifyEmail({ token })).email, next);

    const [acct] = await query<{ email: string; email_verified_at: Date | null }>(t, "select email, email_verified_at from auth.accounts where id = $1", [u.user.id]);
    assert.equal(acct.email, next);
    assert.ok(acct.email_verified_at);
    const changed = (await eventsOf(t, u.user.id)).filter((e) => e.case === "emailChanged");
    assert.equal(changed.length, 1);
    assert.equal(changed[0].value.oldEmail, u.email);
    assert.equal(changed[0].value.newEmail, next);
    assert.ok((await query(t, "select 1 from auth.auth_events where type = 'email_changed' and user_id = $1", [u.user.id])).length);

    await login(t, next);
    await rejectsWith(authFrom(t, freshIp()).login({ email: u.email, password: PASSWORD }), Code.Unauthenticated, INVALID_CREDENTIALS);
    await refusedToken(t.auth().verifyEmail({ token }), "change token used twice");
    await refusedToken(t.auth().verifyEmail({ token: oldVerify }), "verification mailed to the old address");

    // The user service follows (user.email_changed, services/user/email-changes.ts): GetMe shows the new
    // address, and the old one is free to register again.
    const me = await login(t, next);
    for (let i = 0; i < 100 && (await t.users(me.access).getMe({})).user?.email !== next; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal((await t.users(me.access).getMe({})).user?.email, next);
    const again = await register(t, { email: u.email });
    assert.notEqual(again.user.id, u.user.id, "the old address is a new account");
  });

  it("RequestPasswordReset over REST: the same status and body for a known and an unknown address", async () => {
    const u = await register(t);
    const known = await post(t, "/v1/auth/password/forgot", { email: u.email });
    const unknown = await post(t, "/v1/auth/password/forgot", { email: email("nobody") });
    assert.equal(known.status, 200, known.text);
    assert.deepEqual([unknown.status, unknown.text], [known.status, known.text]);
    assert.deepEqual(known.body, { status: "accepted" });
  });

  it("a change to an address registered meanwhile is refused as an invalid token and changes nothing", async () => {
    const u = await register(t);
    const target = email("race");
    await t.auth(u.access).changeEmail({ newEmail: target, currentPassword: PASSWORD });
    const token = await latestToken(t, u.user.id, "change_email");
    const squatter = await register(t, { email: target });
    const before = await snapshot(t, [u.user.id, squatter.user.id]);
    await refusedToken(t.auth().verifyEmail({ token }), "address taken since the mail");
    assert.deepEqual(await snapshot(t, [u.user.id, squatter.user.id]), before);
    await login(t, u.email);
  });
});
