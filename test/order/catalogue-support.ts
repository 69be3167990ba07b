// Shared by the suites of orders of catalogue products: counts and
// reservations read from the catalogue's tables, the stock events of one
// order, the order service's service token for the catalogue.
import { fromBinary } from "@bufbuild/protobuf";
import { sql } from "kysely";
import { EnvelopeSchema } from "../../gen/acme/events/v1/events_pb.js";
import { SERVICE_NAMES } from "../../app/services.js";
import { loadSecrets } from "../../platform/secrets.js";
import type { TestSystem } from "../support/system.js";

export interface Counts {
  stock: number;
  reserved: number;
  sold: number;
}

export async function countsOf(t: TestSystem, productId: string): Promise<Counts> {
  const { rows } = await sql<Counts>`select stock, reserved, sold from catalogue.products where id = ${productId}`.execute(t.system.db.db);
  return rows[0];
}

/** The state of an order's reservation (undefined: none). */
export async function reservationState(t: TestSystem, orderId: string): Promise<string | undefined> {
  const { rows } = await sql<{ state: string }>`select distinct state from catalogue.reservations where order_id = ${orderId}`.execute(t.system.db.db);
  if (rows.length > 1) throw new Error(`reservation of ${orderId} in several states: ${rows.map((r) => r.state).join(", ")}`);
  return rows[0]?.state;
}

/** The reasons of the StockChanged events the catalogue wrote for one order, in order. */
export async function stockReasons(t: TestSystem, orderId: string): Promise<string[]> {
  const { rows } = await sql<{ body: Uint8Array }>`select body from catalogue.outbox where type = 'acme.events.v1.StockChanged' order by seq`.execute(t.system.db.db);
  return rows
    .map((r) => fromBinary(EnvelopeSchema, r.body).event)
    .filter((e) => e.case === "stockChanged" && e.value.orderId === orderId)
    .map((e) => (e.case === "stockChanged" ? e.value.reason : ""));
}

/** A service token of the order service for the catalogue (scope catalogue.reserve), as the order service holds. */
export async function orderServiceToken(t: TestSystem): Promise<string> {
  const secrets = loadSecrets(t.dataDir, t.env, SERVICE_NAMES);
  const { accessToken } = await t.auth().issueServiceToken({ clientId: "order-service", clientSecret: secrets.clientSecrets.order, audience: "acme-catalogue" });
  return accessToken;
}

/** A service token of the catalogue service for the order service (scope orders.reservations.settle), as its sweeper holds. */
export async function catalogueServiceToken(t: TestSystem): Promise<string> {
  const secrets = loadSecrets(t.dataDir, t.env, SERVICE_NAMES);
  const { accessToken } = await t.auth().issueServiceToken({ clientId: "catalogue-service", clientSecret: secrets.clientSecrets.catalogue, audience: "acme-order" });
  return accessToken;
}
