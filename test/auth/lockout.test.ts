// Brute-force protection with the service clock moved forward instead of
// sleeping: per-account lockout growing 1, 2, 4, 8 min then capped at 15,
// reset on success, exact under concurrency; per-IP failure limit.
import { strict as assert } from "node:assert";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Redis } from "ioredis";
import { INVALID_CREDENTIALS } from "../../services/auth/accounts.js";
import type { TestSystem } from "../support/system.js";
import { authFrom, authModule, email, freshIp, login, PASSWORD, query, register, rejectsWith, startAuthSystem } from "./helpers.js";

describe("auth: lockout and per-IP limit", () => {
  let t: TestSystem;
  before(async () => (t = await startAuthSystem({ env: { LOGIN_IP_MAX_FAILURES: "3" } })));
  after(async () => t?.stop());
  const clock = () => authModule(t).internals.clock;
  // A fresh IP per attempt keeps the per-IP limit (3 here) out of the per-account tests.
  const wrong = (e: string) => rejectsWith(authFrom(t, freshIp()).login({ email: e, password: "wrong password" }), Code.Unauthenticated, INVALID_CREDENTIALS);
  const refusedWhileLocked = (e: string) => rejectsWith(authFrom(t, freshIp()).login({ email: e, password: PASSWORD }), Code.Unauthenticated, INVALID_CREDENTIALS);

  it("locks after 5 failures for 1 min, then 2, 4, 8, capped at 15 min; the right password is refused while locked; success resets", async () => {
    const a = await register(t);
    for (let i = 0; i < 4; i++) await wrong(a.email);
    assert.equal((await authModule(t).internals.lockout.status(a.email)).locked, false, "4 failures: not locked yet");
    await wrong(a.email); // 5th
    await refusedWhileLocked(a.email);

    const locks = [60, 120, 240, 480, 900, 900];
    for (const [i, seconds] of locks.entries()) {
      clock().advance(seconds * 1000 - 1000);
      await refusedWhileLocked(a.email); // one second before the end: still locked
      clock().advance(2000); // one second after: open again
      if (i < locks.length - 1) await wrong(a.email); // the next failure locks for twice as long
    }
    await login(t, a.email); // success: lock over, counter reset
    await wrong(a.email);
    await login(t, a.email); // one failure after a reset does not lock

    const lockEvents = await query<{ reason: string }>(t, "select reason from auth.auth_events where type = 'lock' and user_id = $1 order by id", [a.user.id]);
    assert.deepEqual(
      lockEvents.map((e) => e.reason),
      ["60s after 5 failures", "120s after 6 failures", "240s after 7 failures", "480s after 8 failures", "900s after 9 failures", "900s after 10 failures"],
    );
    const failures = await query<{ reason: string; n: number }>(
      t,
      "select reason, count(*)::int as n from auth.auth_events where type = 'login_failure' and user_id = $1 group by reason order by reason",
      [a.user.id],
    );
    assert.deepEqual(failures.map((f) => [f.reason, f.n]), [["bad_password", 11], ["locked", 7]]);
  });

  it("treats unknown emails exactly like accounts (they lock too), and every counter expires (nothing permanent)", async () => {
    const ghost = email("ghost");
    for (let i = 0; i < 5; i++) await wrong(ghost);
    const st = await authModule(t).internals.lockout.status(ghost);
    assert.equal(st.locked, true);
    const redis = (t.system.kv as unknown as { client: Redis }).client;
    const keys = await redis.keys("auth:login:*");
    assert.ok(keys.length > 0);
    for (const k of keys) {
      const ttl = await redis.pttl(k);
      assert.ok(ttl > 0, `${k} has no expiry`);
    }
  });

  it("counts concurrent failures exactly (20 at once)", async () => {
    const a = await register(t);
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => authFrom(t, freshIp()).login({ email: a.email, password: "wrong password" })));
    for (const r of results) {
      assert.equal(r.status, "rejected");
      assert.equal(ConnectError.from((r as PromiseRejectedResult).reason).code, Code.Unauthenticated);
    }
    const lockout = authModule(t).internals.lockout;
    const st = await lockout.status(a.email);
    const [{ n: lockedRefusals }] = await query<{ n: number }>(
      t,
      "select count(*)::int as n from auth.auth_events where type = 'login_failure' and reason = 'locked' and user_id = $1",
      [a.user.id],
    );
    // Every attempt was either counted as a failure or refused because the lock had already started.
    assert.equal(st.failures + lockedRefusals, 20);
    assert.ok(st.failures >= 5);
    assert.equal(st.locked, true);
    // Each count from 5 up started its own lock exactly once: no lost or doubled increments.
    const lockEvents = await query<{ reason: string }>(t, "select reason from auth.auth_events where type = 'lock' and user_id = $1", [a.user.id]);
    const expected = [];
    for (let n = 5; n <= st.failures; n++) expected.push(`${lockout.lockMs(n) / 1000}s after ${n} failures`);
    assert.deepEqual(lockEvents.map((e) => e.reason).sort(), expected.sort());
  });

  it("wrong current passwords in ChangePassword count against the same lockout", async () => {
    const a = await register(t);
    for (let i = 0; i < 5; i++) {
      await rejectsWith(t.auth(a.access).changePassword({ currentPassword: "wrong password", newPassword: "another password" }), Code.InvalidArgument);
    }
    await rejectsWith(t.auth(a.access).changePassword({ currentPassword: PASSWORD, newPassword: "another password" }), Code.FailedPrecondition);
    await refusedWhileLocked(a.email);
  });

  it("per-IP limit: after 3 failures from one address, logins from it are refused before any password check", async () => {
    const a = await register(t);
    const ip = freshIp();
    for (let i = 0; i < 3; i++) {
      await rejectsWith(authFrom(t, ip).login({ email: email("spray"), password: "wrong password" }), Code.Unauthenticated, INVALID_CREDENTIALS);
    }
    await rejectsWith(authFrom(t, ip).login({ email: a.email, password: PASSWORD }), Code.ResourceExhausted);
    // The account itself is not locked: another address signs in.
    await login(t, a.email);
    const [ev] = await query(t, "select 1 from auth.auth_events where type = 'login_failure' and reason = 'ip_limited' and ip = $1", [ip]);
    assert.ok(ev);
  });
});
