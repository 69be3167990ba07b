// Operator commands against the auth (and user) schema.
//
//   npm run admin -- create --email a@b.c [--name "Ada Admin"]
//       Creates an admin: the account in auth, the profile (role admin) in users.
//       The password is read from stdin (prompted without echo on a terminal,
//       else the first line of piped input); never from the command line.
//   npm run admin -- rotate-keys [--immediate]
//       Publishes a new signing key that starts signing after
//       KEY_PUBLISH_AHEAD_SECONDS (--immediate: at once).
//   npm run admin -- rotate-keys --revoke KID
//       Compromise: retires KID at once. It leaves the JWKS, never signs again,
//       the next key signs from now, and every token KID signed is refused
//       everywhere (the revocation list; docs/revocation.md). Running auth
//       instances pick it up within REVOCATION_SYNC_MS; with REDIS_URL set the
//       list is also written here at once.
//   npm run admin -- keys
//       Prints the signing-key schedule (kids and times only).
//   npm run admin -- dlq <list|show|replay|purge> --queue Q [--id ID] [--limit N]
//       A consumer's dead letters on RabbitMQ (AMQP_URL; scripts/admin/dlq.ts).
//
// Uses DATABASE_URL when set (compose: `docker compose exec auth npm run admin -- ...`),
// otherwise the embedded PGlite database under DATA_DIR. PGlite admits ONE
// process at a time: stop `npm start` before running this against DATA_DIR
// (the command refuses while PGlite's postmaster.pid is present; --force
// overrides that after a crash).
// rotate-keys needs the same KEY_ENCRYPTION_KEY (or DATA_DIR/secrets.json) as the service.
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Kysely } from "kysely";
import { loadConfig, ConfigError } from "../platform/config.js";
import { migrate, openDatabase, type Database } from "../platform/db.js";
import { createLogger } from "../platform/logger.js";
import { loadSecrets } from "../platform/secrets.js";
import { SERVICE_NAMES } from "../app/services.js";
import { Audit, SYSTEM_REQUEST } from "../services/auth/audit.js";
import { adminAccount, AdminInputError, checkAdminInput } from "../services/auth/bootstrap.js";
import { AdjustableClock } from "../services/auth/clock.js";
import { loadAuthConfig } from "../services/auth/config.js";
import { SigningKeys, UnknownKeyError } from "../services/auth/keys.js";
import { keyWindowSeconds } from "../services/auth/revocations.js";
import { revokeKeys } from "../platform/auth/revocation.js";
import { redisStore } from "../platform/kv.js";
import { deadLetterCommand, DlqUsageError, DLQ_USAGE } from "./admin/dlq.js";
import { migrateAuth } from "../services/auth/migrations.js";
import { PasswordHasher } from "../services/auth/passwords.js";
import { AuthStore, type AuthDb } from "../services/auth/store.js";
import { migrations as userMigrations, SCHEMA as USER_SCHEMA } from "../services/user/migrations.js";
import { UserStore, type UserDb } from "../services/user/store.js";

const USAGE = `usage:
  npm run admin -- create --email <email> [--name <name>]   (password on stdin)
  npm run admin -- rotate-keys [--immediate]
  npm run admin -- rotate-keys --revoke <kid>
  npm run admin -- keys
  ${DLQ_USAGE}
With no DATABASE_URL this opens the embedded database in DATA_DIR: stop \`npm start\` first
(the command refuses while the database is open; --force overrides after a crash).`;

class UsageError extends Error {}

const log = createLogger({ service: "admin" }, { level: "warn", pretty: false, write: (l) => process.stderr.write(l + "\n") });

function parseArgs(argv: string[]): { command: string; flags: Map<string, string | true> } {
  const [command = "", ...rest] = argv;
  const flags = new Map<string, string | true>();
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (!a.startsWith("--")) throw new UsageError(`unexpected argument "${a}"`);
    const [name, inline] = a.slice(2).split("=", 2);
    if (name === "password") throw new UsageError("never pass a password on the command line: it is read from stdin");
    if (inline !== undefined) flags.set(name, inline);
    else if (rest[i + 1] !== undefined && !rest[i + 1].startsWith("--")) flags.set(name, rest[++i]);
    else flags.set(name, true);
  }
  return { command, flags };
}

/** The password from stdin: prompted without echo on a terminal, else the first line of the input. */
async function readPassword(): Promise<string> {
  const stdin = process.stdin;
  if (stdin.isTTY) {
    const ask = (prompt: string) =>
      new Promise<string>((resolve, reject) => {
        process.stderr.write(prompt);
        let value = "";
        stdin.setRawMode(true);
        stdin.resume();
        stdin.setEncoding("utf8");
        const onData = (chunk: string) => {
          for (const ch of chunk) {
            if (ch === "\r" || ch === "\n") {
              done();
              process.stderr.write("\n");
              return resolve(value);
            }
            if (ch === "\u0003") {
              done();
              return reject(new UsageError("cancelled"));
            }
            if (ch === "\u007f" || ch === "\b") value = [...value].slice(0, -1).join("");
            else value += ch;
          }
        };
        const done = () => {
          stdin.off("data", onData);
          stdin.setRawMode(false);
          stdin.pause();
        };
        stdin.on("data", onData);
      });
    const first = await ask("Password: ");
    const again = await ask("Repeat password: ");
    if (first !== again) throw new UsageError("the passwords do not match");
    return first;
  }
  const chunks: Buffer[] = [];
  for await (const c of stdin) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  return text.split(/\r?\n/, 1)[0];
}

