// The RabbitMQ bus (platform/bus/amqp.ts) and its dead letters (platform/bus/dead-letters.ts)
// against a rabbitmq-server of the test's own (startRabbitmq): confirmed publish and
// consume, retries with growing backoff, dead-lettering (exhausted and poison), replay and
// purge, and a broker outage: publish rejects within its timeout, and after the broker
// comes back on the same port and data the same client publishes and consumes again.
import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type ChannelModel } from "amqplib";
import { amqpBus } from "../../platform/bus/amqp.js";
import { backoffWithJitter, PoisonMessage, UnroutableMessage, type Bus, type BusMessage, type ConsumerSpec, type Delivery, type MessageHandler } from "../../platform/bus/bus.js";
import { listDeadLetters, purgeDeadLetters, replayDeadLetters, showDeadLetter } from "../../platform/bus/dead-letters.js";
import { freePort, startRabbitmq, type Running } from "../support/servers.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(25);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

let seq = 0;
function message(routingKey: string, text = routingKey): BusMessage {
  seq++;
  return {
    id: `00000000-0000-4000-8000-${String(seq).padStart(12, "0")}`,
    type: "test.v1.Thing",
    routingKey,
    body: new TextEncoder().encode(text),
    headers: { traceparent: `00-${"a".repeat(32)}-${"b".repeat(16)}-01` },
  };
}

/** A handler that records every delivery (with its time) and then runs behave. */
function recorder(behave: (d: Delivery) => void = () => {}) {
  const seen: Array<Delivery & { at: number }> = [];
  const handler: MessageHandler = async (d) => {
    seen.push({ ...d, at: Date.now() });
    behave(d);
  };
  return { seen, handler };
}

function spec(name: string, over: Partial<ConsumerSpec> = {}): ConsumerSpec {
  return { queue: `test.${name}`, exchange: `test.${name}.ex`, bindings: ["thing.*"], maxAttempts: 3, backoffMs: () => 20, ...over };
}

