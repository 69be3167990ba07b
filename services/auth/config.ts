// Auth-service settings: the shared config (JWT issuer/audience/TTL, bcrypt
// cost) plus the auth service's own environment variables, validated at start.
import { availableParallelism } from "node:os";
import { ConfigError, int, str, type Config } from "../../platform/config.js";

export interface AuthConfig {
  readonly issuer: string;
  /** Audience of user access tokens. */
  readonly audience: string;
  readonly accessTtlSeconds: number;
  readonly serviceTokenTtlSeconds: number;

  readonly bcryptCost: number;
  /** bcrypt computations at once (default: core count). */
  readonly bcryptConcurrency: number;
  /** Waiting bcrypt computations; beyond this, RESOURCE_EXHAUSTED at once. */
  readonly bcryptQueue: number;

  /** Failures (per email) before the first lockout. */
  readonly lockoutThreshold: number;
  readonly lockoutBaseSeconds: number;
  readonly lockoutMaxSeconds: number;
  /** The per-email failure count is forgotten this long after its first failure. */
  readonly lockoutWindowSeconds: number;
  /** Failed logins per client IP per window before RESOURCE_EXHAUSTED. */
  readonly ipMaxFailures: number;
  readonly ipWindowSeconds: number;

  /** Refresh tokens: lifetime of a login (never extended) and of an unused token. */
  readonly refreshAbsoluteSeconds: number;
  readonly refreshIdleSeconds: number;

  /** Signing keys: rotate this often; publish a new key this long before it signs. */
  readonly keyRotationSeconds: number;
  readonly keyPublishAheadSeconds: number;
  /** How often each instance reloads keys and checks the rotation schedule. */
  readonly keyCheckSeconds: number;
  /** Cache-Control max-age of the JWKS. */
  readonly jwksMaxAgeSeconds: number;

  readonly cleanupIntervalSeconds: number;
  /** Revoked sessions are deleted this long after revocation. */
  readonly revokedRetentionSeconds: number;

  /** First admin, created at first start when absent. */
  readonly adminEmail?: string;
  readonly adminPassword?: string;
  readonly adminName: string;
}

export function loadAuthConfig(config: Config): AuthConfig {
  const env = config.env;
  const c: AuthConfig = {
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    accessTtlSeconds: config.jwt.accessTtlSeconds,
    serviceTokenTtlSeconds: int(env, "SERVICE_TOKEN_TTL_SECONDS", 600, 30, 3600),

    bcryptCost: config.bcryptCost,
    bcryptConcurrency: int(env, "BCRYPT_CONCURRENCY", availableParallelism(), 1, 64),
    bcryptQueue: int(env, "BCRYPT_QUEUE", 32, 0, 10_000),

    lockoutThreshold: int(env, "LOCKOUT_THRESHOLD", 5, 1, 100),
    lockoutBaseSeconds: int(env, "LOCKOUT_BASE_SECONDS", 60, 1, 3600),
    lockoutMaxSeconds: int(env, "LOCKOUT_MAX_SECONDS", 900, 1, 86400),
    lockoutWindowSeconds: int(env, "LOCKOUT_WINDOW_SECONDS", 86400, 60, 30 * 86400),
    ipMaxFailures: int(env, "LOGIN_IP_MAX_FAILURES", 100, 1, 1_000_000),
    ipWindowSeconds: int(env, "LOGIN_IP_WINDOW_SECONDS", 900, 1, 86400),

    refreshAbsoluteSeconds: int(env, "REFRESH_ABSOLUTE_TTL_SECONDS", 30 * 86400, 60, 365 * 86400),
    refreshIdleSeconds: int(env, "REFRESH_IDLE_TTL_SECONDS", 14 * 86400, 60, 365 * 86400),

    keyRotationSeconds: int(env, "KEY_ROTATION_SECONDS", 30 * 86400, 3600, 365 * 86400),
    keyPublishAheadSeconds: int(env, "KEY_PUBLISH_AHEAD_SECONDS", 3600, 0, 7 * 86400),
    keyCheckSeconds: int(env, "KEY_CHECK_SECONDS", 60, 1, 3600),
    jwksMaxAgeSeconds: int(env, "JWKS_MAX_AGE_SECONDS", 300, 0, 86400),

    cleanupIntervalSeconds: int(env, "AUTH_CLEANUP_INTERVAL_SECONDS", 600, 1, 86400),
    revokedRetentionSeconds: int(env, "REVOKED_SESSION_RETENTION_SECONDS", 86400, 0, 90 * 86400),

    adminEmail: env.ADMIN_EMAIL?.trim() || undefined,
    adminPassword: env.ADMIN_PASSWORD || undefined,
    adminName: str(env, "ADMIN_NAME", "Administrator"),
  };
  if (c.lockoutMaxSeconds < c.lockoutBaseSeconds) {
    throw new ConfigError("LOCKOUT_MAX_SECONDS", "must be at least LOCKOUT_BASE_SECONDS");
  }
  if (c.refreshIdleSeconds > c.refreshAbsoluteSeconds) {
    throw new ConfigError("REFRESH_IDLE_TTL_SECONDS", "must not exceed REFRESH_ABSOLUTE_TTL_SECONDS");
  }
  // A verifier that cached the JWKS just before a new key appeared must see it before it signs.
  if (c.keyPublishAheadSeconds > 0 && c.keyPublishAheadSeconds < c.jwksMaxAgeSeconds) {
    throw new ConfigError("KEY_PUBLISH_AHEAD_SECONDS", "must be at least JWKS_MAX_AGE_SECONDS (or 0)");
  }
  if (c.keyPublishAheadSeconds >= c.keyRotationSeconds) {
    throw new ConfigError("KEY_PUBLISH_AHEAD_SECONDS", "must be less than KEY_ROTATION_SECONDS");
  }
  if ((c.adminEmail === undefined) !== (c.adminPassword === undefined)) {
    throw new ConfigError(c.adminEmail ? "ADMIN_PASSWORD" : "ADMIN_EMAIL", "must be set together with the other");
  }
  return c;
}

/** Longest lifetime of any token we sign (keys stay published this long after retiring). */
export const maxTokenTtlSeconds = (c: AuthConfig) => Math.max(c.accessTtlSeconds, c.serviceTokenTtlSeconds);
