// Auth service module: accounts, sessions, tokens, signing keys, service
// clients. `prepare` migrates, loads (or creates) the signing keys and syncs
// the built-in clients, and hands the host its KeySource; `create` wires the
// handlers; `start` runs key maintenance, cleanup and the admin bootstrap.
// `prepare` also loads the revocation list from Postgres into the KV store
// before the port opens, and `start` keeps it in sync (./revocations.ts).
import { createClient } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { AuthInternalService, AuthService } from "../../gen/acme/auth/v1/auth_pb.js";
import { UserInternalService } from "../../gen/acme/user/v1/user_pb.js";
import type { TokenSource } from "../../platform/clients.js";
import { int } from "../../platform/config.js";
import type { Database } from "../../platform/db.js";
import type { ServiceDefinition, ServiceModule } from "../../platform/service.js";
import { AccountTokens } from "./account-tokens.js";
import { Accounts } from "./accounts.js";
import { Registration } from "./registration.js";
import { Audit } from "./audit.js";
import { runBootstrap } from "./bootstrap.js";
import { Cleanup } from "./cleanup.js";
import { localTokenSource, ServiceClients } from "./clients.js";
import { AdjustableClock } from "./clock.js";
import { loadAuthConfig, type AuthConfig } from "./config.js";
import { authHandlers } from "./handlers.js";
import { internalHandlers } from "./internal.js";
import { JwksPublisher } from "./jwks.js";
import { SigningKeys } from "./keys.js";
import { Lockout } from "./lockout.js";
import { migrateAuth } from "./migrations.js";
import { secondFactorServices, secondFactorStorage } from "./mfa/wiring.js";
import { PasswordHasher } from "./passwords.js";
import { userServiceProfiles, type Profiles } from "./profiles.js";
import { SessionStore } from "./session-store.js";
import { Sessions } from "./sessions.js";
import { SignupNotices } from "./signup-notice.js";
import { PasswordReset } from "./password-reset.js";
import { Verification } from "./verification.js";
import { RevocationCache } from "./revocations.js";
import { AuthStore, type AuthDb } from "./store.js";
import { TokenMinter } from "./tokens.js";
import { OUTBOX } from "./events.js";

/** Deadline of calls to the user service. */
const USER_CALL_TIMEOUT_MS = 3000;

interface Prepared {
  cfg: AuthConfig;
  /** secrets.keyEncryptionKey: TOTP secrets are sealed under it too (mfa/). */
  kek: Buffer;
  clock: AdjustableClock;
  keys: SigningKeys;
  clients: ServiceClients;
  revocations: RevocationCache;
  minter: TokenMinter;
  tokens: TokenSource;
}

/** What `prepare` built for a database, until `create` picks it up. */
const prepared = new WeakMap<Database, Prepared>();

/** The parts tests (and the admin command) reach for; not used by other services. */
export interface AuthInternals {
  readonly cfg: AuthConfig;
  readonly clock: AdjustableClock;
  readonly keys: SigningKeys;
  readonly revocations: RevocationCache;
  readonly store: AuthStore;
  readonly hasher: PasswordHasher;
  readonly lockout: Lockout;
  readonly minter: TokenMinter;
  readonly cleanup: Cleanup;
  readonly tokens: TokenSource;
  readonly profiles: Profiles;
  /** Resolves when the ADMIN_EMAIL bootstrap has finished (immediately without one). */
  readonly bootstrapped: Promise<void>;
}

export interface AuthModule extends ServiceModule {
  readonly internals: AuthInternals;
}

