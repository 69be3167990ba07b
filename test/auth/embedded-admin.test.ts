// The embedded stack (PGlite + in-process store) end to end, the admin
// command on PGlite and on Postgres, and the ADMIN_EMAIL first-start bootstrap.
import { strict as assert } from "node:assert";
import http from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { bootstrapAdmin, checkAdminInput } from "../../services/auth/bootstrap.js";
import { Audit } from "../../services/auth/audit.js";
import { silentLogger } from "../../platform/logger.js";
import type { Kysely } from "kysely";
import type { AuthDb } from "../../services/auth/tables.js";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { authModule, decodeJwt, email, login, PASSWORD, query, register, rejectsWith, startAuthSystem } from "./helpers.js";
import { runAdmin } from "../support/admin-cli.js";


const admin = runAdmin;

const getHttp11 = (url: string) =>
  new Promise<{ status: number; body: string }>((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, body }));
    }).on("error", reject);
  });

describe("auth: embedded stack, admin command, bootstrap", () => {
  describe("embedded stack (PGlite + in-process store, embedded edge)", () => {
    let t: TestSystem;
    let dataDir: string;
    let created: { code: number; stdout: string; stderr: string };
    before(async () => {
      // `npm run admin -- create` on the embedded data dir while no service runs (PGlite: one process at a time).
      dataDir = mkdtempSync(join(tmpdir(), "acme-admin-"));
      created = await admin(["create", "--email", " Boss@Example.com ", "--name", "The Boss"], { DATA_DIR: dataDir }, "boss password 123\n");
      t = await startTestSystem({ database: "pglite", store: "memory", env: { DATA_DIR: dataDir } });
    });
    after(async () => {
      await t?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it("npm run admin -- create works on the PGlite data dir; the admin then signs in with role admin", async () => {
      assert.equal(created.code, 0, created.stderr);
      assert.match(created.stdout, /admin created: [0-9a-f-]{36}/);
      const l = await login(t, "boss@example.com", "boss password 123");
      assert.equal(l.user.role, "admin");
      assert.equal(l.user.name, "The Boss");
      assert.deepEqual(decodeJwt(l.access).claims.roles, ["admin"]);
      // While the service has the embedded database open, the command refuses to open it too.
      const busy = await admin(["keys"], { DATA_DIR: dataDir });
      assert.equal(busy.code, 2);
      assert.match(busy.stderr, /is in use .* stop `npm start` first/);
    });

    it("runs the main flows: register, login, sessions, refresh + reuse, password change, logout, lockout, rotation, JWKS", async () => {
      assert.equal(t.system.db.kind, "pglite");
      assert.equal(t.system.kv.kind, "memory");
      // The embedded edge limits each user to 3 calls a second: the flows are spread over two users.
      const a = await register(t);
      assert.equal(a.user.role, "user");
      const b = await login(t, a.email);
      assert.equal((await t.auth(b.access).listSessions({})).sessions.length, 2);
      const next = (await t.auth().refresh({ refreshToken: b.refresh })).tokens!;
      await rejectsWith(t.auth().refresh({ refreshToken: b.refresh }), Code.Unauthenticated);
      await rejectsWith(t.auth(next.accessToken).listSessions({}), Code.Unauthenticated); // family revoked

      const u = await register(t);
      await t.auth(u.access).changePassword({ currentPassword: PASSWORD, newPassword: "embedded new password" });
      await t.auth().logout({ refreshToken: u.refresh });
      await rejectsWith(t.auth(u.access).listSessions({}), Code.Unauthenticated);
      const c = await login(t, u.email, "embedded new password");

      const victim = email("victim");
      for (let i = 0; i < 5; i++) await rejectsWith(t.auth().login({ email: victim, password: "wrong password" }), Code.Unauthenticated);
      // Throttled from this client's address (the TCP peer: no edge in front).
      assert.equal((await authModule(t).internals.lockout.pairStatus(victim, "127.0.0.1")).throttled, true);

      const keys = authModule(t).internals.keys;
      const oldKid = decodeJwt(c.access).header.kid;
      const newKid = await keys.rotate({ immediate: true });
      const d = await register(t);
      assert.equal(decodeJwt(d.access).header.kid, newKid);
      assert.notEqual(oldKid, newKid);
      assert.equal((await t.auth(c.access).listSessions({})).sessions.length, 1, "a token of the previous key still verifies");

      const res = await getHttp11(`${t.url}/.well-known/jwks.json`);
      assert.equal(res.status, 200);
      assert.deepEqual((JSON.parse(res.body) as { keys: { kid: string }[] }).keys.map((k) => k.kid), [oldKid, newKid]);
    });
  });

  describe("npm run admin", () => {
    describe("with DATABASE_URL (compose)", () => {
      let t: TestSystem;
      before(async () => (t = await startAuthSystem()));
      after(async () => t?.stop());
      const env = () => ({ DATABASE_URL: t.env.DATABASE_URL, DATA_DIR: t.dataDir });

      it("creates an admin next to the running service; never promotes a taken email; refuses a password on argv", async () => {
        const e = email("admin");
        const r = await admin(["create", "--email", e], env(), "admin password 1\n");
        assert.equal(r.code, 0, r.stderr);
        const l = await login(t, e, "admin password 1");
        assert.equal(l.user.role, "admin");

        const taken = await register(t);
        const promote = await admin(["create", "--email", taken.email], env(), "admin password 1\n");
        assert.notEqual(promote.code, 0);
        assert.match(promote.stderr, /already exists/);
        const [p] = await query<{ role: string }>(t, "select role from users.profiles where id = $1", [taken.user.id]);
        assert.equal(p.role, "user", "an existing user is never promoted");

        const argv = await admin(["create", "--email", email(), "--password", "hunter22hunter22"], env());
        assert.equal(argv.code, 2);
        assert.match(argv.stderr, /never pass a password on the command line/);
        // Input rules are the API's (checked without a process per case).
        assert.throws(() => checkAdminInput("a@b.co", "short", "N"), /password must be at least 8 bytes/);
        assert.throws(() => checkAdminInput("not-an-email", "long enough pw", "N"), /email must be an email address/);
        assert.deepEqual(checkAdminInput(" A@B.co ", "long enough pw", " N "), { email: "a@b.co", name: "N" });
      });

      it("rotate-keys --immediate: the running service verifies the new kid on first sight and signs with it after reload", async () => {
        const before = await register(t);
        const r = await admin(["rotate-keys", "--immediate"], env());
        assert.equal(r.code, 0, r.stderr);
        const kid = /next signing key: (\S+)/.exec(r.stdout)![1];
        assert.notEqual(decodeJwt(before.access).header.kid, kid);
        const keys = authModule(t).internals.keys;
        authModule(t).internals.clock.advance(3000); // past the unknown-kid reload limit
        assert.ok(await keys.get(kid), "unknown kid -> reloaded from the database");
        const after = await login(t, before.email);
        assert.equal(decodeJwt(after.access).header.kid, kid);
        assert.equal((await t.auth(before.access).listSessions({})).sessions.length, 2, "old tokens still verify");
      });
    });
  });

  describe("ADMIN_EMAIL / ADMIN_PASSWORD at first start", () => {
    let t: TestSystem;
    const adminEmail = email("first-admin");
    before(async () => (t = await startAuthSystem({ env: { ADMIN_EMAIL: adminEmail, ADMIN_PASSWORD: "first admin password" } })));
    after(async () => t?.stop());

    it("creates the first admin if absent, once; never promotes someone else's account", async () => {
      const internals = authModule(t).internals;
      await internals.bootstrapped;
      const l = await login(t, adminEmail, "first admin password");
      assert.equal(l.user.role, "admin");
      const deps = {
        cfg: internals.cfg,
        store: internals.store,
        hasher: internals.hasher,
        profiles: internals.profiles,
        audit: new Audit(t.system.db.db as Kysely<AuthDb>, silentLogger, internals.clock),
        log: silentLogger,
      };
      assert.equal(await bootstrapAdmin(deps), "present", "a restart changes nothing");
      const [{ n }] = await query<{ n: number }>(t, "select count(*)::int as n from auth.accounts where email = $1", [adminEmail]);
      assert.equal(n, 1);

      const squatter = await register(t);
      assert.equal(await bootstrapAdmin({ ...deps, cfg: { ...internals.cfg, adminEmail: squatter.email } }), "taken");
      const [p] = await query<{ role: string }>(t, "select role from users.profiles where id = $1", [squatter.user.id]);
      assert.equal(p.role, "user");
    });
  });
});
