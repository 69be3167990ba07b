// Test support for the mailed-token flows (email-flows.test.ts,
// password-reset.test.ts): a system with the embedded edge (REST) under
// generous rate limits, the events a user was sent (decoded from auth.outbox,
// where the token travels to the mail), the one invalid-token answer over
// gRPC and REST, and a snapshot of what a refused token must not change.
import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { fromBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { EnvelopeSchema, type Envelope } from "../../gen/acme/events/v1/events_pb.js";
import { rest, type Json } from "../support/http.js";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { GENEROUS_LIMITS, tempRateLimitConfig } from "../edge/support.js";
import { query, rejectsWith, violations } from "./helpers.js";

export const INVALID_TOKEN_MESSAGE = "token: is invalid or expired";
export const BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest";

/**
 * The product with its embedded edge (REST on the same port), rate limits out
 * of the way. With the edge, every call's client address is the TCP peer
 * (127.0.0.1); `edge: false` keeps the x-envoy-external-address of authFrom.
 */
export async function startMailSystem(opts: { edge?: boolean; env?: Record<string, string> } = {}): Promise<TestSystem> {
  const rl = tempRateLimitConfig(GENEROUS_LIMITS);
  const t = await startTestSystem({ edge: opts.edge ?? true, env: { RATELIMIT_CONFIG: rl.path, ORDER_SWEEP_INTERVAL_MS: "0", ...opts.env } });
  const stop = t.stop;
  return { ...t, stop: async () => (await stop(), rl.remove()) };
}

type Event = NonNullable<Envelope["event"]>;

/** The events the auth service wrote about a user, oldest first. */
export async function eventsOf(t: TestSystem, userId: string): Promise<Event[]> {
  const rows = await query<{ body: Uint8Array }>(t, "select body from auth.outbox where aggregate_id = $1 order by seq", [userId]);
  return rows.map((r) => fromBinary(EnvelopeSchema, new Uint8Array(r.body)).event);
}

/** The verification mails of a user ("verify" or "change_email"), oldest first. */
export async function verificationMails(t: TestSystem, userId: string, purpose: "verify" | "change_email") {
  return (await eventsOf(t, userId)).flatMap((e) => (e.case === "emailVerificationRequested" && e.value.purpose === purpose ? [e.value] : []));
}

export async function resetMails(t: TestSystem, userId: string) {
  return (await eventsOf(t, userId)).flatMap((e) => (e.case === "passwordResetRequested" ? [e.value] : []));
}

/** The token of the newest mail of the kind (as the user would read it from the mail). */
export async function latestToken(t: TestSystem, userId: string, kind: "verify" | "change_email" | "reset"): Promise<string> {
  const mails = kind === "reset" ? await resetMails(t, userId) : await verificationMails(t, userId, kind);
  assert.ok(mails.length > 0, `no ${kind} mail for ${userId}`);
  return mails[mails.length - 1].token;
}

export const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest();

/** The one answer to a bad token over gRPC: INVALID_ARGUMENT naming only `token`. */
export async function refusedToken(p: Promise<unknown>, what: string): Promise<void> {
  const err = await rejectsWith(p, Code.InvalidArgument, INVALID_TOKEN_MESSAGE);
  assert.deepEqual(violations(err), ["token"], what);
}

/** The same over REST: 400 and exactly {code: 3, message, details: [BadRequest naming token]}. */
export function expectRefusedTokenJson(a: Json, what: string): void {
  assert.equal(a.status, 400, `${what}: ${a.text}`);
  assert.deepEqual(a.body, {
    code: Code.InvalidArgument,
    message: INVALID_TOKEN_MESSAGE,
    details: [{ "@type": BAD_REQUEST, fieldViolations: [{ field: "token", description: "is invalid or expired" }] }],
  }, what);
}

export const post = (t: TestSystem, path: string, body: unknown, token?: string) => rest(t.url, "POST", path, { body, token });

/** What a refused token must leave as it was: the accounts and every stored token. */
export async function snapshot(t: TestSystem, userIds: string[]) {
  const accounts = await query(t, "select id, email, password_hash, email_verified_at from auth.accounts where id = any($1) order by id", [userIds]);
  const tokens = await query(t, "select token_hash, purpose, email, used_at, expires_at from auth.account_tokens where user_id = any($1) order by token_hash", [userIds]);
  return { accounts, tokens };
}
