// Cross-checks of docker-compose.yml and envoy/ratelimit/config.yaml against
// envoy/envoy.yaml and envoy/settings.yaml: hostnames, ports, mounted paths, images,
// health checks and start order. Each returns a list of problems (empty = fine).
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./envoy-protos.js";
import { clusters, endpointsOf, filterConfig, RATELIMIT, TRANSCODER, type Inputs, type Json } from "./inputs.js";

const UNITS = ["second", "minute", "hour", "day"];
const DESCRIPTOR_KEYS = new Set(["key", "value", "rate_limit", "descriptors", "shadow_mode", "detailed_metric"]);
const LIMIT_KEYS = new Set(["unit", "requests_per_unit", "unlimited", "name", "replaces"]);

/** envoyproxy/ratelimit format, the domain Envoy sends, and nothing else in the directory. */
export function checkRatelimitConfig(i: Inputs): string[] {
  const problems: string[] = [];
  const rl = i.ratelimit;
  const domain = filterConfig(i.envoy, RATELIMIT).domain;
  if (rl?.domain !== domain) problems.push(`ratelimit domain "${rl?.domain}" != Envoy's "${domain}"`);
  for (const k of Object.keys(rl ?? {})) if (!["domain", "descriptors"].includes(k)) problems.push(`unknown top-level key ${k}`);
  const walk = (ds: Json, at: string) => {
    if (!Array.isArray(ds)) return problems.push(`${at}: descriptors must be a list`);
    for (const d of ds) {
      const here = `${at}/${d?.key}${d?.value === undefined ? "" : `=${d.value}`}`;
      if (typeof d?.key !== "string" || !d.key) problems.push(`${here}: key missing`);
      for (const k of Object.keys(d ?? {})) if (!DESCRIPTOR_KEYS.has(k)) problems.push(`${here}: unknown field ${k}`);
      if (d.rate_limit) {
        for (const k of Object.keys(d.rate_limit)) if (!LIMIT_KEYS.has(k)) problems.push(`${here}: unknown rate_limit field ${k}`);
        if (!d.rate_limit.unlimited) {
          if (!UNITS.includes(String(d.rate_limit.unit).toLowerCase())) problems.push(`${here}: unit ${d.rate_limit.unit}`);
          if (!Number.isInteger(d.rate_limit.requests_per_unit) || d.rate_limit.requests_per_unit < 1) problems.push(`${here}: requests_per_unit must be a positive integer`);
        }
      }
      if (d.descriptors !== undefined) walk(d.descriptors, here);
    }
  };
  walk(rl?.descriptors, "");
  const extra = i.ratelimitDir.filter((f) => f !== "config.yaml");
  if (extra.length) problems.push(`envoy/ratelimit holds ${extra.join(", ")}: the ratelimit service would load them as config`);
  return problems;
}

const envOf = (s: Json): Record<string, string> => Array.isArray(s?.environment)
  ? Object.fromEntries(s.environment.map((e: string) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]))
  : Object.fromEntries(Object.entries(s?.environment ?? {}).map(([k, v]) => [k, String(v)]));

