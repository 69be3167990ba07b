// Issue 17, as it runs: the notification service as its own process
// (`app/main.ts notification`, telemetry preload), consuming from a real
// rabbitmq-server (through a TCP proxy that can hold its acks) and sending to a
// real Mailpit (whose SMTP chaos makes it answer 4xx/5xx). The test publishes
// the producers' events itself and checks what a user would: the mails in
// Mailpit, the delivery log in Postgres (schema notify), the dead letters
// through `npm run admin -- dlq`.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { connect as amqpConnect, type ChannelModel } from "amqplib";
import pg from "pg";
import { EnvelopeSchema, OrderCreatedSchema } from "../../gen/acme/events/v1/events_pb.js";
import { OrderStatus } from "../../gen/acme/order/v1/order_pb.js";
import { grpcServing } from "../../scripts/stack/components.js";
import { freePort, startProcess, type Managed } from "../../scripts/stack/process.js";
import { startRabbitmq, type Running } from "../../scripts/stack/servers.js";
import { amqpBus } from "../../platform/bus/amqp.js";
import { deadLetterQueue } from "../../platform/bus/amqp-message.js";
import type { Bus, BusMessage } from "../../platform/bus/bus.js";
import { userRegistered } from "../../services/auth/events.js";
import { envelopeEvent } from "../../services/envelope.js";
import { QUEUES } from "../../services/notification/consumers.js";
import { deliveryIdOf, type AttemptRow, type DeliveryRow } from "../../services/notification/store.js";
import { runAdmin } from "../support/admin-cli.js";
import { freshDatabaseUrl, freshRedisUrl } from "../support/fresh.js";
import { always, startMailpit, type OwnMailpit } from "../support/mailpit.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";

const ROOT = new URL("../..", import.meta.url).pathname;
const RETRY_BASE_MS = 200;
const RETRY_MAX_MS = 1000;
const MAX_ATTEMPTS = 10;
const FROM_DOMAIN = "acme.local"; // NOTIFY_FROM's default: the right side of every Message-ID
const USER_Q = QUEUES.userEvents.queue;
const ORDER_Q = QUEUES.orderEvents.queue;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll fn until it returns something truthy; throws after ms naming what was awaited and the last value seen. */
async function until<T>(what: string, fn: () => Promise<T | undefined | false | null> | T | undefined | false | null, ms = 15_000, everyMs = 50): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await sleep(everyMs);
  }
}

