// Shared helpers for the auth suites: a system per suite (no embedded edge, so
// edge rate limits never interfere with what these suites count), the auth
// module's internals, JWT decoding and error assertions.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { decodeJwt as decodePayload, decodeProtectedHeader } from "jose";
import { CompiledQuery } from "kysely";
import { AuthService } from "../../gen/acme/auth/v1/auth_pb.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import type { AuthModule } from "../../services/auth/index.js";
import { startTestSystem, type TestSystem, type TestSystemOptions } from "../support/system.js";

export const PASSWORD = "correct horse battery";

export async function startAuthSystem(opts: TestSystemOptions = {}): Promise<TestSystem> {
  return startTestSystem({ edge: false, ...opts });
}

export function authModule(t: TestSystem): AuthModule {
  const m = t.system.modules.find((x) => x.name === "auth");
  assert.ok(m, "auth module not hosted");
  return m as AuthModule;
}

let n = 0;
export const email = (tag = "u") => `${tag}-${process.pid}-${++n}-${randomBytes(3).toString("hex")}@example.com`;

/** Headers a client may send: a distinct client IP (as the edge reports it), user agent, traceparent. */
export function withHeaders(headers: Record<string, string>): Interceptor {
  return (next) => (req) => {
    for (const [k, v] of Object.entries(headers)) req.header.set(k, v);
    return next(req);
  };
}

/** An AuthService client that looks like it comes from `ip` (and optionally with a bearer token). */
export function authFrom(t: TestSystem, ip: string, extra: Record<string, string> = {}, token?: string) {
  const headers: Record<string, string> = { "x-envoy-external-address": ip, ...extra };
  if (token) headers.authorization = `Bearer ${token}`;
  return createClient(AuthService, createGrpcTransport({ baseUrl: t.url, interceptors: [withHeaders(headers)] }));
}

let ipN = 0;
/** A fresh documentation-range client IP per call, so per-IP counters never mix between tests. */
export const freshIp = () => `198.51.100.${(++ipN % 250) + 1}`;

/** Register (the answer is only {status: "accepted"}), then log in as the new user from the same address. */
export async function register(t: TestSystem, opts: { email?: string; password?: string; name?: string; ip?: string; ua?: string } = {}) {
  const e = opts.email ?? email();
  const ip = opts.ip ?? freshIp();
  const client = authFrom(t, ip, opts.ua ? { "user-agent": opts.ua } : {});
  const r = await client.register({ email: e, password: opts.password ?? PASSWORD, name: opts.name ?? "Test User" });
  assert.equal(r.status, "accepted");
  assert.equal(r.user, undefined);
  assert.equal(r.tokens, undefined);
  const l = await login(t, e, opts.password ?? PASSWORD, ip, opts.ua);
  return { email: e, ...l };
}

export async function login(t: TestSystem, e: string, password = PASSWORD, ip = freshIp(), ua?: string) {
  const r = await authFrom(t, ip, ua ? { "user-agent": ua } : {}).login({ email: e, password });
  assert.ok(r.tokens);
  return { user: r.user!, tokens: r.tokens, access: r.tokens.accessToken, refresh: r.tokens.refreshToken };
}

export function decodeJwt(token: string): { header: Record<string, unknown>; claims: Record<string, unknown> } {
  return { header: decodeProtectedHeader(token), claims: decodePayload(token) };
}

/** Awaits a rejection with `code` (and `message` when given); returns the error. */
export async function rejectsWith(p: Promise<unknown>, code: Code, message?: string | RegExp): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    const ce = ConnectError.from(err);
    assert.equal(Code[ce.code], Code[code], `expected ${Code[code]}, got ${Code[ce.code]}: ${ce.rawMessage}`);
    if (typeof message === "string") assert.equal(ce.rawMessage, message);
    else if (message) assert.match(ce.rawMessage, message);
    return ce;
  }
  assert.fail(`expected ${Code[code]}, but the call succeeded`);
}

/** Field names of the google.rpc.BadRequest detail of an INVALID_ARGUMENT error. */
export function violations(err: ConnectError): string[] {
  const d = err.findDetails(BadRequestSchema)[0];
  return (d?.fieldViolations ?? []).map((v) => v.field).sort();
}

/** Run a query on the system's database (test inspection only). */
export async function query<T = Record<string, unknown>>(t: TestSystem, text: string, params: unknown[] = []): Promise<T[]> {
  const r = await t.system.db.db.executeQuery<T>(CompiledQuery.raw(text, params));
  return r.rows;
}
