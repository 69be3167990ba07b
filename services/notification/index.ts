// Notification service module: mail for what happens to an account or its
// orders, from the events of the auth and order services (consumers.ts), the
// users' preferences and the delivery log (handlers.ts).
import type { Kysely } from "kysely";
import { NotificationService } from "../../gen/acme/notification/v1/notification_pb.js";
import { backoffWithJitter } from "../../platform/bus/bus.js";
import { ConfigError, int } from "../../platform/config.js";
import { migrate } from "../../platform/db.js";
import { pageTokenKey, pageTokenSecret, PageTokens } from "../../platform/pagination.js";
import type { ServiceDefinition, ServiceModule } from "../../platform/service.js";
import { notificationConsumers } from "./consumers.js";
import { notificationHandlers } from "./handlers.js";
import { createMailer, mailerSettings } from "./mailer.js";
import { migrations, SCHEMA } from "./migrations.js";
import { NotificationStore, type NotifyDb } from "./store.js";

/**
 * Environment of the notification service (validated at start, like platform/config.ts):
 *   NOTIFY_MAX_ATTEMPTS     deliveries of one event before it is dead-lettered (default 8)
 *   NOTIFY_RETRY_BASE_MS    first retry's backoff; doubles per retry, with jitter (default 1000)
 *   NOTIFY_RETRY_MAX_MS     longest backoff (default 300000)
 *   NOTIFY_CONCURRENCY      events handled at once by this process, both queues (default 4)
 * and the mailer's (mailer.ts): SMTP_URL, NOTIFY_FROM, SMTP_*_TIMEOUT_MS.
 */
export function notificationSettings(env: Record<string, string | undefined>, dataDir: string) {
  const retryBaseMs = int(env, "NOTIFY_RETRY_BASE_MS", 1000, 1, 3_600_000);
  const retryMaxMs = int(env, "NOTIFY_RETRY_MAX_MS", 300_000, 1, 86_400_000);
  if (retryMaxMs < retryBaseMs) throw new ConfigError("NOTIFY_RETRY_MAX_MS", `must be at least NOTIFY_RETRY_BASE_MS (${retryBaseMs})`);
  return {
    maxAttempts: int(env, "NOTIFY_MAX_ATTEMPTS", 8, 1, 50),
    concurrency: int(env, "NOTIFY_CONCURRENCY", 4, 1, 64),
    retryBaseMs,
    retryMaxMs,
    mailer: mailerSettings(env, dataDir),
  };
}

export const notificationService: ServiceDefinition = {
  name: "notification",
  async prepare({ db, config, secrets }) {
    // A bad value stops the start, naming the variable.
    notificationSettings(config.env, config.dataDir);
    pageTokenSecret(config.env, secrets.keyEncryptionKey);
    await migrate(db.db, SCHEMA, migrations);
    return {};
  },
  async create(ctx) {
    const settings = notificationSettings(ctx.config.env, ctx.config.dataDir);
    const db = ctx.db.db as Kysely<NotifyDb>;
    const store = new NotificationStore(db);
    const mailer = createMailer(settings.mailer, ctx.log.child({ component: "mailer" }));
    ctx.log.info("notification mail goes to", { target: mailer.target });
    const secret = pageTokenSecret(ctx.config.env, ctx.secrets.keyEncryptionKey);
    const handlers = notificationHandlers({
      store,
      pageTokens: new PageTokens(pageTokenKey(secret, "acme.notification.v1.NotificationService")),
    });
    const module: ServiceModule = {
      name: "notification",
      services: [NotificationService],
      routes(router) {
        router.service(NotificationService, handlers);
      },
      consumers: notificationConsumers({
        db,
        store,
        mailer,
        log: ctx.log,
        maxAttempts: settings.maxAttempts,
        backoffMs: backoffWithJitter(settings.retryBaseMs, settings.retryMaxMs),
        concurrency: settings.concurrency,
      }),
      stop: () => mailer.close(),
    };
    return module;
  },
};
