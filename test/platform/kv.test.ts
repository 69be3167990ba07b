// The in-process store must behave like Redis for every operation the product
// uses: the same assertions run against a real redis-server and memoryStore.
import { strict as assert } from "node:assert";
import { memoryStore, redisStore, type KeyValueStore } from "../../platform/kv.js";
import { freshRedisUrl } from "../support/fresh.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const kind of ["redis", "memory"] as const) {
  describe(`KeyValueStore semantics (${kind})`, () => {
    let kv: KeyValueStore;
    before(async () => (kv = kind === "redis" ? redisStore(await freshRedisUrl()) : memoryStore()));
    after(async () => kv?.close());

    it("get/set/del round-trip; missing keys are null", async () => {
      assert.equal(await kv.get("k:missing"), null);
      await kv.set("k:a", "1");
      assert.equal(await kv.get("k:a"), "1");
      assert.equal(await kv.pttl("k:a"), -1);
      assert.equal(await kv.del("k:a", "k:missing"), 1);
      assert.equal(await kv.get("k:a"), null);
      assert.equal(await kv.pttl("k:a"), -2);
    });

    it("expires keys after their TTL", async () => {
      await kv.set("k:ttl", "x", 80);
      const ttl = await kv.pttl("k:ttl");
      assert.ok(ttl > 0 && ttl <= 80, `pttl ${ttl}`);
      await sleep(150);
      assert.equal(await kv.get("k:ttl"), null);
    });

    it("setNx sets only when absent", async () => {
      assert.equal(await kv.setNx("k:nx", "first", 10_000), true);
      assert.equal(await kv.setNx("k:nx", "second", 10_000), false);
      assert.equal(await kv.get("k:nx"), "first");
    });

    it("incr is atomic under concurrency and sets the TTL only when it creates the key", async () => {
      const results = await Promise.all(Array.from({ length: 50 }, () => kv.incr("k:n", 1, 60_000)));
      assert.deepEqual([...results].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i + 1));
      const ttl = await kv.pttl("k:n");
      assert.ok(ttl > 59_000 && ttl <= 60_000, `pttl ${ttl}`);
      assert.equal(await kv.incr("k:n", 5), 55);
      assert.ok((await kv.pttl("k:n")) <= ttl, "a later incr must not extend the TTL");
      await kv.set("k:text", "abc");
      await assert.rejects(kv.incr("k:text"), /not an integer/);
    });

    it("incrEach counts several keys at once, each with its own TTL set only on creation", async () => {
      await kv.incr("k:e2", 1); // exists without a TTL: incrEach must not add one
      const rounds = await Promise.all(Array.from({ length: 20 }, () => kv.incrEach([["k:e1", 1_000], ["k:e2", 60_000], ["k:e3", 60_000]])));
      assert.deepEqual(rounds.map((r) => r[0]).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1));
      assert.deepEqual(rounds.map((r) => r[1]).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 2));
      const t1 = await kv.pttl("k:e1");
      assert.ok(t1 > 0 && t1 <= 1_000, `pttl ${t1}`);
      assert.equal(await kv.pttl("k:e2"), -1);
      assert.ok((await kv.pttl("k:e3")) > 59_000);
      assert.deepEqual(await kv.incrEach([]), []);
      await kv.set("k:text2", "abc");
      await assert.rejects(kv.incrEach([["k:e1", 1_000], ["k:text2", 1_000]]), /not an integer/);
    });

    it("sets: add, membership, remove", async () => {
      assert.equal(await kv.sadd("k:s", "a", "b", "a"), 2);
      assert.equal(await kv.sadd("k:s", "b", "c"), 1);
      assert.deepEqual((await kv.smembers("k:s")).sort(), ["a", "b", "c"]);
      assert.equal(await kv.sismember("k:s", "b"), true);
      assert.equal(await kv.srem("k:s", "b", "z"), 1);
      assert.equal(await kv.sismember("k:s", "b"), false);
      assert.deepEqual(await kv.smembers("k:none"), []);
    });
  });
}
