// Construction of the second-factor parts for services/auth/index.ts, in two
// steps because Accounts and the second factor need each other: Login issues
// challenges (needed by Accounts), CompleteLogin signs in through Accounts.
import type { Kysely } from "kysely";
import type { Accounts } from "../accounts.js";
import type { Audit } from "../audit.js";
import type { Clock } from "../clock.js";
import type { AuthConfig } from "../config.js";
import type { Lockout } from "../lockout.js";
import type { Profiles } from "../profiles.js";
import type { AuthStore } from "../store.js";
import type { AuthDb } from "../tables.js";
import { FactorAttempts } from "./attempts.js";
import { LoginChallenges } from "./challenges.js";
import { FactorCheck } from "./factors.js";
import type { SecondFactorHandlerDeps } from "./handlers.js";
import { SecondFactorLogin } from "./login.js";
import { SecondFactor } from "./second-factor.js";
import { SecondFactorStore } from "./second-factor-store.js";

export interface SecondFactorStorage {
  store: SecondFactorStore;
  check: FactorCheck;
  challenges: LoginChallenges;
}

/** What Accounts needs before it exists; `kek` is secrets.keyEncryptionKey (TOTP secrets are sealed under it). */
export function secondFactorStorage(db: Kysely<AuthDb>, kek: Buffer, cfg: AuthConfig, clock: Clock): SecondFactorStorage {
  const store = new SecondFactorStore(db);
  return { store, check: new FactorCheck(kek, store, clock), challenges: new LoginChallenges(db, store, cfg, clock) };
}

export interface SecondFactorServiceDeps {
  accounts: Accounts;
  authStore: AuthStore;
  lockout: Lockout;
  profiles: Profiles;
  audit: Audit;
  cfg: AuthConfig;
  clock: Clock;
}

/** The handlers' dependencies, once Accounts exists. */
export function secondFactorServices(s: SecondFactorStorage, d: SecondFactorServiceDeps): SecondFactorHandlerDeps {
  const attempts = new FactorAttempts(d.lockout, d.accounts, d.audit);
  return {
    secondFactor: new SecondFactor({ ...s, attempts, ...d }),
    login: new SecondFactorLogin({ ...s, attempts, ...d }),
  };
}
