// Sessions and immediate revocation: logout, logout-all, password change,
// session delete, RevokeUserSessions and DeleteAccount make access tokens
// fail on their very next use (the revocation list in Redis), not at expiry.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { loadSecrets } from "../../platform/secrets.js";
import { SERVICE_NAMES } from "../../app/services.js";
import { INVALID_CREDENTIALS } from "../../services/auth/accounts.js";
import type { TestSystem } from "../support/system.js";
import { authFrom, authModule, decodeJwt, freshIp, login, PASSWORD, query, register, rejectsWith, startAuthSystem, violations } from "./helpers.js";

describe("auth: sessions and revocation", () => {
  let t: TestSystem;
  before(async () => (t = await startAuthSystem()));
  after(async () => t?.stop());

  const alive = (access: string) => t.auth(access).listSessions({}).then(() => true, () => false);
  const userServiceToken = async () => {
    const s = loadSecrets(t.dataDir, t.env, SERVICE_NAMES);
    return (await t.auth().issueServiceToken({ clientId: "user-service", clientSecret: s.clientSecrets.user, audience: "acme-auth" })).accessToken;
  };
  const sid = (access: string) => String(decodeJwt(access).claims.sid);

  it("ListSessions: id, createdAt, lastUsedAt, userAgent, ip and which one is current", async () => {
    const a = await register(t, { ip: "203.0.113.7", ua: "phone-app/1.0" });
    authModule(t).internals.clock.advance(60_000);
    const b = await login(t, a.email, PASSWORD, "203.0.113.8", "laptop-browser/2.0");
    const { sessions } = await t.auth(b.access).listSessions({});
    assert.equal(sessions.length, 2);
    const [newest, oldest] = sessions;
    assert.equal(newest.id, sid(b.access));
    assert.equal(newest.current, true);
    assert.match(newest.userAgent, /^laptop-browser\/2\.0/);
    assert.equal(newest.ip, "203.0.113.8");
    assert.equal(oldest.id, sid(a.access));
    assert.equal(oldest.current, false);
    assert.match(oldest.userAgent, /^phone-app\/1\.0/);
    assert.equal(oldest.ip, "203.0.113.7");
    assert.ok(timestampDate(newest.createdAt!) > timestampDate(oldest.createdAt!));
    // A refresh marks the session used.
    authModule(t).internals.clock.advance(60_000);
    await t.auth().refresh({ refreshToken: a.refresh });
    const after = (await t.auth(b.access).listSessions({})).sessions.find((s) => s.id === sid(a.access))!;
    assert.ok(timestampDate(after.lastUsedAt!) > timestampDate(after.createdAt!));
  });

  it("ListSessions names each device from its user agent; RevokeOtherSessions ends all but the caller's", async () => {
    const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    const iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
    const a = await register(t, { ua: firefox });
    const b = await login(t, a.email, PASSWORD, freshIp(), iphone);
    const c = await login(t, a.email, PASSWORD, freshIp(), "curl/8.5.0");
    const other = await register(t);
    const devices = (await t.auth(c.access).listSessions({})).sessions.map((s) => s.device).sort();
    assert.deepEqual(devices, ["Firefox 128 on Linux", "Safari 17 on iOS 17", "curl 8.5"]);

    const { revoked } = await t.auth(b.access).revokeOtherSessions({});
    assert.equal(revoked, 2);
    assert.equal(await alive(a.access), false);
    assert.equal(await alive(c.access), false);
    await rejectsWith(t.auth().refresh({ refreshToken: c.refresh }), Code.Unauthenticated);
    assert.ok(await alive(b.access), "the caller's session continues");
    assert.ok(await alive(other.access), "another user's session is untouched");
    assert.deepEqual((await t.auth(b.access).listSessions({})).sessions.map((s) => s.id), [sid(b.access)]);
    assert.equal((await t.auth(b.access).revokeOtherSessions({})).revoked, 0);
    const audit = await query<{ reason: string }>(t, "select reason from auth.auth_events where user_id = $1 and type = 'sessions_revoked'", [a.user.id]);
    assert.deepEqual(audit.map((r) => r.reason), ["revoke_others", "revoke_others"], "each request is audited");
  });

  it("DeleteSession: someone else's, unknown, malformed or already ended -> NOT_FOUND; own -> ended at once", async () => {
    const me = await register(t);
    const mine2 = await login(t, me.email);
    const other = await register(t);
    await rejectsWith(t.auth(me.access).deleteSession({ id: sid(other.access) }), Code.NotFound);
    await rejectsWith(t.auth(me.access).deleteSession({ id: randomUUID() }), Code.NotFound);
    await rejectsWith(t.auth(me.access).deleteSession({ id: "not-a-uuid" }), Code.NotFound);
    assert.ok(await alive(other.access), "the other user's session is untouched");

    await t.auth(me.access).deleteSession({ id: sid(mine2.access) });
    assert.equal(await alive(mine2.access), false, "its access token is refused on the next call");
    await rejectsWith(t.auth().refresh({ refreshToken: mine2.refresh }), Code.Unauthenticated);
    assert.ok(await alive(me.access));
    await rejectsWith(t.auth(me.access).deleteSession({ id: sid(mine2.access) }), Code.NotFound);
    const [ev] = await query<{ type: string }>(t, "select type from auth.auth_events where session_id = $1 and type = 'session_revoked'", [sid(mine2.access)]);
    assert.ok(ev);
  });

  it("Logout ends the refresh token's session at once; other sessions continue", async () => {
    const a = await register(t);
    const b = await login(t, a.email);
    assert.ok(await alive(a.access));
    await t.auth().logout({ refreshToken: a.refresh });
    assert.equal(await alive(a.access), false);
    await rejectsWith(t.auth().refresh({ refreshToken: a.refresh }), Code.Unauthenticated);
    assert.ok(await alive(b.access));
    // Unknown or repeated logouts are harmless no-ops.
    await t.auth().logout({ refreshToken: a.refresh });
    await t.auth().logout({ refreshToken: "nonsense" });
    // The revoked sid is in the shared store for as long as an access token can live.
    const ttl = await t.system.kv.pttl(`auth:revoked:sid:${sid(a.access)}`);
    assert.ok(ttl > 900_000 && ttl <= 960_000, `ttl ${ttl}`);
  });

  it("LogoutAll ends every session of the caller, the calling one included", async () => {
    const a = await register(t);
    const b = await login(t, a.email);
    const c = await login(t, a.email);
    const bystander = await register(t);
    await t.auth(b.access).logoutAll({});
    for (const s of [a, b, c]) {
      assert.equal(await alive(s.access), false);
      await rejectsWith(t.auth().refresh({ refreshToken: s.refresh }), Code.Unauthenticated);
    }
    assert.ok(await alive(bystander.access));
  });

  it("ChangePassword checks the current password, ends every OTHER session, and the new password works", async () => {
    const a = await register(t);
    const b = await login(t, a.email);
    const wrong = await rejectsWith(t.auth(a.access).changePassword({ currentPassword: "not it at all", newPassword: "brand new secret" }), Code.InvalidArgument);
    assert.deepEqual(violations(wrong), ["currentPassword"]);
    const short = await rejectsWith(t.auth(a.access).changePassword({ currentPassword: PASSWORD, newPassword: "short" }), Code.InvalidArgument);
    assert.deepEqual(violations(short), ["newPassword"]);
    assert.ok(await alive(b.access), "failed attempts change nothing");

    await t.auth(a.access).changePassword({ currentPassword: PASSWORD, newPassword: "brand new secret" });
    assert.equal(await alive(b.access), false, "the other session ends at once");
    await rejectsWith(t.auth().refresh({ refreshToken: b.refresh }), Code.Unauthenticated);
    assert.ok(await alive(a.access), "the session that changed it continues");
    assert.ok((await t.auth().refresh({ refreshToken: a.refresh })).tokens);
    await rejectsWith(authFrom(t, freshIp()).login({ email: a.email, password: PASSWORD }), Code.Unauthenticated, INVALID_CREDENTIALS);
    await login(t, a.email, "brand new secret");
    const [ev] = await query(t, "select 1 from auth.auth_events where type = 'password_change' and user_id = $1", [a.user.id]);
    assert.ok(ev);
  });

  it("RevokeUserSessions (user deactivation) ends every session at once; only for the user service", async () => {
    const a = await register(t);
    const b = await login(t, a.email);
    const svc = await userServiceToken();
    const r = await t.authInternal(svc).revokeUserSessions({ userId: a.user.id, reason: "deactivated" });
    assert.equal(r.revoked, 2);
    assert.equal(await alive(a.access), false);
    assert.equal(await alive(b.access), false);
    await rejectsWith(t.auth().refresh({ refreshToken: b.refresh }), Code.Unauthenticated);
    assert.equal((await t.authInternal(svc).revokeUserSessions({ userId: a.user.id, reason: "again" })).revoked, 0);
    const [ev] = await query<{ client_id: string; reason: string }>(t, "select client_id, reason from auth.auth_events where type = 'sessions_revoked' and user_id = $1", [a.user.id]);
    assert.deepEqual({ ...ev }, { client_id: "user-service", reason: "deactivated" });
    await rejectsWith(t.authInternal(svc).revokeUserSessions({ userId: "nope" }), Code.InvalidArgument);
    await rejectsWith(t.authInternal().revokeUserSessions({ userId: a.user.id }), Code.Unauthenticated);
  });

  it("DeleteAccount removes the account and its sessions, and their access tokens stop working", async () => {
    const a = await register(t);
    const svc = await userServiceToken();
    await t.authInternal(svc).deleteAccount({ userId: a.user.id });
    assert.equal(await alive(a.access), false);
    assert.equal((await query(t, "select 1 from auth.accounts where id = $1", [a.user.id])).length, 0);
    assert.equal((await query(t, "select 1 from auth.sessions where user_id = $1", [a.user.id])).length, 0);
    assert.equal((await query(t, "select 1 from auth.refresh_tokens where user_id = $1", [a.user.id])).length, 0);
    await rejectsWith(authFrom(t, freshIp()).login({ email: a.email, password: PASSWORD }), Code.Unauthenticated);
    // Idempotent.
    await t.authInternal(svc).deleteAccount({ userId: a.user.id });
    // The email is free again (once the user service removed the profile too).
    await query(t, "delete from users.profiles where id = $1", [a.user.id]);
    await register(t, { email: a.email });
  });
});
