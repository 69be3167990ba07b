// The order service with the user service in another process that goes away
// and comes back: orders fail fast with UNAVAILABLE, the breaker opens, and a
// half-open probe closes it once the user service is back.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import type { OrderModule } from "../../services/order/index.js";
import { freePort } from "../support/servers.js";
import { startTestSystem, type TestSystem } from "../support/system.js";
import { eventually, rejectsWith, signUp } from "../user/helpers.js";
import { linesOf } from "../support/products.js";

describe("order service when the user service is down", function () {
  let a: TestSystem; // auth + order + catalogue
  let u: TestSystem | undefined; // user alone, on a fixed port
  let userPort: number;
  const startUser = async () =>
    startTestSystem({
      services: ["user"],
      edge: false,
      env: { PORT: String(userPort), AUTH_URL: a.url, ORDER_URL: a.url, DATABASE_URL: a.env.DATABASE_URL, REDIS_URL: a.env.REDIS_URL },
    });

  before(async () => {
    userPort = await freePort();
    a = await startTestSystem({
      services: ["auth", "order", "catalogue"],
      edge: false,
      env: {
        USER_URL: `http://127.0.0.1:${userPort}`,
        ORDER_USER_BREAKER_FAILURES: "3",
        ORDER_USER_BREAKER_RESET_MS: "300",
        ORDER_SWEEP_INTERVAL_MS: "0",
      },
    });
    u = await startUser();
  });
  after(async () => {
    await u?.stop();
    await a?.stop();
  });

  it("fails fast with UNAVAILABLE, opens the breaker, and recovers through a half-open probe", async () => {
    const breaker = () => (a.system.modules.find((m) => m.name === "order") as OrderModule).breakerState();
    const alice = await signUp(a);
    const orders = a.orders(alice.token);
    const first = (await orders.createOrder({ lines: await linesOf(a, 1), requestId: "before" })).order!;
    assert.equal(breaker(), "closed");

    await u!.stop();
    u = undefined;
    // Each call is refused with UNAVAILABLE (after bounded retries inside the 1 s deadline)...
    for (let i = 0; i < 3; i++) {
      const e = await rejectsWith(orders.createOrder({ lines: await linesOf(a, 1), requestId: randomUUID() }), Code.Unavailable);
      assert.doesNotMatch(e.rawMessage, /circuit/, `call ${i}`);
    }
    // ...until the breaker opens: then without trying the user service at all.
    assert.equal(breaker(), "open");
    const fast = await rejectsWith(orders.createOrder({ lines: await linesOf(a, 1), requestId: randomUUID() }), Code.Unavailable);
    assert.match(fast.rawMessage, /circuit open/);
    // What does not need the user service keeps working: reads, and replays of a known requestId.
    assert.equal((await orders.getOrder({ id: first.id })).order?.id, first.id);
    assert.equal((await orders.listOrders({})).orders.length, 1);
    assert.equal((await orders.createOrder({ lines: await linesOf(a, 1), requestId: "before" })).order?.id, first.id);
    assert.equal(await a.system.db.db.selectFrom("orders.orders").select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow().then((r) => Number(r.n)), 1, "no order was written while the user service was down");

    // The user service comes back on the same address: after the pause one probe goes through and closes the circuit.
    u = await startUser();
    let made: string | undefined;
    await eventually("an order succeeds again", async () => {
      made = (await orders.createOrder({ lines: await linesOf(a, 2), requestId: "after" })).order?.id;
      return !!made;
    });
    assert.equal(breaker(), "closed");
    assert.equal((await orders.getOrder({ id: made! })).order?.total?.amountMinor, 3998n);
  });
});
