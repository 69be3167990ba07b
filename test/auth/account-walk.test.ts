// Issue 18: the account lifecycle walked as a user walks it, through Envoy
// (npm run stack's topology, mail in Mailpit), through the embedded edge
// (npm start's, mail as .eml files) and over gRPC: register, read the
// verification mail, verify, enrol TOTP, log in with password and code, ask
// for a reset, reset from the mailed link; afterwards every earlier session
// and refresh token is dead. Calls are made from the contract: an RPC's JSON
// body goes to its REST route (google.api.http) or, over gRPC, is decoded
// into its request message, so the three walks are one.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { fromJson, toJson, type DescMethod, type JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Secret, TOTP } from "otpauth";
import { policies } from "../../app/contract.js";
import { EMAIL_NOT_VERIFIED } from "../../platform/policy.js";
import { GENEROUS_LIMITS, tempRateLimitConfig } from "../edge/support.js";
import { sharedEdgeStack } from "../support/edge-stack.js";
import { defaultProduct, makeStackProduct } from "../support/products.js";
import { rest } from "../support/http.js";
import { tokenFromMail, type MailSource } from "../support/mail-token.js";
import { startTestSystem, type TestSystem } from "../support/system.js";

/** An answer: the grpc code (0 = OK) and the JSON of the response or error. */
interface Answer {
  code: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

type Call = (rpc: string, body: Record<string, unknown>, token?: string) => Promise<Answer>;

const policyOf = (rpc: string) => {
  const p = policies.all().find((m) => m.path.endsWith(`/${rpc}`) && !m.internal);
  if (!p) throw new Error(`no RPC ${rpc}`);
  return p;
};

/** REST at `base`: the RPC's first http rule, path variables from the body. */
function restCall(base: string): Call {
  return async (rpc, body, token) => {
    const rule = policyOf(rpc).httpRules[0];
    if (rule.pattern.case === undefined || rule.pattern.case === "custom") throw new Error(`${rpc}: no REST route`);
    const path = rule.pattern.value.replace(/\{(\w+)\}/g, (_, f: string) => String(body[f]));
    const verb = rule.pattern.case.toUpperCase();
    const r = await rest(base, verb, path, { token, body: verb === "GET" ? undefined : body, headers: { "user-agent": "account-walk/1.0" } });
    return { code: r.status === 200 ? 0 : Number(r.body?.code ?? -r.status), body: r.body };
  };
}

/** gRPC to `url`: the body decoded into the request message, the answer encoded back to JSON. */
function grpcCall(url: string): Call {
  return async (rpc, body, token) => {
    const { service, method } = policyOf(rpc);
    const transport: Transport = createGrpcTransport({
      baseUrl: url,
      interceptors: [(next) => (req) => (token && req.header.set("authorization", `Bearer ${token}`), req.header.set("user-agent", "account-walk/1.0"), next(req))],
    });
    const client = createClient(service, transport) as unknown as Record<string, (m: unknown) => Promise<unknown>>;
    const m = method as DescMethod;
    try {
      const res = await client[m.localName](fromJson(m.input, body as JsonValue));
      return { code: 0, body: toJson(m.output, res as never) };
    } catch (err) {
      const e = ConnectError.from(err);
      return { code: e.code, body: { code: e.code, message: e.rawMessage } };
    }
  };
}

const ok = (a: Answer, what: string) => {
  assert.equal(a.code, 0, `${what}: ${JSON.stringify(a.body)}`);
  return a.body;
};

/** A TOTP code for `secret`, `steps` periods from now (the server accepts one step either side, each step once). */
const codeAt = (secret: string, steps: number) =>
  new TOTP({ secret: Secret.fromBase32(secret), digits: 6, period: 30, algorithm: "SHA1" }).generate({ timestamp: Date.now() + steps * 30_000 });

/** The walk; `enforced`: the target runs VERIFIED_EMAIL_POLICY=enforce (the default). */
async function walk(call: Call, mail: MailSource, enforced: boolean, productId: string): Promise<void> {
  const email = `walk-${randomUUID().slice(0, 8)}@example.com`;
  const password = "first password 1";
  assert.equal(ok(await call("Register", { email, password, name: "Walker" }), "register").status, "accepted");

  // Signed in but unverified: may read, may not order (docs/accounts.md).
  const first = ok(await call("Login", { email, password }), "login unverified");
  const order = { lines: [{ productId, quantity: 1 }], requestId: randomUUID() };
  if (enforced) {
    const refused = await call("CreateOrder", order, first.tokens.accessToken);
    assert.equal(refused.code, Code.PermissionDenied, JSON.stringify(refused.body));
    assert.equal(refused.body.message, EMAIL_NOT_VERIFIED);
  }
  ok(await call("GetMe", {}, first.tokens.accessToken), "GetMe unverified");

  // The verification mail, from the inbox; verify, refresh: the new token may order.
  const verifyToken = await tokenFromMail(mail, email, "verify-email");
  assert.equal(ok(await call("VerifyEmail", { token: verifyToken }), "verify").email, email);
  const used = await call("VerifyEmail", { token: verifyToken });
  assert.equal(used.code, Code.InvalidArgument, "a verification token works once");
  const sessionA = ok(await call("Refresh", { refreshToken: first.tokens.refreshToken }), "refresh").tokens;
  ok(await call("CreateOrder", order, sessionA.accessToken), "order after verifying");

  // TOTP: enrol, confirm with the current code, then login is two steps.
  const enrol = ok(await call("StartTotpEnrollment", { currentPassword: password }, sessionA.accessToken), "enrol");
  assert.match(enrol.otpauthUri, /^otpauth:\/\/totp\//);
  assert.match(enrol.qrSvg, /<svg/);
  const recovery = ok(await call("ConfirmTotp", { code: codeAt(enrol.secret, 0) }, sessionA.accessToken), "confirm").recoveryCodes as string[];
  assert.equal(recovery.length, 10);
  const step1 = ok(await call("Login", { email, password }), "login with TOTP");
  assert.equal(step1.tokens, undefined, "no tokens before the second factor");
  assert.ok(step1.secondFactor.challenge);
  // The code of the next period: the current one was spent by ConfirmTotp (each step once).
  const sessionB = ok(await call("CompleteLogin", { challenge: step1.secondFactor.challenge, code: codeAt(enrol.secret, 1) }), "complete login").tokens;
  ok(await call("GetMe", {}, sessionB.accessToken), "GetMe with the second session");

  // Forgotten password: the mailed link resets it; every earlier session is dead.
  assert.equal(ok(await call("RequestPasswordReset", { email }), "forgot").status, "accepted");
  const resetToken = await tokenFromMail(mail, email, "reset-password");
  const newPassword = "second password 2";
  ok(await call("ResetPassword", { token: resetToken, newPassword }), "reset");
  for (const [name, s] of [["A", sessionA], ["B", sessionB]] as const) {
    const refresh = await call("Refresh", { refreshToken: s.refreshToken });
    assert.equal(refresh.code, Code.Unauthenticated, `session ${name}'s refresh token after the reset`);
    const me = await call("GetMe", {}, s.accessToken);
    assert.equal(me.code, Code.Unauthenticated, `session ${name}'s access token after the reset`);
  }
  const old = await call("Login", { email, password });
  assert.equal(old.code, Code.Unauthenticated, "the old password");

  // The new password, with a recovery code as the second factor (single use).
  const step2 = ok(await call("Login", { email, password: newPassword }), "login after reset");
  const done = ok(await call("CompleteLogin", { challenge: step2.secondFactor.challenge, recoveryCode: recovery[0] }), "recovery code");
  ok(await call("GetMe", {}, done.tokens.accessToken), "GetMe after the reset");
  const step3 = ok(await call("Login", { email, password: newPassword }), "login again");
  const reused = await call("CompleteLogin", { challenge: step3.secondFactor.challenge, recoveryCode: recovery[0] });
  assert.equal(reused.code, Code.Unauthenticated, "a used recovery code");
}

describe("account lifecycle: the black-box walk (docs/accounts.md)", function () {
  this.timeout(180_000);
  let t: TestSystem;
  let rl: { path: string; remove(): void };
  before(async () => {
    rl = tempRateLimitConfig(GENEROUS_LIMITS);
    t = await startTestSystem({ edge: true, env: { RATELIMIT_CONFIG: rl.path, VERIFIED_EMAIL_POLICY: "enforce" } });
  });
  after(async () => {
    await t?.stop();
    rl?.remove();
  });

  it("through the embedded edge (REST, npm start's mail files)", async () => {
    await walk(restCall(t.url), { dataDir: t.dataDir }, true, (await defaultProduct(t)).id);
  });

  it("over gRPC to the services", async () => {
    await walk(grpcCall(t.url), { dataDir: t.dataDir }, true, (await defaultProduct(t)).id);
  });

  it("through Envoy (REST, the stack's Mailpit)", async () => {
    const stack = await sharedEdgeStack();
    await stack.setRateLimitConfig(rl.path);
    // The shared stack runs VERIFIED_EMAIL_POLICY=off (test/support/edge-stack.ts): the refusal is
    // shown on the two other entries and, for every RPC, by test/policy/table.test.ts.
    await walk(restCall(stack.edgeUrl), { mailpitUrl: stack.mailpitUrl! }, false, await makeStackProduct(stack));
  });
});
