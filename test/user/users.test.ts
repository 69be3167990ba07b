// UserService on real Postgres + Redis through the whole product (auth issues
// the tokens, the order service keeps the orders of deleted users).
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { FieldMaskSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { UserSchema } from "../../gen/acme/user/v1/user_pb.js";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { logIn, rejectsWith, signUp, signUpAdmin, userStore, type TestUser } from "./helpers.js";
import { linesOf } from "../support/products.js";

const mask = (...paths: string[]) => create(FieldMaskSchema, { paths });
const user = (init: Parameters<typeof create<typeof UserSchema>>[1]) => create(UserSchema, init);

describe("user service", function () {
  let t: TestSystem;
  let alice: TestUser;
  let bob: TestUser;
  let admin: TestUser;

  before(async () => {
    t = await startTestSystem({ edge: false, env: { ORDER_SWEEP_INTERVAL_MS: "0" } });
    [alice, bob, admin] = await Promise.all([signUp(t, "Alice"), signUp(t, "Bob"), signUpAdmin(t)]);
  });
  after(async () => t?.stop());

  describe("GetMe / UpdateMe", () => {
    it("returns the caller's own profile", async () => {
      const { user: me } = await t.users(alice.token).getMe({});
      assert.equal(me?.id, alice.id);
      assert.equal(me?.email, alice.email);
      assert.equal(me?.role, "user");
      assert.equal(me?.active, true);
    });

    it("updates the name with an empty mask (the fields set) and with mask [name]", async () => {
      const a = await t.users(alice.token).updateMe({ user: user({ name: "Alice A." }) });
      assert.equal(a.user?.name, "Alice A.");
      const b = await t.users(alice.token).updateMe({ user: user({ name: "Alice B." }), updateMask: mask("name") });
      assert.equal(b.user?.name, "Alice B.");
      assert.equal((await t.users(alice.token).getMe({})).user?.name, "Alice B.");
    });

    it("ignores populated non-updatable fields with an empty mask (no escalation)", async () => {
      const r = await t.users(alice.token).updateMe({ user: user({ name: "Alice C.", role: "admin", active: true, email: "x@y.z" }) });
      assert.equal(r.user?.role, "user");
      assert.equal(r.user?.email, alice.email);
    });

    it("refuses forbidden and unknown mask paths, naming updateMask", async () => {
      for (const p of ["role", "email", "active", "id", "nickname", "user.name"]) {
        await rejectsWith(t.users(alice.token).updateMe({ user: user({ name: "X", role: "admin" }), updateMask: mask(p) }), Code.InvalidArgument, ["updateMask"]);
      }
      assert.equal((await t.users(alice.token).getMe({})).user?.role, "user");
    });

    it("refuses a bad name: empty (with mask), blank, too long, control characters", async () => {
      const call = (name: string, m?: string) => t.users(alice.token).updateMe({ user: user({ name }), updateMask: m ? mask(m) : undefined });
      await rejectsWith(call("", "name"), Code.InvalidArgument, ["user.name"]);
      await rejectsWith(call("   ", "name"), Code.InvalidArgument, ["user.name"]);
      await rejectsWith(call("n".repeat(101)), Code.InvalidArgument, ["user.name"]);
      await rejectsWith(call("bad\u0000name"), Code.InvalidArgument, ["user.name"]);
      await rejectsWith(call("tab\there"), Code.InvalidArgument, ["user.name"]);
      // Nothing updatable set, or no user at all.
      await rejectsWith(call(""), Code.InvalidArgument, ["updateMask"]);
      await rejectsWith(t.users(alice.token).updateMe({}), Code.InvalidArgument, ["user"]);
      // 100 characters (code points) is fine, even outside the BMP.
      assert.equal((await call("😀".repeat(100))).user?.name, "😀".repeat(100));
    });

    it("needs a token", async () => {
      await rejectsWith(t.users().getMe({}), Code.Unauthenticated);
      await rejectsWith(t.users("not-a-jwt").getMe({}), Code.Unauthenticated);
    });
  });

  describe("GetUser", () => {
    it("the user themself and admins see a user; anyone else gets NOT_FOUND, like a missing id", async () => {
      assert.equal((await t.users(alice.token).getUser({ id: alice.id })).user?.id, alice.id);
      assert.equal((await t.users(admin.token).getUser({ id: alice.id })).user?.email, alice.email);
      const hidden = await rejectsWith(t.users(bob.token).getUser({ id: alice.id }), Code.NotFound);
      const missing = await rejectsWith(t.users(bob.token).getUser({ id: randomUUID() }), Code.NotFound);
      assert.equal(hidden.rawMessage, missing.rawMessage, "the same answer whether or not the user exists");
      await rejectsWith(t.users(admin.token).getUser({ id: randomUUID() }), Code.NotFound);
    });

    it("a malformed or empty id is INVALID_ARGUMENT on id", async () => {
      for (const id of ["", "123", "not-a-uuid", `${alice.id}x`, "' or 1=1 --"]) {
        await rejectsWith(t.users(bob.token).getUser({ id }), Code.InvalidArgument, ["id"]);
      }
    });
  });

  describe("ListUsers", () => {
    it("is for admins only", async () => {
      await rejectsWith(t.users(alice.token).listUsers({}), Code.PermissionDenied);
    });

    it("pages oldest first with no gaps or duplicates while users are added between pages", async () => {
      const store = userStore(t);
      const addProfiles = (n: number) =>
        Promise.all(Array.from({ length: n }, (_, i) => store.createProfile({ id: randomUUID(), email: `p-${randomUUID()}@example.com`, name: `P${i}`, role: "user" })));
      await addProfiles(45);
      const before = (await store.list(undefined, 1000)).map((p) => p.id);
      const seen: string[] = [];
      const added: string[] = [];
      let token = "";
      let pages = 0;
      do {
        const r = await t.users(admin.token).listUsers({ pageSize: 7, pageToken: token });
        assert.ok(r.users.length <= 7);
        seen.push(...r.users.map((u) => u.id));
        token = r.nextPageToken;
        // New users arrive between pages (they sort last: created now).
        if (pages++ < 4) added.push(...(await addProfiles(3)).map((p) => p.id));
      } while (token);
      assert.equal(new Set(seen).size, seen.length, "no duplicates");
      for (const id of before) assert.ok(seen.includes(id), "no gaps: every user present at the start is listed");
      // Stable order: (created_at, id) ascending, the same as the store's.
      const all = (await store.list(undefined, 1000)).map((p) => p.id);
      assert.deepEqual(seen, all.slice(0, seen.length));
      assert.deepEqual(seen.filter((id) => added.includes(id)).length, added.length, "users added meanwhile are reached too");
    });

    it("page size defaults to 20 and is capped at 100", async () => {
      const store = userStore(t);
      await Promise.all(Array.from({ length: 60 }, () => store.createProfile({ id: randomUUID(), email: `q-${randomUUID()}@example.com`, name: "Q", role: "user" })));
      const total = (await store.list(undefined, 10_000)).length;
      assert.ok(total > 100);
      assert.equal((await t.users(admin.token).listUsers({})).users.length, 20);
      const big = await t.users(admin.token).listUsers({ pageSize: 5000 });
      assert.equal(big.users.length, 100);
      assert.notEqual(big.nextPageToken, "");
    });

    it("refuses a negative page size and bad or tampered page tokens", async () => {
      await rejectsWith(t.users(admin.token).listUsers({ pageSize: -1 }), Code.InvalidArgument, ["pageSize"]);
      const { nextPageToken } = await t.users(admin.token).listUsers({ pageSize: 2 });
      const [payload, mac] = nextPageToken.split(".");
      const forged = Buffer.from(JSON.stringify([1, "1970-01-01T00:00:00.000000Z", randomUUID()])).toString("base64url");
      for (const bad of ["garbage", `${forged}.${mac}`, `${payload}.${mac.slice(1)}`, `${payload}x.${mac}`, "x".repeat(2000)]) {
        await rejectsWith(t.users(admin.token).listUsers({ pageToken: bad }), Code.InvalidArgument, ["pageToken"]);
      }
    });
  });

  describe("UpdateUser (admin)", () => {
    it("is for admins only", async () => {
      await rejectsWith(t.users(alice.token).updateUser({ user: user({ id: alice.id, role: "admin" }) }), Code.PermissionDenied);
      assert.equal((await t.users(alice.token).getMe({})).user?.role, "user");
    });

    it("validates: user, user.id, user.role, updateMask; unknown user is NOT_FOUND", async () => {
      const u = t.users(admin.token);
      await rejectsWith(u.updateUser({}), Code.InvalidArgument, ["user"]);
      await rejectsWith(u.updateUser({ user: user({ id: "nope", role: "admin" }) }), Code.InvalidArgument, ["user.id"]);
      await rejectsWith(u.updateUser({ user: user({ id: bob.id, role: "root" }) }), Code.InvalidArgument, ["user.role"]);
      await rejectsWith(u.updateUser({ user: user({ id: bob.id, role: "" }), updateMask: mask("role") }), Code.InvalidArgument, ["user.role"]);
      await rejectsWith(u.updateUser({ user: user({ id: bob.id, name: "N" }), updateMask: mask("name") }), Code.InvalidArgument, ["updateMask"]);
      await rejectsWith(u.updateUser({ user: user({ id: bob.id }), updateMask: mask("bogus") }), Code.InvalidArgument, ["updateMask"]);
      await rejectsWith(u.updateUser({ user: user({ id: bob.id }) }), Code.InvalidArgument, ["updateMask"]);
      await rejectsWith(u.updateUser({ user: user({ id: randomUUID(), role: "admin" }) }), Code.NotFound);
    });

    it("changes a role; the new role reaches the token at the next login", async () => {
      const carol = await signUp(t, "Carol");
      const r = await t.users(admin.token).updateUser({ user: user({ id: carol.id, role: "admin" }) });
      assert.equal(r.user?.role, "admin");
      const again = await logIn(t, carol);
      await t.users(again.token).listUsers({ pageSize: 1 });
      // Demotion ends the sessions that carry the admin role at once.
      await t.users(admin.token).updateUser({ user: user({ id: carol.id, role: "user" }), updateMask: mask("role") });
      await rejectsWith(t.users(again.token).listUsers({ pageSize: 1 }), Code.Unauthenticated);
    });

    it("deactivation ends access at once (access token, refresh token, login, orders); reactivation restores login", async () => {
      const dave = await signUp(t, "Dave");
      const second = await logIn(t, dave);
      await t.users(dave.token).getMe({});
      await t.orders(dave.token).createOrder({ lines: await linesOf(t, 1), requestId: "r1" });

      const r = await t.users(admin.token).updateUser({ user: user({ id: dave.id, active: false }), updateMask: mask("active") });
      assert.equal(r.user?.active, false);

      // Both sessions' access tokens are refused immediately, by every service.
      await rejectsWith(t.users(dave.token).getMe({}), Code.Unauthenticated);
      await rejectsWith(t.users(second.token).getMe({}), Code.Unauthenticated);
      await rejectsWith(t.orders(second.token).listOrders({}), Code.Unauthenticated);
      await assert.rejects(t.auth().refresh({ refreshToken: dave.refreshToken }));
      await assert.rejects(t.auth().login({ email: dave.email, password: dave.password }));
      const check = await t.usersInternal().checkUser({ userId: dave.id }).catch((e) => e);
      assert.equal(check.code, Code.Unauthenticated, "internal RPCs need a service token");

      const back = await t.users(admin.token).updateUser({ user: user({ id: dave.id, active: true }) });
      assert.equal(back.user?.active, true);
      const again = await logIn(t, dave);
      assert.equal((await t.users(again.token).getMe({})).user?.active, true);
    });
  });

  describe("DeleteUser", () => {
    it("someone else's id is NOT_FOUND for a non-admin; a malformed id is INVALID_ARGUMENT", async () => {
      await rejectsWith(t.users(bob.token).deleteUser({ id: alice.id }), Code.NotFound);
      await rejectsWith(t.users(bob.token).deleteUser({ id: randomUUID() }), Code.NotFound);
      await rejectsWith(t.users(bob.token).deleteUser({ id: "x" }), Code.InvalidArgument, ["id"]);
      await t.users(alice.token).getMe({});
    });

    it("self-deletion removes the profile, ends the sessions and keeps the orders marked owner_deleted", async () => {
      const erin = await signUp(t, "Erin");
      const o = await t.orders(erin.token).createOrder({ lines: await linesOf(t, 2), requestId: "e1" });
      await t.users(erin.token).deleteUser({ id: erin.id });

      await rejectsWith(t.users(erin.token).getMe({}), Code.Unauthenticated);
      await assert.rejects(t.auth().login({ email: erin.email, password: erin.password }));
      assert.equal(await userStore(t).get(erin.id), undefined);
      await rejectsWith(t.users(admin.token).getUser({ id: erin.id }), Code.NotFound);

      const kept = await t.orders(admin.token).getOrder({ id: o.order!.id });
      assert.equal(kept.order?.ownerDeleted, true);
      assert.equal(kept.order?.userId, erin.id);
      const listed = await t.orders(admin.token).listOrders({ userId: erin.id });
      assert.deepEqual(listed.orders.map((x) => [x.id, x.ownerDeleted]), [[o.order!.id, true]]);
    });

    it("an admin deletes another user; deleting again is NOT_FOUND", async () => {
      const fay = await signUp(t, "Fay");
      await t.users(admin.token).deleteUser({ id: fay.id });
      await rejectsWith(t.users(fay.token).getMe({}), Code.Unauthenticated);
      await rejectsWith(t.users(admin.token).deleteUser({ id: fay.id }), Code.NotFound);
    });
  });
});