describe("notification service on a real RabbitMQ and a real Mailpit, as its own process", function () {
  this.timeout(120_000);

  const dir = mkdtempSync(join(tmpdir(), "acme-mail-broker-"));
  const logFile = join(dir, "notification.log");
  let rabbit: Running | undefined;
  let mailpit: OwnMailpit | undefined;
  let proxy: TcpProxy | undefined;
  let service: Managed | undefined;
  let bus: Bus | undefined;
  let admin: ChannelModel | undefined;
  let db: pg.Pool | undefined;
  let servicePort = 0;
  let metricsPort = 0;
  let env: NodeJS.ProcessEnv = {};

  const startService = async () => {
    const t0 = Date.now();
    service = await startProcess({
      name: "notification",
      command: process.execPath,
      args: ["--import", "tsx", "--import", "./platform/telemetry/register.ts", "app/main.ts", "notification"],
      cwd: ROOT,
      env,
      logFile,
      readyTimeoutMs: 60_000,
      ready: () => grpcServing(servicePort),
    });
    return Date.now() - t0;
  };

  before(async () => {
    const t0 = Date.now();
    // Each server kept as soon as it runs, and all of them awaited, so after() stops every one started
    // even when another failed to start.
    const servers = Promise.allSettled([startRabbitmq().then((x) => void (rabbit = x)), startMailpit().then((x) => void (mailpit = x))]);
    const urls = Promise.all([freshDatabaseUrl(), freshRedisUrl()]);
    urls.catch(() => {}); // rethrown below, once the servers have settled
    for (const s of await servers) if (s.status === "rejected") throw s.reason;
    const [databaseUrl, redisUrl] = await urls;
    if (!rabbit || !mailpit) throw new Error("the servers did not start");
    const broker = new URL(rabbit.url);
    proxy = await startTcpProxy({ host: broker.hostname, port: Number(broker.port) });
    [servicePort, metricsPort] = [await freePort(), await freePort()];
    const proxied = new URL(rabbit.url);
    proxied.port = String(proxy.port);
    env = {
      // Only what the service needs: nothing of the test runner's environment (OTEL_*, ACME_TEST_*).
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PORT: String(servicePort),
      HOST: "127.0.0.1",
      METRICS_PORT: String(metricsPort),
      METRICS_HOST: "127.0.0.1",
      DATA_DIR: join(dir, "data"),
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      AMQP_URL: proxied.toString(),
      SMTP_URL: mailpit.smtpUrl,
      SMTP_CONNECTION_TIMEOUT_MS: "2000",
      SMTP_GREETING_TIMEOUT_MS: "2000",
      SMTP_SOCKET_TIMEOUT_MS: "5000",
      NOTIFY_RETRY_BASE_MS: String(RETRY_BASE_MS),
      NOTIFY_RETRY_MAX_MS: String(RETRY_MAX_MS),
      NOTIFY_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
      LOG_LEVEL: "warn",
      OTEL_SDK_DISABLED: "true",
      SHUTDOWN_GRACE_MS: "2000",
    };
    const infra = Date.now() - t0;
    db = new pg.Pool({ connectionString: databaseUrl, max: 2 });
    bus = amqpBus(rabbit.url, { publishTimeoutMs: 5000 }); // the producers' side: straight to the broker
    admin = await amqpConnect(rabbit.url);
    const svc = await startService();
    const t1 = Date.now();
    await consuming();
    console.log(`      rabbitmq + mailpit + databases ready in ${infra} ms; notification process serving in ${svc} ms, consuming ${Date.now() - t1} ms later`);
  });

  afterEach(async function () {
    await mailpit?.chaos("off").catch(() => {});
    proxy?.release();
    if (this.currentTest?.state === "failed") {
      console.log(`--- ${logFile} (last lines)\n${service?.logTail(40) ?? "(no process)"}`);
    }
  });

  after(async () => {
    await service?.stop("SIGTERM", 5000);
    await bus?.close().catch(() => {});
    await admin?.close().catch(() => {});
    await db?.end().catch(() => {});
    await proxy?.close();
    await mailpit?.close();
    await rabbit?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  // ---- what the test looks at

  const publish = (exchange: string, m: BusMessage) => bus!.publish(exchange, m);

  /** A new user whose address the service knows (its welcome mail SENT, and the UserRegistered acked). */
  const registeredUser = async () => {
    const userId = randomUUID();
    const email = `u-${userId.slice(0, 8)}@example.com`;
    const event = userRegistered(userId, email);
    await publish("acme.user", event);
    await deliveryReaching(deliveryIdOf(event.id, "welcome"), ["SENT"]);
    return { userId, email };
  };

  const orderCreated = (userId: string) => {
    const orderId = randomUUID();
    const event = envelopeEvent({
      routingKey: "order.created",
      aggregateId: orderId,
      event: {
        case: "orderCreated",
        value: create(OrderCreatedSchema, { orderId, userId, product: "Widget", quantity: 2, unitPriceCents: 1250n, totalCents: 2500n, status: OrderStatus.PENDING }),
      },
    });
    return { orderId, event, deliveryId: deliveryIdOf(event.id, "order_confirmation") };
  };

  const delivery = async (id: string): Promise<DeliveryRow | undefined> =>
    (await db!.query<DeliveryRow>("select * from notify.deliveries where id = $1", [id])).rows[0];
  const attempts = async (id: string): Promise<AttemptRow[]> =>
    (await db!.query<AttemptRow>("select * from notify.delivery_attempts where delivery_id = $1 order by number", [id])).rows;
  const deliveryReaching = (id: string, statuses: string[], ms = 15_000) =>
    until(`delivery ${id} in ${statuses.join("/")}`, async () => {
      const d = await delivery(id);
      return d && statuses.includes(d.status) ? d : undefined;
    }, ms);
  const processedRows = async (consumer: string, eventId: string) =>
    Number((await db!.query("select count(*)::int as n from notify.processed_events where consumer = $1 and event_id = $2", [consumer, eventId])).rows[0].n);

  /** The mails in Mailpit carrying this delivery's Message-ID. */
  const mailsOf = async (deliveryId: string) =>
    (await mailpit!.messages()).filter((m) => m.MessageID.replace(/^<|>$/g, "") === `${deliveryId}@${FROM_DOMAIN}`);

  /** A queue as the broker counts it: ready messages (not those delivered and unacked), consumers. */
  const queueState = async (queue: string) => {
    const ch = await admin!.createChannel();
    // A queue not declared yet closes the channel with 404: checkQueue rejects, and the channel's error is expected.
    ch.on("error", () => {});
    try {
      return await ch.checkQueue(queue);
    } finally {
      await ch.close().catch(() => {});
    }
  };
  const readyCount = async (queue: string) => (await queueState(queue)).messageCount;
  /**
   * Until the process consumes both queues. Its gRPC health says SERVING once it listens, which
   * is before its consumers have declared and bound their queues: an event published to the
   * exchange before the binding exists is routed nowhere (and still confirmed).
   */
  const consuming = () =>
    until("the notification process consuming both queues", async () => {
      for (const q of [USER_Q, ORDER_Q]) if (((await queueState(q).catch(() => undefined))?.consumerCount ?? 0) < 1) return false;
      return true;
    }, 30_000, 100);

  /** acme_events_consumed_total of the running process, for a queue and outcome (0 when absent). */
  const consumed = async (queue: string, outcome: string) => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(3000) })).text();
    const line = text.split("\n").find((l) => l.startsWith("acme_events_consumed_total{") && l.includes(`queue="${queue}"`) && l.includes(`outcome="${outcome}"`));
    return line ? Number(line.trim().split(/\s+/).pop()) : 0;
  };

  const dlq = (sub: string, ...args: string[]) => runAdmin(["dlq", sub, ...args], { AMQP_URL: rabbit!.url });
  const dlqList = async (queue: string) => {
    const r = await dlq("list", "--queue", queue);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as { id: string; type: string; routingKey: string; reason: string; attempts: number });
  };

  // ---- the cases

  it("consumer killed after sending but before its ack: the broker redelivers the event and no second mail is sent", async () => {
    const t0 = Date.now();
    const { userId, email } = await registeredUser();
    // The welcome's ack has left the process (counted just before it is sent): nothing of it is held below.
    await until("the UserRegistered handled", async () => (await consumed(USER_Q, "ok")) >= 1);
    await sleep(200);

    const { orderId, event, deliveryId } = orderCreated(userId);
    proxy!.hold(); // deliveries still reach the consumer; its ack never reaches the broker
    await publish("acme.order", event);
    const mail = await until("the confirmation mail in Mailpit", async () => (await mailsOf(deliveryId))[0]);
    assert.deepEqual(mail.To.map((a) => a.Address), [email]);
    assert.match(mail.Subject, new RegExp(`Order ${orderId.slice(0, 8)} received`));
    const sent = await deliveryReaching(deliveryId, ["SENT"]);
    assert.equal(sent.attempts, 1);
    assert.equal(await processedRows(ORDER_Q, event.id), 1, "the event is recorded as processed with the SENT attempt");
    assert.equal(await readyCount(ORDER_Q), 0, "the broker handed it out: none ready");

    await service!.stop("SIGKILL");
    // The proxy drops the dead client's held bytes (the ack) and its broker connection: the broker requeues.
    const requeued = await until("the unacked event back in its queue", async () => ((await readyCount(ORDER_Q)) === 1 ? 1 : undefined), 10_000);
    assert.equal(requeued, 1);

    proxy!.release(); // the restarted process's connection flows normally
    const restartMs = await startService();
    await consuming();
    await until("the redelivered event consumed by the new process (queue empty, handled ok)", async () =>
      (await readyCount(ORDER_Q)) === 0 && (await consumed(ORDER_Q, "ok")) === 1,
    );
    // Time for a second mail, were one sent.
    await sleep(1500);
    const mails = await mailsOf(deliveryId);
    assert.equal(mails.length, 1, `exactly one confirmation mail (got ${mails.length})`);
    const final = await delivery(deliveryId);
    assert.equal(final?.status, "SENT");
    assert.equal(final?.attempts, 1, "no second attempt");
    assert.equal((await attempts(deliveryId)).length, 1);
    assert.equal(await processedRows(ORDER_Q, event.id), 1);
    assert.equal(await consumed(ORDER_Q, "retried"), 0);
    assert.equal(await consumed(ORDER_Q, "dead_lettered"), 0);
    console.log(`      redelivery: 1 message requeued by the broker after SIGKILL; new process (ready in ${restartMs} ms) consumed it ok=1, mails with its Message-ID: 1; ${Date.now() - t0} ms`);
  });

  it("SMTP answers 451 for a while: retried with backoff, delivered after recovery, every attempt in the delivery log", async () => {
    const t0 = Date.now();
    const { userId, email } = await registeredUser();
    await mailpit!.chaos({ Recipient: always(451) });
    const { event, deliveryId } = orderCreated(userId);
    await publish("acme.order", event);
    await until("two RETRYING attempts in the delivery log", async () => {
      const d = await delivery(deliveryId);
      const failed = (await attempts(deliveryId)).filter((a) => a.outcome === "TEMPORARY_FAILURE");
      return d?.status === "RETRYING" && failed.length >= 2;
    });
    assert.equal((await mailsOf(deliveryId)).length, 0, "nothing accepted while the server answers 451");
    await mailpit!.chaos("off");

    const mail = await until("the mail in Mailpit after recovery", async () => (await mailsOf(deliveryId))[0]);
    assert.deepEqual(mail.To.map((a) => a.Address), [email]);
    const d = await deliveryReaching(deliveryId, ["SENT"]);
    await sleep(500);
    assert.equal((await mailsOf(deliveryId)).length, 1, "one mail");

    const log = await attempts(deliveryId);
    const failures = log.slice(0, -1);
    assert.ok(failures.length >= 2, `at least two failed attempts (got ${failures.length})`);
    for (const a of failures) {
      assert.equal(a.outcome, "TEMPORARY_FAILURE");
      assert.equal(a.smtp_code, 451);
      assert.match(a.error ?? "", /451/);
    }
    assert.equal(log.at(-1)!.outcome, "SENT");
    assert.equal(log.at(-1)!.smtp_code, 250);
    assert.deepEqual(log.map((a) => a.number), log.map((_, i) => i + 1), "numbered 1..n");
    assert.deepEqual(log.map((a) => a.bus_attempt), log.map((_, i) => i + 1), "one attempt per bus delivery");
    assert.equal(d.attempts, log.length, "the delivery counts every attempt");
    assert.match(d.last_error ?? "", /451/, "the last failure stays visible after the success");

    // The gaps are the bus's backoff: retry n waits a random time in [step/10, step],
    // step = min(max, base * 2^(n-1)) (backoffWithJitter: full jitter, so not every gap is longer than the one before).
    const times = log.map((a) => new Date(a.attempted_at).getTime());
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    gaps.forEach((gap, i) => {
      const step = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** i);
      assert.ok(gap >= step / 10 - 5, `gap before attempt ${i + 2} is ${gap} ms: at least the backoff's floor ${step / 10} ms`);
      assert.ok(gap <= step + 1500, `gap before attempt ${i + 2} is ${gap} ms: at most the backoff's step ${step} ms plus the handling`);
    });
    assert.equal(await consumed(ORDER_Q, "dead_lettered"), 0);
    console.log(`      ${failures.length} x 451 then SENT; gaps between attempts: ${gaps.join(", ")} ms (steps ${gaps.map((_, i) => Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** i)).join(", ")}); ${Date.now() - t0} ms`);
  });

  it("SMTP answers 550: dead-lettered with the reason; `npm run admin -- dlq replay` delivers it once the cause is fixed", async () => {
    const t0 = Date.now();
    const { userId, email } = await registeredUser();
    await mailpit!.chaos({ Recipient: always(550) });
    const { event, deliveryId } = orderCreated(userId);
    await publish("acme.order", event);

    const failed = await deliveryReaching(deliveryId, ["FAILED"]);
    assert.equal(failed.attempts, 1, "a permanent failure is not retried");
    assert.match(failed.last_error ?? "", /550/);
    const [attempt] = await attempts(deliveryId);
    assert.equal(attempt.outcome, "PERMANENT_FAILURE");
    assert.equal(attempt.smtp_code, 550);
    await until("the event in the order queue's DLQ", async () => (await readyCount(deadLetterQueue(ORDER_Q))) === 1);
    const listed = await dlqList(ORDER_Q);
    assert.equal(listed.length, 1, JSON.stringify(listed));
    assert.equal(listed[0].id, event.id);
    assert.equal(listed[0].routingKey, "order.created");
    assert.equal(listed[0].attempts, 1);
    assert.match(listed[0].reason, /550/, `the reason names the reply: ${listed[0].reason}`);
    assert.ok(!listed[0].reason.includes(email), "no full address in the reason");
    assert.equal((await mailsOf(deliveryId)).length, 0);

    await mailpit!.chaos("off");
    const replay = await dlq("replay", "--queue", ORDER_Q);
    assert.equal(replay.code, 0, replay.stderr);
    assert.deepEqual(JSON.parse(replay.stdout), { replayed: 1, queue: ORDER_Q });

    const mail = await until("the replayed mail in Mailpit", async () => (await mailsOf(deliveryId))[0]);
    assert.deepEqual(mail.To.map((a) => a.Address), [email]);
    const sent = await deliveryReaching(deliveryId, ["SENT"]);
    assert.equal(sent.attempts, 2);
    await sleep(500);
    assert.equal((await mailsOf(deliveryId)).length, 1, "exactly one mail");
    assert.deepEqual(await dlqList(ORDER_Q), [], "the DLQ is empty");
    assert.equal(await readyCount(ORDER_Q), 0);
    console.log(`      reason: ${listed[0].reason}; ${Date.now() - t0} ms`);
  });

  it("poison messages (garbage bytes, an unknown event) are dead-lettered at once and the consumer keeps consuming", async () => {
    const t0 = Date.now();
    const garbage: BusMessage = { id: randomUUID(), type: "acme.events.v1.UserRegistered", routingKey: "user.registered", body: new Uint8Array([0xff, 0xff, 0xff, 0x67, 0x61, 0x72]), headers: {} };
    const unknownId = randomUUID();
    const unknown: BusMessage = {
      id: unknownId,
      type: "acme.events.v1.SomethingNew",
      routingKey: "user.something_new",
      body: toBinary(EnvelopeSchema, create(EnvelopeSchema, { eventId: unknownId, type: "acme.events.v1.SomethingNew", aggregateId: "x", occurredAt: timestampFromDate(new Date()), schemaVersion: 1 })),
      headers: {},
    };
    const deadBefore = await consumed(USER_Q, "dead_lettered");
    await publish("acme.user", garbage);
    await publish("acme.user", unknown);
    const userId = randomUUID();
    const email = `p-${userId.slice(0, 8)}@example.com`;
    const valid = userRegistered(userId, email);
    await publish("acme.user", valid);

    const welcomeId = deliveryIdOf(valid.id, "welcome");
    const mail = await until("the valid event's welcome mail", async () => (await mailsOf(welcomeId))[0]);
    assert.deepEqual(mail.To.map((a) => a.Address), [email]);
    assert.equal(mail.Subject, "Welcome to Acme");
    await deliveryReaching(welcomeId, ["SENT"]);

    await until("both poison messages dead-lettered", async () => (await consumed(USER_Q, "dead_lettered")) - deadBefore === 2);
    const listed = await dlqList(USER_Q);
    const byId = new Map(listed.map((d) => [d.id, d]));
    assert.equal(listed.length, 2, JSON.stringify(listed));
    assert.match(byId.get(garbage.id)?.reason ?? "", /not an acme\.events\.v1\.Envelope/);
    assert.match(byId.get(unknownId)?.reason ?? "", /unknown event type "acme\.events\.v1\.SomethingNew"/);
    for (const d of listed) assert.equal(d.attempts, 1, "poison is not retried");
    assert.equal(byId.get(unknownId)?.routingKey, "user.something_new");
    const rows = await db!.query("select count(*)::int as n from notify.deliveries where event_id = any($1)", [[garbage.id, unknownId]]);
    assert.equal(rows.rows[0].n, 0, "no delivery for a poison message");

    // Still consuming after them.
    const later = userRegistered(randomUUID(), `q-${randomUUID().slice(0, 8)}@example.com`);
    await publish("acme.user", later);
    await deliveryReaching(deliveryIdOf(later.id, "welcome"), ["SENT"]);
    console.log(`      dead letters: ${listed.map((d) => d.reason).join(" | ")}; ${Date.now() - t0} ms`);
  });
});
