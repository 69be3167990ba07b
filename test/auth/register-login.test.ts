// Registration and login rules, on real Postgres + Redis.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import bcrypt from "bcrypt";
import { Code } from "@connectrpc/connect";
import { createVerifier } from "../../platform/auth/verifier.js";
import { EmailTakenError } from "../../services/auth/store.js";
import type { TestSystem } from "../support/system.js";
import { INVALID_CREDENTIALS } from "../../services/auth/accounts.js";
import { authFrom, authModule, decodeJwt, email, freshIp, login, PASSWORD, query, register, rejectsWith, startAuthSystem, violations } from "./helpers.js";

describe("auth: register and login", () => {
  let t: TestSystem;
  before(async () => (t = await startAuthSystem()));
  after(async () => t?.stop());

  describe("register", () => {
    it("names every bad field in google.rpc.BadRequest (lowerCamelCase)", async () => {
      const err = await rejectsWith(t.auth().register({ email: "not-an-email", password: "short", name: "   " }), Code.InvalidArgument);
      assert.deepEqual(violations(err), ["email", "name", "password"]);
      const long = await rejectsWith(t.auth().register({ email: email(), password: PASSWORD, name: "x".repeat(101) }), Code.InvalidArgument);
      assert.deepEqual(violations(long), ["name"]);
      assert.equal((await query(t, "select count(*)::int as n from auth.accounts"))[0].n, 0);
    });

    it("counts the password in UTF-8 bytes: 8..72 accepted, 7 and 73 refused, never truncated", async () => {
      const seventyTwo = "é".repeat(36); // 36 characters, 72 bytes
      const seventyThree = seventyTwo + "a";
      assert.equal(Buffer.byteLength(seventyTwo), 72);
      const e = email();
      await register(t, { email: e, password: seventyTwo });
      const over = await rejectsWith(t.auth().register({ email: email(), password: seventyThree, name: "N" }), Code.InvalidArgument);
      assert.deepEqual(violations(over), ["password"]);
      // 4 characters but 8 bytes is enough; 3 characters (6 bytes) is not.
      await register(t, { password: "éééé" });
      assert.deepEqual(violations(await rejectsWith(t.auth().register({ email: email(), password: "ééé", name: "N" }), Code.InvalidArgument)), ["password"]);
      // bcrypt would accept the 73-byte string for the 72-byte hash: login must not.
      await rejectsWith(authFrom(t, freshIp()).login({ email: e, password: seventyThree }), Code.Unauthenticated, INVALID_CREDENTIALS);
      await login(t, e, seventyTwo);
    });

    it("trims and lowercases the email, which is unique (a second registration creates nothing)", async () => {
      const base = email("Ada.Mixed");
      const r = await register(t, { email: `  ${base.toUpperCase()} ` });
      assert.equal(r.user.email, base.toLowerCase());
      assert.equal((await t.auth().register({ email: base, password: PASSWORD, name: "Dup" })).status, "accepted");
      const rows = await query(t, "select email from auth.accounts where email = $1", [base.toLowerCase()]);
      assert.equal(rows.length, 1);
      await login(t, ` ${base.toUpperCase()}`);
    });

    it("creates the profile through UserInternalService; login then gives tokens with its role", async () => {
      const r = await register(t, { name: "  Grace Hopper  " });
      assert.equal(r.user.name, "Grace Hopper");
      assert.equal(r.user.role, "user");
      assert.equal(r.user.active, true);
      const [profile] = await query<{ id: string; role: string }>(t, "select id, role from users.profiles where id = $1", [r.user.id]);
      assert.equal(profile.role, "user");
      const [account] = await query<{ id: string }>(t, "select id from auth.accounts where email = $1", [r.email]);
      assert.equal(account.id, r.user.id);
      assert.deepEqual(decodeJwt(r.access).claims.roles, ["user"]);
      assert.equal(r.tokens.tokenType, "Bearer");
      assert.equal(r.tokens.expiresIn, 900);
    });

    it("removes the account when the profile cannot be created", async () => {
      const e = email();
      // A stray profile holding the email makes CreateProfile fail (unique email in users.profiles).
      await query(t, "insert into users.profiles (id, email, name) values (gen_random_uuid(), $1, 'stray')", [e]);
      await assert.rejects(t.auth().register({ email: e, password: PASSWORD, name: "N" }));
      assert.equal((await query(t, "select 1 from auth.accounts where email = $1", [e])).length, 0);
    });
  });

  describe("access tokens", () => {
    it("are ES256 with kid and typ at+jwt, carry iss aud sub exp iat nbf jti sid roles, live 15 min, and pass the platform verifier", async () => {
      const r = await register(t);
      const { header, claims } = decodeJwt(r.access);
      assert.deepEqual(Object.keys(header).sort(), ["alg", "kid", "typ"]);
      assert.equal(header.alg, "ES256");
      assert.equal(header.typ, "at+jwt");
      const jwks = JSON.parse(await (await fetch(`${t.url}/.well-known/jwks.json`)).text()) as { keys: { kid: string }[] };
      assert.ok(jwks.keys.some((k) => k.kid === header.kid));
      for (const c of ["iss", "aud", "sub", "exp", "iat", "nbf", "jti", "sid", "roles"]) assert.ok(c in claims, `claim ${c}`);
      assert.equal(claims.iss, "acme-auth");
      assert.equal(claims.aud, "acme-api");
      assert.equal(claims.sub, r.user.id);
      assert.equal(Number(claims.exp) - Number(claims.iat), 900);
      assert.equal(claims.nbf, claims.iat);
      assert.ok(!("client_id" in claims));
      const verifier = createVerifier({
        issuer: "acme-auth",
        userAudience: "acme-api",
        serviceAudiences: [],
        keys: authModule(t).keySource!,
        kv: t.system.kv,
      });
      const p = await verifier.verify(r.access);
      assert.equal(p.kind, "user");
      assert.ok(p.kind === "user" && p.userId === r.user.id && p.sessionId === claims.sid);
      // Two logins, two distinct jti and sid.
      const again = decodeJwt((await login(t, r.email)).access).claims;
      assert.notEqual(again.jti, claims.jti);
      assert.notEqual(again.sid, claims.sid);
    });
  });

  describe("login", () => {
    it("gives one answer for unknown email, wrong password and deactivated; the audit log keeps the reason", async () => {
      const active = await register(t);
      const inactive = await register(t);
      await query(t, "update users.profiles set active = false where id = $1", [inactive.user.id]);

      const attempts = [
        () => authFrom(t, freshIp()).login({ email: email("nobody"), password: PASSWORD }),
        () => authFrom(t, freshIp()).login({ email: active.email, password: "wrong password" }),
        () => authFrom(t, freshIp()).login({ email: inactive.email, password: PASSWORD }),
      ];
      const errors = [];
      for (const a of attempts) errors.push(await rejectsWith(a(), Code.Unauthenticated, INVALID_CREDENTIALS));
      assert.deepEqual(new Set(errors.map((e) => JSON.stringify([e.code, e.rawMessage, e.details.length]))).size, 1);

      const reasons = await query<{ user_id: string | null; reason: string }>(
        t,
        "select user_id, reason from auth.auth_events where type = 'login_failure' order by id desc limit 3",
      );
      assert.deepEqual(
        reasons.map((r) => r.reason),
        ["inactive", "bad_password", "unknown_user"],
      );
      assert.equal(reasons[0].user_id, inactive.user.id);
      assert.equal(reasons[1].user_id, active.user.id);
      assert.equal(reasons[2].user_id, null);
    });

    it("spends one bcrypt compare on an unknown email, as on a wrong password", async () => {
      const hasher = authModule(t).internals.hasher;
      const original = hasher.verify.bind(hasher);
      let compares = 0;
      hasher.verify = (pw, hash) => (compares++, original(pw, hash));
      try {
        const r = await register(t);
        compares = 0;
        await assert.rejects(authFrom(t, freshIp()).login({ email: email("ghost"), password: PASSWORD }));
        assert.equal(compares, 1);
        await assert.rejects(authFrom(t, freshIp()).login({ email: r.email, password: "wrong password" }));
        assert.equal(compares, 2);
      } finally {
        hasher.verify = original;
      }
    });

    it("takes roles from the user service at login, and refuses a missing profile", async () => {
      const r = await register(t);
      await query(t, "update users.profiles set role = 'admin' where id = $1", [r.user.id]);
      const l = await login(t, r.email);
      assert.equal(l.user.role, "admin");
      assert.deepEqual(decodeJwt(l.access).claims.roles, ["admin"]);
      await query(t, "delete from users.profiles where id = $1", [r.user.id]);
      await rejectsWith(authFrom(t, freshIp()).login({ email: r.email, password: PASSWORD }), Code.Unauthenticated, INVALID_CREDENTIALS);
    });

    it("rehashes on login when the stored cost differs from the configured one (10 in tests)", async () => {
      const r = await register(t);
      await query(t, "update auth.accounts set password_hash = $1 where id = $2", [await bcrypt.hash(PASSWORD, 11), r.user.id]);
      await login(t, r.email);
      const [row] = await query<{ password_hash: string }>(t, "select password_hash from auth.accounts where id = $1", [r.user.id]);
      assert.equal(bcrypt.getRounds(row.password_hash), 10);
      assert.ok(await bcrypt.compare(PASSWORD, row.password_hash));
      await login(t, r.email);
    });
  });

  describe("database errors", () => {
    afterEach(async () => {
      await query(t, "drop trigger if exists inject_fault on auth.accounts");
    });

    it("retries a transient error (serialization failure) and never retries a duplicate email", async () => {
      await query(t, "create sequence if not exists public.insert_attempts");
      await query(t, `
        create or replace function auth.inject_fault() returns trigger language plpgsql as $$
        begin
          -- the sequence counts attempts and survives rollbacks; the first one fails
          if nextval('public.insert_attempts') = 1 then
            raise exception 'injected' using errcode = '40001';
          end if;
          return new;
        end $$`);
      await query(t, "create trigger inject_fault before insert on auth.accounts for each row execute function auth.inject_fault()");
      const r = await register(t);
      const attempts = async () => Number((await query<{ n: string }>(t, "select last_value as n from public.insert_attempts"))[0].n);
      assert.equal(await attempts(), 2, "first insert failed with 40001, the retry succeeded");

      const store = authModule(t).internals.store;
      await assert.rejects(store.createAccount({ id: randomUUID(), email: r.email, password_hash: "x" }), EmailTakenError);
      assert.equal(await attempts(), 3, "a unique violation is not retried");
      assert.equal((await t.auth().register({ email: r.email, password: PASSWORD, name: "N" })).status, "accepted");
      assert.equal(await attempts(), 3, "a taken email is answered without an insert");
    });
  });
});
