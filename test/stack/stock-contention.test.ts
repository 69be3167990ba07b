// Issue 19 through the real edge: 200 concurrent orders of one unit through
// Envoy (npm run stack's topology: each service its own process, Postgres and
// Redis real) against a product with stock 50. Exactly 50 orders exist
// afterwards, the other 150 are told the product has 0 left, and the
// catalogue's counts never exceed its stock while they run. (The embedded edge
// and gRPC: test/order/catalogue-orders.test.ts.)
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import pg from "pg";
import { isEdgeRateLimited } from "../edge/conformance/target.js";
import { GENEROUS_LIMITS, tempRateLimitConfig } from "../edge/support.js";
import { sharedEdgeStack, type EdgeStack } from "../support/edge-stack.js";
import { makeStackProduct } from "../support/products.js";
import { rest, sleep, type Json } from "./support.js";

interface Counts {
  stock: number;
  reserved: number;
  sold: number;
}

describe("stock under contention, through Envoy", function () {
  this.timeout(240_000);
  let stack: EdgeStack;
  let db: pg.Client;
  let rl: { path: string; remove(): void };
  before(async () => {
    stack = await sharedEdgeStack();
    rl = tempRateLimitConfig(GENEROUS_LIMITS);
    await stack.setRateLimitConfig(rl.path);
    db = new pg.Client({ connectionString: stack.databaseUrl });
    await db.connect();
  });
  after(async () => {
    await db?.end();
    rl?.remove();
  });

  const counts = async (id: string): Promise<Counts> => {
    const { rows } = await db.query<Counts>("select stock, reserved, sold from catalogue.products where id = $1", [id]);
    return rows[0];
  };

  /**
   * A REST call as a careful client makes it: the edge's own rate-limit refusals wait out their
   * Retry-After, and a 503 (a deadline passed under this load) is sent again with the same request
   * id, which CreateOrder makes idempotent (the same order id, the same reservation).
   */
  let retried503 = 0;
  const patient = async (path: string, token: string, body: unknown): Promise<Json> => {
    for (let i = 0; ; i++) {
      const r = await rest(stack.edgeUrl, "POST", path, { token, body });
      if (i >= 8) return r;
      if (isEdgeRateLimited(r)) await sleep(1000 * Math.max(1, Number(r.headers.get("retry-after") ?? "1")));
      else if (r.status === 503) {
        retried503++;
        await sleep(200 * (i + 1));
      } else return r;
    }
  };

  it("200 concurrent orders of one unit against stock 50: 50 orders, 150 FAILED_PRECONDITION naming the product and 0 left", async () => {
    const productId = await makeStackProduct(stack, { stock: 50 });
    const buyers = await Promise.all(Array.from({ length: 10 }, async (_, i) => {
      const email = `buyer-${i}-${randomUUID().slice(0, 8)}@example.com`;
      assert.equal((await rest(stack.edgeUrl, "POST", "/v1/auth/register", { body: { email, password: "contention-password", name: `Buyer ${i}` } })).status, 200);
      const login = await rest(stack.edgeUrl, "POST", "/v1/auth/login", { body: { email, password: "contention-password" } });
      assert.equal(login.status, 200, login.text);
      return login.body.tokens.accessToken as string;
    }));

    // Sample the counts while the orders run: reserved + sold never above the stock.
    let running = true;
    const samples: Counts[] = [];
    const sampler = (async () => {
      while (running) {
        samples.push(await counts(productId));
        await sleep(5);
      }
    })();
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) =>
      patient("/v1/orders", buyers[i % buyers.length], { lines: [{ productId, quantity: 1 }], requestId: randomUUID() })));
    running = false;
    await sampler;

    const ok = answers.filter((a) => a.status === 200);
    const unavailable = answers.find((a) => a.status === 503);
    assert.equal(ok.length, 50, `statuses: ${answers.map((a) => a.status).join(",")}; a 503: ${unavailable?.text}`);
    if (retried503) console.log(`      ${retried503} answers were 503 and sent again with their request id`);
    for (const r of answers.filter((a) => a.status !== 200)) {
      assert.equal(r.status, 400, r.text);
      assert.equal(r.body.code, Code.FailedPrecondition, r.text);
      assert.ok(r.body.message.includes(productId) && r.body.message.includes("0 left"), r.body.message);
    }
    assert.ok(samples.length > 3, `sampled ${samples.length} times`);
    for (const s of samples) assert.ok(s.reserved + s.sold <= s.stock, JSON.stringify(s));
    assert.deepEqual(await counts(productId), { stock: 50, reserved: 50, sold: 0 });
    const { rows } = await db.query<{ n: string }>("select count(*) as n from orders.order_lines where product_id = $1", [productId]);
    assert.equal(Number(rows[0].n), 50, "exactly 50 orders name the product");
  });
});
