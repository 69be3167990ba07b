// Table types of the auth service's schema "auth" (services/auth/migrations.ts
// creates the tables), the kysely database type over them, and the row types.
// The queries are in store.ts (accounts, sessions, refresh tokens) and next to
// their logic (keys.ts, clients.ts, audit.ts, cleanup.ts).
import type { Timestamps } from "../../platform/db.js";
import type { ColumnType, Generated, Selectable } from "kysely";

/** How an account came to be: self-registration, ADMIN_EMAIL at first start, or the admin command. */
export type AccountOrigin = "register" | "bootstrap" | "admin-cli";

export interface AccountTable extends Timestamps {
  id: string;
  email: string;
  password_hash: string;
  created_by: Generated<AccountOrigin>;
  password_changed_at: ColumnType<Date, never, Date>;
  /** Null until the address is verified (verification.ts). */
  email_verified_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
}

export type AccountTokenPurpose = "verify_email" | "change_email" | "reset_password";

/** A mailed single-use token (account-tokens.ts), stored as its hash. */
export interface AccountTokenTable {
  token_hash: Uint8Array;
  user_id: string;
  purpose: AccountTokenPurpose;
  /** Where it was mailed (change_email: the new address). */
  email: string;
  created_at: Date;
  expires_at: Date;
  used_at: Date | null;
}

/** An account's TOTP secret (mfa/), encrypted; confirmed_at null while enrolment is pending. */
export interface TotpTable {
  user_id: string;
  secret_enc: Uint8Array;
  created_at: Date;
  confirmed_at: Date | null;
  /** Newest accepted time step (replay guard); bigint comes back as a string. */
  last_step: ColumnType<string, number | string | undefined, number | string>;
}

export interface RecoveryCodeTable {
  user_id: string;
  code_hash: Uint8Array;
  created_at: Date;
  used_at: Date | null;
}

/** A login waiting for its second factor (mfa/). */
export interface LoginChallengeTable {
  challenge_hash: Uint8Array;
  user_id: string;
  created_at: Date;
  expires_at: Date;
  failures: Generated<number>;
  used_at: Date | null;
  user_agent: string;
  ip: string;
}

export interface SessionTable {
  id: string;
  user_id: string;
  created_at: Date;
  last_used_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
  revoke_reason: string | null;
  user_agent: string;
  ip: string;
}

/** A device an account has signed in from (devices.ts). */
export interface KnownDeviceTable {
  user_id: string;
  device_id: string;
  first_seen_at: Date;
}

export interface RefreshTokenTable {
  /** SHA-256 of the token. pg returns Buffer, PGlite Uint8Array. */
  token_hash: Uint8Array;
  session_id: string;
  user_id: string;
  created_at: Date;
  expires_at: Date;
  consumed_at: Date | null;
  revoked_at: Date | null;
  /**
   * Set when the token is spent and the reuse grace window is on: the pair it
   * was exchanged for, encrypted under a key derived from this token (which
   * is not stored), so only its holder can read it (successor.ts).
   */
  successor_enc: ColumnType<Uint8Array | null, Uint8Array | null | undefined, Uint8Array | null>;
}

export interface SigningKeyTable {
  kid: string;
  alg: string;
  public_jwk: ColumnType<Record<string, string>, string, string>;
  private_key_enc: Uint8Array;
  created_at: ColumnType<Date, never, never>;
  activates_at: Date;
  retires_at: Date | null;
  expires_at: Date | null;
}

export interface ServiceClientTable extends Timestamps {
  client_id: string;
  secret_hash: Uint8Array;
  audiences: string[];
  /** Scopes granted ((acme.edge.v1.policy).scopes). */
  scopes: string[];
  rate_limit: number;
  active: Generated<boolean>;
}

export interface AuthEventTable {
  id: Generated<string>;
  at: ColumnType<Date, Date | undefined, never>;
  type: string;
  user_id: string | null;
  client_id: string | null;
  session_id: string | null;
  reason: string | null;
  ip: string;
  user_agent: string;
  trace_id: string;
}

export interface AuthDb {
  "auth.accounts": AccountTable;
  "auth.sessions": SessionTable;
  "auth.known_devices": KnownDeviceTable;
  "auth.refresh_tokens": RefreshTokenTable;
  "auth.signing_keys": SigningKeyTable;
  "auth.service_clients": ServiceClientTable;
  "auth.auth_events": AuthEventTable;
  "auth.account_tokens": AccountTokenTable;
  "auth.totp": TotpTable;
  "auth.recovery_codes": RecoveryCodeTable;
  "auth.login_challenges": LoginChallengeTable;
}

export type Account = Selectable<AccountTable>;
export type Session = Selectable<SessionTable>;
export type RefreshToken = Selectable<RefreshTokenTable>;
