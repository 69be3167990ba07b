// The edges under test: the embedded edge of the whole product started in
// process (startTestSystem) and the real Envoy in front of the services as
// separate processes (test/support/edge-stack.ts); every conformance suite runs
// against each (EDGE_KINDS). With EDGE_URL set, only that running edge (Envoy
// from docker compose or `npm run stack`, or `npm start`), reached over HTTP.
//
//   EDGE_URL=http://localhost:8080 npm run test:edge
//   EDGE_ADMIN_EMAIL / EDGE_ADMIN_PASSWORD   an admin account of that deployment
//   EDGE_MAX_BODY_BYTES                      its body limit (default 1 MiB)
//   EDGE_RATELIMIT_CONFIG                    its rate-limit config (default envoy/ratelimit/config.yaml)
//
// Limits, CORS origins and the rate-limit config of an EDGE_URL target are
// read from the repository (envoy/settings.yaml, envoy/ratelimit/config.yaml).
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { Code } from "@connectrpc/connect";
import { LOCAL_REPLIES, localReplyKind } from "../../../edge/errors.js";
import { loadRateLimitConfig, type RateLimitConfig } from "../../../edge/ratelimit.js";
import { policies } from "../../../app/contract.js";
import { compileRoutes, type Route } from "../../../edge/routes.js";
import { sharedEdgeStack, type EdgeStack } from "../../support/edge-stack.js";
import { rest } from "../../support/http.js";
import { startTestSystem, type TestSystem } from "../../support/system.js";
import { GENEROUS_LIMITS, tempRateLimitConfig } from "../support.js";

export const EDGE_URL = process.env.EDGE_URL?.replace(/\/+$/, "") || undefined;

export type EdgeKind = "embedded" | "envoy" | "url";
/** The edges each conformance suite runs against. */
export const EDGE_KINDS: readonly EdgeKind[] = EDGE_URL ? ["url"] : ["embedded", "envoy"];

/** Every REST route of the contract (platform/policy.ts). */
export const ROUTES: readonly Route[] = compileRoutes(policies.all()).routes;
export const routeKey = (r: Pick<Route, "httpMethod" | "template">) => `${r.httpMethod} ${r.template}`;

/** The CORS origins Envoy allows (envoy/settings.yaml); the embedded edge is started with the same. */
export function allowedOrigins(): string[] {
  const settings = parse(readFileSync("envoy/settings.yaml", "utf8")) as { cors?: { allowed_origins?: string[] } };
  const origins = settings.cors?.allowed_origins ?? [];
  assert.ok(origins.length, "envoy/settings.yaml lists no CORS origins");
  return origins;
}

export const maxBodyBytes = () => Number(process.env.EDGE_MAX_BODY_BYTES ?? 1024 * 1024);

export interface Target {
  readonly kind: EdgeKind;
  readonly url: string;
  readonly embedded: boolean;
  /** The rate-limit config the target enforces. */
  readonly limits: RateLimitConfig;
  readonly admin?: { email: string; password: string };
  readonly system?: TestSystem;
  /** The real-edge stack behind an "envoy" target. */
  readonly stack?: EdgeStack;
  stop(): Promise<void>;
}

export interface TargetOptions {
  /** Rate-limit config of the embedded edge (YAML); EDGE_URL targets use theirs. */
  rateLimitYaml?: string;
  /** Extra environment of the embedded product (e.g. SMTP_URL); other targets are deployed already. */
  env?: Record<string, string>;
}

export async function startTarget(kind: EdgeKind, opts: TargetOptions = {}): Promise<Target> {
  if (kind === "envoy") {
    const stack = await sharedEdgeStack();
    const rl = tempRateLimitConfig(opts.rateLimitYaml ?? GENEROUS_LIMITS);
    await stack.setRateLimitConfig(rl.path);
    return {
      kind,
      url: stack.edgeUrl,
      embedded: false,
      limits: loadRateLimitConfig(rl.path),
      admin: stack.admin,
      stack,
      stop: async () => rl.remove(),
    };
  }
  if (kind === "url") {
    if (!EDGE_URL) throw new Error("EDGE_URL is not set");
    const { EDGE_ADMIN_EMAIL: email, EDGE_ADMIN_PASSWORD: password } = process.env;
    return {
      kind,
      url: EDGE_URL,
      embedded: false,
      limits: loadRateLimitConfig(process.env.EDGE_RATELIMIT_CONFIG ?? "envoy/ratelimit/config.yaml"),
      admin: email && password ? { email, password } : undefined,
      stop: async () => {},
    };
  }
  const rl = tempRateLimitConfig(opts.rateLimitYaml ?? GENEROUS_LIMITS);
  const admin = { email: `admin-${randomBytes(4).toString("hex")}@example.com`, password: "conformance-admin-password" };
  const system = await startTestSystem({
    env: {
      RATELIMIT_CONFIG: rl.path,
      CORS_ORIGINS: allowedOrigins().join(","),
      MAX_BODY_BYTES: String(maxBodyBytes()),
      ADMIN_EMAIL: admin.email,
      ADMIN_PASSWORD: admin.password,
      ORDER_SWEEP_INTERVAL_MS: "0",
      ...opts.env,
    },
  });
  const limits = loadRateLimitConfig(rl.path);
  return {
    kind,
    url: system.url,
    embedded: true,
    limits,
    admin,
    system,
    stop: async () => {
      await system.stop();
      rl.remove();
    },
  };
}

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body when it is JSON. */
  json: any;
}

