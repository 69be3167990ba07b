// `npm run admin -- dlq ...` against a real rabbitmq-server: list and show a
// consumer's dead letters, replay them once the cause is fixed (each delivered
// once), purge; bad usage exits 2 naming the problem.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { amqpBus } from "../../platform/bus/amqp.js";
import type { Bus, BusMessage } from "../../platform/bus/bus.js";
import { runAdmin } from "../support/admin-cli.js";
import { freePort, startRabbitmq, type Running } from "../support/servers.js";

describe("admin dlq: a consumer's dead letters on RabbitMQ", function () {
  this.timeout(120_000);
  const dir = mkdtempSync(join(tmpdir(), "acme-dlq-admin-"));
  let rabbit: Running | undefined;
  let bus: Bus;
  before(async () => {
    rabbit = await startRabbitmq({ port: await freePort(), dir });
    bus = amqpBus(rabbit.url, { publishTimeoutMs: 2000 });
  });
  after(async () => {
    await bus?.close();
    await rabbit?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const admin = (...args: string[]) => runAdmin(["dlq", ...args], { AMQP_URL: rabbit!.url });
  const until = async (what: string, ok: () => boolean | Promise<boolean>, ms = 10_000) => {
    for (const end = Date.now() + ms; !(await ok()); ) {
      if (Date.now() > end) throw new Error(`timed out: ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  it("lists and shows dead letters with their reason, replays them once fixed (each delivered once), purges", async () => {
    const queue = `dlq-admin-${randomUUID()}`;
    let broken = true;
    const delivered: BusMessage[] = [];
    const consumer = await bus.consume({ queue, exchange: "acme.test", bindings: ["thing.*"], maxAttempts: 1, backoffMs: () => 10 }, async (d) => {
      if (broken) throw new Error("template missing");
      delivered.push(d.message);
    });
    const ids = [randomUUID(), randomUUID()];
    for (const id of ids) await bus.publish("acme.test", { id, type: "test.Thing", routingKey: "thing.done", body: new Uint8Array([7]), headers: {} });

    let listed: { id: string; reason: string; attempts: number }[] = [];
    await until("two dead letters listed", async () => {
      const r = await admin("list", "--queue", queue);
      assert.equal(r.code, 0, r.stderr);
      listed = r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
      return listed.length === 2;
    });
    assert.deepEqual(listed.map((d) => d.id).sort(), [...ids].sort());
    for (const d of listed) {
      assert.match(d.reason, /template missing/);
      assert.equal(d.attempts, 1);
    }
    const shown = await admin("show", "--queue", queue, "--id", ids[0]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(JSON.parse(shown.stdout).id, ids[0]);
    assert.equal((await admin("list", "--queue", queue)).stdout.trim().split("\n").length, 2, "list and show leave them in place");

    broken = false;
    const replayed = await admin("replay", "--queue", queue, "--id", ids[0]);
    assert.deepEqual(JSON.parse(replayed.stdout), { replayed: 1, queue });
    await until("the replayed one delivered", () => delivered.length === 1);
    assert.equal(delivered[0].id, ids[0]);
    const rest = await admin("replay", "--queue", queue);
    assert.deepEqual(JSON.parse(rest.stdout), { replayed: 1, queue });
    await until("both delivered", () => delivered.length === 2);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(delivered.map((m) => m.id).sort(), [...ids].sort(), "each once");
    assert.equal((await admin("list", "--queue", queue)).stdout.trim(), "");

    broken = true;
    await bus.publish("acme.test", { id: randomUUID(), type: "test.Thing", routingKey: "thing.done", body: new Uint8Array([1]), headers: {} });
    await until("one more dead letter", async () => (await admin("list", "--queue", queue)).stdout.trim().split("\n").filter(Boolean).length === 1);
    assert.deepEqual(JSON.parse((await admin("purge", "--queue", queue)).stdout), { purged: 1, queue });
    await consumer.stop();
  });

  it("refuses bad usage with exit 2, naming what is wrong", async () => {
    const unknown = await admin("explode", "--queue", "q");
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown subcommand "explode"/);
    const noQueue = await admin("list");
    assert.equal(noQueue.code, 2);
    assert.match(noQueue.stderr, /--queue/);
    const noUrl = await runAdmin(["dlq", "list", "--queue", "q"], {});
    assert.equal(noUrl.code, 2);
    assert.match(noUrl.stderr, /AMQP_URL/);
  });
});
