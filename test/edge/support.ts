// Test support for the edge's own tests: ES256 test keys and tokens, and an
// edge served on a random port in front of FAKE services (they record what
// they receive and answer from it), so transcoding, limits and headers are
// tested whatever the real services do. The conformance suite
// (test/edge/conformance) runs against the real system instead.
import { generateKeyPairSync, randomUUID, sign, type KeyObject } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toJson, type DescMessage, type Message } from "@bufbuild/protobuf";
import { createRouterTransport, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { AuthService } from "../../gen/acme/auth/v1/auth_pb.js";
import { OrderService, OrderStatus } from "../../gen/acme/order/v1/order_pb.js";
import { UserService } from "../../gen/acme/user/v1/user_pb.js";
import { authInterceptor } from "../../platform/auth/interceptor.js";
import { principalKey } from "../../platform/auth/principal.js";
import { markRevocationsLoaded } from "../../platform/auth/revocation.js";
import { createVerifier } from "../../platform/auth/verifier.js";
import { loadConfig } from "../../platform/config.js";
import { invalidArgument, notFound } from "../../platform/errors.js";
import { memoryStore, type KeyValueStore } from "../../platform/kv.js";
import { silentLogger } from "../../platform/logger.js";
import { policies, registry } from "../../app/contract.js";
import { requireOwner } from "../../platform/policy.js";
import { clientIp, contextValuesFor } from "../../platform/request.js";
import { startServer, type RunningServer } from "../../platform/server.js";
import { createEdge, type Edge } from "../../edge/index.js";

export const ISSUER = "acme-auth";
export const AUDIENCE = "acme-api";

export interface TestKeys {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export function testKeys(kid = `k-${randomUUID().slice(0, 8)}`): TestKeys {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { kid, privateKey, publicKey };
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

/** An access token as the auth service issues them (override any claim or header field). */
export function signToken(
  keys: TestKeys,
  claims: Record<string, unknown> = {},
  header: Record<string, unknown> = {},
): string {
  const now = Math.floor(Date.now() / 1000);
  const h = b64({ alg: "ES256", typ: "at+jwt", kid: keys.kid, ...header });
  const p = b64({
    iss: ISSUER,
    aud: AUDIENCE,
    sub: "u-1",
    sid: "s-1",
    jti: randomUUID(),
    roles: ["user"],
    // A verified address (the verified_email policy of CreateOrder, docs/accounts.md).
    email_verified: true,
    iat: now,
    exp: now + 600,
    ...claims,
  });
  const sig = sign("sha256", Buffer.from(`${h}.${p}`), { key: keys.privateKey, dsaEncoding: "ieee-p1363" });
  return `${h}.${p}.${sig.toString("base64url")}`;
}

/** A call as a fake service saw it. */
export interface RecordedCall {
  rpc: string;
  request: Record<string, unknown>;
  headers: Record<string, string>;
  clientIp: string;
}

function record(calls: RecordedCall[], rpc: string, schema: DescMessage, req: Message, ctx: HandlerContext) {
  const headers: Record<string, string> = {};
  ctx.requestHeader.forEach((v, k) => (headers[k] = v));
  calls.push({ rpc, request: toJson(schema, req, { registry }) as Record<string, unknown>, headers, clientIp: clientIp(ctx) });
}

/** Fake UserService, OrderService and AuthService answering from their requests. */
export function fakeServices(calls: RecordedCall[]) {
  return (router: ConnectRouter) => {
    router.service(UserService, {
      getMe(req, ctx) {
        record(calls, "GetMe", UserService.method.getMe.input, req, ctx);
        const p = ctx.values.get(principalKey);
        return { user: { id: p?.kind === "user" ? p.userId : "", name: "Me", role: "user", active: true } };
      },
      updateMe(req, ctx) {
        record(calls, "UpdateMe", UserService.method.updateMe.input, req, ctx);
        return { user: req.user };
      },
      getUser(req, ctx) {
        record(calls, "GetUser", UserService.method.getUser.input, req, ctx);
        if (req.id === "missing") throw notFound("user");
        if (req.id === "invalid") throw invalidArgument([{ field: "id", description: "must be a UUID" }]);
        requireOwner(ctx, req.id);
        return { user: { id: req.id, name: "Somebody" } };
      },
      listUsers(req, ctx) {
        record(calls, "ListUsers", UserService.method.listUsers.input, req, ctx);
        return { users: [{ id: "a" }, { id: "b" }], nextPageToken: "" };
      },
      updateUser(req, ctx) {
        record(calls, "UpdateUser", UserService.method.updateUser.input, req, ctx);
        return { user: req.user };
      },
      deleteUser(req, ctx) {
        record(calls, "DeleteUser", UserService.method.deleteUser.input, req, ctx);
        requireOwner(ctx, req.id);
        return {};
      },
    });
    router.service(OrderService, {
      createOrder(req, ctx) {
        record(calls, "CreateOrder", OrderService.method.createOrder.input, req, ctx);
        return {
          order: {
            id: "o-1",
            product: req.product,
            quantity: req.quantity,
            unitPriceCents: req.unitPriceCents,
            totalCents: req.unitPriceCents * BigInt(req.quantity),
            status: OrderStatus.PENDING,
            requestId: req.requestId,
          },
        };
      },
      getOrder(req, ctx) {
        record(calls, "GetOrder", OrderService.method.getOrder.input, req, ctx);
        return { order: { id: req.id, status: OrderStatus.CONFIRMED } };
      },
      listOrders(req, ctx) {
        record(calls, "ListOrders", OrderService.method.listOrders.input, req, ctx);
        return { orders: [{ id: "o-1", status: req.status }], nextPageToken: "next" };
      },
      cancelOrder(req, ctx) {
        record(calls, "CancelOrder", OrderService.method.cancelOrder.input, req, ctx);
        return { order: { id: req.id, status: OrderStatus.CANCELLED } };
      },
      updateOrder(req, ctx) {
        record(calls, "UpdateOrder", OrderService.method.updateOrder.input, req, ctx);
        return { order: req.order };
      },
      deleteOrder(req, ctx) {
        record(calls, "DeleteOrder", OrderService.method.deleteOrder.input, req, ctx);
        return {};
      },
    });
    router.service(AuthService, {
      login(req, ctx) {
        record(calls, "Login", AuthService.method.login.input, req, ctx);
        return { user: { id: "u-1", email: req.email }, tokens: { accessToken: "a", refreshToken: "r", expiresIn: 900, tokenType: "Bearer" } };
      },
      register(req, ctx) {
        record(calls, "Register", AuthService.method.register.input, req, ctx);
        return { user: { id: "u-1", email: req.email }, tokens: { accessToken: "a", refreshToken: "r", expiresIn: 900, tokenType: "Bearer" } };
      },
      listSessions(req, ctx) {
        record(calls, "ListSessions", AuthService.method.listSessions.input, req, ctx);
        return { sessions: [] };
      },
      getJwks(req, ctx) {
        record(calls, "GetJwks", AuthService.method.getJwks.input, req, ctx);
        return { contentType: "application/jwk-set+json", data: new TextEncoder().encode('{"keys":[]}') };
      },
    });
  };
}

export interface EdgeServerOptions {
  /** Rate-limit config (YAML text); default: generous limits. */
  rateLimitYaml?: string;
  env?: Record<string, string>;
  kv?: KeyValueStore;
  /** The edge's clock, seconds since the epoch. */
  now?: () => number;
}

export interface EdgeServer {
  url: string;
  port: number;
  keys: TestKeys;
  calls: RecordedCall[];
  edge: Edge;
  kv: KeyValueStore;
  token(claims?: Record<string, unknown>): string;
  stop(): Promise<void>;
}

export const GENEROUS_LIMITS = `
domain: acme
descriptors:
  - key: remote_address
    rate_limit: { unit: second, requests_per_unit: 100000 }
  - key: user_per_second
    rate_limit: { unit: second, requests_per_unit: 100000 }
`;

/** A temp file holding a rate-limit config; returns its path and a cleanup. */
export function tempRateLimitConfig(yaml: string): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), "acme-rl-"));
  const path = join(dir, "config.yaml");
  writeFileSync(path, yaml);
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The edge on a random port in front of the fake services (with the real auth interceptor). */
export async function startEdgeServer(opts: EdgeServerOptions = {}): Promise<EdgeServer> {
  const rl = tempRateLimitConfig(opts.rateLimitYaml ?? GENEROUS_LIMITS);
  const config = loadConfig({ PORT: "0", HOST: "127.0.0.1", METRICS_PORT: "0", RATELIMIT_CONFIG: rl.path, LOG_LEVEL: "error", ...opts.env });
  const keys = testKeys();
  const kv = opts.kv ?? memoryStore();
  // No auth service here to load the revocation list: mark it loaded (empty), as the auth service would.
  await markRevocationsLoaded(kv);
  const verifier = createVerifier({
    issuer: ISSUER,
    userAudience: AUDIENCE,
    serviceAudiences: [],
    keys: { get: async (kid) => (kid === keys.kid ? keys.publicKey : undefined) },
    kv,
  });
  const calls: RecordedCall[] = [];
  const services = fakeServices(calls);
  const auth = authInterceptor({ verifier, policies });
  const local = createRouterTransport(services, { router: { interceptors: [auth] } });
  const edge = await createEdge({ config, kv, log: silentLogger, verifier, policies, registry, transportFor: () => local, now: opts.now });
  const server: RunningServer = await startServer({
    port: 0,
    host: "127.0.0.1",
    routes: services,
    interceptors: [...edge.rpcInterceptors, auth],
    httpHandlers: [...edge.httpHandlers],
    prelude: edge.prelude,
    contextValues: contextValuesFor,
    log: silentLogger,
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    port: server.port,
    keys,
    calls,
    edge,
    kv,
    token: (claims) => signToken(keys, claims),
    stop: async () => {
      await server.close(1000);
      if (!opts.kv) await kv.close();
      rl.remove();
    },
  };
}
