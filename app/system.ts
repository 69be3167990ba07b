// Composition root: builds the shared platform (db, kv, verifier), the
// requested services and, in the all-in-one run, the embedded edge, and serves
// them on one port. app/main.ts is the command line around it.
import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { createEdge, type Edge } from "../edge/index.js";
import { authInterceptor } from "../platform/auth/interceptor.js";
import { remoteJwks, type KeySource } from "../platform/auth/keys.js";
import { createVerifier } from "../platform/auth/verifier.js";
import { grpcTransport, type TokenSource } from "../platform/clients.js";
import { int, serviceUrls, type Config } from "../platform/config.js";
import { openDatabase, type Database } from "../platform/db.js";
import { dependencyGate } from "../platform/dependency.js";
import { policyTable, type PolicyTable } from "../platform/policy.js";
import { errorInterceptor } from "../platform/errors.js";
import { HealthState, registerHealth, ServingStatus } from "../platform/health.js";
import { openStore, type KeyValueStore } from "../platform/kv.js";
import { localTransport } from "../platform/local-transport.js";
import { createLogger, type Logger } from "../platform/logger.js";
import { registerReflection } from "../platform/reflection.js";
import { contextValuesFor } from "../platform/request.js";
import { unaryMethods } from "../platform/rpc.js";
import { loadSecrets } from "../platform/secrets.js";
import { startServer, type HttpHandler, type RunningServer } from "../platform/server.js";
import type { ServiceDefinition, ServiceModule } from "../platform/service.js";
import { maxOutboxLagMs, probeIntervalMs, watchDependencies } from "../platform/telemetry/health.js";
import { observability, propagateContext } from "../platform/telemetry/index.js";
import { startMetricsServer } from "../platform/telemetry/metrics-server.js";
import { loadTlsMaterial } from "../platform/tls.js";
import { amqpBus } from "../platform/bus/amqp.js";
import type { Bus } from "../platform/bus/bus.js";
import { memoryBus } from "../platform/bus/memory.js";
import { startRelay, type Relay } from "../platform/outbox.js";
import { callsFrom } from "./calls.js";
import { policies as productPolicies, productServices, registry } from "./contract.js";
import { audienceOfService, definitions, SERVICE_NAMES, type ServiceName } from "./services.js";

export interface SystemOptions {
  config: Config;
  /** Services hosted by this process. */
  services: ServiceName[];
  /** Serve the embedded edge (REST, edge limits) in front. */
  edge: boolean;
  log?: Logger;
  /** The contract's policy (default: app/contract.ts); tests pass a variant. */
  policies?: PolicyTable;
  /** Use these instead of opening from config (tests). */
  bus?: Bus;
  db?: Database;
  kv?: KeyValueStore;
  /** Modules to host instead of the product's (the bench's plain-create baseline: a catalogue stand-in). */
  definitions?: Partial<Record<ServiceName, ServiceDefinition>>;
}

export interface System {
  readonly server: RunningServer;
  readonly url: string;
  /** The operator's /metrics listener (config.metrics), when there is one. */
  readonly metricsUrl?: string;
  readonly modules: readonly ServiceModule[];
  readonly health: HealthState;
  readonly db: Database;
  readonly kv: KeyValueStore;
  readonly bus: Bus;
  stop(): Promise<void>;
}

