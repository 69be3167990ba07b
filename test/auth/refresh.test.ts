// Refresh tokens: opaque, hashed at rest, single use, atomic rotation, reuse
// revokes the family, absolute and idle lifetimes, roles re-read at refresh.
import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import type { TestSystem } from "../support/system.js";
import { authModule, decodeJwt, login, query, register, rejectsWith, startAuthSystem } from "./helpers.js";

const DAY = 86_400_000;

describe("auth: refresh tokens", () => {
  let t: TestSystem;
  // Idle lifetime 7 days (configurable), absolute 30 days (default).
  before(async () => (t = await startAuthSystem({ env: { REFRESH_IDLE_TTL_SECONDS: String(7 * 86400) } })));
  after(async () => t?.stop());
  const clock = () => authModule(t).internals.clock;
  const sessionAlive = async (access: string) => t.auth(access).listSessions({}).then(() => true, () => false);

  it("are 256-bit opaque strings stored only as SHA-256 hashes", async () => {
    const r = await register(t);
    assert.match(r.refresh, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(r.refresh, "base64url").length, 32);
    const rows = await query<{ token_hash: Buffer }>(t, "select token_hash from auth.refresh_tokens where user_id = $1", [r.user.id]);
    assert.equal(rows.length, 1);
    assert.deepEqual(Buffer.from(rows[0].token_hash), createHash("sha256").update(r.refresh).digest());
    const dump = JSON.stringify(await query(t, "select * from auth.refresh_tokens"));
    assert.ok(!dump.includes(r.refresh));
  });

  it("rotate: a new pair in the same session; the spent token is refused", async () => {
    const r = await register(t);
    const next = (await t.auth().refresh({ refreshToken: r.refresh })).tokens!;
    assert.notEqual(next.refreshToken, r.refresh);
    assert.equal(decodeJwt(next.accessToken).claims.sid, decodeJwt(r.access).claims.sid);
    assert.equal(next.expiresIn, 900);
    assert.ok(await sessionAlive(next.accessToken));
    const third = (await t.auth().refresh({ refreshToken: next.refreshToken })).tokens!;
    assert.ok(await sessionAlive(third.accessToken));
    await rejectsWith(t.auth().refresh({ refreshToken: "x".repeat(43) }), Code.Unauthenticated, "invalid refresh token");
    await rejectsWith(t.auth().refresh({ refreshToken: "" }), Code.Unauthenticated, "invalid refresh token");
    // Single use: the first token, spent, is refused.
    await rejectsWith(t.auth().refresh({ refreshToken: r.refresh }), Code.Unauthenticated, "invalid refresh token");
  });

  it("20 parallel refreshes of one token: exactly one succeeds", async () => {
    const r = await register(t);
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => t.auth().refresh({ refreshToken: r.refresh })));
    const ok = results.filter((x) => x.status === "fulfilled");
    const refused = results.filter((x): x is PromiseRejectedResult => x.status === "rejected");
    assert.equal(ok.length, 1);
    assert.equal(refused.length, 19);
    for (const x of refused) assert.equal(ConnectError.from(x.reason).code, Code.Unauthenticated);
    // One child token only: the spent one plus exactly one successor.
    const [{ n }] = await query<{ n: number }>(t, "select count(*)::int as n from auth.refresh_tokens where user_id = $1", [r.user.id]);
    assert.equal(n, 2);
    // The 19 losers presented a spent token: that is reuse, and the family ended.
    const [{ reuse }] = await query<{ reuse: number }>(t, "select count(*)::int as reuse from auth.auth_events where type = 'reuse_detected' and user_id = $1", [r.user.id]);
    assert.equal(reuse, 19);
  });

  it("reuse of a spent token revokes the whole family (its session, all its tokens) and is audited; other logins live on", async () => {
    const r = await register(t);
    const other = await login(t, r.email);
    const child = (await t.auth().refresh({ refreshToken: r.refresh })).tokens!;
    const grandchild = (await t.auth().refresh({ refreshToken: child.refreshToken })).tokens!;
    // An attacker replays the original token.
    await rejectsWith(t.auth().refresh({ refreshToken: r.refresh }), Code.Unauthenticated, "invalid refresh token");
    // The legitimate holder's newest pair is dead too, at once.
    await rejectsWith(t.auth().refresh({ refreshToken: grandchild.refreshToken }), Code.Unauthenticated);
    assert.equal(await sessionAlive(grandchild.accessToken), false);
    assert.equal(await sessionAlive(child.accessToken), false);
    assert.equal(await sessionAlive(r.access), false);
    // The other login is another family.
    assert.ok(await sessionAlive(other.access));
    assert.ok((await t.auth().refresh({ refreshToken: other.refresh })).tokens);
    const events = await query<{ type: string; session_id: string }>(
      t,
      "select type, session_id from auth.auth_events where user_id = $1 and type = 'reuse_detected'",
      [r.user.id],
    );
    assert.equal(events.length, 1);
    assert.equal(events[0].session_id, decodeJwt(r.access).claims.sid);
    const [s] = await query<{ revoke_reason: string }>(t, "select revoke_reason from auth.sessions where id = $1", [events[0].session_id]);
    assert.equal(s.revoke_reason, "refresh_token_reuse");
  });

  it("idle lifetime: a token unused for longer than REFRESH_IDLE_TTL_SECONDS is refused and its session no longer listed", async () => {
    const r = await register(t);
    clock().advance(7 * DAY - 60_000);
    const next = (await t.auth().refresh({ refreshToken: r.refresh })).tokens!;
    clock().advance(7 * DAY + 1000);
    await rejectsWith(t.auth().refresh({ refreshToken: next.refreshToken }), Code.Unauthenticated);
    // ListSessions no longer shows the idle session.
    const other = await login(t, r.email);
    const listed = (await t.auth(other.access).listSessions({})).sessions.map((s) => s.id);
    assert.deepEqual(listed, [decodeJwt(other.access).claims.sid]);
  });

  it("absolute lifetime: 30 days after login no refresh succeeds, however recent the last one", async () => {
    const r = await register(t);
    let token = r.refresh;
    for (let day = 6; day <= 29; day += 6) {
      clock().advance(6 * DAY);
      token = (await t.auth().refresh({ refreshToken: token })).tokens!.refreshToken;
    }
    // Day 24 + 5.99 = 29.99: still inside the 30 days.
    clock().advance(6 * DAY - 15 * 60_000);
    token = (await t.auth().refresh({ refreshToken: token })).tokens!.refreshToken;
    clock().advance(20 * 60_000); // 30 days + 5 min after login, 20 min after the last refresh
    await rejectsWith(t.auth().refresh({ refreshToken: token }), Code.Unauthenticated);
    const [s] = await query<{ created_at: Date; expires_at: Date }>(t, "select created_at, expires_at from auth.sessions where id = $1", [
      decodeJwt(r.access).claims.sid,
    ]);
    assert.equal(s.expires_at.getTime() - s.created_at.getTime(), 30 * DAY);
  });

  it("re-reads roles at refresh, and refuses (and ends the session of) a deactivated or deleted user", async () => {
    const r = await register(t);
    await query(t, "update users.profiles set role = 'admin' where id = $1", [r.user.id]);
    const promoted = (await t.auth().refresh({ refreshToken: r.refresh })).tokens!;
    assert.deepEqual(decodeJwt(promoted.accessToken).claims.roles, ["admin"]);

    await query(t, "update users.profiles set active = false where id = $1", [r.user.id]);
    await rejectsWith(t.auth().refresh({ refreshToken: promoted.refreshToken }), Code.Unauthenticated);
    assert.equal(await sessionAlive(promoted.accessToken), false);

    const gone = await register(t);
    await query(t, "delete from users.profiles where id = $1", [gone.user.id]);
    await rejectsWith(t.auth().refresh({ refreshToken: gone.refresh }), Code.Unauthenticated);
  });
});
