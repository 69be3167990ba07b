// User service module: profiles, roles, ownership.
import type { Kysely } from "kysely";
import { UserInternalService, UserService } from "../../gen/acme/user/v1/user_pb.js";
import { migrate } from "../../platform/db.js";
import { pageTokenKey, pageTokenSecret, PageTokens } from "../../platform/pagination.js";
import type { ServiceDefinition } from "../../platform/service.js";
import { downstream } from "./downstream.js";
import { emailChangesConsumer } from "./email-changes.js";
import { userHandlers } from "./handlers.js";
import { internalHandlers } from "./internal.js";
import { migrations, SCHEMA } from "./migrations.js";
import { UserStore, type UserDb } from "./store.js";

export const userService: ServiceDefinition = {
  name: "user",
  async prepare({ db, config, secrets }) {
    pageTokenSecret(config.env, secrets.keyEncryptionKey); // a bad value stops the start, naming the variable
    await migrate(db.db, SCHEMA, migrations);
    return {};
  },
  async create(ctx) {
    const store = new UserStore(ctx.db.db as Kysely<UserDb>);
    const handlers = userHandlers({
      store,
      // Replicas share PAGE_TOKEN_SECRET (or KEY_ENCRYPTION_KEY), so any accepts any other's tokens.
      pageTokens: new PageTokens(pageTokenKey(pageTokenSecret(ctx.config.env, ctx.secrets.keyEncryptionKey), "acme.user.v1.UserService/ListUsers")),
      downstream: downstream(ctx),
      log: ctx.log,
    });
    return {
      name: "user",
      services: [UserService, UserInternalService],
      routes(router) {
        router.service(UserService, handlers);
        router.service(UserInternalService, internalHandlers(store));
      },
      consumers: [emailChangesConsumer(ctx.db.db as Kysely<UserDb>)],
    };
  },
};
