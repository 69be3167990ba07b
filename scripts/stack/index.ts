// The real topology on one machine, without Docker: Postgres, Redis, RabbitMQ, Mailpit
// (SMTP), Jaeger, envoyproxy/ratelimit, each service (auth, user, order, notification,
// catalogue: app/services.ts) as its own process, and Envoy in front with the config the
// generator renders for the local profile.
// `npm run stack` (scripts/stack.ts) and the Envoy tests (test/support/edge-stack.ts)
// both start it through startStack.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { localSettings } from "../envoy-config/local-profile.js";
import type { EdgeSettings } from "../envoy-config/settings.js";
import { loadSecrets } from "../../platform/secrets.js";
import { SERVICE_NAMES } from "../../app/services.js";
import { ROOT } from "../tools/index.js";
import { ensureLocalCertificates } from "./certs.js";
import { SERVICES, startEnvoy, startJaeger, startRatelimit, startService, type ServiceName } from "./components.js";
import { mailpitUrls, startMailpit } from "./mailpit.js";
import type { StackPorts } from "./ports.js";
import { tcpOpen, type Managed } from "./process.js";
import { startPostgres, startRabbitmq, startRedis, type Running } from "./servers.js";

export interface StackOptions {
  /** Logs, generated config, the services' data dir and (when started here) the Postgres cluster. */
  dir: string;
  ports: StackPorts;
  /** An existing database to use; default: a Postgres cluster under dir. */
  databaseUrl?: string;
  /** An existing Redis (redis://host:port/db); default: a redis-server started here. */
  redisUrl?: string;
  /** An existing RabbitMQ (amqp://user:pass@host:port); default: a rabbitmq-server started here, data under dir. */
  amqpUrl?: string;
  /** An existing SMTP server (smtp://host:port); default: a Mailpit started here, its messages under dir. */
  smtpUrl?: string;
  /** Extra environment for the services (BCRYPT_COST, ADMIN_EMAIL, ...). */
  env?: Record<string, string>;
  /** envoyproxy/ratelimit config (default envoy/ratelimit/config.yaml). */
  ratelimitConfig?: string;
  /** Changes to the local profile's Envoy settings (tests: a shorter JWKS cache). */
  edge?: (s: EdgeSettings) => EdgeSettings;
  envoyLogLevel?: string;
  progress?: (line: string) => void;
  /** Called when a program exits, whoever stopped it (exit code or signal). */
  onExit?: (name: ComponentName, code: string) => void;
}

export type ComponentName = "postgres" | "redis" | "rabbitmq" | "mailpit" | "jaeger" | "ratelimit" | ServiceName | "envoy";

export interface Stack {
  readonly ports: StackPorts;
  readonly dir: string;
  /** http://127.0.0.1:<envoy>: REST, gRPC (h2c), gRPC-Web. */
  readonly edgeUrl: string;
  /** https://127.0.0.1:<envoyTls>: the same over TLS, with HSTS (docs/tls.md). */
  readonly tlsEdgeUrl: string;
  /** The local CA that signed Envoy's certificate (dir/tls/ca.crt): what clients trust. */
  readonly caFile: string;
  readonly adminUrl: string;
  readonly jaegerUrl: string;
  readonly databaseUrl: string;
  readonly redisUrl: string;
  readonly amqpUrl: string;
  /** Where the notification service sends mail (SMTP_URL). */
  readonly smtpUrl: string;
  /** Mailpit's web UI and HTTP API (test/support/mailpit.ts), when this stack started it. */
  readonly mailpitUrl?: string;
  /** The Envoy settings the config was rendered from. */
  readonly settings: EdgeSettings;
  /** Base URL of each service (gRPC h2c and HTTP/1.1 on one port). */
  serviceUrl(name: ServiceName): string;
  /** Stop one program (it stays stopped until start). */
  stop(name: ComponentName, signal?: NodeJS.Signals): Promise<void>;
  /** Start a stopped program again, as it was started first. */
  start(name: ComponentName): Promise<void>;
  running(name: ComponentName): boolean;
  /** Restart envoyproxy/ratelimit with another config file (no-op when it is the current one). */
  setRateLimitConfig(file: string): Promise<void>;
  logTail(name: ComponentName, lines?: number): string;
  /** Stop everything this started, in reverse order. */
  close(): Promise<void>;
}

let nextBaseId = 10 + (process.pid % 1000) * 10;