export const authService: ServiceDefinition = {
  name: "auth",
  async prepare({ db, config, secrets, log, kv }) {
    const cfg = loadAuthConfig(config);
    await migrateAuth(db.db);
    const kdb = db.db as Kysely<AuthDb>;
    const clock = new AdjustableClock();
    const keys = new SigningKeys(kdb, secrets.keyEncryptionKey, cfg, clock, log);
    await keys.maintain();
    if (!keys.canSign()) {
      throw new Error(
        "auth: the active signing key cannot be decrypted with KEY_ENCRYPTION_KEY (changed?); restore it, or run `npm run admin -- rotate-keys --immediate`",
      );
    }
    const clients = new ServiceClients(kdb);
    await clients.sync(secrets.clientSecrets);
    // The revocation list, from Postgres, before anything is served; a store that cannot be
    // reached now is retried every REVOCATION_SYNC_MS (verifiers answer UNAVAILABLE meanwhile).
    const revocations = new RevocationCache(kdb, kv, cfg, keys, clock, log, int(config.env, "REVOCATION_SYNC_MS", 1000, 50, 60_000));
    await revocations.rebuild().catch((err) => log.warn("revocation list could not be loaded at start; retrying", { err }));
    const minter = new TokenMinter(keys, cfg);
    // Our own service tokens (for calls to services in other processes) are minted here, not fetched from ourselves.
    const tokens = localTokenSource(minter, () => clock.now());
    prepared.set(db, { cfg, kek: secrets.keyEncryptionKey, clock, keys, clients, revocations, minter, tokens });
    return { keySource: keys, tokens };
  },

  async create(ctx): Promise<AuthModule> {
    const p = prepared.get(ctx.db);
    if (!p) throw new Error("auth: create() before prepare()");
    const { cfg, kek, clock, keys, clients, revocations, minter, tokens } = p;
    const kdb = ctx.db.db as Kysely<AuthDb>;
    const log = ctx.log;

    const store = new AuthStore(kdb);
    const hasher = new PasswordHasher({ cost: cfg.bcryptCost, concurrency: cfg.bcryptConcurrency, queue: cfg.bcryptQueue });
    const lockout = new Lockout(ctx.kv, cfg, clock);
    const audit = new Audit(kdb, log, clock);
    const userClient = createClient(UserInternalService, ctx.transportTo("user", [], USER_CALL_TIMEOUT_MS));
    const profiles = userServiceProfiles(userClient, log, USER_CALL_TIMEOUT_MS);
    const sessions = new Sessions(new SessionStore(kdb), minter, ctx.kv, cfg, clock, audit, profiles);
    // Mailed tokens (issue 18): verification at registration, resend, email change, password reset.
    const accountTokens = new AccountTokens(cfg);
    const signups = new SignupNotices(store, ctx.kv, clock, log);
    // Second factor (mfa/): Login issues its challenges, CompleteLogin signs in through Accounts.
    const mfa = secondFactorStorage(kdb, kek, cfg, clock);
    const registration = new Registration(store, hasher, profiles, audit, clock, log, { tokens: accountTokens, signups });
    const accounts = new Accounts(store, hasher, lockout, sessions, profiles, audit, clock, log, mfa.challenges);
    const secondFactor = secondFactorServices(mfa, { accounts, authStore: store, lockout, profiles, audit, cfg, clock });
    const verification = new Verification(kdb, store, accountTokens, accounts, audit, cfg, clock);
    const passwordReset = new PasswordReset(kdb, store, accountTokens, hasher, lockout, sessions, audit, ctx.kv, cfg, clock);
    const jwks = new JwksPublisher(keys, cfg);
    const cleanup = new Cleanup(kdb, cfg, clock, log);

    const stopBootstrap = new AbortController();
    let bootstrapped: Promise<void> = Promise.resolve();

    return {
      name: "auth",
      services: [AuthService, AuthInternalService],
      routes(router) {
        router.service(AuthService, authHandlers({ accounts, registration, sessions, clients, minter, audit, jwks, mail: { verification, passwordReset }, secondFactor }));
        router.service(AuthInternalService, internalHandlers(accounts, sessions));
      },
      httpHandlers: [jwks.httpHandler()],
      outbox: OUTBOX,
      keySource: keys,
      async start() {
        keys.start();
        revocations.start();
        cleanup.start();
        await hasher.warm();
        if (cfg.adminEmail) {
          bootstrapped = runBootstrap({ cfg, store, hasher, profiles, audit, log }, stopBootstrap.signal);
        }
      },
      async stop() {
        stopBootstrap.abort();
        keys.stop();
        await revocations.stop();
        await cleanup.stop();
        await bootstrapped.catch(() => {});
      },
      get internals(): AuthInternals {
        return { cfg, clock, keys, revocations, store, hasher, lockout, minter, cleanup, tokens, profiles, bootstrapped };
      },
    };
  },
};
