// Data access for the user service (schema "users"). Types first, SQL visible.
import type { ColumnType, Generated, Kysely, Selectable } from "kysely";

export interface ProfileTable {
  id: string;
  email: string;
  name: string;
  role: "user" | "admin";
  active: Generated<boolean>;
  created_at: ColumnType<Date, never, never>;
  updated_at: ColumnType<Date, never, Date>;
}

export interface UserDb {
  "users.profiles": ProfileTable;
}

export type Profile = Selectable<ProfileTable>;

export class UserStore {
  constructor(private readonly db: Kysely<UserDb>) {}

  /** Insert a profile; an existing profile with the same id is returned unchanged (idempotent). */
  async createProfile(p: { id: string; email: string; name: string; role: "user" | "admin" }): Promise<Profile> {
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
    return this.db.selectFrom("users.profiles").selectAll().where("id", "=", id).executeTakeFirst();
  }
}
