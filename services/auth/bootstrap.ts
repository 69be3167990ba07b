// Creating an admin: at first start from ADMIN_EMAIL/ADMIN_PASSWORD (profile
// through UserInternalService, retried until the user service answers), and
// from `npm run admin -- create` (profile through the user store directly).
// An account that someone registered with that email is never promoted.
import { randomUUID } from "node:crypto";
import type { Logger } from "../../platform/logger.js";
import { SYSTEM_REQUEST, type Audit } from "./audit.js";
import type { AuthConfig } from "./config.js";
import { emailProblem, normalizeEmail } from "../../platform/email.js";
import type { PasswordHasher } from "./passwords.js";
import type { Profiles } from "./profiles.js";
import type { Account, AccountOrigin, AuthStore } from "./store.js";
import { nameProblem, passwordProblem } from "./validate.js";

export class AdminInputError extends Error {}

export function checkAdminInput(emailRaw: string, password: string, nameRaw: string): { email: string; name: string } {
  const email = normalizeEmail(emailRaw);
  const name = nameRaw.trim();
  const problems = [
    ["email", emailProblem(email)],
    ["password", passwordProblem(password)],
    ["name", nameProblem(name)],
  ].filter(([, p]) => p);
  if (problems.length) throw new AdminInputError(problems.map(([f, p]) => `${f} ${p}`).join("; "));
  return { email, name };
}

/**
 * The account for an admin: created when the email is free; an existing one
 * only when it was made by the same mechanism (a retry after the profile step
 * failed). Returns undefined when the email belongs to someone else.
 */
export async function adminAccount(
  store: AuthStore,
  hasher: PasswordHasher,
  email: string,
  password: string,
  createdBy: AccountOrigin,
): Promise<{ account: Account; created: boolean } | undefined> {
  const existing = await store.findAccountByEmail(email);
  if (existing) return existing.created_by === createdBy ? { account: existing, created: false } : undefined;
  const r = await store.ensureAccount({
    id: randomUUID(),
    email,
    password_hash: await hasher.hash(password),
    created_by: createdBy,
    // An operator chose this address (ADMIN_EMAIL, the admin command): nothing to verify by mail.
    email_verified_at: new Date(),
  });
  return r.account.created_by === createdBy ? r : undefined;
}

export interface BootstrapDeps {
  cfg: AuthConfig;
  store: AuthStore;
  hasher: PasswordHasher;
  profiles: Profiles;
  audit: Audit;
  log: Logger;
}

/** One attempt; throws when the user service cannot be reached (the caller retries). */
export async function bootstrapAdmin(d: BootstrapDeps): Promise<"created" | "present" | "taken" | "none"> {
  if (!d.cfg.adminEmail || !d.cfg.adminPassword) return "none";
  const { email, name } = checkAdminInput(d.cfg.adminEmail, d.cfg.adminPassword, d.cfg.adminName);
  const acc = await adminAccount(d.store, d.hasher, email, d.cfg.adminPassword, "bootstrap");
  if (!acc) {
    d.log.warn("ADMIN_EMAIL belongs to an account that was not created at bootstrap; left unchanged");
    return "taken";
  }
  const existing = await d.profiles.check(acc.account.id);
  if (existing.exists) return "present";
  await d.profiles.create({ userId: acc.account.id, email, name, role: "admin" });
  await d.audit.record("admin_created", { userId: acc.account.id, reason: "bootstrap" }, SYSTEM_REQUEST);
  d.log.info("first admin created from ADMIN_EMAIL", { userId: acc.account.id });
  return "created";
}

/** Retry bootstrapAdmin with backoff until it succeeds or `signal` aborts. */
export function runBootstrap(d: BootstrapDeps, signal: AbortSignal): Promise<void> {
  return (async () => {
    for (let delay = 500; !signal.aborted; delay = Math.min(delay * 2, 30_000)) {
      try {
        await bootstrapAdmin(d);
        return;
      } catch (err) {
        if (err instanceof AdminInputError) {
          d.log.error("ADMIN_EMAIL/ADMIN_PASSWORD/ADMIN_NAME invalid; no admin created", { problem: err.message });
          return;
        }
        d.log.warn("admin bootstrap waiting for the user service", { err });
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, delay);
        t.unref();
        signal.addEventListener("abort", () => (clearTimeout(t), r()), { once: true });
      });
    }
  })();
}
