// Data access for the auth service's accounts, with the events of their
// changes written to the outbox in the same transaction. Sessions and refresh
// tokens are session-store.ts; the table types tables.ts; keys, service
// clients, audit events and cleanup have their queries next to their logic
// (keys.ts, clients.ts, audit.ts, cleanup.ts, account-tokens.ts). Every query
// is parameterised.
import type { Insertable, Kysely, Transaction } from "kysely";
import { withDbRetry } from "../../platform/db.js";
import { pgCode, PG_UNIQUE_VIOLATION } from "../../platform/errors.js";
import { discardUnsent, enqueue, notifyRelays, type OutboxEvent } from "../../platform/outbox.js";
import { accountDeleted, emailChanged, passwordChanged } from "./events.js";
import { SCHEMA } from "./migrations.js";
import type { Account, AccountTable, AuthDb } from "./tables.js";

// Importers outside the auth service (index.ts, scripts/admin.ts, tests) name the types here.
export type {
  Account,
  AccountOrigin,
  AccountTable,
  AuthDb,
  AuthEventTable,
  RefreshToken,
  RefreshTokenTable,
  ServiceClientTable,
  Session,
  SessionTable,
  SigningKeyTable,
} from "./tables.js";
export type { NewSession, RotateResult } from "./session-store.js";

export class EmailTakenError extends Error {
  constructor() {
    super("email already registered");
  }
}

export class AuthStore {
  constructor(readonly db: Kysely<AuthDb>) {}

  // ---- accounts

  findAccountByEmail(email: string): Promise<Account | undefined> {
    return withDbRetry(() => this.db.selectFrom("auth.accounts").selectAll().where("email", "=", email).executeTakeFirst());
  }

  getAccount(id: string): Promise<Account | undefined> {
    return withDbRetry(() => this.db.selectFrom("auth.accounts").selectAll().where("id", "=", id).executeTakeFirst());
  }

  /**
   * Insert an account, and `events` into the outbox in the same transaction,
   * with `alsoWrite` (registration: the verification token, account-tokens.ts);
   * EmailTakenError on a duplicate email (never retried).
   */
  async createAccount(
    a: Insertable<AccountTable>,
    events: OutboxEvent | readonly OutboxEvent[] = [],
    alsoWrite?: (trx: Transaction<AuthDb>) => Promise<void>,
  ): Promise<Account> {
    try {
      return await withDbRetry(() =>
        this.db.transaction().execute(async (trx) => {
          const account = await trx.insertInto("auth.accounts").values(a).returningAll().executeTakeFirstOrThrow();
          if (alsoWrite) await alsoWrite(trx);
          for (const event of ([] as OutboxEvent[]).concat(events)) await enqueue(trx, SCHEMA, event);
          return account;
        }),
      );
    } catch (err) {
      if (pgCode(err) === PG_UNIQUE_VIOLATION) throw new EmailTakenError();
      throw err;
    }
  }

  /** Insert unless the email exists; returns the account with that email and whether we created it. */
  async ensureAccount(a: Insertable<AccountTable>): Promise<{ account: Account; created: boolean }> {
    const inserted = await withDbRetry(() =>
      this.db.insertInto("auth.accounts").values(a).onConflict((oc) => oc.column("email").doNothing()).returningAll().executeTakeFirst(),
    );
    if (inserted) return { account: inserted, created: true };
    const existing = await this.findAccountByEmail(a.email);
    if (!existing) throw new Error("account insert conflicted but no account exists");
    return { account: existing, created: false };
  }

  /**
   * Undo createAccount (the profile could not be created): remove the account
   * and, in the same transaction, its events if the relay has not sent them yet.
   */
  async removeNewAccount(id: string, eventIds: string | readonly string[]): Promise<void> {
    await withDbRetry(() =>
      this.db.transaction().execute(async (trx) => {
        await trx.deleteFrom("auth.accounts").where("id", "=", id).execute();
        for (const eventId of ([] as string[]).concat(eventIds)) await discardUnsent(trx, SCHEMA, eventId);
      }),
    );
  }

  /** Wake this process's relay of the auth outbox (after an enqueue was committed). */
  outboxCommitted(): void {
    notifyRelays(this.db, SCHEMA);
  }