export interface CallOptions {
  token?: string;
  /** An object is sent as JSON; a string as is. */
  body?: unknown;
  headers?: Record<string, string>;
  /**
   * Wait and retry when the edge's rate limits refuse (x-ratelimit-remaining: 0):
   * the default, so that tests of other things can run against a real edge with
   * its real limits. Rate-limit tests turn it off.
   */
  waitForQuota?: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** True for a refusal by the edge's rate limiter (not a service's RESOURCE_EXHAUSTED, which says why). */
export const isEdgeRateLimited = (a: Pick<Answer, "status" | "headers" | "text">) =>
  a.status === 429 && a.headers.get("x-ratelimit-remaining") === "0" && a.text.trim() === JSON.stringify({ code: Code.ResourceExhausted, message: LOCAL_REPLIES[429].message });

/**
 * One of the edge's own refusals: the status, and the one JSON error body
 * {"code": <google.rpc.Code>, "message"} with the code edge/errors.ts (and Envoy's
 * generated local_reply_config) give that status, and the message when one is expected.
 */
export function expectLocalReply(a: Answer, status: number, message?: string | RegExp, what = ""): void {
  expectStatus(a, status, what);
  assert.match(a.headers.get("content-type") ?? "", /^application\/json/, `${what} content-type`);
  assert.deepEqual(Object.keys(a.json ?? {}).sort(), ["code", "message"], `${what} ${a.text}`);
  assert.equal(a.json.code, localReplyKind(status).code, `${what} code for ${status}: ${a.text}`);
  assert.equal(typeof a.json.message, "string", what);
  assert.ok(a.json.message.length > 0, `${what} empty message`);
  if (typeof message === "string") assert.equal(a.json.message, message, what);
  else if (message) assert.match(a.json.message, message, what);
}

export async function call(t: Target, method: string, path: string, opts: CallOptions = {}): Promise<Answer> {
  for (let attempt = 0; ; attempt++) {
    const r = await rest(t.url, method, path, opts);
    const answer: Answer = { status: r.status, headers: r.headers, text: r.text, json: r.body };
    if (opts.waitForQuota !== false && isEdgeRateLimited(answer) && attempt < 3) {
      const wait = Number(r.headers.get("retry-after") ?? r.headers.get("x-ratelimit-reset") ?? "1");
      await sleep(Math.min(Math.max(wait, 1), 60) * 1000);
      continue;
    }
    return answer;
  }
}

/** Assert a status, showing the body when it differs. */
export function expectStatus(a: Answer, status: number, what = ""): void {
  assert.equal(a.status, status, `${what} got ${a.status}: ${a.text.slice(0, 300)}`);
}

/** A service error as convert_grpc_status renders it. */
export function expectGrpcError(a: Answer, status: number, code: number, what = ""): void {
  expectStatus(a, status, what);
  assert.match(a.headers.get("content-type") ?? "", /^application\/json/, what);
  assert.equal(a.json?.code, code, `${what} ${a.text}`);
  assert.equal(typeof a.json?.message, "string", what);
  if (a.json.details !== undefined) assert.ok(Array.isArray(a.json.details), what);
}

export const PASSWORD = "conformance-password-1";
export const uniqueEmail = (tag: string) => `${tag}-${randomBytes(5).toString("hex")}@example.com`;

export interface User {
  id: string;
  email: string;
  password: string;
  access: string;
  refresh: string;
}

/** Register (answered only {"status":"accepted"}), then log in as the new user. */
export async function register(t: Target, tag = "user"): Promise<User> {
  const email = uniqueEmail(tag);
  const a = await call(t, "POST", "/v1/auth/register", { body: { email, password: PASSWORD, name: `Conformance ${tag}` } });
  expectStatus(a, 200, "register");
  assert.deepEqual(a.json, { status: "accepted" }, "register");
  return login(t, email, PASSWORD);
}

export async function login(t: Target, email: string, password: string): Promise<User> {
  const a = await call(t, "POST", "/v1/auth/login", { body: { email, password } });
  expectStatus(a, 200, `login ${email}`);
  return { id: a.json.user.id, email, password, access: a.json.tokens.accessToken, refresh: a.json.tokens.refreshToken };
}

/** The admin of the target (embedded: created at start from ADMIN_EMAIL; it may take a moment). */
export async function loginAdmin(t: Target): Promise<User> {
  assert.ok(t.admin, "EDGE_URL runs need EDGE_ADMIN_EMAIL and EDGE_ADMIN_PASSWORD (an admin of that deployment: `npm run admin -- create`)");
  for (let i = 0; ; i++) {
    const a = await call(t, "POST", "/v1/auth/login", { body: { email: t.admin.email, password: t.admin.password } });
    if (a.status === 200) {
      assert.equal(a.json.user.role, "admin", `${t.admin.email} is not an admin`);
      return { id: a.json.user.id, email: t.admin.email, password: t.admin.password, access: a.json.tokens.accessToken, refresh: a.json.tokens.refreshToken };
    }
    if (!t.embedded || i >= 50) expectStatus(a, 200, "admin login");
    await sleep(100); // the embedded bootstrap runs in the background at start
  }
}

/** Wait until at least `margin` seconds are left in the current window of `unit` seconds (local clock). */
export async function awayFromWindowEdge(unitSeconds: number, margin: number): Promise<void> {
  const left = unitSeconds - ((Date.now() / 1000) % unitSeconds);
  if (left < margin) await sleep(left * 1000 + 50);
}
