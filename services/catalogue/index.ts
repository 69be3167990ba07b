// Catalogue service module: products and their stock (handlers.ts, search.ts),
// stock reservations for orders (internal.ts, reservations.ts) and the
// sweeper settling expired reservations with the order service (sweeper.ts).
import { createClient, type Client } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { CatalogueInternalService, CatalogueService } from "../../gen/acme/catalogue/v1/catalogue_pb.js";
import { OrderInternalService } from "../../gen/acme/order/v1/order_pb.js";
import { retryInterceptor } from "../../platform/breaker.js";
import { int } from "../../platform/config.js";
import { migrate } from "../../platform/db.js";
import { pageTokenKey, pageTokenSecret, PageTokens } from "../../platform/pagination.js";
import type { ServiceDefinition, ServiceModule } from "../../platform/service.js";
import { OUTBOX } from "./events.js";
import { catalogueHandlers } from "./handlers.js";
import { internalHandlers } from "./internal.js";
import { migrations, SCHEMA } from "./migrations.js";
import { orderEventsConsumer } from "./order-events.js";
import { ReservationStore } from "./reservations.js";
import { ProductStore, type CatalogueDb } from "./store.js";
import { seedDemo, seedSetting } from "./seed.js";
import { createSweeper } from "./sweeper.js";

/**
 * Environment of the catalogue service (validated at start, like platform/config.ts):
 *   CATALOGUE_RESERVATION_SECONDS   a pending reservation expires this long after Reserve (default 120)
 *   CATALOGUE_SWEEP_INTERVAL_MS     pause between sweeps of expired reservations; 0 disables (default 10000)
 *   CATALOGUE_ORDER_TIMEOUT_MS      deadline of the sweeper's SettleReservation call to the order service, retries included (default 2000)
 *   CATALOGUE_SEED                  "demo": demo products into an empty catalogue at start (seed.ts); default none ("demo" under npm start)
 */
export function catalogueSettings(env: Record<string, string | undefined>) {
  return {
    reservationSeconds: int(env, "CATALOGUE_RESERVATION_SECONDS", 120, 1, 86_400),
    sweepIntervalMs: int(env, "CATALOGUE_SWEEP_INTERVAL_MS", 10_000, 0, 86_400_000),
    orderTimeoutMs: int(env, "CATALOGUE_ORDER_TIMEOUT_MS", 2000, 50, 60_000),
    seed: seedSetting(env),
  };
}

/** The catalogue module, with extras for tests and operators. */
export interface CatalogueModule extends ServiceModule {
  /** Run one sweep of expired reservations now (each settled with the order service first); the order ids released. */
  sweepNow(): Promise<string[]>;
  readonly products: ProductStore;
  readonly reservations: ReservationStore;
}

export const catalogueService: ServiceDefinition = {
  name: "catalogue",
  async prepare({ db, config, secrets }) {
    // A bad value stops the start, naming the variable.
    catalogueSettings(config.env);
    pageTokenSecret(config.env, secrets.keyEncryptionKey);
    await migrate(db.db, SCHEMA, migrations);
    return {};
  },
  async create(ctx) {
    const settings = catalogueSettings(ctx.config.env);
    const db = ctx.db.db as Kysely<CatalogueDb>;
    const products = new ProductStore(db);
    const reservations = new ReservationStore(db, settings.reservationSeconds);
    const secret = pageTokenSecret(ctx.config.env, ctx.secrets.keyEncryptionKey);
    const handlers = catalogueHandlers({
      store: products,
      pageTokens: new PageTokens(pageTokenKey(secret, "acme.catalogue.v1.CatalogueService")),
    });
    // Built on first use: in the all-in-one process our own URL is known only once the server listens.
    let orders: Client<typeof OrderInternalService> | undefined;
    const ordersClient = () =>
      (orders ??= createClient(
        OrderInternalService,
        // SettleReservation is idempotent: retrying UNAVAILABLE within the deadline is safe.
        ctx.transportTo("order", [retryInterceptor({ attempts: 2 })], settings.orderTimeoutMs),
      ));
    const sweeper = createSweeper({
      store: reservations,
      orders: ordersClient,
      log: ctx.log.child({ component: "reservation-sweeper" }),
      intervalMs: settings.sweepIntervalMs,
    });
    const module: CatalogueModule = {
      name: "catalogue",
      services: [CatalogueService, CatalogueInternalService],
      routes(router) {
        router.service(CatalogueService, handlers);
        router.service(CatalogueInternalService, internalHandlers(reservations));
      },
      outbox: OUTBOX,
      // The order service's events hold, commit and release its reservations (order-events.ts).
      consumers: [orderEventsConsumer(db, reservations, ctx.log.child({ component: "order-events" }))],
      start: async () => {
        if (settings.seed === "demo") await seedDemo(products, ctx.log);
        sweeper.start();
      },
      stop: () => sweeper.stop(),
      sweepNow: () => sweeper.sweep(),
      products,
      reservations,
    };
    return module;
  },
};
