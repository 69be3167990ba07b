// The in-process bus (platform/bus/memory.ts) keeps the semantics of
// platform/bus/bus.ts: confirmed publish, topic routing, per-consumer queues,
// retries after backoffMs, dead letters with reason and attempts, PoisonMessage
// dead-lettered at once, publish refused while down.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { PoisonMessage, UnroutableMessage, type BusMessage, type ConsumerSpec, type Delivery } from "../../platform/bus/bus.js";
import { memoryBus, topicMatches, type MemoryBus } from "../../platform/bus/memory.js";

const message = (routingKey: string, over: Partial<BusMessage> = {}): BusMessage => ({
  id: randomUUID(),
  type: "acme.events.v1.Test",
  routingKey,
  body: new Uint8Array([1, 2, 3]),
  headers: {},
  ...over,
});

const spec = (queue: string, bindings: string[], over: Partial<ConsumerSpec> = {}): ConsumerSpec => ({
  queue,
  exchange: "acme.test",
  bindings,
  maxAttempts: 3,
  backoffMs: () => 5,
  ...over,
});

describe("bus: in-process (memory) bus", () => {
  let bus: MemoryBus;
  beforeEach(() => (bus = memoryBus()));
  afterEach(() => bus.close());

  it("matches topic patterns: * one word, # zero or more", () => {
    const cases: [string, string, boolean][] = [
      ["user.*", "user.registered", true],
      ["user.*", "user", false],
      ["user.*", "user.email.changed", false],
      ["user.#", "user", true],
      ["user.#", "user.email.changed", true],
      ["#", "anything.at.all", true],
      ["*.created", "order.created", true],
      ["*.created", "order.status.created", false],
      ["order.#.changed", "order.changed", true],
      ["order.#.changed", "order.status.changed", true],
      ["order.created", "order.cancelled", false],
      ["#.cancelled", "order.cancelled", true],
    ];
    for (const [pattern, key, want] of cases) assert.equal(topicMatches(pattern, key), want, `${pattern} ~ ${key}`);
  });

  it("routes a message to every queue bound to it on its exchange, one copy per queue", async () => {
    const got: Record<string, string[]> = { users: [], all: [], orders: [], other: [] };
    const take = (q: string) => async (d: Delivery) => void got[q].push(d.message.routingKey);
    await bus.consume(spec("users", ["user.*"]), take("users"));
    // Two bindings that both match still deliver once.
    await bus.consume(spec("all", ["#", "user.registered"]), take("all"));
    await bus.consume(spec("orders", ["order.*"]), take("orders"));
    await bus.consume(spec("other", ["#"], { exchange: "acme.other" }), take("other"));
    for (const key of ["user.registered", "order.created", "user.email_changed", "audit.x"]) await bus.publish("acme.test", message(key));
    await bus.idle();
    assert.deepEqual(got, {
      users: ["user.registered", "user.email_changed"],
      all: ["user.registered", "order.created", "user.email_changed", "audit.x"],
      orders: ["order.created"],
      other: [],
    });
  });

  it("refuses a message no queue is bound for (as RabbitMQ's mandatory publish), so an outbox keeps it", async () => {
    await bus.consume(spec("users", ["user.*"]), async () => {});
    await assert.rejects(bus.publish("acme.test", message("order.created")), (err: Error) => err instanceof UnroutableMessage);
    await assert.rejects(bus.publish("acme.nothing", message("user.registered")), (err: Error) => err instanceof UnroutableMessage);
    await bus.publish("acme.test", message("user.registered"));
  });

  it("keeps a stopped consumer's queue: messages published meanwhile reach the next consumer", async () => {
    const first: string[] = [];
    const c = await bus.consume(spec("q", ["user.*"]), async (d) => void first.push(d.message.id));
    const a = message("user.a");
    await bus.publish("acme.test", a);
    await bus.idle();
    await c.stop();
    const b = message("user.b");
    await bus.publish("acme.test", b);
    const second: string[] = [];
    await bus.consume(spec("q", ["user.*"]), async (d) => void second.push(d.message.id));
    await bus.idle();
    assert.deepEqual(first, [a.id]);
    assert.deepEqual(second, [b.id]);
  });

  it("retries a failing handler after backoffMs(attempt), then succeeds", async () => {
    const delays: number[] = [];
    const seen: { attempt: number; at: number }[] = [];
    await bus.consume(
      spec("retry", ["#"], { maxAttempts: 5, backoffMs: (n) => (delays.push(n), 30 * n) }),
      async (d) => {
        seen.push({ attempt: d.attempt, at: performance.now() });
        if (d.attempt < 3) throw new Error("temporarily broken");
      },
    );
    await bus.publish("acme.test", message("x"));
    await bus.idle();
    assert.deepEqual(seen.map((s) => s.attempt), [1, 2, 3]);
    assert.deepEqual(delays, [1, 2]);
    // Waited at least the backoff each time (timers may fire a millisecond early).
    assert.ok(seen[1].at - seen[0].at >= 29, `first retry after ${seen[1].at - seen[0].at} ms`);
    assert.ok(seen[2].at - seen[1].at >= 59, `second retry after ${seen[2].at - seen[1].at} ms`);
    assert.deepEqual(bus.deadLetters("retry"), []);
  });

  it("dead-letters after maxAttempts deliveries with the reason and the attempt count", async () => {
    const attempts: number[] = [];
    await bus.consume(spec("dl", ["#"], { maxAttempts: 3 }), async (d) => {
      attempts.push(d.attempt);
      throw new Error("downstream refused");
    });
    const m = message("x");
    await bus.publish("acme.test", m);
    await bus.idle();
    assert.deepEqual(attempts, [1, 2, 3]);
    const dead = bus.deadLetters("dl");
    assert.equal(dead.length, 1);
    assert.equal(dead[0].message.id, m.id);
    assert.equal(dead[0].attempts, 3);
    assert.equal(dead[0].exchange, "acme.test");
    assert.match(dead[0].reason, /downstream refused/);
  });

  it("dead-letters a PoisonMessage at once and carries on with the next message", async () => {
    const handled: string[] = [];
    let poisonDeliveries = 0;
    await bus.consume(spec("poison", ["#"], { maxAttempts: 5 }), async (d) => {
      if (d.message.routingKey === "bad") {
        poisonDeliveries++;
        throw new PoisonMessage("undecodable envelope");
      }
      handled.push(d.message.id);
    });
    const bad = message("bad");
    const good = message("good");
    await bus.publish("acme.test", bad);
    await bus.publish("acme.test", good);
    await bus.idle();
    assert.equal(poisonDeliveries, 1);
    assert.deepEqual(handled, [good.id]);
    const dead = bus.deadLetters("poison");
    assert.deepEqual(dead.map((d) => [d.message.id, d.attempts]), [[bad.id, 1]]);
    assert.match(dead[0].reason, /undecodable envelope/);
  });

  it("does not hold the queue while a message waits for its retry", async () => {
    const order: string[] = [];
    await bus.consume(spec("nohold", ["#"], { backoffMs: () => 50 }), async (d) => {
      order.push(`${d.message.routingKey}#${d.attempt}`);
      if (d.message.routingKey === "slow" && d.attempt === 1) throw new Error("later");
    });
    await bus.publish("acme.test", message("slow"));
    await bus.publish("acme.test", message("fast"));
    await bus.idle();
    assert.deepEqual(order, ["slow#1", "fast#1", "slow#2"]);
  });

  it("refuses publish while down (unhealthy), delivers nothing meanwhile, and resumes when back", async () => {
    const got: string[] = [];
    await bus.consume(spec("outage", ["#"]), async (d) => void got.push(d.message.id));
    // Accepted just before the outage: waits in its queue until the bus is back.
    const queued = message("a");
    await bus.publish("acme.test", queued);
    bus.down(true);
    assert.equal(await bus.healthy(), false);
    await assert.rejects(bus.publish("acme.test", message("b")), /unavailable/);
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(got, []);
    bus.down(false);
    assert.equal(await bus.healthy(), true);
    const after = message("c");
    await bus.publish("acme.test", after);
    await bus.idle();
    assert.deepEqual(got, [queued.id, after.id]);
  });
});
