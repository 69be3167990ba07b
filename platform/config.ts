// Configuration from the environment, validated once at start. A bad value
// stops the process with an error naming the variable.
import { resolve } from "node:path";

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`config: ${variable} ${message}`);
  }
}

type Env = Record<string, string | undefined>;

export function str(env: Env, name: string, def: string): string {
  const v = env[name];
  return v === undefined || v === "" ? def : v;
}

export function int(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return def;
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(name, `must be an integer, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

export function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(name, "must be a URL");
  }
  if (!protocols.includes(u.protocol)) {
    throw new ConfigError(name, `must use ${protocols.join(" or ")}, got ${u.protocol}`);
  }
  return raw;
}

export function oneOf<T extends string>(env: Env, name: string, def: T, allowed: readonly T[]): T {
  const v = str(env, name, def);
  if (!allowed.includes(v as T)) throw new ConfigError(name, `must be one of ${allowed.join(", ")}, got "${v}"`);
  return v as T;
}

/**
 * CORS_ORIGINS: a comma-separated allow-list of exact origins (scheme://host[:port]);
 * none by default. "*" and "null" are refused: every origin, or sandboxed and file
 * pages, must never be trusted with an authenticated API.
 */
function origins(raw: string): string[] {
  const list = raw.split(",").map((s) => s.trim()).filter(Boolean);
  for (const o of list) {
    if (o === "*" || o === "null") throw new ConfigError("CORS_ORIGINS", `must list exact origins, not "${o}"`);
    let u: URL | undefined;
    try {
      u = new URL(o);
    } catch {
      u = undefined;
    }
    if (!u || !["http:", "https:"].includes(u.protocol) || u.origin !== o) {
      throw new ConfigError("CORS_ORIGINS", `"${o}" is not an origin (scheme://host[:port], no path or trailing slash)`);
    }
  }
  return list;
}

/**
 * METRICS_PORT (default 9464, Prometheus exporters' port; 0 = any free port;
 * "off" = none) on METRICS_HOST (default 127.0.0.1: loopback only).
 */
function metricsListener(env: Env): Config["metrics"] {
  if (str(env, "METRICS_PORT", "") === "off") return undefined;
  return { port: int(env, "METRICS_PORT", 9464, 0, 65535), host: str(env, "METRICS_HOST", "127.0.0.1") };
}

/** TLS_CERT_FILE and TLS_KEY_FILE (PEM), both or neither: the port then serves TLS only. */
function tlsFiles(env: Env): Config["tls"] {
  const cert = str(env, "TLS_CERT_FILE", "");
  const key = str(env, "TLS_KEY_FILE", "");
  if (!cert && !key) return undefined;
  if (!cert || !key) throw new ConfigError(cert ? "TLS_KEY_FILE" : "TLS_CERT_FILE", "must be set too when serving TLS (TLS_CERT_FILE and TLS_KEY_FILE go together)");
  return { certFile: resolve(cert), keyFile: resolve(key) };
}

/** What one client may hold of the port: each bounded, each configurable (README, "Limits"). */
export interface ConnectionLimits {
  /** A new connection must send its first bytes, and an HTTP/1.1 request its headers, within this. */
  readonly headersTimeoutMs: number;
  /** An HTTP/1.1 request must arrive whole within this. */
  readonly requestTimeoutMs: number;
  /** A keep-alive connection (HTTP/1.1) or an HTTP/2 session with no open stream is closed after this idle time. */
  readonly idleTimeoutMs: number;
  /** Connections open at once; more are closed at once (the client sees a refused or reset connection). */
  readonly maxConnections: number;
  /** Concurrent streams per HTTP/2 connection (advertised in SETTINGS). */
  readonly maxConcurrentStreams: number;
  /** One gRPC, gRPC-Web or Connect message, compressed and after inflating (RESOURCE_EXHAUSTED over it). */
  readonly maxMessageBytes: number;
  /** Request headers of one request, by count (431, or RESOURCE_EXHAUSTED for gRPC, over it). */
  readonly maxHeaderCount: number;
  /** Request headers of one request, all together in bytes (431 over it). */
  readonly maxHeaderBytes: number;
  /** Nesting of a REST JSON body (400 over it). */
  readonly maxJsonDepth: number;
}

