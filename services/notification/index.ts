// Notification service module: mail for what happens to an account or its
// orders, from the events of the auth and order services (consumers.ts), the
// users' preferences and the delivery log (handlers.ts).
import type { Kysely } from "kysely";
import { NotificationService } from "../../gen/acme/notification/v1/notification_pb.js";
import { backoffWithJitter } from "../../platform/bus/bus.js";
import { ConfigError, int, url } from "../../platform/config.js";
import { migrate } from "../../platform/db.js";
import { pageTokenKey, pageTokenSecret, PageTokens } from "../../platform/pagination.js";
import type { ServiceDefinition, ServiceModule } from "../../platform/service.js";
import { notificationConsumers } from "./consumers.js";
import { notificationHandlers } from "./handlers.js";
import { createMailer, mailerSettings } from "./mailer.js";
import { migrations, SCHEMA } from "./migrations.js";
import { DEFAULT_ACCOUNT_URL } from "./notices.js";
import { NotificationStore, type NotifyDb } from "./store.js";

/**
 * Environment of the notification service (validated at start, like platform/config.ts):
 *   NOTIFY_MAX_ATTEMPTS     deliveries of one event before it is dead-lettered (default 8)
 *   NOTIFY_RETRY_BASE_MS    first retry's backoff; doubles per retry, with jitter (default 1000)
 *   NOTIFY_RETRY_MAX_MS     longest backoff (default 300000)
 *   NOTIFY_CONCURRENCY      events handled at once by this process, both queues (default 4)
 *   NOTIFY_ACCOUNT_URL      base of the links in mails, http(s) with no query or fragment
 *                           (default http://localhost:8080/account)
 * and the mailer's (mailer.ts): SMTP_URL, NOTIFY_FROM, SMTP_*_TIMEOUT_MS.
 */
export function notificationSettings(env: Record<string, string | undefined>, dataDir: string) {
  const retryBaseMs = int(env, "NOTIFY_RETRY_BASE_MS", 1000, 1, 3_600_000);
  const retryMaxMs = int(env, "NOTIFY_RETRY_MAX_MS", 300_000, 1, 86_400_000);
  if (retryMaxMs < retryBaseMs) throw new ConfigError("NOTIFY_RETRY_MAX_MS", `must be at least NOTIFY_RETRY_BASE_MS (${retryBaseMs})`);
  return {
    maxAttempts: int(env, "NOTIFY_MAX_ATTEMPTS", 8, 1, 50),
    concurrency: int(env, "NOTIFY_CONCURRENCY", 4, 1, 64),
    accountUrl: accountUrl(env),
    retryBaseMs,
    retryMaxMs,
    mailer: mailerSettings(env, dataDir),
  };
}

/** NOTIFY_ACCOUNT_URL, normalised (no trailing slash): links are `${base}/verify-email#token=...`. */
function accountUrl(env: Record<string, string | undefined>): string {
  const raw = url(env, "NOTIFY_ACCOUNT_URL", ["http:", "https:"]) ?? DEFAULT_ACCOUNT_URL;
  const u = new URL(raw);
  if (!u.hostname) throw new ConfigError("NOTIFY_ACCOUNT_URL", "must name a host");
  if (u.username || u.password) throw new ConfigError("NOTIFY_ACCOUNT_URL", "must not carry credentials");
  if (u.search || u.hash || raw.includes("?") || raw.includes("#")) throw new ConfigError("NOTIFY_ACCOUNT_URL", "must have no query or fragment");
  return u.href.replace(/\/+$/, "");
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
        accountUrl: settings.accountUrl,
      }),
      stop: () => mailer.close(),
    };
    return module;
  },
};
