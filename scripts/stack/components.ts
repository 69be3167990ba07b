// How each program of the stack is started and known to be ready: Jaeger,
// envoyproxy/ratelimit, a service (each of app/services.ts: auth, user, order,
// notification, catalogue) and Envoy. Postgres, Redis and RabbitMQ are in servers.ts,
// Mailpit in mailpit.ts.
import { mkdirSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import { join } from "node:path";
import { renderEnvoyConfig } from "../envoy-config.js";
import type { EdgeSettings } from "../envoy-config/settings.js";
import { SERVICE_NAMES, type ServiceName } from "../../app/services.js";
import { ROOT, toolPath } from "../tools/index.js";
import type { StackPorts } from "./ports.js";
import { httpOk, startProcess, tcpOpen, type Managed } from "./process.js";

/** Every service of the product, each its own process (its port and metrics port: ports.ts). */
export type { ServiceName };
export const SERVICES: readonly ServiceName[] = SERVICE_NAMES;

/** The gRPC health of a server over h2c: SERVING for `service` ("" = the whole server). */
export function grpcServing(port: number, service = ""): Promise<boolean> {
  return new Promise((resolve) => {
    const c = http2.connect(`http://127.0.0.1:${port}`);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      c.close();
      c.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 2000);
    c.on("error", () => done(false));
    const name = Buffer.from(service, "utf8");
    const msg = Buffer.concat([Buffer.from([0x0a, name.length]), name]);
    const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, msg.length]), msg]);
    const r = c.request({ ":method": "POST", ":path": "/grpc.health.v1.Health/Check", "content-type": "application/grpc", te: "trailers" });
    let body = Buffer.alloc(0);
    r.on("data", (d: Buffer) => (body = Buffer.concat([body, d])));
    r.on("error", () => done(false));
    r.on("trailers", (t) => done(t["grpc-status"] === "0" && body.subarray(5).equals(Buffer.from([8, 1]))));
    r.on("end", () => done(false));
    r.end(frame);
  });
}

export function startJaeger(dir: string, ports: StackPorts): Promise<Managed> {
  return startProcess({
    name: "jaeger",
    command: toolPath("jaeger"),
    args: ["--config", join(ROOT, "scripts/stack/jaeger.yaml")],
    env: {
      ...process.env,
      JAEGER_QUERY_PORT: String(ports.jaegerQuery),
      JAEGER_QUERY_GRPC_PORT: String(ports.jaegerQueryGrpc),
      JAEGER_HEALTH_PORT: String(ports.jaegerHealth),
      JAEGER_OTLP_GRPC_PORT: String(ports.otlpGrpc),
      JAEGER_OTLP_HTTP_PORT: String(ports.otlpHttp),
    },
    logFile: join(dir, "jaeger.log"),
    readyTimeoutMs: 30_000,
    ready: async () =>
      (await httpOk(`http://127.0.0.1:${ports.jaegerHealth}/status`, (s) => s === 200)) && (await tcpOpen(ports.otlpGrpc)) && (await tcpOpen(ports.jaegerQuery)),
  });
}

/**
 * envoyproxy/ratelimit on the stack's Redis, with the rate-limit config copied
 * into RUNTIME_ROOT/RUNTIME_SUBDIRECTORY/config/ (it loads *.yaml from there).
 */
export function startRatelimit(dir: string, ports: StackPorts, redisHostPort: string, configYaml: string): Promise<Managed> {
  const runtime = join(dir, "ratelimit-runtime");
  mkdirSync(join(runtime, "ratelimit/config"), { recursive: true });
  writeFileSync(join(runtime, "ratelimit/config/config.yaml"), configYaml);
  return startProcess({
    name: "ratelimit",
    command: toolPath("ratelimit"),
    args: [],
    env: {
      PATH: process.env.PATH,
      USE_STATSD: "false",
      LOG_LEVEL: "warn",
      LOG_FORMAT: "json",
      REDIS_SOCKET_TYPE: "tcp",
      REDIS_URL: redisHostPort,
      // Fail fast when Redis is down (default 10 s): Envoy then fails open at once instead of
      // holding every request for its whole ratelimit timeout.
      REDIS_TIMEOUT: "200ms",
      HOST: "127.0.0.1",
      PORT: String(ports.ratelimitHttp),
      GRPC_HOST: "127.0.0.1",
      GRPC_PORT: String(ports.ratelimitGrpc),
      DEBUG_HOST: "127.0.0.1",
      DEBUG_PORT: String(ports.ratelimitDebug),
      RUNTIME_ROOT: runtime,
      RUNTIME_SUBDIRECTORY: "ratelimit",
      RUNTIME_WATCH_ROOT: "false",
      RUNTIME_IGNOREDOTFILES: "true",
    },
    logFile: join(dir, "ratelimit.log"),
    ready: () => httpOk(`http://127.0.0.1:${ports.ratelimitHttp}/healthcheck`, (s) => s === 200),
  });
}

export interface ServiceStart {
  name: ServiceName;
  dir: string;
  ports: StackPorts;
  /** The environment every service gets (database, redis, urls, telemetry, secrets). */
  env: NodeJS.ProcessEnv;
}

/** One service as its own process: `node scripts/start.mjs <name>` (the bundled build, telemetry preloaded). */
export function startService({ name, dir, ports, env }: ServiceStart): Promise<Managed> {
  return startProcess({
    name,
    command: process.execPath,
    args: ["--enable-source-maps", join(ROOT, "scripts/start.mjs"), name],
    cwd: ROOT,
    env: { ...env, PORT: String(ports[name]), METRICS_PORT: String(ports[`${name}Metrics`]), OTEL_SERVICE_NAME: name },
    logFile: join(dir, `${name}.log`),
    readyTimeoutMs: 60_000,
    ready: () => grpcServing(ports[name]),
  });
}

/** Envoy with the config rendered from the contract for these settings, written into dir. */
export function startEnvoy(dir: string, settings: EdgeSettings, opts: { logLevel?: string; baseId: number }): Promise<Managed> {
  const config = join(dir, "envoy.yaml");
  writeFileSync(config, renderEnvoyConfig(settings));
  return startProcess({
    name: "envoy",
    command: toolPath("envoy"),
    args: [
      "--config-path", config,
      "--log-level", opts.logLevel ?? "warn",
      // Several Envoys on one machine (tests, a stack beside them) need their own shared-memory id.
      "--base-id", String(opts.baseId),
      "--concurrency", "2",
    ],
    logFile: join(dir, "envoy.log"),
    readyTimeoutMs: 30_000,
    ready: () => httpOk(`http://127.0.0.1:${settings.admin_port}/ready`, (s, body) => s === 200 && body.trim() === "LIVE"),
  });
}