export interface Config {
  /** Port of this process (all-in-one: the one port; standalone: the service's port). */
  readonly port: number;
  readonly host: string;
  /** Data directory for the embedded database and generated dev secrets. */
  readonly dataDir: string;
  /** Postgres URL; undefined means embedded PGlite under dataDir. */
  readonly databaseUrl?: string;
  /** Redis URL; undefined means the in-process store. */
  readonly redisUrl?: string;
  readonly logLevel: "debug" | "info" | "warn" | "error";
  readonly jwt: {
    readonly issuer: string;
    readonly audience: string;
    readonly accessTtlSeconds: number;
  };
  readonly bcryptCost: number;
  /** Max request body bytes at the edge. */
  readonly maxBodyBytes: number;
  /** Allowed CORS origins (exact; none by default). */
  readonly corsOrigins: readonly string[];
  /** The operator's listener for /metrics (never the public port); undefined: none. */
  readonly metrics?: { readonly port: number; readonly host: string };
  /** Serve the port over TLS with this certificate (TLS_CERT_FILE, TLS_KEY_FILE; docs/tls.md); undefined: plain. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  /** Path of the rate-limit config (envoyproxy/ratelimit format). */
  readonly rateLimitConfig: string;
  /** VERIFIED_EMAIL_POLICY: "enforce" (default) refuses verified_email RPCs to unverified accounts; "off" lifts it. */
  readonly verifiedEmailPolicy: "enforce" | "off";
  readonly shutdownGraceMs: number;
  /** Connection limits of the one port (platform/server.ts). */
  readonly limits: ConnectionLimits;
  /** Raw environment, for modules with their own variables (OTEL_*). */
  readonly env: Env;
}

export function loadConfig(env: Env = process.env): Config {
  const port = int(env, "PORT", 8080, 0, 65535);
  const corsRaw = str(env, "CORS_ORIGINS", "");
  return {
    port,
    host: str(env, "HOST", "0.0.0.0"),
    dataDir: resolve(str(env, "DATA_DIR", "./.data")),
    databaseUrl: url(env, "DATABASE_URL", ["postgres:", "postgresql:"]),
    redisUrl: url(env, "REDIS_URL", ["redis:", "rediss:"]),
    logLevel: oneOf(env, "LOG_LEVEL", "info", ["debug", "info", "warn", "error"] as const),
    jwt: {
      issuer: str(env, "JWT_ISSUER", "acme-auth"),
      audience: str(env, "JWT_AUDIENCE", "acme-api"),
      accessTtlSeconds: int(env, "ACCESS_TOKEN_TTL_SECONDS", 900, 30, 86400),
    },
    bcryptCost: int(env, "BCRYPT_COST", 12, 10, 15),
    maxBodyBytes: int(env, "MAX_BODY_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024),
    corsOrigins: origins(corsRaw),
    metrics: metricsListener(env),
    tls: tlsFiles(env),
    rateLimitConfig: resolve(str(env, "RATELIMIT_CONFIG", "envoy/ratelimit/config.yaml")),
    verifiedEmailPolicy: oneOf(env, "VERIFIED_EMAIL_POLICY", "enforce", ["enforce", "off"] as const),
    shutdownGraceMs: int(env, "SHUTDOWN_GRACE_MS", 10000, 0, 120000),
    limits: {
      headersTimeoutMs: int(env, "SERVER_HEADERS_TIMEOUT_MS", 10_000, 100, 120_000),
      requestTimeoutMs: int(env, "SERVER_REQUEST_TIMEOUT_MS", 30_000, 1_000, 600_000),
      idleTimeoutMs: int(env, "SERVER_IDLE_TIMEOUT_MS", 65_000, 1_000, 3_600_000),
      maxConnections: int(env, "SERVER_MAX_CONNECTIONS", 10_000, 1, 1_000_000),
      maxConcurrentStreams: int(env, "SERVER_MAX_CONCURRENT_STREAMS", 100, 1, 10_000),
      maxMessageBytes: int(env, "MAX_MESSAGE_BYTES", 4 * 1024 * 1024, 1024, 64 * 1024 * 1024),
      maxHeaderCount: int(env, "SERVER_MAX_HEADER_COUNT", 100, 10, 1_000),
      maxHeaderBytes: int(env, "SERVER_MAX_HEADER_BYTES", 16 * 1024, 1024, 256 * 1024),
      maxJsonDepth: int(env, "MAX_JSON_DEPTH", 64, 4, 1_000),
    },
    env,
  };
}

/** Where each named service runs when not in this process: `<NAME>_URL` (e.g. USER_URL). */
export function serviceUrls(env: Env, names: readonly string[]): Record<string, string | undefined> {
  return Object.fromEntries(names.map((n) => [n, url(env, `${n.toUpperCase()}_URL`, ["http:", "https:"])]));
}
