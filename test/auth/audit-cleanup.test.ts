// The audit log (what is recorded, what never is, append-only) and the
// background cleanup of expired state.
import { strict as assert } from "node:assert";
import type { Kysely } from "kysely";
import { silentLogger } from "../../platform/logger.js";
import { loadSecrets } from "../../platform/secrets.js";
import { SERVICE_NAMES } from "../../app/services.js";
import { Cleanup } from "../../services/auth/cleanup.js";
import type { AuthDb } from "../../services/auth/tables.js";
import type { TestSystem } from "../support/system.js";
import { authFrom, authModule, decodeJwt, email, login, PASSWORD, query, register, startAuthSystem } from "./helpers.js";

const DAY = 86_400_000;
const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";

describe("auth: audit log and cleanup", () => {
  let t: TestSystem;
  before(async () => (t = await startAuthSystem()));
  after(async () => t?.stop());

  it("records every kind of event with time, user/client, ip, user agent and trace id; never a secret", async () => {
    const headers = { "user-agent": "audit-test/1.0", traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01` };
    const ip = "192.0.2.44";
    const client = (token?: string) => authFrom(t, ip, headers, token);
    const e = email("audited");
    await client().register({ email: e, password: PASSWORD, name: "Audited" });
    await client().register({ email: e, password: "another password", name: "Again" }); // register_existing
    const reg = await client().login({ email: e, password: PASSWORD });
    const userId = reg.user!.id;
    for (let i = 0; i < 5; i++) await assert.rejects(client().login({ email: e, password: "wrong password" })); // bad_password x5, throttle_started
    await assert.rejects(client().login({ email: e, password: PASSWORD })); // login_throttled
    await assert.rejects(client().login({ email: email("nobody"), password: PASSWORD })); // unknown_user
    await authModule(t).internals.lockout.reset(e, ip);
    const l = await client().login({ email: e, password: PASSWORD });
    const refreshed = await client().refresh({ refreshToken: l.tokens!.refreshToken });
    await assert.rejects(client().refresh({ refreshToken: l.tokens!.refreshToken })); // reuse
    const second = await client().login({ email: e, password: PASSWORD });
    const third = await client().login({ email: e, password: PASSWORD });
    await client(second.tokens!.accessToken).deleteSession({ id: String(decodeJwt(third.tokens!.accessToken).claims.sid) });
    await client(second.tokens!.accessToken).changePassword({ currentPassword: PASSWORD, newPassword: "second password" });
    await client().logout({ refreshToken: second.tokens!.refreshToken });
    const fourth = await client().login({ email: e, password: "second password" });
    await client(fourth.tokens!.accessToken).logoutAll({});
    const secrets = loadSecrets(t.dataDir, t.env, SERVICE_NAMES);
    const svc = await client().issueServiceToken({ clientId: "user-service", clientSecret: secrets.clientSecrets.user, audience: "acme-auth" });

    const rows = await query<Record<string, unknown>>(t, "select * from auth.auth_events where ip = $1 order by id", [ip]);
    const types = new Set(rows.map((r) => r.type));
    for (const type of [
      "register", "register_existing", "login_success", "login_failure", "throttle_started", "login_throttled", "refresh", "reuse_detected",
      "logout", "logout_all", "password_change", "session_revoked", "token_issued",
    ]) {
      assert.ok(types.has(type), `no ${type} event`);
    }
    const reasons = new Set(rows.filter((r) => r.type === "login_failure").map((r) => r.reason));
    assert.deepEqual([...reasons].sort(), ["bad_password", "unknown_user"]);
    for (const r of rows) {
      assert.ok(r.at instanceof Date);
      assert.equal(r.ip, ip);
      assert.match(String(r.user_agent), /^audit-test\/1\.0/);
      assert.equal(r.trace_id, TRACE_ID);
      if (r.type === "token_issued") assert.equal(r.client_id, "user-service");
      else if (!(r.type === "login_failure" && r.reason === "unknown_user")) assert.equal(r.user_id, userId, String(r.type));
    }
    // No password, token, secret or hash in any column of any row.
    const dump = JSON.stringify(await query(t, "select * from auth.auth_events"));
    const secretsSeen = [
      PASSWORD, "second password", "wrong password", "another password",
      reg.tokens!.refreshToken, reg.tokens!.accessToken, l.tokens!.refreshToken, refreshed.tokens!.refreshToken,
      svc.accessToken, secrets.clientSecrets.user, "$2b$",
    ];
    for (const s of secretsSeen) assert.ok(!dump.includes(s), "a secret reached the audit log");
  });

  it("without a traceparent the trace id is empty, and a malformed one is ignored", async () => {
    const e = email();
    await authFrom(t, "192.0.2.45", { traceparent: "00-not-a-trace-01" }).register({ email: e, password: PASSWORD, name: "N" });
    const [row] = await query<{ trace_id: string }>(
      t,
      "select trace_id from auth.auth_events where type = 'register' and user_id = (select id from auth.accounts where email = $1)",
      [e],
    );
    assert.equal(row.trace_id, "");
  });

  it("is append-only: UPDATE, DELETE and TRUNCATE are refused by the database", async () => {
    await assert.rejects(query(t, "update auth.auth_events set reason = 'edited'"), /append-only/);
    await assert.rejects(query(t, "delete from auth.auth_events"), /append-only/);
    await assert.rejects(query(t, "truncate auth.auth_events"), /append-only/);
  });

  it("cleanup deletes expired sessions and refresh tokens, keeps live ones, and can run on several instances at once", async () => {
    const internals = authModule(t).internals;
    const old = await register(t);
    const revoked = await login(t, old.email);
    await t.auth().logout({ refreshToken: revoked.refresh });
    const child = (await t.auth().refresh({ refreshToken: old.refresh })).tokens!;
    assert.ok(child);
    const count = async (table: string) => (await query<{ n: number }>(t, `select count(*)::int as n from auth.${table}`))[0].n;

    internals.clock.advance(31 * DAY); // past the 30-day absolute lifetime of both sessions
    const fresh = await login(t, old.email);
    const before = { sessions: await count("sessions"), tokens: await count("refresh_tokens") };
    const kdb = t.system.db.db as Kysely<AuthDb>;
    const others = [1, 2].map(() => new Cleanup(kdb, internals.cfg, internals.clock, silentLogger));
    const results = await Promise.all([internals.cleanup.runOnce(), ...others.map((c) => c.runOnce())]);
    const removedSessions = results.reduce((n, r) => n + r.sessions, 0);
    assert.equal(removedSessions, before.sessions - 1, "every session but the fresh one, each removed once");
    assert.equal(await count("sessions"), 1);
    assert.equal(await count("refresh_tokens"), 1);
    const [live] = await query<{ id: string }>(t, "select id from auth.sessions");
    assert.equal(live.id, decodeJwt(fresh.access).claims.sid);
    assert.ok((await t.auth().refresh({ refreshToken: fresh.refresh })).tokens, "the live session is untouched");
    // Nothing left to do: a second run removes nothing.
    assert.deepEqual(await internals.cleanup.runOnce(), { refreshTokens: 0, sessions: 0, signingKeys: 0 });
  });
});
