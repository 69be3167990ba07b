// Brute-force throttling (docs/auth-policy.md) with the service clock moved
// forward instead of sleeping: per (account, address) waits growing 1, 2, 4,
// 8 min capped at 15, never a lock of the account itself; per address across
// accounts; the per-account soft limit that only slows; exact under
// concurrency; the audit log shows each decision.
import { strict as assert } from "node:assert";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Redis } from "ioredis";
import { INVALID_CREDENTIALS } from "../../services/auth/accounts.js";
import { THROTTLED } from "../../services/auth/throttled.js";
import type { TestSystem } from "../support/system.js";
import { authFrom, authModule, email, freshIp, login, PASSWORD, query, register, rejectsWith, startAuthSystem } from "./helpers.js";

const SOFT_DELAY_MS = 400;

describe("auth: login throttling (per account and address, per address, per-account soft limit)", () => {
  let t: TestSystem;
  before(
    async () =>
      (t = await startAuthSystem({
        env: { LOGIN_IP_MAX_FAILURES: "8", LOGIN_ACCOUNT_SOFT_LIMIT: "12", LOGIN_ACCOUNT_SOFT_DELAY_MS: String(SOFT_DELAY_MS) },
      })),
  );
  after(async () => t?.stop());
  const clock = () => authModule(t).internals.clock;
  const lockout = () => authModule(t).internals.lockout;
  const wrong = (e: string, ip: string) => rejectsWith(authFrom(t, ip).login({ email: e, password: "wrong password" }), Code.Unauthenticated, INVALID_CREDENTIALS);
  /** A refusal by a throttle: RESOURCE_EXHAUSTED, the one message, Retry-After in whole seconds. */
  const throttled = async (e: string, ip: string, password = PASSWORD) => {
    const err = await rejectsWith(authFrom(t, ip).login({ email: e, password }), Code.ResourceExhausted, THROTTLED);
    const retry = Number(err.metadata.get("retry-after"));
    assert.ok(Number.isInteger(retry) && retry >= 1, `retry-after ${err.metadata.get("retry-after")}`);
    return retry;
  };

  it("after 5 failures from one address, that address waits 1 min, then 2, 4, 8, capped at 15; the owner elsewhere signs in throughout; success resets", async () => {
    const a = await register(t);
    const attacker = freshIp();
    for (let i = 0; i < 4; i++) await wrong(a.email, attacker);
    assert.equal((await lockout().pairStatus(a.email, attacker)).throttled, false, "4 failures: no wait yet");
    await wrong(a.email, attacker); // 5th
    assert.equal(await throttled(a.email, attacker), 60, "even the right password waits, from that address");
    await login(t, a.email, PASSWORD, freshIp()); // the owner, elsewhere

    const waits = [60, 120, 240, 480, 900, 900];
    for (const [i, seconds] of waits.entries()) {
      clock().advance(seconds * 1000 - 1000);
      assert.equal(await throttled(a.email, attacker), 1, "one second before the end: still waiting");
      clock().advance(2000); // one second after: open again
      if (i < waits.length - 1) await wrong(a.email, attacker); // the next failure doubles the wait
    }
    await login(t, a.email, PASSWORD, attacker); // success from the address: its failures for the account are forgotten
    await wrong(a.email, attacker);
    assert.deepEqual(await lockout().pairStatus(a.email, attacker), { throttled: false, retryAfterMs: 0, failures: 1 });
    // (The address's own count, 11 failures now, is not forgotten: a sprayer may own one account.)
    assert.equal((await lockout().addressStatus(attacker)).failures, 11);

    const started = await query<{ reason: string }>(
      t,
      "select reason from auth.auth_events where type = 'throttle_started' and user_id = $1 and reason like 'account_address:%' order by id",
      [a.user.id],
    );
    assert.deepEqual(
      started.map((e) => e.reason),
      [5, 6, 7, 8, 9, 10].map((n, i) => `account_address: ${[60, 120, 240, 480, 900, 900][i]}s after ${n} failures`),
    );
    const refused = await query<{ ip: string; reason: string }>(t, "select ip, reason from auth.auth_events where type = 'login_throttled' and user_id = $1 order by id", [a.user.id]);
    assert.equal(refused.length, 7);
    assert.ok(refused.every((r) => r.ip === attacker && /^account_address: retry in \d+s$/.test(r.reason)));
  });

  it("an attacker hammering an account from address A (60 tries) never stops its owner at address B; A is throttled with Retry-After", async () => {
    const victim = await register(t);
    const [a, b] = [freshIp(), freshIp()];
    const seen = { unauthenticated: 0, throttled: 0 };
    let ownerLogins = 0;
    for (let i = 0; i < 60; i++) {
      try {
        await authFrom(t, a).login({ email: victim.email, password: `guess-${i}` });
        assert.fail("a wrong password succeeded");
      } catch (err) {
        const ce = ConnectError.from(err);
        if (ce.code === Code.ResourceExhausted) {
          seen.throttled++;
          assert.equal(ce.rawMessage, THROTTLED);
          const retry = Number(ce.metadata.get("retry-after"));
          assert.ok(retry >= 1);
          // The attacker waits out every other wait, so that failures keep being counted.
          if (i % 2 === 0) clock().advance(retry * 1000);
        } else {
          assert.equal(ce.code, Code.Unauthenticated);
          assert.equal(ce.rawMessage, INVALID_CREDENTIALS);
          seen.unauthenticated++;
        }
      }
      if (i % 10 === 9) {
        await login(t, victim.email, PASSWORD, b); // the owner, mid-attack
        ownerLogins++;
      }
    }
    assert.equal(ownerLogins, 6);
    console.log(`      60 tries from A: ${seen.unauthenticated} password checks failed, ${seen.throttled} refused unseen (429); owner at B: ${ownerLogins}/6 signed in`);
    assert.ok(seen.throttled >= 25, JSON.stringify(seen));
    assert.ok(seen.unauthenticated >= 13, JSON.stringify(seen)); // past the per-account soft limit: the owner is slowed, never refused
    // A is now refused for any email, with the same answer whether or not it has an account.
    await throttled(email("ghost"), a);
    await throttled(victim.email, a);
    // An unknown email is throttled per address exactly like an account.
    const [ghost, c] = [email("ghost"), freshIp()];
    for (let i = 0; i < 5; i++) await wrong(ghost, c);
    await throttled(ghost, c);
  });

  it("per address: after 8 failures from one address (any accounts), every login from it waits, the right password too; other addresses are unaffected", async () => {
    const a = await register(t);
    const ip = freshIp();
    for (let i = 0; i < 8; i++) await wrong(email("spray"), ip);
    assert.equal(await throttled(a.email, ip), 60);
    await login(t, a.email); // the account itself is fine from another address
    const [ev] = await query<{ reason: string; user_id: string }>(t, "select reason, user_id from auth.auth_events where type = 'login_throttled' and ip = $1", [ip]);
    assert.match(ev.reason, /^address: retry in \d+s$/);
    assert.equal(ev.user_id, a.user.id);
    const [started] = await query<{ reason: string }>(t, "select reason from auth.auth_events where type = 'throttle_started' and ip = $1", [ip]);
    assert.equal(started.reason, "address: 60s after 8 failures");
  });

  it("per account, from all addresses: past 12 failures every login for it waits (owner included) but is never refused; unknown emails alike", async () => {
    const a = await register(t);
    const ghost = email("ghost-soft");
    for (let i = 0; i < 12; i++) {
      await wrong(a.email, freshIp());
      await wrong(ghost, freshIp());
    }
    for (const e of [a.email, ghost]) assert.equal(await lockout().softDelayMs(e), SOFT_DELAY_MS);
    const t0 = performance.now();
    await login(t, a.email, PASSWORD, freshIp());
    assert.ok(performance.now() - t0 >= SOFT_DELAY_MS, "the owner's login waited");
    const t1 = performance.now();
    await wrong(ghost, freshIp());
    assert.ok(performance.now() - t1 >= SOFT_DELAY_MS, "an unknown email waits the same");
    const [ev] = await query<{ reason: string }>(t, "select reason from auth.auth_events where type = 'login_slowed' and user_id = $1", [a.user.id]);
    assert.equal(ev.reason, "12 failures from all addresses");
  });

  it("every counter expires (nothing permanent)", async () => {
    const ghost = email("ghost");
    const ip = freshIp();
    for (let i = 0; i < 5; i++) await wrong(ghost, ip);
    assert.equal((await lockout().pairStatus(ghost, ip)).throttled, true);
    const redis = (t.system.kv as unknown as { client: Redis }).client;
    const keys = await redis.keys("auth:login:*");
    assert.ok(keys.length > 0);
    for (const k of keys) assert.ok((await redis.pttl(k)) > 0, `${k} has no expiry`);
  });

  it("counts concurrent failures exactly (20 at once from one address)", async () => {
    const a = await register(t);
    const ip = freshIp();
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => authFrom(t, ip).login({ email: a.email, password: "wrong password" })));
    let refusedUnseen = 0;
    for (const r of results) {
      assert.equal(r.status, "rejected");
      const code = ConnectError.from((r as PromiseRejectedResult).reason).code;
      assert.ok(code === Code.Unauthenticated || code === Code.ResourceExhausted, Code[code]);
      if (code === Code.ResourceExhausted) refusedUnseen++;
    }
    const st = await lockout().pairStatus(a.email, ip);
    // Every attempt was either counted as a failure or refused because a wait had already started.
    assert.equal(st.failures + refusedUnseen, 20);
    assert.ok(st.failures >= 5);
    assert.equal(st.throttled, true);
    // Each count from 5 up started its own wait exactly once: no lost or doubled increments.
    const started = await query<{ reason: string }>(t, "select reason from auth.auth_events where type = 'throttle_started' and user_id = $1 and reason like 'account_address:%'", [a.user.id]);
    const expected = [];
    for (let n = 5; n <= st.failures; n++) expected.push(`account_address: ${lockout().pairWaitMs(n) / 1000}s after ${n} failures`);
    assert.deepEqual(started.map((e) => e.reason).sort(), expected.sort());
  });

  it("wrong current passwords in ChangePassword count against the same throttle (that address only)", async () => {
    const a = await register(t);
    const ip = freshIp();
    const me = authFrom(t, ip, {}, a.access);
    for (let i = 0; i < 5; i++) {
      await rejectsWith(me.changePassword({ currentPassword: "wrong password", newPassword: "another password" }), Code.InvalidArgument);
    }
    const err = await rejectsWith(me.changePassword({ currentPassword: PASSWORD, newPassword: "another password" }), Code.ResourceExhausted, THROTTLED);
    assert.ok(Number(err.metadata.get("retry-after")) >= 1);
    await throttled(a.email, ip);
    await login(t, a.email, PASSWORD, freshIp());
  });

  it("answers an unknown email and a known one's wrong password in the same time (interleaved, 20 each)", async () => {
    // Two accounts, 10 failures each: below the per-account soft limit, so this measures the password check.
    const known = [await register(t), await register(t)];
    const times = { known: [] as number[], unknown: [] as number[] };
    for (let i = 0; i < 20; i++) {
      for (const kind of ["known", "unknown"] as const) {
        const t0 = performance.now();
        await wrong(kind === "known" ? known[i % 2].email : email("nobody"), freshIp());
        times[kind].push(performance.now() - t0);
      }
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    const [k, u] = [median(times.known), median(times.unknown)];
    console.log(`      login timing, median of 20: known email ${k.toFixed(1)} ms, unknown ${u.toFixed(1)} ms`);
    assert.ok(Math.abs(k - u) < Math.max(15, 0.25 * Math.max(k, u)), `known ${k} ms, unknown ${u} ms`);
  });
});