async function ensureDatabase(serverUrl: string, name: string): Promise<string> {
  const c = new pg.Client(serverUrl);
  await c.connect();
  try {
    const found = await c.query("select 1 from pg_database where datname = $1", [name]);
    if (!found.rowCount) await c.query(`create database "${name.replace(/"/g, '""')}"`);
  } finally {
    await c.end();
  }
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  const { dir, ports } = opts;
  const say = opts.progress ?? (() => {});
  mkdirSync(dir, { recursive: true });
  const logs = join(dir, "logs");
  mkdirSync(logs, { recursive: true });
  const procs = new Map<ComponentName, Managed>();
  const restarters = new Map<ComponentName, () => Promise<Managed>>();
  const order: ComponentName[] = [];
  const servers: Running[] = [];

  const launch = async (name: ComponentName, start: () => Promise<Managed>, what: string) => {
    const t = Date.now();
    say(`  starting ${name.padEnd(9)} ${what}`);
    const m = await start();
    void m.exited.then(() => opts.onExit?.(name, String(m.child.exitCode ?? m.child.signalCode)));
    procs.set(name, m);
    restarters.set(name, start);
    if (!order.includes(name)) order.push(name);
    say(`  ready    ${name.padEnd(9)} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
  };

  const close = async () => {
    for (const name of [...order].reverse()) await procs.get(name)?.stop();
    for (const s of servers.reverse()) await s.stop();
  };

  // Every port this stack will listen on must be free: a program left over from an
  // earlier run would otherwise answer the readiness checks in place of the new one.
  const mine = (Object.keys(ports) as (keyof StackPorts)[]).filter(
    (k) => !(k === "postgres" && opts.databaseUrl) && !(k === "redis" && opts.redisUrl) && !(k.startsWith("rabbitmq") && opts.amqpUrl)
      && !(k.startsWith("mailpit") && opts.smtpUrl),
  );
  const busy = (await Promise.all(mine.map(async (k) => ((await tcpOpen(ports[k])) ? `${k} ${ports[k]}` : undefined)))).filter(Boolean);
  if (busy.length) throw new Error(`ports already in use: ${busy.join(", ")} (another stack, npm start or docker compose still running?)`);

  try {
    // Storage first.
    let databaseUrl = opts.databaseUrl;
    if (!databaseUrl) {
      say(`  starting postgres  127.0.0.1:${ports.postgres}, data in ${join(dir, "postgres")}`);
      const pgServer = await startPostgres({ dir: join(dir, "postgres"), port: ports.postgres, logFile: join(logs, "postgres.log"), durable: true });
      servers.push(pgServer);
      procs.set("postgres", pgServer.process!);
      databaseUrl = await ensureDatabase(pgServer.url, "acme");
    }
    let redisUrl = opts.redisUrl;
    if (!redisUrl) {
      say(`  starting redis     127.0.0.1:${ports.redis}`);
      const r = await startRedis({ port: ports.redis, logFile: join(logs, "redis.log") });
      servers.push(r);
      procs.set("redis", r.process!);
      // stop("redis") then start("redis"): an outage; the new server is empty (no persistence), like a flushed one.
      restarters.set("redis", async () => {
        const again = await startRedis({ port: ports.redis, logFile: join(logs, "redis.log") });
        servers.push(again);
        return again.process!;
      });
      redisUrl = `${r.url}/1`;
    }
    const redisHostPort = new URL(redisUrl).host;
    let amqpUrl = opts.amqpUrl;
    if (!amqpUrl) {
      say(`  starting rabbitmq  127.0.0.1:${ports.rabbitmq} (management http://127.0.0.1:${ports.rabbitmqManagement}), data in ${join(dir, "rabbitmq")}`);
      // stop("rabbitmq") then start("rabbitmq"): an outage; the same node comes back with its data (durable queues, persistent messages).
      const startBroker = async () => {
        const r = await startRabbitmq({
          dir: join(dir, "rabbitmq"), port: ports.rabbitmq, logFile: join(logs, "rabbitmq.log"),
          plugins: ["rabbitmq_management"], managementPort: ports.rabbitmqManagement,
        });
        servers.push(r);
        return r;
      };
      const r = await startBroker();
      procs.set("rabbitmq", r.process!);
      restarters.set("rabbitmq", async () => (await startBroker()).process!);
      amqpUrl = r.url;
    }
    let smtpUrl = opts.smtpUrl;
    let mailpitUrl: string | undefined;
    if (!smtpUrl) {
      // stop("mailpit") then start("mailpit"): an SMTP outage; the same database comes back (messages kept).
      const mailpit = { dir: join(dir, "mailpit"), smtpPort: ports.mailpitSmtp, httpPort: ports.mailpitHttp, logFile: join(logs, "mailpit.log") };
      ({ smtpUrl, url: mailpitUrl } = mailpitUrls(mailpit));
      await launch("mailpit", () => startMailpit(mailpit), `SMTP 127.0.0.1:${ports.mailpitSmtp}, inbox ${mailpitUrl}, messages in ${mailpit.dir}`);
    }

    await launch("jaeger", () => startJaeger(logs, ports), `OTLP 127.0.0.1:${ports.otlpGrpc} (gRPC) / ${ports.otlpHttp} (HTTP), UI :${ports.jaegerQuery}`);
    // The config's text is kept, so a restart does not depend on the file still being there.
    let ratelimitConfig = opts.ratelimitConfig ?? join(ROOT, "envoy/ratelimit/config.yaml");
    let ratelimitYaml = readFileSync(ratelimitConfig, "utf8");
    await launch("ratelimit", () => startRatelimit(dir, ports, redisHostPort, ratelimitYaml),
      `gRPC 127.0.0.1:${ports.ratelimitGrpc}, Redis ${redisHostPort}`);

    // The services share one data dir: its secrets (client secrets, key-encryption
    // key) are made once here, before the processes could race to make them.
    const dataDir = join(dir, "data");
    loadSecrets(dataDir, {}, SERVICE_NAMES);
    const serviceUrl = (n: ServiceName) => `http://127.0.0.1:${ports[n]}`;
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      HOST: "127.0.0.1",
      DATA_DIR: dataDir,
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      // Events: each service's outbox relays to RabbitMQ (platform/bus/amqp.ts).
      AMQP_URL: amqpUrl,
      // The notification service's mail (any other service ignores it).
      SMTP_URL: smtpUrl,
      // Where each service is: AUTH_URL, USER_URL, ... (platform/config.ts serviceUrls).
      ...Object.fromEntries(SERVICES.map((n) => [`${n.toUpperCase()}_URL`, serviceUrl(n)])),
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${ports.otlpHttp}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
      OTEL_BSP_SCHEDULE_DELAY: "200",
      LOG_LEVEL: "info",
      ...opts.env,
    };
    // Bundle once, before the service processes would each find the bundle stale.
    const built = spawnSync(process.execPath, [join(ROOT, "scripts/start.mjs"), "--build-only"], { cwd: ROOT, encoding: "utf8" });
    if (built.status !== 0) throw new Error(`bundling the services failed: ${built.stderr}`);
    await launch("auth", () => startService({ name: "auth", dir: logs, ports, env }), `${serviceUrl("auth")} (gRPC h2c + JWKS)`);
    // The others once auth serves (their service tokens, the JWKS), side by side.
    await Promise.all(
      SERVICES.filter((n) => n !== "auth").map((n) => launch(n, () => startService({ name: n, dir: logs, ports, env }), `${serviceUrl(n)} (gRPC h2c)`)),
    );

    // The local CA and Envoy's certificate: made at the first start into dir/tls, reused after.
    const tls = ensureLocalCertificates(join(dir, "tls"));
    const settings = (opts.edge ?? ((s) => s))(localSettings(ports, undefined, join(dir, "tls")));
    const baseId = nextBaseId++;
    await launch("envoy", () => startEnvoy(logs, settings, { logLevel: opts.envoyLogLevel, baseId }), `http://127.0.0.1:${ports.envoy}, https://127.0.0.1:${ports.envoyTls} (admin 127.0.0.1:${ports.envoyAdmin})`);

    const get = (name: ComponentName) => {
      const m = procs.get(name);
      if (!m) throw new Error(`stack: ${name} was not started by this stack`);
      return m;
    };
    return {
      ports,
      dir,
      edgeUrl: `http://127.0.0.1:${ports.envoy}`,
      tlsEdgeUrl: `https://127.0.0.1:${ports.envoyTls}`,
      caFile: tls.ca,
      adminUrl: `http://127.0.0.1:${ports.envoyAdmin}`,
      jaegerUrl: `http://127.0.0.1:${ports.jaegerQuery}`,
      databaseUrl,
      redisUrl,
      amqpUrl,
      smtpUrl,
      mailpitUrl,
      settings,
      serviceUrl,
      stop: (name, signal) => get(name).stop(signal),
      start: async (name) => {
        if (get(name).running()) return;
        const restart = restarters.get(name);
        if (!restart) throw new Error(`stack: ${name} cannot be restarted here`);
        procs.set(name, await restart());
      },
      running: (name) => get(name).running(),
      setRateLimitConfig: async (file) => {
        const yaml = readFileSync(file, "utf8");
        if (file === ratelimitConfig && yaml === ratelimitYaml && get("ratelimit").running()) return;
        ratelimitConfig = file;
        ratelimitYaml = yaml;
        await get("ratelimit").stop();
        procs.set("ratelimit", await restarters.get("ratelimit")!());
      },
      logTail: (name, lines) => get(name).logTail(lines),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

export { DEFAULT_PORTS, freePorts, type StackPorts } from "./ports.js";
export { SERVICES, type ServiceName } from "./components.js";
export const stackLogDir = (dir: string) => join(dir, "logs");
export const hasStackData = (dir: string) => existsSync(join(dir, "data", "secrets.json"));
