// Shared by the user and order suites: sign-up, admins, error assertions.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { UserStore, type UserDb } from "../../services/user/store.js";
import type { TestSystem } from "../support/system.js";

export interface TestUser {
  id: string;
  email: string;
  password: string;
  token: string;
  refreshToken: string;
}

export const PASSWORD = "correct horse battery";

/** Register a new account through the auth service (which creates the profile). */
export async function signUp(t: TestSystem, name = "Test User"): Promise<TestUser> {
  const email = `u-${randomUUID()}@example.com`;
  const reg = await t.auth().register({ email, password: PASSWORD, name });
  assert.equal(reg.status, "accepted", "register answers only that it accepted the request");
  const res = await t.auth().login({ email, password: PASSWORD });
  assert.ok(res.user?.id && res.tokens?.accessToken, "login returns user and tokens");
  return { id: res.user.id, email, password: PASSWORD, token: res.tokens.accessToken, refreshToken: res.tokens.refreshToken };
}

/** Log in again (e.g. to get a token carrying a new role). */
export async function logIn(t: TestSystem, u: Pick<TestUser, "email" | "password" | "id">): Promise<TestUser> {
  const res = await t.auth().login({ email: u.email, password: u.password });
  assert.ok(res.tokens?.accessToken);
  return { ...u, token: res.tokens.accessToken, refreshToken: res.tokens.refreshToken };
}

export const userStore = (t: TestSystem) => new UserStore(t.system.db.db as Kysely<UserDb>);

/** A new admin: registered, promoted in the user store, logged in again. */
export async function signUpAdmin(t: TestSystem): Promise<TestUser> {
  const u = await signUp(t, "Admin");
  await userStore(t).update(u.id, { role: "admin" });
  return logIn(t, u);
}

/** Assert a call fails with `code`; for INVALID_ARGUMENT, that `fields` are exactly the violated fields. */
export async function rejectsWith(p: Promise<unknown>, code: Code, fields?: string[]): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    const ce = ConnectError.from(err);
    assert.equal(Code[ce.code], Code[code], `expected ${Code[code]}, got ${Code[ce.code]}: ${ce.rawMessage}`);
    if (fields) {
      const got = ce.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
      assert.deepEqual([...new Set(got)].sort(), [...new Set(fields)].sort(), `violated fields (${ce.rawMessage})`);
    }
    return ce;
  }
  assert.fail(`expected ${Code[code]}, but the call succeeded`);
}

/** Retry fn until it returns true (bounded); for background effects, never for timing. */
export async function eventually(what: string, fn: () => Promise<boolean>, tries = 100, pauseMs = 100): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await fn().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, pauseMs));
  }
  assert.fail(`${what} did not happen`);
}
