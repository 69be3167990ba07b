// Registration that does not tell whether an email is taken (same answer,
// same timing, nothing changed for the owner, who gets an audit event), and
// emails normalised one way: case, trailing dot, NFKC; look-alikes refused.
import { strict as assert } from "node:assert";
import { Code } from "@connectrpc/connect";
import type { TestSystem } from "../support/system.js";
import { authFrom, email, freshIp, login, PASSWORD, query, register, rejectsWith, startAuthSystem, violations } from "./helpers.js";

describe("auth: registration without enumeration, email normal form", () => {
  let t: TestSystem;
  before(async () => (t = await startAuthSystem()));
  after(async () => t?.stop());

  it("answers a taken email exactly as a new one, changes nothing for the owner, and records register_existing", async () => {
    const owner = await register(t);
    const fresh = await authFrom(t, freshIp()).register({ email: email("new"), password: PASSWORD, name: "New" });
    const ip = freshIp();
    const taken = await authFrom(t, ip).register({ email: owner.email, password: "attacker password", name: "Mallory" });
    assert.deepEqual(taken, fresh);
    assert.equal(taken.status, "accepted");
    // The owner's password and name are untouched; the attacker's password opens nothing.
    await login(t, owner.email);
    await rejectsWith(authFrom(t, freshIp()).login({ email: owner.email, password: "attacker password" }), Code.Unauthenticated);
    assert.equal((await query(t, "select 1 from auth.accounts where email = $1", [owner.email])).length, 1);
    const [p] = await query<{ name: string }>(t, "select name from users.profiles where id = $1", [owner.user.id]);
    assert.equal(p.name, "Test User");
    const [ev] = await query<{ user_id: string; ip: string }>(t, "select user_id, ip from auth.auth_events where type = 'register_existing' and ip = $1", [ip]);
    assert.equal(ev.user_id, owner.user.id);
  });

  it("takes as long for a taken email as for a new one (interleaved, 15 each)", async () => {
    const taken = await register(t);
    const times = { new: [] as number[], taken: [] as number[] };
    for (let i = 0; i < 15; i++) {
      // Alternating which goes first: a new account's mails are rendered and written in the
      // background, and that work should slow the next request of either kind equally often.
      for (const kind of i % 2 ? (["taken", "new"] as const) : (["new", "taken"] as const)) {
        const t0 = performance.now();
        await authFrom(t, freshIp()).register({ email: kind === "new" ? email("timing") : taken.email, password: PASSWORD, name: "Timing" });
        times[kind].push(performance.now() - t0);
      }
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    const [n, k] = [median(times.new), median(times.taken)];
    console.log(`      register timing, median of 15: new email ${n.toFixed(1)} ms, taken ${k.toFixed(1)} ms`);
    assert.ok(Math.abs(n - k) < Math.max(15, 0.25 * Math.max(n, k)), `new ${n} ms, taken ${k} ms`);
  });

  it("'Alice@Example.com.' and 'alice@example.com' are one account (case, trailing dot, full-width forms)", async () => {
    const local = `alice-${Date.now()}`;
    await authFrom(t, freshIp()).register({ email: `${local.replace("a", "A")}@Example.com.`, password: PASSWORD, name: "Alice" });
    const rows = await query<{ id: string; email: string }>(t, "select id, email from auth.accounts where email like $1", [`${local}@%`]);
    assert.deepEqual(rows.map((r) => r.email), [`${local}@example.com`]);
    assert.equal((await authFrom(t, freshIp()).register({ email: `${local}@example.com`, password: "other password", name: "Again" })).status, "accepted");
    assert.equal((await query(t, "select 1 from auth.accounts where email like $1", [`${local}@%`])).length, 1);
    const l = await login(t, `${local}@example.com`);
    assert.equal(l.user.id, rows[0].id);
    assert.equal((await login(t, `${local.toUpperCase()}@EXAMPLE.COM.`)).user.id, rows[0].id);
    // Full-width letters fold to the same address (NFKC).
    const fullWidth = [...`${local}@example.com`].map((c) => (/[a-z]/.test(c) ? String.fromCodePoint(c.codePointAt(0)! + 0xfee0) : c)).join("");
    assert.equal((await login(t, fullWidth)).user.id, rows[0].id);
  });

  it("refuses a look-alike (Cyrillic 'а' in a Latin address, in the local part or the domain) with INVALID_ARGUMENT naming email", async () => {
    for (const e of [`\u0430lice-${Date.now()}@example.com`, `alice-${Date.now()}@ex\u0430mple.com`, `zero\u200bwidth@example.com`]) {
      const err = await rejectsWith(authFrom(t, freshIp()).register({ email: e, password: PASSWORD, name: "Look Alike" }), Code.InvalidArgument);
      assert.deepEqual(violations(err), ["email"], e);
    }
    // One script throughout is fine, in the local part and in each domain label.
    assert.equal((await authFrom(t, freshIp()).register({ email: `иван-${Date.now()}@пример.рф`, password: PASSWORD, name: "Иван" })).status, "accepted");
    assert.equal((await authFrom(t, freshIp()).register({ email: `иван-${Date.now()}@example.com`, password: PASSWORD, name: "Иван" })).status, "accepted");
  });
});
