// Demo products for a fresh `npm start` (CATALOGUE_SEED=demo, its default
// there, set by scripts/start.mjs; off elsewhere unless set): a handful of
// products with generous stock, so the README's commands can order one found
// with the public list. Only into an empty catalogue (the first start): once
// an admin has products, or after a restart, nothing is added. Through the
// store, so each has its ProductCreated and StockChanged like any other.
import { ConfigError } from "../../platform/config.js";
import type { Logger } from "../../platform/logger.js";
import type { ProductStore } from "./store.js";

export const DEMO_PRODUCTS = [
  { sku: "DEMO-LAMP", name: "Desk lamp", description: "An adjustable desk lamp with a warm LED.", priceMinor: 3_999n },
  { sku: "DEMO-MUG", name: "Coffee mug", description: "A stoneware mug, 350 ml.", priceMinor: 1_250n },
  { sku: "DEMO-NOTEBOOK", name: "Notebook", description: "A5, dotted pages, lies flat.", priceMinor: 899n },
  { sku: "DEMO-PEN", name: "Fountain pen", description: "A steel nib fountain pen with a converter.", priceMinor: 2_450n },
  { sku: "DEMO-CHAIR", name: "Office chair", description: "An ergonomic office chair with lumbar support.", priceMinor: 18_900n },
] as const;

export const DEMO_STOCK = 100_000;

/** CATALOGUE_SEED: "" (none, the default) or "demo". */
export function seedSetting(env: Record<string, string | undefined>): "demo" | undefined {
  const v = env.CATALOGUE_SEED ?? "";
  if (v === "" || v === "off") return undefined;
  if (v === "demo") return "demo";
  throw new ConfigError("CATALOGUE_SEED", `must be "demo" or "off" (got ${JSON.stringify(v.slice(0, 40))})`);
}

/** Add the demo products when the catalogue has none; the number added. */
export async function seedDemo(store: ProductStore, log: Logger): Promise<number> {
  const any = await store.db.selectFrom("catalogue.products").select("id").limit(1).executeTakeFirst();
  if (any) return 0;
  let added = 0;
  for (const p of DEMO_PRODUCTS) {
    // A taken sku (another replica seeding at the same moment) is skipped.
    if (await store.create({ ...p, currency: "EUR", stock: DEMO_STOCK, lowStockThreshold: 10 })) added++;
  }
  if (added) log.info("catalogue seeded with demo products (CATALOGUE_SEED=demo)", { count: added });
  return added;
}
