// The reservation protocol under a real crash: each service its own process
// (test/support/edge-stack.ts), orders created in a loop straight to the order
// service while it is SIGKILLed and restarted, some cancelled. Afterwards, for
// every product: reserved + sold == the units of its live orders (PENDING or
// CONFIRMED); every live order's reservation is held or committed, every
// reservation without a live order is released. Never neither, never both.
import { strict as assert } from "node:assert";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { OrderService } from "../../gen/acme/order/v1/order_pb.js";
import { relaxedRateLimits } from "../interop/support.js";
import { startEdgeStack, type EdgeStack } from "../support/edge-stack.js";
import { makeStackProduct } from "../support/products.js";
import { eventually, rest, sleep } from "./support.js";

const ORDERS = 300;
const PASSWORD = "order-kill-password-1";

describe("real edge: orders while the order service is SIGKILLed (reservations exactly once)", function () {
  this.timeout(600_000);
  let stack: EdgeStack;
  let db: pg.Client;
  let dir: string;

  before(async function () {
    this.timeout(300_000);
    dir = mkdtempSync(join(tmpdir(), "acme-kill-"));
    // Reservations of 45 s (the 30 s margin leaves 15 s to insert) swept every second: what a crash leaves is released within the test.
    stack = await startEdgeStack({ ratelimitConfig: relaxedRateLimits(dir), env: { CATALOGUE_RESERVATION_SECONDS: "45", CATALOGUE_SWEEP_INTERVAL_MS: "1000", LOG_LEVEL: "error" } });
    db = new pg.Client({ connectionString: stack.databaseUrl });
    await db.connect();
  });
  after(async () => {
    await db?.end();
    await stack?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function signUp(tag: string) {
    const email = `${tag}-${randomBytes(5).toString("hex")}@example.com`;
    assert.equal((await rest(stack.edgeUrl, "POST", "/v1/auth/register", { body: { email, password: PASSWORD, name: "Killer" } })).status, 200);
    const login = await rest(stack.edgeUrl, "POST", "/v1/auth/login", { body: { email, password: PASSWORD } });
    assert.equal(login.status, 200, login.text);
    return login.body.tokens.accessToken as string;
  }

  it(`${ORDERS} orders of 3 products, some cancelled, while the order service is killed twice: reserved + sold == live orders' units`, async () => {
    const products = [await makeStackProduct(stack, { stock: 5000 }), await makeStackProduct(stack, { stock: 5000 }), await makeStackProduct(stack, { stock: 5000 })];
    const tokens = await Promise.all(Array.from({ length: 6 }, (_, i) => signUp(`kill${i}`)));
    const transport = (token: string) =>
      createGrpcTransport({ baseUrl: stack.serviceUrl("order"), interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))] });
    const clients: Client<typeof OrderService>[] = tokens.map((t) => createClient(OrderService, transport(t)));
    let next = 0;
    let created = 0;
    let aborted = 0;
    let retried = 0;
    const killAt = [100, 200];
    const deadline = Date.now() + 300_000;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < ORDERS) {
          const n = next++;
          const client = clients[n % clients.length];
          // 1 or 2 lines, 1..3 units each.
          const lines = [{ productId: products[n % 3], quantity: 1 + (n % 3) }, ...(n % 2 ? [{ productId: products[(n + 1) % 3], quantity: 2 }] : [])];
          let requestId = `kill-${n}-${randomUUID()}`;
          for (;;) {
            if (Date.now() > deadline) throw new Error(`order ${n} not created in time`);
            try {
              const r = await client.createOrder({ lines, requestId }, { timeoutMs: 5000 });
              created++;
              if (n % 4 === 0) await client.cancelOrder({ id: r.order!.id }, { timeoutMs: 5000 }).catch(() => undefined);
              break;
            } catch (err) {
              const ce = ConnectError.from(err);
              if (ce.code === Code.Aborted) {
                // Its reservation was given up (or swept after the crash): a new request id, as the answer says.
                aborted++;
                requestId = `kill-${n}-${randomUUID()}`;
                continue;
              }
              retried++; // the order service is down (killed): the same request id again
              await sleep(100);
            }
          }
          if (killAt.length && created >= killAt[0]) {
            killAt.shift();
            // The other workers keep calling meanwhile: their calls fail and are retried.
            await stack.stop("order", "SIGKILL");
            await sleep(500);
            await stack.start("order");
          }
        }
      }),
    );
    console.log(`      ${created} orders, ${retried} retries while the order service was down, ${aborted} told to use a new request id`);
    assert.ok(retried > 0, "the kills interrupted some calls");

    // Settled: the consumer has followed every event, the sweeper released what no order committed.
    const state = async () => {
      const counts = await db.query<{ id: string; taken: number; live: number }>(
        `select p.id, p.reserved + p.sold as taken,
                coalesce((select sum(l.quantity) from orders.order_lines l join orders.orders o on o.id = l.order_id
                          where l.product_id = p.id and o.status in ('PENDING', 'CONFIRMED')), 0)::int as live
           from catalogue.products p where p.id = any($1)`,
        [products],
      );
      const both = await db.query(
        `select r.order_id, r.state, o.status from catalogue.reservations r left join orders.orders o on o.id = r.order_id
          where r.product_id = any($1)
            and ((o.status in ('PENDING', 'CONFIRMED') and r.state not in ('held', 'committed'))
              or ((o.id is null or o.status = 'CANCELLED') and r.state <> 'released'))`,
        [products],
      );
      return { counts: counts.rows, mismatched: both.rows };
    };
    await eventually(async () => {
      const s = await state();
      return s.counts.every((c) => Number(c.taken) === Number(c.live)) && s.mismatched.length === 0 ? s : undefined;
    }, "every product's reserved + sold equals its live orders' units, every reservation follows its order", 120_000).catch(async (err) => {
      console.log(JSON.stringify(await state(), null, 2));
      throw err;
    });
    const liveOrders = await db.query(`select count(*)::int as n from orders.orders o join orders.order_lines l on l.order_id = o.id where l.product_id = any($1)`, [products]);
    assert.ok(liveOrders.rows[0].n > 0);
  });
});