  /**
   * Remove the account (sessions and refresh tokens cascade), with its
   * AccountDeleted in the same transaction; false (and no event) when there
   * was no such account (already deleted).
   */
  async deleteAccount(id: string, now = new Date()): Promise<boolean> {
    const deleted = await withDbRetry(() =>
      this.db.transaction().execute(async (trx) => {
        const r = await trx.deleteFrom("auth.accounts").where("id", "=", id).executeTakeFirst();
        if (r.numDeletedRows === 0n) return false;
        await enqueue(trx, SCHEMA, accountDeleted(id, now));
        return true;
      }),
    );
    if (deleted) this.outboxCommitted();
    return deleted;
  }

  /**
   * Set a new password chosen by the owner, with its PasswordChanged in the
   * same transaction; false (and no event) when the account is gone.
   */
  async changePassword(id: string, hash: string, now: Date): Promise<boolean> {
    const changed = await withDbRetry(() => this.db.transaction().execute((trx) => this.setPasswordIn(trx, id, hash, now)));
    if (changed) this.outboxCommitted();
    return changed;
  }

  /**
   * The password write of changePassword inside the caller's transaction.
   * With `resetVia` (password-reset.ts, the token's address): only while the
   * account still has that address, which the mail proved (so it is marked
   * verified), and PasswordChanged says via "reset". False when nothing changed.
   */
  async setPasswordIn(trx: Transaction<AuthDb>, id: string, hash: string, now: Date, resetVia?: string): Promise<boolean> {
    let q = trx.updateTable("auth.accounts").set({ password_hash: hash, updated_at: now, password_changed_at: now }).where("id", "=", id);
    if (resetVia !== undefined) {
      q = q.set((eb) => ({ email_verified_at: eb.fn.coalesce("email_verified_at", eb.val(now)) })).where("email", "=", resetVia);
    }
    const row = await q.returning("email").executeTakeFirst();
    if (row) await enqueue(trx, SCHEMA, passwordChanged(id, row.email, now, resetVia === undefined ? "change" : "reset"));
    return row !== undefined;
  }

  /** The same password hashed at the configured cost: nothing changed for the owner, no event. */
  async rehashPassword(id: string, hash: string): Promise<void> {
    await withDbRetry(() => this.db.updateTable("auth.accounts").set({ password_hash: hash }).where("id", "=", id).execute());
  }

  /**
   * Change the sign-in address (normalised by the caller), with its
   * EmailChanged in the same transaction. Undefined when there is no such
   * account; `changed` false (and no event) when it already has this address;
   * EmailTakenError when another account has it. VerifyEmail with a
   * change_email token uses changeEmailIn (verification.ts).
   */
  async changeEmail(id: string, email: string, now: Date): Promise<{ oldEmail: string; changed: boolean } | undefined> {
    try {
      const r = await withDbRetry(() => this.db.transaction().execute((trx) => this.changeEmailIn(trx, id, email, now)));
      if (r?.changed) this.outboxCommitted();
      return r;
    } catch (err) {
      if (pgCode(err) === PG_UNIQUE_VIOLATION) throw new EmailTakenError();
      throw err;
    }
  }

  /**
   * changeEmail's writes inside the caller's transaction (a unique violation
   * surfaces as the driver's error). `verifiedAt`: the new address was proved
   * by a mailed token (email_verified_at); without it the column is left as is.
   */
  async changeEmailIn(trx: Transaction<AuthDb>, id: string, email: string, now: Date, verifiedAt?: Date): Promise<{ oldEmail: string; changed: boolean } | undefined> {
    const current = await trx.selectFrom("auth.accounts").select("email").where("id", "=", id).forUpdate().executeTakeFirst();
    if (!current || current.email === email) return current && { oldEmail: current.email, changed: false };
    await trx
      .updateTable("auth.accounts")
      .set({ email, updated_at: now, ...(verifiedAt ? { email_verified_at: verifiedAt } : {}) })
      .where("id", "=", id)
      .execute();
    await enqueue(trx, SCHEMA, emailChanged(id, current.email, email, now));
    return { oldEmail: current.email, changed: true };
  }

  /**
   * Write an event about a change that lives outside Postgres (a sign-in
   * throttle in the KV store): in a transaction of its own, then wake the relay.
   */
  async recordEvent(event: OutboxEvent): Promise<void> {
    await withDbRetry(() => this.db.transaction().execute((trx) => enqueue(trx, SCHEMA, event)));
    this.outboxCommitted();
  }
}
