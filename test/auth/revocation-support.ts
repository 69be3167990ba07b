// A population of revoked and valid access tokens, made through the product's
// own RPCs (logout, logout-all, session delete, deactivation, account
// deletion), and a probe that presents a token where a client would: the user
// service and the order service over gRPC, and GET /v1/users/me through the
// embedded edge. Used by the durable-revocation suites.
import { strict as assert } from "node:assert";
import { create } from "@bufbuild/protobuf";
import { FieldMaskSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { UserSchema } from "../../gen/acme/user/v1/user_pb.js";
import type { TestSystem } from "../support/system.js";
import { userStore } from "../user/helpers.js";
import { decodeJwt, login, register } from "./helpers.js";

export interface Population {
  /** Tokens that must never be accepted again, with how they were revoked. */
  revoked: { what: string; token: string }[];
  valid: { what: string; token: string }[];
}

export async function populate(t: TestSystem): Promise<Population> {
  const admin = await register(t);
  await userStore(t).update(admin.user.id, { role: "admin" });
  const adminToken = (await login(t, admin.email)).access;
  const users = t.users(adminToken);
  const revoked: Population["revoked"] = [];
  const valid: Population["valid"] = [{ what: "admin", token: adminToken }];

  const loggedOut = await register(t);
  await t.auth().logout({ refreshToken: loggedOut.refresh });
  revoked.push({ what: "logged out", token: loggedOut.access });

  const all = await register(t);
  const all2 = await login(t, all.email);
  await t.auth(all.access).logoutAll({});
  revoked.push({ what: "logout-all (caller)", token: all.access }, { what: "logout-all (other device)", token: all2.access });

  const ended = await register(t);
  const ended2 = await login(t, ended.email);
  await t.auth(ended.access).deleteSession({ id: String(decodeJwt(ended2.access).claims.sid) });
  revoked.push({ what: "session deleted", token: ended2.access });
  valid.push({ what: "the session that deleted another", token: ended.access });

  const deactivated = await register(t);
  await users.updateUser({ user: create(UserSchema, { id: deactivated.user.id, active: false }), updateMask: create(FieldMaskSchema, { paths: ["active"] }) });
  revoked.push({ what: "deactivated user", token: deactivated.access });

  const deleted = await register(t);
  await users.deleteUser({ id: deleted.user.id });
  revoked.push({ what: "deleted account", token: deleted.access });

  const ok = await register(t);
  valid.push({ what: "plain user", token: ok.access });
  return { revoked, valid };
}

export type Outcome = "ok" | "refused" | "unavailable" | string;

/** The answer to a token on each path: gRPC user service, gRPC order service, REST through the embedded edge. */
export async function probe(t: TestSystem, token: string): Promise<Outcome[]> {
  const grpc = (p: Promise<unknown>) =>
    p.then(
      () => "ok",
      (err) => {
        const c = ConnectError.from(err).code;
        return c === Code.Unauthenticated ? "refused" : c === Code.Unavailable ? "unavailable" : `grpc ${Code[c]}`;
      },
    );
  const rest = async () => {
    const r = await fetch(`${t.url}/v1/users/me`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(15_000) });
    await r.arrayBuffer();
    return r.status === 200 ? "ok" : r.status === 401 ? "refused" : r.status === 503 ? "unavailable" : `http ${r.status}`;
  };
  const opts = { timeoutMs: 15_000 };
  return Promise.all([grpc(t.users(token).getMe({}, opts)), grpc(t.orders(token).listOrders({}, opts)), rest()]);
}

export interface Tally {
  tried: number;
  refused: number;
  unavailable: number;
  /** Revoked tokens accepted: must stay 0. */
  acceptedRevoked: number;
}

export const tally = (): Tally => ({ tried: 0, refused: 0, unavailable: 0, acceptedRevoked: 0 });

/**
 * Present every token until no answer is UNAVAILABLE (bounded by `withinMs`):
 * revoked tokens must only ever be refused or unavailable, valid ones must end
 * accepted. Returns how long until every answer was final.
 */
export async function settle(t: TestSystem, pop: Population, n: Tally, withinMs: number, allowUnavailable = true): Promise<number> {
  const started = Date.now();
  for (;;) {
    let pending = false;
    for (const r of pop.revoked) {
      for (const o of await probe(t, r.token)) {
        n.tried++;
        if (o === "ok") n.acceptedRevoked++;
        else if (o === "refused") n.refused++;
        else if (o === "unavailable") (n.unavailable++, (pending = true));
        assert.ok(o === "refused" || (o === "unavailable" && allowUnavailable), `revoked token (${r.what}): ${o}`);
      }
    }
    for (const v of pop.valid) {
      for (const o of await probe(t, v.token)) {
        if (o === "unavailable" && allowUnavailable) pending = true;
        else assert.equal(o, "ok", `valid token (${v.what})`);
      }
    }
    if (!pending) return Date.now() - started;
    assert.ok(Date.now() - started < withinMs, `still UNAVAILABLE after ${withinMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
