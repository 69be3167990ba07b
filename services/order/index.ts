// Order service module: orders, their lifecycle and the pending-order sweeper.
import { createClient, type Client } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { CatalogueInternalService } from "../../gen/acme/catalogue/v1/catalogue_pb.js";
import { OrderInternalService, OrderService } from "../../gen/acme/order/v1/order_pb.js";
import { UserInternalService } from "../../gen/acme/user/v1/user_pb.js";
import { CircuitBreaker, retryInterceptor, type BreakerState } from "../../platform/breaker.js";
import { int } from "../../platform/config.js";
import { migrate } from "../../platform/db.js";
import { pageTokenKey, pageTokenSecret, PageTokens } from "../../platform/pagination.js";
import type { ServiceDefinition, ServiceModule } from "../../platform/service.js";
import { OUTBOX } from "./events.js";
import { orderHandlers } from "./handlers.js";
import { internalHandlers } from "./internal.js";
import { migrations, SCHEMA } from "./migrations.js";
import { OrderStore, type OrderDb } from "./store.js";
import { createSweeper } from "./sweeper.js";

/**
 * Environment of the order service (validated at start, like platform/config.ts):
 *   ORDER_PENDING_TTL_SECONDS     PENDING orders older than this are cancelled (default 86400)
 *   ORDER_SWEEP_INTERVAL_MS       pause between sweeps; 0 disables (default 60000)
 *   ORDER_USER_TIMEOUT_MS         deadline of CheckUser, retries included (default 1000)
 *   ORDER_USER_RETRIES            attempts of CheckUser on UNAVAILABLE (default 3)
 *   ORDER_USER_BREAKER_FAILURES   consecutive failed checks that open the breaker (default 5)
 *   ORDER_USER_BREAKER_RESET_MS   open time before one probe is let through (default 1000)
 *   ORDER_CATALOGUE_TIMEOUT_MS    deadline of each catalogue call (Reserve, Hold, Release), retries included (default 5000)
 *   ORDER_CATALOGUE_RETRIES       attempts of a catalogue call on UNAVAILABLE (default 3; every call is idempotent by order id)
 *   CATALOGUE_COMMIT_MARGIN_SECONDS  an order is inserted only while now < reserved_until - this (default 30)
 */
export function orderSettings(env: Record<string, string | undefined>) {
  return {
    pendingTtlSeconds: int(env, "ORDER_PENDING_TTL_SECONDS", 86_400, 1, 365 * 86_400),
    sweepIntervalMs: int(env, "ORDER_SWEEP_INTERVAL_MS", 60_000, 0, 86_400_000),
    userTimeoutMs: int(env, "ORDER_USER_TIMEOUT_MS", 1000, 50, 30_000),
    userRetries: int(env, "ORDER_USER_RETRIES", 3, 1, 10),
    breakerFailures: int(env, "ORDER_USER_BREAKER_FAILURES", 5, 1, 1000),
    breakerResetMs: int(env, "ORDER_USER_BREAKER_RESET_MS", 1000, 10, 600_000),
    catalogueTimeoutMs: int(env, "ORDER_CATALOGUE_TIMEOUT_MS", 5000, 50, 60_000),
    catalogueRetries: int(env, "ORDER_CATALOGUE_RETRIES", 3, 1, 10),
    commitMarginSeconds: int(env, "CATALOGUE_COMMIT_MARGIN_SECONDS", 30, 0, 3600),
  };
}

/** The order module, with two extras for tests and operators. */
export interface OrderModule extends ServiceModule {
  /** Run one pending-order sweep now; the ids cancelled. */
  sweepNow(): Promise<string[]>;
  /** State of the breaker in front of the user service. */
  breakerState(): BreakerState;
}

export const orderService: ServiceDefinition = {
  name: "order",
  async prepare({ db, config, secrets }) {
    // A bad value stops the start, naming the variable.
    orderSettings(config.env);
    pageTokenSecret(config.env, secrets.keyEncryptionKey);
    await migrate(db.db, SCHEMA, migrations);
    return {};
  },
  async create(ctx) {
    const settings = orderSettings(ctx.config.env);
    const store = new OrderStore(ctx.db.db as Kysely<OrderDb>);
    const breaker = new CircuitBreaker({
      name: "user service",
      failureThreshold: settings.breakerFailures,
      resetTimeoutMs: settings.breakerResetMs,
      onStateChange: (state, previous) => ctx.log.warn("user service circuit breaker", { state, previous }),
    });
    // Built on first use: in the all-in-one process our own URL is known only once the server listens.
    let users: Client<typeof UserInternalService> | undefined;
    const usersClient = () =>
      (users ??= createClient(
        UserInternalService,
        // Breaker outermost: one call, retries included, counts once. CheckUser is read-only, so retrying is safe.
        ctx.transportTo(
          "user",
          [breaker.interceptor(), retryInterceptor({ attempts: settings.userRetries })],
          settings.userTimeoutMs,
        ),
      ));
    let catalogue: Client<typeof CatalogueInternalService> | undefined;
    const catalogueClient = () =>
      (catalogue ??= createClient(
        CatalogueInternalService,
        // Reserve, Hold and Release are idempotent by order id: retrying is safe.
        ctx.transportTo("catalogue", [retryInterceptor({ attempts: settings.catalogueRetries })], settings.catalogueTimeoutMs),
      ));
    const handlers = orderHandlers({
      store,
      // Replicas share PAGE_TOKEN_SECRET (or KEY_ENCRYPTION_KEY), so any accepts any other's tokens.
      pageTokens: new PageTokens(pageTokenKey(pageTokenSecret(ctx.config.env, ctx.secrets.keyEncryptionKey), "acme.order.v1.OrderService/ListOrders")),
      users: usersClient,
      catalogue: catalogueClient,
      commitMarginMs: settings.commitMarginSeconds * 1000,
      log: ctx.log,
    });
    const sweeper = createSweeper({ store, log: ctx.log, ttlSeconds: settings.pendingTtlSeconds, intervalMs: settings.sweepIntervalMs });
    const module: OrderModule = {
      name: "order",
      services: [OrderService, OrderInternalService],
      routes(router) {
        router.service(OrderService, handlers);
        router.service(OrderInternalService, internalHandlers(store));
      },
      outbox: OUTBOX,
      start: () => sweeper.start(),
      stop: () => sweeper.stop(),
      sweepNow: () => sweeper.sweep(),
      breakerState: () => breaker.state,
    };
    return module;
  },
};
