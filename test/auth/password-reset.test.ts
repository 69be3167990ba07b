// Password reset (issue 18): RequestPasswordReset answers a known and an
// unknown address alike (status, body, time; limits per address and per
// client before any lookup); ResetPassword spends the mailed token once, sets
// the password, verifies the address and ends every session.
import { strict as assert } from "node:assert";
import { Code } from "@connectrpc/connect";
import { INVALID_CREDENTIALS } from "../../services/auth/accounts.js";
import { RESET_THROTTLED } from "../../services/auth/password-reset.js";
import type { TestSystem } from "../support/system.js";
import { authFrom, email, freshIp, login, PASSWORD, query, register, rejectsWith, violations } from "./helpers.js";
import { eventsOf, latestToken, refusedToken, resetMails, sha256, startMailSystem } from "./mailed.js";

const NEW_PASSWORD = "a completely new password";

describe("auth: password reset (mailed tokens)", function () {
  this.timeout(180_000);
  let t: TestSystem;
  // No edge: each request keeps the client address authFrom gives it (the limits count per client).
  before(async () => (t = await startMailSystem({ edge: false })));
  after(async () => t?.stop());

  const ask = (address: string, ip = freshIp()) => authFrom(t, ip).requestPasswordReset({ email: address });

  it("answers a known and an unknown address alike; only the known one gets a token (hash stored) and PasswordResetRequested", async () => {
    const u = await register(t);
    const unknown = email("nobody");
    const known = await ask(u.email);
    assert.deepEqual(await ask(unknown), known);
    assert.deepEqual(known.status, "accepted");
    assert.deepEqual(await ask(u.email), known);

    const mails = await resetMails(t, u.user.id);
    assert.equal(mails.length, 2);
    assert.equal(mails[1].email, u.email);
    const rows = await query<{ token_hash: Uint8Array; used_at: Date | null }>(t, "select token_hash, used_at from auth.account_tokens where user_id = $1 and purpose = 'reset_password' order by created_at", [u.user.id]);
    assert.deepEqual(Buffer.from(rows[1].token_hash), sha256(mails[1].token));
    assert.ok(rows[0].used_at, "the earlier reset token is retired");
    assert.equal((await query(t, "select 1 from auth.account_tokens where email = $1", [unknown])).length, 0);
    await refusedToken(t.auth().resetPassword({ token: mails[0].token, newPassword: NEW_PASSWORD }), "retired token");
    const bad = await rejectsWith(ask("not an address"), Code.InvalidArgument);
    assert.deepEqual(violations(bad), ["email"]);
  });

  it("limits per address (3/hour) and per client (20/hour), known or unknown alike, with Retry-After", async () => {
    const u = await register(t);
    const unknown = email("limit");
    for (const address of [u.email, unknown]) {
      for (let i = 0; i < 3; i++) await ask(address);
      const err = await rejectsWith(ask(address), Code.ResourceExhausted, RESET_THROTTLED);
      const retry = Number(err.metadata.get("retry-after"));
      assert.ok(retry > 3500 && retry <= 3600, `retry-after ${retry}`);
    }
    assert.equal((await resetMails(t, u.user.id)).length, 3, "the refused request mailed nothing");
    const ip = freshIp();
    for (let i = 0; i < 20; i++) await ask(email("spray"), ip);
    await rejectsWith(ask(email("spray"), ip), Code.ResourceExhausted, RESET_THROTTLED);
    await rejectsWith(ask(u.email.replace("@", "+x@"), ip), Code.ResourceExhausted, RESET_THROTTLED);
    // Another client is not affected.
    assert.equal((await ask(email("other"))).status, "accepted");
  });

  it("takes as long for an unknown address as for a known one (median of 20 each, interleaved)", async () => {
    const known: string[] = [];
    for (let i = 0; i < 22; i++) known.push((await register(t)).email);
    // Warm-up: the first known requests teach the pacing what a reset costs here.
    for (const address of known.splice(0, 2)) await ask(address);
    const times = { known: [] as number[], unknown: [] as number[] };
    for (let i = 0; i < 20; i++) {
      for (const kind of ["known", "unknown"] as const) {
        const address = kind === "known" ? known[i] : email("timing");
        const t0 = performance.now();
        await ask(address);
        times[kind].push(performance.now() - t0);
      }
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    const [k, n] = [median(times.known), median(times.unknown)];
    console.log(`      reset request timing, median of 20: known ${k.toFixed(1)} ms, unknown ${n.toFixed(1)} ms`);
    assert.ok(Math.abs(k - n) < Math.max(15, 0.25 * Math.max(k, n)), `known ${k} ms, unknown ${n} ms`);
  });

  it("ResetPassword: new password, address verified, every session and refresh token ended, PasswordChanged via reset; once only", async () => {
    const u = await register(t);
    const second = await login(t, u.email);
    assert.ok((await t.users(u.access).getMe({})).user);
    await ask(u.email);
    const token = await latestToken(t, u.user.id, "reset");

    const weak = await rejectsWith(t.auth().resetPassword({ token, newPassword: "short" }), Code.InvalidArgument);
    assert.deepEqual(violations(weak), ["newPassword"]);
    const done = await t.auth().resetPassword({ token, newPassword: NEW_PASSWORD });
    assert.deepEqual(Object.keys(done).filter((k) => k !== "$typeName"), [], "an empty answer");

    for (const s of [u, second]) {
      await rejectsWith(t.auth().refresh({ refreshToken: s.refresh }), Code.Unauthenticated);
      await rejectsWith(t.users(s.access).getMe({}), Code.Unauthenticated);
    }
    await rejectsWith(authFrom(t, freshIp()).login({ email: u.email, password: PASSWORD }), Code.Unauthenticated, INVALID_CREDENTIALS);
    const fresh = await login(t, u.email, NEW_PASSWORD);
    assert.ok((await t.users(fresh.access).getMe({})).user);
    const [acct] = await query<{ email_verified_at: Date | null }>(t, "select email_verified_at from auth.accounts where id = $1", [u.user.id]);
    assert.ok(acct.email_verified_at, "the mail proved the address");
    const changed = (await eventsOf(t, u.user.id)).filter((e) => e.case === "passwordChanged");
    assert.deepEqual(changed.map((e) => e.value.via), ["reset"]);
    assert.ok((await query(t, "select 1 from auth.auth_events where type = 'password_reset' and user_id = $1", [u.user.id])).length);
    await refusedToken(t.auth().resetPassword({ token, newPassword: "yet another password" }), "second use");

    // ChangePassword still says via "change".
    await t.auth(fresh.access).changePassword({ currentPassword: NEW_PASSWORD, newPassword: PASSWORD });
    const vias = (await eventsOf(t, u.user.id)).flatMap((e) => (e.case === "passwordChanged" ? [e.value.via] : []));
    assert.deepEqual(vias, ["reset", "change"]);
  });

  it("a reset token stops working once the account's address changed; expired ones are refused", async () => {
    const u = await register(t);
    await ask(u.email);
    const token = await latestToken(t, u.user.id, "reset");
    await t.auth(u.access).changeEmail({ newEmail: email("elsewhere"), currentPassword: PASSWORD });
    await t.auth().verifyEmail({ token: await latestToken(t, u.user.id, "change_email") });
    await refusedToken(t.auth().resetPassword({ token, newPassword: NEW_PASSWORD }), "mailed to the old address");

    const v = await register(t);
    await ask(v.email);
    const expired = await latestToken(t, v.user.id, "reset");
    await query(t, "update auth.account_tokens set expires_at = now() - interval '1 second' where user_id = $1 and purpose = 'reset_password'", [v.user.id]);
    await refusedToken(t.auth().resetPassword({ token: expired, newPassword: NEW_PASSWORD }), "expired");
    await login(t, v.email);
  });
});
