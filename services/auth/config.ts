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

  /** Failures of one account from one client address before that address waits (docs/auth-policy.md). */
  readonly lockoutThreshold: number;
  /** First wait; each further failure doubles it, up to the max. */
  readonly lockoutBaseSeconds: number;
  readonly lockoutMaxSeconds: number;
  /** Failure counts (per account and address, per account) are forgotten this long after their first failure. */
  readonly lockoutWindowSeconds: number;
  /** Failed logins per client address (any account) per window before the address waits. */
  readonly ipMaxFailures: number;
  readonly ipWindowSeconds: number;
  readonly ipBaseSeconds: number;
  readonly ipMaxSeconds: number;
  /** Failures of one account from all addresses per window before every login for it is slowed. */
  readonly accountSoftLimit: number;
  /** The slow-down (0: off); nothing is ever refused by it. */
  readonly accountSoftDelayMs: number;

  /** A spent refresh token presented again within this many seconds returns the pair it was exchanged for (0: off). */
  readonly refreshReuseGraceSeconds: number;

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

  /** Mailed tokens (account-tokens.ts): lifetime of a verification or email-change token, and of a reset token. */
  readonly verifyTokenSeconds: number;
  readonly resetTokenSeconds: number;
  /** ResendVerification: at most one mail per account this often. */
  readonly verifyResendSeconds: number;
  /** RequestPasswordReset per hour: per address asked for, and per client address. */
  readonly resetPerAddress: number;
  readonly resetPerClient: number;

  /** TOTP (mfa/): the issuer shown in authenticator apps; how long an enrolment waits for its first code. */
  readonly totpIssuer: string;
  readonly totpEnrollSeconds: number;
  /** Lifetime of a login's second-factor challenge. */
  readonly mfaChallengeSeconds: number;

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
    ipBaseSeconds: int(env, "LOGIN_IP_BASE_SECONDS", 60, 1, 3600),
    ipMaxSeconds: int(env, "LOGIN_IP_MAX_SECONDS", 900, 1, 86400),
    accountSoftLimit: int(env, "LOGIN_ACCOUNT_SOFT_LIMIT", 20, 1, 1_000_000),
    accountSoftDelayMs: int(env, "LOGIN_ACCOUNT_SOFT_DELAY_MS", 1000, 0, 10_000),

    refreshReuseGraceSeconds: int(env, "AUTH_REFRESH_REUSE_GRACE_SECONDS", 0, 0, 300),

    refreshAbsoluteSeconds: int(env, "REFRESH_ABSOLUTE_TTL_SECONDS", 30 * 86400, 60, 365 * 86400),
    refreshIdleSeconds: int(env, "REFRESH_IDLE_TTL_SECONDS", 14 * 86400, 60, 365 * 86400),

    keyRotationSeconds: int(env, "KEY_ROTATION_SECONDS", 30 * 86400, 3600, 365 * 86400),
    keyPublishAheadSeconds: int(env, "KEY_PUBLISH_AHEAD_SECONDS", 3600, 0, 7 * 86400),
    keyCheckSeconds: int(env, "KEY_CHECK_SECONDS", 60, 1, 3600),
    jwksMaxAgeSeconds: int(env, "JWKS_MAX_AGE_SECONDS", 300, 0, 86400),

    verifyTokenSeconds: int(env, "AUTH_VERIFY_TOKEN_SECONDS", 86400, 300, 30 * 86400),
    resetTokenSeconds: int(env, "AUTH_RESET_TOKEN_SECONDS", 1800, 60, 86400),
    verifyResendSeconds: int(env, "AUTH_VERIFY_RESEND_SECONDS", 60, 0, 86400),
    resetPerAddress: int(env, "AUTH_RESET_PER_ADDRESS", 3, 1, 1000),
    resetPerClient: int(env, "AUTH_RESET_PER_CLIENT", 20, 1, 1_000_000),

    totpIssuer: str(env, "AUTH_TOTP_ISSUER", "Acme").trim().slice(0, 64) || "Acme",
    totpEnrollSeconds: int(env, "AUTH_TOTP_ENROLL_SECONDS", 600, 60, 86400),
    mfaChallengeSeconds: int(env, "AUTH_MFA_CHALLENGE_SECONDS", 300, 30, 3600),

    cleanupIntervalSeconds: int(env, "AUTH_CLEANUP_INTERVAL_SECONDS", 600, 1, 86400),
    revokedRetentionSeconds: int(env, "REVOKED_SESSION_RETENTION_SECONDS", 86400, 0, 90 * 86400),

    adminEmail: env.ADMIN_EMAIL?.trim() || undefined,
    adminPassword: env.ADMIN_PASSWORD || undefined,
    adminName: str(env, "ADMIN_NAME", "Administrator"),
  };
  if (c.lockoutMaxSeconds < c.lockoutBaseSeconds) {
    throw new ConfigError("LOCKOUT_MAX_SECONDS", "must be at least LOCKOUT_BASE_SECONDS");
  }
  if (c.ipMaxSeconds < c.ipBaseSeconds) {
    throw new ConfigError("LOGIN_IP_MAX_SECONDS", "must be at least LOGIN_IP_BASE_SECONDS");
  }
  // The pair handed out again must still be usable: its access token lives accessTtlSeconds.
  if (c.refreshReuseGraceSeconds > c.accessTtlSeconds) {
    throw new ConfigError("AUTH_REFRESH_REUSE_GRACE_SECONDS", "must not exceed the access token lifetime");
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
