// CATALOGUE_SEED=demo (npm start's default): demo products into an empty
// catalogue at start, orderable at once; nothing when products exist.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { DEMO_PRODUCTS, seedDemo, seedSetting } from "../../services/catalogue/seed.js";
import type { CatalogueModule } from "../../services/catalogue/index.js";
import { silentLogger } from "../../platform/logger.js";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { signUp } from "../user/helpers.js";

describe("catalogue: the demo seed (CATALOGUE_SEED)", function () {
  this.timeout(60_000);
  let t: TestSystem;
  after(async () => t?.stop());

  it("seeds an empty catalogue once; the products can be ordered at once", async () => {
    t = await startTestSystem({ database: "pglite", store: "memory", env: { CATALOGUE_SEED: "demo" } });
    const listed = (await t.catalogue().listProducts({ pageSize: 100 })).products;
    assert.deepEqual(listed.map((p) => p.sku).sort(), DEMO_PRODUCTS.map((p) => p.sku).sort());
    const u = await signUp(t);
    const { order } = await t.orders(u.token).createOrder({ lines: [{ productId: listed[0].id, quantity: 2 }], requestId: randomUUID() });
    assert.equal(order?.total?.amountMinor, listed[0].price!.amountMinor * 2n);
    const module = t.system.modules.find((m) => m.name === "catalogue") as CatalogueModule;
    assert.equal(await seedDemo(module.products, silentLogger), 0, "not into a catalogue that has products");
  });

  it("is off unless set, and refuses other values naming the variable", () => {
    assert.equal(seedSetting({}), undefined);
    assert.equal(seedSetting({ CATALOGUE_SEED: "off" }), undefined);
    assert.equal(seedSetting({ CATALOGUE_SEED: "demo" }), "demo");
    assert.throws(() => seedSetting({ CATALOGUE_SEED: "lots" }), /CATALOGUE_SEED/);
  });
});
