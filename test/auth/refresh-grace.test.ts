// The refresh-token reuse grace window (AUTH_REFRESH_REUSE_GRACE_SECONDS,
// here 30 s): a client that lost the answer to its refresh retries with the
// old token and gets the same pair; past the window, or once that pair was
// used, reuse revokes the family as before. With the default 0 the old rule
// holds (refresh.test.ts: of parallel refreshes one wins, the family ends).
import { strict as assert } from "node:assert";
import { Code } from "@connectrpc/connect";
import type { TestSystem } from "../support/system.js";
import { authModule, query, register, rejectsWith, startAuthSystem } from "./helpers.js";

const GRACE_S = 30;

describe("auth: refresh-token reuse grace window", () => {
  let t: TestSystem;
  before(async () => (t = await startAuthSystem({ env: { AUTH_REFRESH_REUSE_GRACE_SECONDS: String(GRACE_S) } })));
  after(async () => t?.stop());
  const clock = () => authModule(t).internals.clock;
  const sessionAlive = async (access: string) => t.auth(access).listSessions({}).then(() => true, () => false);
  const refresh = async (token: string) => (await t.auth().refresh({ refreshToken: token })).tokens!;

  it("inside the window, a retry of the spent token returns the same pair, and the session lives on", async () => {
    const r = await register(t);
    const first = await refresh(r.refresh);
    clock().advance((GRACE_S - 1) * 1000);
    const retried = await refresh(r.refresh);
    assert.deepEqual(retried, first);
    assert.ok(await sessionAlive(first.accessToken));
    const next = await refresh(first.refreshToken);
    assert.ok(await sessionAlive(next.accessToken));
    const [ev] = await query<{ n: number }>(t, "select count(*)::int as n from auth.auth_events where type = 'refresh_retried' and user_id = $1", [r.user.id]);
    assert.equal(ev.n, 1);
  });

  it("past the window, a retry is reuse: the family is revoked", async () => {
    const r = await register(t);
    const first = await refresh(r.refresh);
    clock().advance((GRACE_S + 1) * 1000);
    await rejectsWith(t.auth().refresh({ refreshToken: r.refresh }), Code.Unauthenticated, "invalid refresh token");
    assert.equal(await sessionAlive(first.accessToken), false);
    await rejectsWith(t.auth().refresh({ refreshToken: first.refreshToken }), Code.Unauthenticated);
  });

  it("inside the window, once the new pair has been used, the old token is reuse (the answer was not lost)", async () => {
    const r = await register(t);
    const first = await refresh(r.refresh);
    const second = await refresh(first.refreshToken);
    await rejectsWith(t.auth().refresh({ refreshToken: r.refresh }), Code.Unauthenticated);
    assert.equal(await sessionAlive(second.accessToken), false);
  });

  it("parallel refreshes of one token inside the window all succeed with the same pair (2 and 10 at once)", async () => {
    for (const n of [2, 10]) {
      const r = await register(t);
      const pairs = await Promise.all(Array.from({ length: n }, () => refresh(r.refresh)));
      for (const p of pairs) assert.deepEqual(p, pairs[0]);
      assert.ok(await sessionAlive(pairs[0].accessToken));
      const [{ tokens }] = await query<{ tokens: number }>(t, "select count(*)::int as tokens from auth.refresh_tokens where user_id = $1", [r.user.id]);
      assert.equal(tokens, 2, "one spent token and exactly one successor");
      assert.ok(await refresh(pairs[0].refreshToken));
    }
  });

  it("keeps the issued pair only encrypted (under a key derived from the spent token, which is not stored)", async () => {
    const r = await register(t);
    const first = await refresh(r.refresh);
    const rows = await query<{ successor_enc: Buffer | null }>(t, "select successor_enc from auth.refresh_tokens where user_id = $1 and consumed_at is not null", [r.user.id]);
    assert.equal(rows.length, 1);
    assert.ok(rows[0].successor_enc && rows[0].successor_enc.length > 28);
    const dump = JSON.stringify(await query(t, "select * from auth.refresh_tokens where user_id = $1", [r.user.id]));
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    for (const secret of [r.refresh, first.refreshToken, first.accessToken]) {
      assert.ok(!dump.includes(secret) && !dump.includes(b64(secret).slice(0, 40)), "a token is readable in the table");
    }
    assert.ok(!Buffer.from(rows[0].successor_enc!).toString("latin1").includes(first.refreshToken));
  });
});

describe("auth: refresh-token reuse with the default window (0)", () => {
  let t: TestSystem;
  before(async () => (t = await startAuthSystem()));
  after(async () => t?.stop());

  it("two parallel refreshes: one wins, the other is reuse and the family is revoked; nothing is kept for retries", async () => {
    const r = await register(t);
    const results = await Promise.allSettled([0, 1].map(() => t.auth().refresh({ refreshToken: r.refresh })));
    assert.deepEqual(results.map((x) => x.status).sort(), ["fulfilled", "rejected"]);
    const won = (results.find((x) => x.status === "fulfilled") as PromiseFulfilledResult<{ tokens?: { accessToken: string } }>).value.tokens!;
    assert.equal(await t.auth(won.accessToken).listSessions({}).then(() => true, () => false), false);
    const rows = await query<{ successor_enc: Buffer | null }>(t, "select successor_enc from auth.refresh_tokens where user_id = $1", [r.user.id]);
    assert.ok(rows.every((x) => x.successor_enc === null));
    // A retry a moment later is reuse too.
    const again = await register(t);
    await t.auth().refresh({ refreshToken: again.refresh });
    await rejectsWith(t.auth().refresh({ refreshToken: again.refresh }), Code.Unauthenticated);
  });
});