describe("bus: RabbitMQ (amqplib against a rabbitmq-server of its own)", function () {
  this.timeout(60_000);
  const dir = mkdtempSync(join(tmpdir(), "acme-bus-amqp-"));
  let port: number;
  let rabbit: Running | undefined;
  let bus: Bus;
  let admin: ChannelModel;
  const PUBLISH_TIMEOUT = 1000;

  before(async () => {
    port = await freePort();
    const t0 = Date.now();
    rabbit = await startRabbitmq({ port, dir });
    console.log(`      rabbitmq-server started in ${Date.now() - t0} ms`);
    bus = amqpBus(rabbit.url, { publishTimeoutMs: PUBLISH_TIMEOUT, reconnectBaseMs: 100, reconnectMaxMs: 400 });
    admin = await connect(rabbit.url);
  });
  after(async () => {
    await admin?.close().catch(() => {});
    await bus?.close();
    await rabbit?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("publish resolves on the broker's confirm; the consumer gets id, type, routing key, body and headers, on its bindings only; a message no queue is bound for is refused", async () => {
    const s = spec("basic");
    const { seen, handler } = recorder();
    const consumer = await bus.consume(s, handler);
    assert.equal(await bus.healthy(), true);
    const other = message("other.thing");
    const m = message("thing.created", "hello");
    // Routed nowhere: refused (mandatory), so an outbox keeps it until a consumer's queue exists.
    await assert.rejects(bus.publish(s.exchange, other), (err: Error) => err instanceof UnroutableMessage && /other\.thing/.test(err.message));
    await bus.publish(s.exchange, m);
    await until(() => seen.length >= 1, "the delivery");
    await sleep(200); // the unbound one would have arrived by now
    assert.equal(seen.length, 1);
    const d = seen[0];
    assert.equal(d.attempt, 1);
    assert.deepEqual({ ...d.message, body: new TextDecoder().decode(d.message.body) }, { ...m, body: "hello" });
    await consumer.stop();
  });

  it("a handler failing twice is retried after growing delays (within the jitter bounds) and then succeeds", async () => {
    const returned: number[] = [];
    const jittered = backoffWithJitter(300, 5000, () => 0.5);
    const s = spec("retry", { maxAttempts: 5, backoffMs: (n) => (returned.push(jittered(n)), returned[returned.length - 1]) });
    const { seen, handler } = recorder((d) => {
      if (d.attempt <= 2) throw new Error(`transient ${d.attempt}`);
    });
    const consumer = await bus.consume(s, handler);
    const m = message("thing.updated");
    await bus.publish(s.exchange, m);
    await until(() => seen.length >= 3, "three deliveries");
    await sleep(300);
    assert.deepEqual(seen.map((d) => d.attempt), [1, 2, 3]);
    assert.ok(seen.every((d) => d.message.id === m.id && d.message.routingKey === m.routingKey && d.message.headers.traceparent === m.headers.traceparent));
    // Retry n waits in [step/10, step], step = 300 * 2^(n-1).
    assert.deepEqual(returned, [165, 330]);
    returned.forEach((ms, i) => assert.ok(ms >= (300 * 2 ** i) / 10 && ms <= 300 * 2 ** i, `retry ${i + 1}: ${ms} ms`));
    const gaps = [seen[1].at - seen[0].at, seen[2].at - seen[1].at];
    console.log(`      retry gaps ${gaps.join(", ")} ms for delays ${returned.join(", ")} ms`);
    gaps.forEach((gap, i) => assert.ok(gap >= returned[i] - 5 && gap < returned[i] + 1000, `gap ${i + 1}: ${gap} ms for ${returned[i]} ms`));
    assert.ok(gaps[1] > gaps[0], `gaps grow: ${gaps}`);
    assert.deepEqual(await listDeadLetters(admin, s.queue), []);
    await consumer.stop();
  });

  it("maxAttempts exhausted: dead-lettered with reason and attempts; listing keeps it; replay delivers it once, as a first delivery", async () => {
    let failing = true;
    const s = spec("exhausted", { maxAttempts: 3 });
    const { seen, handler } = recorder(() => {
      if (failing) throw new Error("database says no");
    });
    const consumer = await bus.consume(s, handler);
    const m = message("thing.deleted");
    const before = Date.now();
    await bus.publish(s.exchange, m);
    await until(async () => (await listDeadLetters(admin, s.queue)).length === 1, "the dead letter");
    assert.deepEqual(seen.map((d) => d.attempt), [1, 2, 3]);
    const [dl] = await listDeadLetters(admin, s.queue); // listed twice: still there
    assert.equal(dl.message.id, m.id);
    assert.equal(dl.message.type, m.type);
    assert.equal(dl.message.routingKey, m.routingKey);
    assert.deepEqual(dl.message.headers, m.headers);
    assert.equal(new TextDecoder().decode(dl.message.body), "thing.deleted");
    assert.equal(dl.exchange, s.exchange);
    assert.equal(dl.attempts, 3);
    assert.match(dl.reason, /database says no/);
    assert.ok(Date.parse(dl.failedAt) >= before - 1000 && Date.parse(dl.failedAt) <= Date.now(), dl.failedAt);
    assert.equal((await showDeadLetter(admin, s.queue, m.id))?.attempts, 3);
    assert.equal(await showDeadLetter(admin, s.queue, "no-such-id"), undefined);

    failing = false;
    assert.equal(await replayDeadLetters(admin, s.queue), 1);
    await until(() => seen.length === 4, "the replayed delivery");
    await sleep(300);
    assert.equal(seen.length, 4, "delivered once");
    assert.equal(seen[3].attempt, 1);
    assert.equal(seen[3].message.id, m.id);
    assert.equal(seen[3].message.routingKey, m.routingKey);
    assert.deepEqual(seen[3].message.headers, m.headers);
    assert.deepEqual(await listDeadLetters(admin, s.queue), []);
    await consumer.stop();
  });

  it("a PoisonMessage is dead-lettered at once and the next message is consumed; purge empties the DLQ", async () => {
    const s = spec("poison", { maxAttempts: 5 });
    const { seen, handler } = recorder((d) => {
      if (new TextDecoder().decode(d.message.body) === "garbage") throw new PoisonMessage("cannot decode the envelope");
    });
    const consumer = await bus.consume(s, handler);
    const bad = message("thing.created", "garbage");
    const good = message("thing.created", "fine");
    await bus.publish(s.exchange, bad);
    await bus.publish(s.exchange, good);
    await until(() => seen.some((d) => d.message.id === good.id), "the next message");
    await until(async () => (await listDeadLetters(admin, s.queue)).length === 1, "the dead letter");
    await sleep(200);
    assert.deepEqual(seen.map((d) => [d.message.id, d.attempt]), [[bad.id, 1], [good.id, 1]]);
    const dl = await showDeadLetter(admin, s.queue, bad.id);
    assert.equal(dl?.attempts, 1);
    assert.match(dl?.reason ?? "", /cannot decode the envelope/);
    assert.equal(await purgeDeadLetters(admin, s.queue), 1);
    assert.deepEqual(await listDeadLetters(admin, s.queue), []);
    await consumer.stop();
  });

  it("broker down: publish rejects within its timeout and healthy() is false; back on the same port and data, the same client publishes and consumes again", async function () {
    const live = spec("outage");
    const parked = spec("durable");
    const { seen, handler } = recorder();
    const consumer = await bus.consume(live, handler);
    // A message waiting in a durable queue (its consumer stopped) must survive the restart.
    const held = await bus.consume(parked, async () => {});
    await held.stop();
    const kept = message("thing.kept");
    await bus.publish(parked.exchange, kept);

    await admin.close();
    await rabbit!.stop();
    rabbit = undefined;
    const t0 = Date.now();
    await assert.rejects(bus.publish(live.exchange, message("thing.lost")));
    const took = Date.now() - t0;
    assert.ok(took < PUBLISH_TIMEOUT + 1000, `publish rejected after ${took} ms`);
    assert.equal(await bus.healthy(), false);

    const t1 = Date.now();
    rabbit = await startRabbitmq({ port, dir });
    console.log(`      rabbitmq-server restarted in ${Date.now() - t1} ms; publish rejected after ${took} ms while it was down`);
    admin = await connect(rabbit.url);
    await until(() => bus.healthy(), "the client to reconnect", 15_000);
    const m = message("thing.again");
    await bus.publish(live.exchange, m);
    await until(() => seen.some((d) => d.message.id === m.id), "the consumer to resume");
    const { seen: keptSeen, handler: keptHandler } = recorder();
    const again = await bus.consume(parked, keptHandler);
    await until(() => keptSeen.length === 1, "the message kept over the restart");
    assert.equal(keptSeen[0].message.id, kept.id);
    await again.stop();
    await consumer.stop();
  });
});
