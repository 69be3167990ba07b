// Data access for the second factor: the TOTP row (auth.totp), recovery codes
// (auth.recovery_codes), and SecondFactorChanged in the outbox with each
// change. A code is spent by a conditional UPDATE inside the transaction of
// what it authorises, so two requests racing with one code cannot both pass,
// and a refused step rolls back everything else in the transaction.
import type { Kysely, Transaction } from "kysely";
import { withDbRetry } from "../../../platform/db.js";
import { enqueue, notifyRelays, type OutboxEvent } from "../../../platform/outbox.js";
import { SCHEMA } from "../migrations.js";
import type { AuthDb } from "../tables.js";

export type Trx = Transaction<AuthDb>;

/** A second factor checked outside the transaction, to be spent inside it. */
export type Proof = { kind: "totp"; step: number } | { kind: "recovery_code"; hash: Buffer };

/** Thrown inside a transaction to roll it back and tell the caller why. */
class Refused extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

export class SecondFactorStore {
  constructor(readonly db: Kysely<AuthDb>) {}

  getTotp(userId: string) {
    return withDbRetry(() => this.db.selectFrom("auth.totp").selectAll().where("user_id", "=", userId).executeTakeFirst());
  }

  async unusedRecoveryCodes(userId: string): Promise<number> {
    const r = await withDbRetry(() =>
      this.db
        .selectFrom("auth.recovery_codes")
        .select((eb) => eb.fn.countAll<string>().as("n"))
        .where("user_id", "=", userId)
        .where("used_at", "is", null)
        .executeTakeFirstOrThrow(),
    );
    return Number(r.n);
  }

  /** A new pending enrolment, replacing a pending one; false (nothing written) when TOTP is already confirmed. */
  async putPending(userId: string, secretEnc: Buffer, now: Date): Promise<boolean> {
    const row = await withDbRetry(() =>
      this.db
        .insertInto("auth.totp")
        .values({ user_id: userId, secret_enc: secretEnc, created_at: now, confirmed_at: null, last_step: 0 })
        .onConflict((oc) =>
          oc
            .column("user_id")
            .doUpdateSet({ secret_enc: secretEnc, created_at: now, last_step: 0 })
            .where("auth.totp.confirmed_at", "is", null),
        )
        .returning("user_id")
        .executeTakeFirst(),
    );
    return row !== undefined;
  }

  /**
   * Run `fn` in a transaction. When it returns a reason (a string) the
   * transaction rolls back and the reason is returned; undefined once committed.
   * Events enqueued by `fn` wake the relay after the commit.
   */
  async transact(fn: (trx: Trx) => Promise<string | undefined>): Promise<string | undefined> {
    let wrote = false;
    try {
      await withDbRetry(() =>
        this.db.transaction().execute(async (trx) => {
          const refused = await fn(trx);
          if (refused !== undefined) throw new Refused(refused);
        }),
      );
      wrote = true;
      return undefined;
    } catch (err) {
      if (err instanceof Refused) return err.reason;
      throw err;
    } finally {
      if (wrote) notifyRelays(this.db, SCHEMA);
    }
  }

  /** Pending -> confirmed at `step`, if still pending with this secret and created after `pendingSince`. */
  async confirm(trx: Trx, userId: string, secretEnc: Uint8Array, step: number, now: Date, pendingSince: Date): Promise<boolean> {
    const r = await trx
      .updateTable("auth.totp")
      .set({ confirmed_at: now, last_step: step })
      .where("user_id", "=", userId)
      .where("secret_enc", "=", secretEnc)
      .where("confirmed_at", "is", null)
      .where("created_at", ">", pendingSince)
      .where("last_step", "<", String(step))
      .executeTakeFirst();
    return r.numUpdatedRows === 1n;
  }

  /**
   * Spend a proof: a TOTP step only if it is newer than every step accepted
   * before (the replay guard), a recovery code only if unused. False: refused.
   */
  async spend(trx: Trx, userId: string, proof: Proof, now: Date): Promise<boolean> {
    const r =
      proof.kind === "totp"
        ? await trx
            .updateTable("auth.totp")
            .set({ last_step: proof.step })
            .where("user_id", "=", userId)
            .where("confirmed_at", "is not", null)
            .where("last_step", "<", String(proof.step))
            .executeTakeFirst()
        : await trx
            .updateTable("auth.recovery_codes")
            .set({ used_at: now })
            .where("user_id", "=", userId)
            .where("code_hash", "=", proof.hash)
            .where("used_at", "is", null)
            .executeTakeFirst();
    return r.numUpdatedRows === 1n;
  }

  /** Replace every recovery code of the user by these (hashes). */
  async replaceRecoveryCodes(trx: Trx, userId: string, hashes: Buffer[], now: Date): Promise<void> {
    await trx.deleteFrom("auth.recovery_codes").where("user_id", "=", userId).execute();
    await trx
      .insertInto("auth.recovery_codes")
      .values(hashes.map((code_hash) => ({ user_id: userId, code_hash, created_at: now, used_at: null })))
      .execute();
  }

  /** Remove the TOTP row and recovery codes; whether there was a TOTP row. */
  async remove(trx: Trx, userId: string): Promise<boolean> {
    await trx.deleteFrom("auth.recovery_codes").where("user_id", "=", userId).execute();
    const r = await trx.deleteFrom("auth.totp").where("user_id", "=", userId).executeTakeFirst();
    return r.numDeletedRows > 0n;
  }

  enqueue(trx: Trx, event: OutboxEvent): Promise<void> {
    return enqueue(trx, SCHEMA, event);
  }
}
