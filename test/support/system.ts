// Start the whole product in process for a test: fresh Postgres database,
// fresh Redis db, random port, temp data dir. Returns clients for every API.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { AuthInternalService, AuthService } from "../../gen/acme/auth/v1/auth_pb.js";
import { CatalogueInternalService, CatalogueService } from "../../gen/acme/catalogue/v1/catalogue_pb.js";
import { OrderInternalService, OrderService } from "../../gen/acme/order/v1/order_pb.js";
import { UserInternalService, UserService } from "../../gen/acme/user/v1/user_pb.js";
import type { ServiceName } from "../../app/services.js";
import { loadConfig } from "../../platform/config.js";
import type { PolicyTable } from "../../platform/policy.js";
import type { Bus } from "../../platform/bus/bus.js";
import { silentLogger, type Logger } from "../../platform/logger.js";
import { startSystem, type System } from "../../app/system.js";
import { freshDatabaseUrl, freshRedisUrl } from "./fresh.js";

export interface TestSystemOptions {
  /** Extra environment (e.g. BCRYPT_COST, RATELIMIT_CONFIG). */
  env?: Record<string, string>;
  services?: ServiceName[];
  edge?: boolean;
  /** "pglite" runs the embedded database instead of the test Postgres server. */
  database?: "postgres" | "pglite";
  /** "memory" uses the in-process store instead of the test Redis server. */
  store?: "redis" | "memory";
  log?: Logger;
  /** A variant of the contract's policy (test/policy). */
  policies?: PolicyTable;
  /** The bus the outbox relays publish to (default: the system's own in-process bus). */
  bus?: Bus;
}

export interface TestSystem {
  system: System;
  url: string;
  env: Record<string, string>;
  dataDir: string;
  /** gRPC transport to the system, optionally with a bearer token. */
  transport(token?: string): Transport;
  connectTransport(token?: string): Transport;
  auth(token?: string): Client<typeof AuthService>;
  users(token?: string): Client<typeof UserService>;
  orders(token?: string): Client<typeof OrderService>;
  authInternal(token?: string): Client<typeof AuthInternalService>;
  usersInternal(token?: string): Client<typeof UserInternalService>;
  ordersInternal(token?: string): Client<typeof OrderInternalService>;
  catalogue(token?: string): Client<typeof CatalogueService>;
  catalogueInternal(token?: string): Client<typeof CatalogueInternalService>;
  stop(): Promise<void>;
}

const bearer = (token?: string): Interceptor[] =>
  token ? [(next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))] : [];

export async function startTestSystem(opts: TestSystemOptions = {}): Promise<TestSystem> {
  const dataDir = mkdtempSync(join(tmpdir(), "acme-data-"));
  const env: Record<string, string> = {
    PORT: "0",
    HOST: "127.0.0.1",
    DATA_DIR: dataDir,
    BCRYPT_COST: "10",
    LOG_LEVEL: "error",
    SHUTDOWN_GRACE_MS: "2000",
    METRICS_PORT: "0",
    // Suites register throwaway accounts and order without reading their mail: the product's
    // default (enforce) is tested where it is the subject (test/policy/table.test.ts,
    // test/auth/account-walk.test.ts, test/stack/docs-commands.test.ts) by passing it here.
    VERIFIED_EMAIL_POLICY: "off",
    ...(opts.database === "pglite" ? {} : { DATABASE_URL: await freshDatabaseUrl() }),
    ...(opts.store === "memory" ? {} : { REDIS_URL: await freshRedisUrl() }),
    ...opts.env,
  };
  const system = await startSystem({
    config: loadConfig(env),
    services: opts.services ?? ["auth", "user", "order", "notification", "catalogue"],
    edge: opts.edge ?? true,
    log: opts.log ?? silentLogger,
    policies: opts.policies,
    bus: opts.bus,
  });
  const base = `http://127.0.0.1:${system.server.port}`;
  const transport = (token?: string) => createGrpcTransport({ baseUrl: base, interceptors: bearer(token) });
  const connectTransport = (token?: string) => createConnectTransport({ baseUrl: base, httpVersion: "1.1", interceptors: bearer(token) });
  return {
    system,
    url: base,
    env,
    dataDir,
    transport,
    connectTransport,
    auth: (t) => createClient(AuthService, transport(t)),
    users: (t) => createClient(UserService, transport(t)),
    orders: (t) => createClient(OrderService, transport(t)),
    authInternal: (t) => createClient(AuthInternalService, transport(t)),
    usersInternal: (t) => createClient(UserInternalService, transport(t)),
    ordersInternal: (t) => createClient(OrderInternalService, transport(t)),
    catalogue: (t) => createClient(CatalogueService, transport(t)),
    catalogueInternal: (t) => createClient(CatalogueInternalService, transport(t)),
    stop: async () => {
      await system.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
