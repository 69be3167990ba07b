// User service module: profiles, roles, ownership.
import type { Kysely } from "kysely";
import { UserInternalService, UserService } from "../../gen/acme/user/v1/user_pb.js";
import { migrate } from "../../platform/db.js";
import type { ServiceDefinition } from "../../platform/service.js";
import { internalHandlers } from "./internal.js";
import { migrations, SCHEMA } from "./migrations.js";
import { UserStore, type UserDb } from "./store.js";

export const userService: ServiceDefinition = {
  name: "user",
  async prepare({ db }) {
    await migrate(db.db, SCHEMA, migrations);
    return {};
  },
  async create(ctx) {
    const store = new UserStore(ctx.db.db as Kysely<UserDb>);
    return {
      name: "user",
      services: [UserService, UserInternalService],
      routes(router) {
        router.service(UserService, {});
        router.service(UserInternalService, internalHandlers(store));
      },
    };
  },
};