/** Short-syntax bind mounts and volumes as { source, target }. */
const mountsOf = (s: Json) => (s?.volumes ?? []).map((v: string) => {
  const [source, target] = v.split(":");
  return { source: source.replace(/^\.\//, ""), target };
});

const hostPort = (u: string) => { const x = new URL(u); return { host: x.hostname, port: Number(x.port) }; };

/** The ports a compose service listens on inside the network. */
function listens(s: Json): number[] {
  const env = envOf(s);
  const image = String(s?.image ?? "");
  if (image.startsWith("envoyproxy/ratelimit")) return [Number(env.GRPC_PORT ?? 8081), Number(env.PORT ?? 8080)];
  if (image.startsWith("jaegertracing/jaeger:")) return [4317, 4318, 16686]; // v2: OTLP on by default
  if (image.startsWith("redis")) { const c: string[] = s.command ?? []; const k = c.indexOf("--port"); return [k >= 0 ? Number(c[k + 1]) : 6379]; }
  if (image.startsWith("postgres")) return [5432];
  if (s?.build !== undefined && env.PORT) return [Number(env.PORT)];
  return [];
}

export function checkCompose(i: Inputs): string[] {
  const problems: string[] = [];
  const services: Record<string, Json> = i.compose?.services ?? {};
  const need = (cond: boolean, msg: string) => { if (!cond) problems.push(msg); };
  for (const n of ["envoy", "ratelimit", "redis", "postgres", "jaeger", ...Object.keys(i.settings.upstreams)]) need(!!services[n], `compose has no service "${n}"`);
  for (const [n, s] of Object.entries(services)) {
    if (s.image && !s.build) need(/^[\w./-]+:[\w.-]+$/.test(s.image) && !s.image.endsWith(":latest"), `${n}: image ${s.image} is not pinned to a tag`);
    for (const [dep, cfg] of Object.entries<Json>(s.depends_on ?? {})) {
      need(!!services[dep], `${n} depends on unknown service ${dep}`);
      if (cfg?.condition === "service_healthy") need(!!services[dep]?.healthcheck, `${n} waits for ${dep} to be healthy, but ${dep} has no healthcheck`);
      if (cfg?.condition === "service_completed_successfully") need(services[dep]?.restart === "no", `${n} waits for ${dep} to complete, but ${dep} restarts`);
    }
  }
  const envoy = services.envoy ?? {};
  // The same versions `npm run tools` installs and the tests run against (scripts/tools/versions.json).
  for (const [name, tool] of [["envoy", "envoy"], ["ratelimit", "ratelimit"], ["jaeger", "jaeger"]] as const) {
    const want = i.tools[tool].image;
    need(services[name]?.image === want, `${name}: image ${services[name]?.image} must be ${want} (scripts/tools/versions.json)`);
  }
  need(/^postgres:15[.-]/.test(services.postgres?.image ?? ""), "postgres must be version 15");

  // Every upstream cluster endpoint is a compose service listening on that port.
  for (const c of clusters(i.envoy).filter((x) => x.type === "STRICT_DNS" || x.type === "LOGICAL_DNS")) {
    for (const ep of endpointsOf(c)) {
      const s = services[ep.host];
      if (!s) { problems.push(`cluster ${c.name}: host ${ep.host} is not a compose service`); continue; }
      need(listens(s).includes(ep.port), `cluster ${c.name}: ${ep.host}:${ep.port}, but compose service ${ep.host} listens on ${listens(s).join(", ") || "nothing known"}`);
      if (ep.host !== "jaeger") need(envoy.depends_on?.[ep.host]?.condition === "service_healthy", `envoy must wait for ${ep.host} (service_healthy)`);
    }
  }
  const jwt = filterConfig(i.envoy, "envoy.filters.http.jwt_authn");
  for (const [name, p] of Object.entries<Json>(jwt.providers ?? {})) {
    const uri = hostPort(p.remote_jwks.http_uri.uri);
    const c = clusters(i.envoy).find((x) => x.name === p.remote_jwks.http_uri.cluster);
    need(!!c && endpointsOf(c).some((e) => e.host === uri.host && e.port === uri.port), `jwt provider ${name}: JWKS uri ${uri.host}:${uri.port} is not its cluster's endpoint`);
  }

  // Envoy: mounted config and descriptor set, published ports.
  const cmd: string[] = envoy.command ?? [];
  const flag = Math.max(cmd.indexOf("-c"), cmd.indexOf("--config-path"));
  const configPath = flag >= 0 ? cmd[flag + 1] : "/etc/envoy/envoy.yaml";
  const mounts = mountsOf(envoy);
  need(mounts.some((m: Json) => m.source === "envoy/envoy.yaml" && m.target === configPath), `envoy: ./envoy/envoy.yaml must be mounted at ${configPath}`);
  const descriptor = filterConfig(i.envoy, TRANSCODER).proto_descriptor;
  need(mounts.some((m: Json) => m.source === "gen/api.binpb" && m.target === descriptor), `envoy: ./gen/api.binpb must be mounted at ${descriptor} (transcoder proto_descriptor)`);
  need(mounts.some((m: Json) => m.source === "gen/openapi.json" && m.target === i.settings.openapi_document), `envoy: ./gen/openapi.json must be mounted at ${i.settings.openapi_document} (GET /openapi.json)`);
  // Every file Envoy reads at start (DataSource filename anywhere, the descriptor set) is a
  // bind mount of a file in the repository: Envoy refuses to start otherwise.
  const reads = new Set<string>([descriptor]);
  const walk = (v: Json, key: string) => {
    if (Array.isArray(v)) v.forEach((x) => walk(x, key));
    else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) walk(x, k);
    else if (key === "filename" && typeof v === "string") reads.add(v);
  };
  walk(i.envoy, "");
  for (const f of reads) {
    const m = mounts.find((x: Json) => x.target === f);
    const volume = mounts.find((x: Json) => f.startsWith(`${x.target}/`) && i.compose.volumes && x.source in i.compose.volumes);
    if (!m && volume) {
      // A generated file (the TLS certificate): on a named volume that a one-shot job Envoy waits for writes.
      const writers = Object.entries(services).filter(([n, s]) => n !== "envoy" && mountsOf(s).some((x: Json) => x.source === volume.source));
      need(writers.length > 0 && writers.every(([n, s]) => s.restart === "no" && envoy.depends_on?.[n]?.condition === "service_completed_successfully"),
        `envoy reads ${f} from volume ${volume.source}: it must be written by a one-shot job envoy waits for (service_completed_successfully)`);
      need(/:ro$/.test((envoy.volumes ?? []).find((v: string) => v.startsWith(`${volume.source}:`)) ?? ""), `envoy: volume ${volume.source} must be mounted read-only`);
    } else if (!m) problems.push(`envoy reads ${f}, which is not mounted`);
    else if (!existsSync(join(ROOT, m.source)) || !statSync(join(ROOT, m.source)).isFile()) problems.push(`envoy: ${m.source}, mounted at ${f}, is not a file in the repository`);
  }
  const ports: string[] = (envoy.ports ?? []).map(String);
  const admin = i.envoy.admin.address.socket_address.port_value;
  for (const l of i.envoy.static_resources.listeners) {
    const port = l.address.socket_address.port_value;
    need(ports.some((p) => p.endsWith(`:${port}`) && p.split(":").at(-2) === String(port)), `envoy: listener ${l.name} port ${port} is not published`);
  }
  need(ports.includes(`127.0.0.1:${admin}:${admin}`), `envoy: admin ${admin} must be published on 127.0.0.1 only`);
  need((services.jaeger?.ports ?? []).map(String).some((p: string) => p.endsWith(":16686")), "jaeger UI 16686 is not published");

  // ratelimit: its config directory and redis.
  const rl = services.ratelimit ?? {};
  const rlEnv = envOf(rl);
  need(mountsOf(rl).some((m: Json) => m.source === "envoy/ratelimit" && m.target === `${rlEnv.RUNTIME_ROOT}/${rlEnv.RUNTIME_SUBDIRECTORY}/config`), "ratelimit: ./envoy/ratelimit must be mounted at $RUNTIME_ROOT/$RUNTIME_SUBDIRECTORY/config");
  const [redisHost, redisPort] = (rlEnv.REDIS_URL ?? "").split(":");
  need(listens(services[redisHost]).includes(Number(redisPort)), `ratelimit: REDIS_URL ${rlEnv.REDIS_URL} is not the redis service`);

  // The three services: one image, their command, and the same hosts/ports as Envoy.
  for (const [name, up] of Object.entries(i.settings.upstreams)) {
    const s = services[name];
    if (!s) continue;
    const env = envOf(s);
    need(s.build === "." && s.image === services["secrets-init"]?.image, `${name}: must be built from the one Dockerfile`);
    const c: string[] = s.command ?? [];
    need(c[0] === "node" && c.includes("--import") && c.at(-2) === "app/main.ts" && c.at(-1) === name, `${name}: command must be node --import tsx app/main.ts ${name}`);
    need(env.PORT === String(up.port), `${name}: PORT ${env.PORT} != ${up.port} (envoy/settings.yaml)`);
    for (const [other, o] of Object.entries(i.settings.upstreams)) {
      need(env[`${other.toUpperCase()}_URL`] === `http://${o.host}:${o.port}`, `${name}: ${other.toUpperCase()}_URL must be http://${o.host}:${o.port}`);
    }
    need(env.JWT_ISSUER === i.settings.jwt.issuer && i.settings.jwt.audiences.includes(env.JWT_AUDIENCE), `${name}: JWT_ISSUER/JWT_AUDIENCE differ from the jwt provider`);
    const db = new URL(env.DATABASE_URL ?? "x:");
    need(db.hostname === "postgres" && Number(db.port) === 5432 && db.pathname === `/${envOf(services.postgres).POSTGRES_DB}`, `${name}: DATABASE_URL must point at postgres:5432/<POSTGRES_DB>`);
    const redis = hostPort(env.REDIS_URL ?? "x://x:0");
    need(listens(services[redis.host]).includes(redis.port), `${name}: REDIS_URL ${env.REDIS_URL} is not the redis service`);
    const otlp = hostPort(env.OTEL_EXPORTER_OTLP_ENDPOINT ?? "x://x:0");
    need(otlp.host === "jaeger" && listens(services.jaeger).includes(otlp.port), `${name}: OTEL_EXPORTER_OTLP_ENDPOINT must be a jaeger OTLP port`);
    need(env.OTEL_SERVICE_NAME === name, `${name}: OTEL_SERVICE_NAME must be ${name}`);
    need(!!s.healthcheck, `${name}: no healthcheck`);
    const envFile = c.find((a) => a.startsWith("--env-file="))?.slice("--env-file=".length);
    need(!envFile || mountsOf(s).some((m: Json) => envFile.startsWith(`${m.target}/`)), `${name}: ${envFile} is not on a mounted volume`);
  }
  return problems;
}
