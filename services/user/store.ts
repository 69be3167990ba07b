// Data access for the user service (schema "users"). Types first, SQL visible.
import type { Timestamps } from "../../platform/db.js";
import { sql, type ColumnType, type Generated, type Kysely, type Selectable } from "kysely";
import { cursorTs, keysetWhere, type Keyset } from "../../platform/pagination.js";
import { prepared, type Prepared } from "../../platform/prepared.js";

export type Role = "user" | "admin";
export const ROLES: readonly Role[] = ["user", "admin"];
/** Names are at most 100 characters (UpdateMe also requires one). */
export const NAME_MAX = 100;

export interface ProfileTable extends Timestamps {
  id: string;
  email: string;
  name: string;
  role: Role;
  active: Generated<boolean>;
}

export interface UserDb {
  "users.profiles": ProfileTable;
}

export type Profile = Selectable<ProfileTable>;
export type ProfilePatch = Partial<Pick<Profile, "name" | "role" | "active">>;

export class UserStore {
  /** Every authenticated read (GetMe, GetUser, CheckUser) runs this: compiled once. */
  private readonly byId: Prepared<[id: string], Profile>;

  constructor(private readonly db: Kysely<UserDb>) {
    this.byId = prepared(db, (id: string) => db.selectFrom("users.profiles").selectAll().where("id", "=", id));
  }

  /** Insert a profile; an existing profile with the same id is returned unchanged (idempotent). */
  async createProfile(p: { id: string; email: string; name: string; role: Role }): Promise<Profile> {
    const inserted = await this.db
      .insertInto("users.profiles")
      .values({ id: p.id, email: p.email, name: p.name, role: p.role })
      .onConflict((oc) => oc.column("id").doNothing())
      .returningAll()
      .executeTakeFirst();
    if (inserted) return inserted;
    const existing = await this.get(p.id);
    if (!existing) throw new Error("profile insert conflicted but no profile exists");
    return existing;
  }

  get(id: string): Promise<Profile | undefined> {
    return this.byId.first(id);
  }

  /** Apply a patch; undefined when no such profile. */
  async update(id: string, patch: ProfilePatch): Promise<Profile | undefined> {
    return this.db
      .updateTable("users.profiles")
      .set({ ...patch, updated_at: sql<Date>`now()` })
      .where("id", "=", id)
      .returningAll()
      .executeTakeFirst();
  }

  /** Remove a profile; false when there was none. */
  async delete(id: string): Promise<boolean> {
    const r = await this.db.deleteFrom("users.profiles").where("id", "=", id).executeTakeFirst();
    return r.numDeletedRows > 0n;
  }

  /**
   * Profiles oldest first, (created_at, id) keyset after `after`; `limit` rows
   * with their cursor (served by the profiles_created index).
   */
  list(after: Keyset | undefined, limit: number): Promise<(Profile & { cursor_ts: string })[]> {
    return this.db
      .selectFrom("users.profiles")
      .selectAll()
      .select(cursorTs("created_at").as("cursor_ts"))
      .where(keysetWhere("created_at", "id", after, "asc"))
      .orderBy("created_at", "asc")
      .orderBy("id", "asc")
      .limit(limit)
      .execute();
  }
}
