// Events per second through the product's path: writers commit events into an
// outbox (platform/outbox.ts, one INSERT per transaction, like a service), the
// relay publishes them to RabbitMQ with confirms (platform/bus/amqp.ts), and
// an idempotent consumer (platform/consumer.ts) records each in
// processed_events. The baseline in the same run: amqplib publishing the same
// messages alone on a confirm channel, one confirm awaited at a time (the
// relay's way) and pipelined (the broker's ceiling here). Also: the outbox lag
// (age of the oldest unsent event) sampled during the run.
//
//   node --import tsx bench/events.ts [count]         (table)
//   node --import tsx bench/events.ts [count] --json  (JSON, for bench/lib/scenarios-events.ts)
import { randomUUID } from "node:crypto";
import amqp from "amqplib";
import { sql } from "kysely";
import { amqpBus } from "../platform/bus/amqp.js";
import { processedEventsMigration, idempotent } from "../platform/consumer.js";
import { migrate, openDatabase } from "../platform/db.js";
import { silentLogger } from "../platform/logger.js";
import { enqueue, notifyRelays, outboxMigration, startRelay } from "../platform/outbox.js";
import { startPostgres, startRabbitmq } from "../scripts/stack/servers.js";

export interface EventsBench {
  scenario: string;
  eventsPerSec: number;
  note?: string;
}

const SCHEMA = "benchev";
const EXCHANGE = "acme.bench";
const body = new Uint8Array(180).fill(7); // about an OrderCreated envelope

async function amqpAlone(url: string, count: number, pipelined: boolean): Promise<number> {
  const conn = await amqp.connect(url);
  const ch = await conn.createConfirmChannel();
  await ch.assertExchange(`${EXCHANGE}.alone`, "topic", { durable: true });
  // A durable queue, as the consumers' are: the broker confirms a persistent message once it is on disk.
  const q = await ch.assertQueue(`bench.alone.${randomUUID()}`, { durable: true });
  await ch.bindQueue(q.queue, `${EXCHANGE}.alone`, "#");
  const t0 = performance.now();
  const publish = () =>
    new Promise<void>((resolve, reject) =>
      ch.publish(`${EXCHANGE}.alone`, "bench.happened", Buffer.from(body), { persistent: true, messageId: randomUUID() }, (err) => (err ? reject(err) : resolve())),
    );
  if (pipelined) await Promise.all(Array.from({ length: count }, publish));
  else for (let i = 0; i < count; i++) await publish();
  const rate = count / ((performance.now() - t0) / 1000);
  await ch.deleteQueue(q.queue);
  await conn.close();
  return rate;
}

/** With writers > 0, they commit the events while the relay runs; with 0, a backlog of `count` is written first and drained. */
async function throughProduct(dbUrl: string, amqpUrl: string, count: number, writers: number) {
  const database = await openDatabase({ url: dbUrl, dataDir: "/tmp", env: {} });
  const db = database.db;
  await sql`drop schema if exists ${sql.id(SCHEMA)} cascade`.execute(db);
  await migrate(db, SCHEMA, { "001_outbox": outboxMigration(SCHEMA), "002_processed": processedEventsMigration(SCHEMA) });
  const bus = amqpBus(amqpUrl, { log: silentLogger });
  let consumed = 0;
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const consumer = await bus.consume(
    { queue: `bench.${randomUUID()}`, exchange: EXCHANGE, bindings: ["#"], maxAttempts: 3, backoffMs: () => 100 },
    idempotent({ db, schema: SCHEMA, consumer: "bench", handle: async () => void (++consumed === count && done()) }),
  );
  const event = (n: number) => ({ id: randomUUID(), type: "acme.events.v1.Bench", routingKey: "bench.happened", aggregateId: String(n % 100), body, headers: {} });
  if (writers === 0) {
    await db.transaction().execute(async (trx) => {
      for (let n = 0; n < count; n++) await enqueue(trx, SCHEMA, event(n));
    });
  }
  const relay = startRelay({ db, schema: SCHEMA, exchange: EXCHANGE, bus, log: silentLogger, intervalMs: 1000 });
  let maxLagMs = 0;
  const sampler = setInterval(() => void relay.lagMs().then((ms) => (maxLagMs = Math.max(maxLagMs, ms)), () => {}), 100);
  const t0 = performance.now();
  let next = writers === 0 ? count : 0;
  await Promise.all(
    Array.from({ length: writers }, async () => {
      while (next < count) {
        const n = next++;
        await db.transaction().execute((trx) =>
          enqueue(trx, SCHEMA, event(n)),
        );
        notifyRelays(db, SCHEMA);
      }
    }),
  );
  const writtenAt = performance.now();
  if (process.env.BENCH_DEBUG) {
    const iv = setInterval(async () => {
      const r = await sql<{ n: string }>`select count(*) filter (where sent_at is null) as n from ${sql.table(`${SCHEMA}.outbox`)}`.execute(db);
      console.error(`t=${((performance.now() - t0) / 1000).toFixed(1)}s unsent=${r.rows[0].n} consumed=${consumed}`);
    }, 1000);
    void all.finally(() => clearInterval(iv));
  }
  await all;
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  await relay.stop();
  await consumer.stop();
  await bus.close();
  await sql`drop schema ${sql.id(SCHEMA)} cascade`.execute(db);
  await database.close();
  return { rate: count / seconds, writeRate: count / ((writtenAt - t0) / 1000), maxLagMs };
}

export async function eventsBench(count: number): Promise<EventsBench[]> {
  const [pg, rabbit] = await Promise.all([startPostgres(), startRabbitmq()]);
  try {
    const alone = await amqpAlone(rabbit.url, count, false);
    const pipelined = await amqpAlone(rabbit.url, count, true);
    const product = await throughProduct(pg.url, rabbit.url, count, 8);
    const backlog = await throughProduct(pg.url, rabbit.url, count, 0);
    return [
      { scenario: "amqplib publish alone, confirm awaited per message", eventsPerSec: alone },
      { scenario: "amqplib publish alone, confirms pipelined", eventsPerSec: pipelined },
      {
        scenario: "outbox -> relay -> RabbitMQ -> idempotent consumer",
        eventsPerSec: product.rate,
        note: `8 writers committing (${product.writeRate.toFixed(0)} events/s); outbox lag max ${product.maxLagMs.toFixed(0)} ms`,
      },
      { scenario: "a backlog in the outbox drained: relay -> RabbitMQ -> consumer", eventsPerSec: backlog.rate },
    ];
  } finally {
    await Promise.all([pg.stop(), rabbit.stop()]);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const count = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 5000);
  const rows = await eventsBench(count);
  if (process.argv.includes("--json")) console.log(JSON.stringify(rows));
  else for (const r of rows) console.log(`${r.scenario.padEnd(55)} ${r.eventsPerSec.toFixed(0).padStart(8)} events/s ${r.note ?? ""}`);
  process.exit(0);
}
