// Shared by the catalogue suites: the product with the catalogue service,
// admins, the order service's service token, products made through the API,
// and direct reads of the catalogue's tables.
import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { CreateProductRequestSchema, Product } from "../../gen/acme/catalogue/v1/catalogue_pb.js";
import { SERVICE_NAMES } from "../../app/services.js";
import { loadSecrets } from "../../platform/secrets.js";
import type { CatalogueModule } from "../../services/catalogue/index.js";
import { signUp, signUpAdmin, type TestUser } from "../user/helpers.js";
import { startTestSystem, type TestSystem, type TestSystemOptions } from "../support/system.js";

export interface CatalogueSystem {
  t: TestSystem;
  admin: TestUser;
  user: TestUser;
  /** A service token of the order service for the catalogue (scope catalogue.reserve). */
  orderToken: string;
  module: CatalogueModule;
  stop(): Promise<void>;
}

export async function startCatalogueSystem(opts: Pick<TestSystemOptions, "database" | "env" | "edge" | "bus" | "services" | "log"> = {}): Promise<CatalogueSystem> {
  const t = await startTestSystem({
    services: opts.services ?? ["auth", "user", "catalogue"],
    log: opts.log,
    edge: opts.edge ?? false,
    database: opts.database,
    bus: opts.bus,
    env: { CATALOGUE_SWEEP_INTERVAL_MS: "0", ...opts.env },
  });
  const [admin, user] = await Promise.all([signUpAdmin(t), signUp(t, "Shopper")]);
  const secrets = loadSecrets(t.dataDir, t.env, SERVICE_NAMES);
  const { accessToken } = await t.auth().issueServiceToken({ clientId: "order-service", clientSecret: secrets.clientSecrets.order, audience: "acme-catalogue" });
  const module = t.system.modules.find((m) => m.name === "catalogue") as CatalogueModule;
  return { t, admin, user, orderToken: accessToken, module, stop: () => t.stop() };
}

/** A unique sku. */
export const sku = (prefix = "SKU") => `${prefix}-${randomUUID().slice(0, 8).toUpperCase()}`;

/** A product made by the admin; defaults: 10.00 EUR, stock 10, threshold 0. */
export async function makeProduct(s: CatalogueSystem, p: Omit<MessageInitShape<typeof CreateProductRequestSchema>, "$typeName"> = {}): Promise<Product> {
  const res = await s.t.catalogue(s.admin.token).createProduct({
    sku: sku(),
    name: "Widget",
    description: "",
    price: { amountMinor: 1000n, currency: "EUR" },
    initialStock: 10,
    lowStockThreshold: 0,
    ...p,
  });
  return res.product!;
}

export interface Counts {
  stock: number;
  reserved: number;
  sold: number;
}

export async function countsOf(s: CatalogueSystem, productId: string): Promise<Counts> {
  const { rows } = await sql<Counts>`select stock, reserved, sold from catalogue.products where id = ${productId}`.execute(s.t.system.db.db);
  return rows[0];
}

/** The catalogue's outbox rows for one product, in order: their types and routing keys. */
export async function outboxOf(s: CatalogueSystem, productId: string): Promise<{ type: string; routing_key: string; body: Uint8Array; sent_at: Date | null }[]> {
  const { rows } = await sql<{ type: string; routing_key: string; body: Uint8Array; sent_at: Date | null }>`
    select type, routing_key, body, sent_at from catalogue.outbox where aggregate_id = ${productId} order by seq`.execute(s.t.system.db.db);
  return rows;
}