async function create(db: Database, flags: Map<string, string | true>): Promise<void> {
  const emailFlag = flags.get("email");
  if (typeof emailFlag !== "string") throw new UsageError("--email is required");
  const nameFlag = flags.get("name");
  const config = loadConfig();
  const password = await readPassword();
  const { email, name } = checkAdminInput(emailFlag, password, typeof nameFlag === "string" ? nameFlag : "Administrator");

  await migrateAuth(db.db);
  await migrate(db.db, USER_SCHEMA, userMigrations);
  const store = new AuthStore(db.db as Kysely<AuthDb>);
  const users = new UserStore(db.db as Kysely<UserDb>);
  const hasher = new PasswordHasher({ cost: config.bcryptCost, concurrency: 1, queue: 1 });

  const acc = await adminAccount(store, hasher, email, password, "admin-cli");
  if (!acc) throw new UsageError("an account with this email already exists (not created by this command); nothing changed");
  if (!acc.created && (await users.get(acc.account.id))) throw new UsageError("this admin already exists; nothing changed");
  try {
    await users.createProfile({ id: acc.account.id, email, name, role: "admin" });
  } catch (err) {
    if (acc.created) await store.deleteAccount(acc.account.id);
    throw err;
  }
  await new Audit(db.db as Kysely<AuthDb>, log, new AdjustableClock()).record("admin_created", { userId: acc.account.id, reason: "admin-cli" }, SYSTEM_REQUEST);
  console.log(`admin created: ${acc.account.id}`);
}

function signingKeys(db: Database): SigningKeys {
  const config = loadConfig();
  const secrets = loadSecrets(config.dataDir, config.env, SERVICE_NAMES);
  return new SigningKeys(db.db as Kysely<AuthDb>, secrets.keyEncryptionKey, loadAuthConfig(config), new AdjustableClock(), log);
}

function printSchedule(keys: SigningKeys): void {
  const now = Date.now();
  const iso = (ms?: number) => (ms === undefined ? "-" : new Date(ms).toISOString());
  for (const k of keys.schedule()) {
    const state = k.activatesAt > now ? "next" : k.retiresAt !== undefined && k.retiresAt <= now ? "retired" : "signing";
    console.log(`${k.kid}  ${state.padEnd(7)}  signs from ${iso(k.activatesAt)}  retires ${iso(k.retiresAt)}  unpublished after ${iso(k.expiresAt)}`);
  }
}

async function rotateKeys(db: Database, flags: Map<string, string | true>): Promise<void> {
  await migrateAuth(db.db);
  const keys = signingKeys(db);
  await keys.maintain();
  if (flags.has("revoke")) return revokeKey(keys, flags.get("revoke"));
  const kid = await keys.rotate({ immediate: flags.has("immediate") });
  console.log(`next signing key: ${kid}`);
  printSchedule(keys);
}

async function revokeKey(keys: SigningKeys, kid: string | true | undefined): Promise<void> {
  if (typeof kid !== "string" || !kid) throw new UsageError('--revoke needs the kid of the key to retire (see `npm run admin -- keys`; a kid starting with "-": --revoke=KID)');
  let signing: string;
  try {
    signing = await keys.revoke(kid);
  } catch (err) {
    if (err instanceof UnknownKeyError) throw new UsageError(`${err.message} (see \`npm run admin -- keys\`); nothing changed`);
    throw err;
  }
  console.log(`revoked: ${kid} (removed from the JWKS; tokens it signed are refused)`);
  console.log(`signing key now: ${signing || "(none usable with this KEY_ENCRYPTION_KEY)"}`);
  const config = loadConfig();
  if (config.redisUrl) {
    // Running auth instances copy it within REVOCATION_SYNC_MS; written here too so it holds at once.
    const kv = redisStore(config.redisUrl);
    try {
      await revokeKeys(kv, [kid], keyWindowSeconds(loadAuthConfig(config)));
      console.log("revocation list updated in Redis");
    } catch {
      console.log("Redis unreachable: the auth service adds it to the revocation list from the database when it can");
    } finally {
      await kv.close();
    }
  }
  printSchedule(keys);
}

async function listKeys(db: Database): Promise<void> {
  await migrateAuth(db.db);
  const keys = signingKeys(db);
  await keys.load();
  printSchedule(keys);
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv[0] === "dlq") {
    const { command: sub, flags: dlqFlags } = parseArgs(argv.slice(1));
    await deadLetterCommand(sub, dlqFlags, process.env.AMQP_URL, (line) => console.log(line));
    return 0;
  }
  const { command, flags } = parseArgs(argv);
  if (!["create", "rotate-keys", "keys"].includes(command)) throw new UsageError(command ? `unknown command "${command}"` : "missing command");
  const config = loadConfig();
  if (!config.databaseUrl) {
    // PGlite leaves postmaster.pid while the database is open (removed on a clean close).
    const pid = join(config.dataDir, "pglite", "postmaster.pid");
    if (existsSync(pid) && !flags.has("force")) {
      throw new UsageError(
        `the embedded database in ${config.dataDir} is in use (${pid} exists): stop \`npm start\` first. ` +
          "If no process uses it (a crash left the file), rerun with --force.",
      );
    }
  }
  const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, max: 2 });
  try {
    if (command === "create") await create(db, flags);
    else if (command === "rotate-keys") await rotateKeys(db, flags);
    else await listKeys(db);
    return 0;
  } finally {
    await db.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof UsageError || err instanceof AdminInputError || err instanceof ConfigError || err instanceof DlqUsageError) {
      console.error(`admin: ${err.message}`);
      if (err instanceof UsageError && /command/.test(err.message)) console.error(USAGE);
      process.exit(2);
    }
    console.error("admin: failed:", err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