export async function startSystem(opts: SystemOptions): Promise<System> {
  const { config } = opts;
  const policies = opts.policies ?? (config.verifiedEmailPolicy === "off" ? policyTable(productServices, { verifiedEmail: false }) : productPolicies);
  const log = opts.log ?? createLogger({ service: opts.services.length === 1 ? opts.services[0] : "acme" }, { level: config.logLevel });
  const db = opts.db ?? (await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, env: config.env }));
  const kv = opts.kv ?? openStore(config.redisUrl, config.env);
  const secrets = loadSecrets(config.dataDir, config.env, SERVICE_NAMES);
  // The message bus: RabbitMQ when AMQP_URL is set, else the in-process stand-in (platform/bus/).
  const bus = opts.bus ?? (config.env.AMQP_URL ? amqpBus(config.env.AMQP_URL, { log: log.child({ component: "bus" }) }) : memoryBus());
  const defs = opts.services.map((n) => opts.definitions?.[n] ?? definitions[n]);

  let keySource: KeySource | undefined;
  const ownTokens: Partial<Record<ServiceName, TokenSource>> = {};
  for (const def of defs) {
    const prepared = await def.prepare({ db, config, secrets, log: log.child({ component: def.name }), kv });
    keySource ??= prepared.keySource;
    if (prepared.tokens) ownTokens[def.name as ServiceName] = prepared.tokens;
  }

  // Until the server listens we do not know our own port (PORT=0 in tests).
  let selfUrl = "";
  const remoteUrls = serviceUrls(config.env, SERVICE_NAMES);
  const urlOf = (name: ServiceName) => (opts.services.includes(name) ? selfUrl : remoteUrls[name]);
  const urls = new Proxy({} as Record<ServiceName, string>, {
    get: (_t, name: ServiceName) => {
      const u = urlOf(name);
      if (!u) throw new Error(`config: ${name.toUpperCase()}_URL is required when the ${name} service runs elsewhere`);
      return u;
    },
  });
  let remote: KeySource | undefined;
  const keys: KeySource = keySource ?? { get: (kid) => (remote ??= remoteJwks(`${urls.auth}/.well-known/jwks.json`)).get(kid) };
  const verifier = createVerifier({
    issuer: config.jwt.issuer,
    userAudience: config.jwt.audience,
    serviceAudiences: opts.services.map(audienceOfService),
    keys,
    kv,
  });

  // Calls between services hosted here go through the one local transport (set below, once
  // the modules exist); calls to the others go over gRPC with a service token.
  let local: ReturnType<typeof localTransport> | undefined;
  const calls = { hosted: opts.services, urls, clientSecrets: secrets.clientSecrets, ownTokens, local: () => local };
  const modules: ServiceModule[] = [];
  for (const def of defs) {
    const name = def.name as ServiceName;
    const transportTo = callsFrom(name, calls);
    modules.push(await def.create({ config, db, kv, log: log.child({ component: name }), secrets, verifier, urls, transportTo: transportTo as never }));
  }

  const health = new HealthState();
  // The outbox relays of the hosted services (started once the server listens, below).
  let relays: (Relay & { name: string })[] = [];
  const hosted: DescService[] = modules.flatMap((m) => [...m.services]);
  for (const s of hosted) health.set(s.typeName, ServingStatus.SERVING);
  // Postgres or Redis down: NOT_SERVING until it answers again (docs/outages.md).
  const dependencyWatch = watchDependencies({ db, kv, state: health, log, intervalMs: probeIntervalMs(config.env) });
  const serviceNames = () => [
    ...hosted.map((s) => s.typeName),
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
  ];

  // Traces, RED metrics, access log, /metrics, /health (platform/telemetry).
  const obs = observability({
    log, db, kv, health,
    local: () => modules.map((m) => ({ name: m.name, services: m.services.map((s) => s.typeName) })),
    events: { bus, outboxes: () => relays, maxOutboxLagMs: maxOutboxLagMs(config.env) },
  });
  const serviceInterceptors: Interceptor[] = [
    errorInterceptor(log),
    dependencyGate(db, policies),
    authInterceptor({ verifier, policies, onRejected: obs.onTokenRejected }),
  ];
  const routes = (router: ConnectRouter) => {
    registerHealth(router, health);
    registerReflection(router, registry, serviceNames);
    for (const m of modules) m.routes(router);
  };
  // The unary method table, built once: the port's gRPC fast path and the local transport share it.
  const methods = unaryMethods(routes);

  // The edge and the services reach the services hosted here in process (handlers called
  // directly, no serialisation: platform/local-transport.ts) and the others over gRPC.
  local = localTransport(routes, {
    methods,
    router: { interceptors: [obs.rpc, ...serviceInterceptors] },
    transport: { interceptors: [propagateContext()] },
  });
  const hostedNames = new Set(hosted.map((s) => s.typeName));
  const transportFor = (typeName: string) =>
    hostedNames.has(typeName) ? local! : grpcTransport(urls[typeName.split(".")[1] as ServiceName]);
  const edge: Edge | undefined = opts.edge ? await createEdge({ config, kv, log, verifier, policies, registry, transportFor }) : undefined;

  // /metrics is not served on this port: it has a listener of its own (config.metrics).
  const httpHandlers: HttpHandler[] = [
    obs.health,
    obs.traceHttp([...(edge?.httpHandlers ?? []), ...modules.flatMap((m) => [...(m.httpHandlers ?? [])])]),
  ];
  const server = await startServer({
    port: config.port,
    host: config.host,
    routes,
    methods,
    interceptors: [obs.rpc, ...(edge?.rpcInterceptors ?? []), ...serviceInterceptors],
    httpHandlers,
    prelude: edge?.prelude,
    contextValues: contextValuesFor,
    limits: config.limits,
    tls: config.tls && loadTlsMaterial(config.tls),
    log,
  });
  selfUrl = `${config.tls ? "https" : "http"}://127.0.0.1:${server.port}`;
  const metricsServer = config.metrics ? await startMetricsServer({ ...config.metrics, handler: obs.metrics, log }) : undefined;
  // Events: each hosted service's outbox relayed to the bus (platform/outbox.ts).
  relays = modules.flatMap((m) =>
    m.outbox
      ? [startRelay({
          db: db.db, schema: m.outbox.schema, exchange: m.outbox.exchange, bus, log: log.child({ component: "outbox", service: m.name }),
          // OUTBOX_POLL_MS: pause between polls (commits wake the relay at once); OUTBOX_MAX_BACKOFF_MS: longest pause while the bus is down.
          intervalMs: int(config.env, "OUTBOX_POLL_MS", 1000, 10, 60_000),
          maxBackoffMs: int(config.env, "OUTBOX_MAX_BACKOFF_MS", 30_000, 10, 600_000),
        })].map((r) => Object.assign(r, { name: m.name }))
      : [],
  );
  for (const m of modules) await m.start?.();
  // Events in: each hosted service's consumers on the bus (declared, then consuming).
  const consumers = await Promise.all(modules.flatMap((m) => (m.consumers ?? []).map((c) => bus.consume(c.spec, c.handler))));

  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      await dependencyWatch.stop();
      health.shutdown();
      await server.close(config.shutdownGraceMs);
      await metricsServer?.close();
      await Promise.all(consumers.map((c) => c.stop()));
      for (const m of modules) await m.stop?.();
      await Promise.all(relays.map((r) => r.stop()));
      await bus.close();
      await edge?.close?.();
      if (!opts.kv) await kv.close();
      if (!opts.db) await db.close();
      obs.close();
    })());
  return { server, url: server.url, metricsUrl: metricsServer?.url, modules, health, db, kv, bus, stop };
}
