// envoyproxy/ratelimit's algorithm and key scheme, checked against a real
// Redis (and the in-process store), with a fixed clock.
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { memoryStore, redisStore, type KeyValueStore } from "../../platform/kv.js";
import {
  cacheKey,
  createRateLimiter,
  descriptorsFor,
  findLimit,
  loadRateLimitConfig,
  parseRateLimitConfig,
  RateLimitConfigError,
  type Descriptor,
} from "../../edge/ratelimit.js";
import { freshRedisUrl } from "../support/fresh.js";
import { tempRateLimitConfig } from "./support.js";

const T0 = 1_700_000_005; // 25 s into the minute window starting at 1699999980; its own second window

describe("rate limits: config", () => {
  it("reads envoy/ratelimit/config.yaml and finds the limit of every descriptor the edges send", () => {
    const config = loadRateLimitConfig("envoy/ratelimit/config.yaml");
    const limitOf = (d: Descriptor) => {
      const l = findLimit(config, d)?.limit;
      return l && `${l.requestsPerUnit}/${l.unit}`;
    };
    const [ip, perSecond, perMinute, authClass] = descriptorsFor("10.0.0.1", "u-1", "auth");
    assert.equal(limitOf(ip), "20/second");
    assert.equal(limitOf(perSecond), "3/second");
    assert.equal(limitOf(perMinute), "100/minute");
    assert.equal(limitOf(authClass), "20/minute");
    assert.equal(limitOf([["rate_class", "auth"]]), undefined, "the class alone has no limit");
    assert.equal(limitOf([["rate_class", "bulk"], ["remote_address", "10.0.0.1"]]), undefined, "unknown classes are not limited");
    assert.equal(limitOf([["remote_address", "10.0.0.1"], ["user_per_second", "u"]]), undefined, "deeper than the config");
  });

  it("sends the descriptors of envoy/ratelimit/config.yaml's header comment", () => {
    assert.deepEqual(descriptorsFor("1.2.3.4", undefined, "default"), [[["remote_address", "1.2.3.4"]]]);
    assert.deepEqual(descriptorsFor("1.2.3.4", "u-1", "auth"), [
      [["remote_address", "1.2.3.4"]],
      [["user_per_second", "u-1"]],
      [["user_per_minute", "u-1"]],
      [["rate_class", "auth"], ["remote_address", "1.2.3.4"]],
    ]);
    const comment = readFileSync("envoy/ratelimit/config.yaml", "utf8");
    for (const key of ["remote_address", "user_per_second", "user_per_minute", "rate_class"]) assert.match(comment, new RegExp(key));
  });

  it("prefers key_value over key, as the ratelimit service does", () => {
    const config = parseRateLimitConfig(`
domain: acme
descriptors:
  - key: remote_address
    rate_limit: { unit: second, requests_per_unit: 5 }
  - key: remote_address
    value: 10.0.0.9
    rate_limit: { unit: minute, requests_per_unit: 1000, name: office }
`);
    assert.equal(findLimit(config, [["remote_address", "10.0.0.1"]])?.limit.requestsPerUnit, 5);
    assert.equal(findLimit(config, [["remote_address", "10.0.0.9"]])?.limit.name, "office");
  });

  it("refuses bad configs with the problem named", () => {
    const bad: [string, RegExp][] = [
      ["descriptors: []", /domain is required/],
      ["domain: acme\ndescriptors:\n  - key: a\n    rate_limit: { unit: fortnight, requests_per_unit: 1 }", /invalid unit "fortnight"/],
      ["domain: acme\ndescriptors:\n  - key: a\n    rate_limit: { unit: second, requests_per_unit: -1 }", /requests_per_unit/],
      ["domain: acme\ndescriptors:\n  - key: a\n    limit: { unit: second }", /unknown key "limit"/],
      ["domain: acme\ndescriptors:\n  - key: a\n  - key: a", /duplicate descriptor "a"/],
      ["domain: acme\ndescriptors:\n  - value: x", /key must be/],
      ["domain: [", /ratelimit config/],
    ];
    for (const [yaml, message] of bad) assert.throws(() => parseRateLimitConfig(yaml), (e: Error) => e instanceof RateLimitConfigError && message.test(e.message), yaml);
    const other = tempRateLimitConfig("domain: other\ndescriptors: []\n");
    try {
      assert.throws(() => loadRateLimitConfig(other.path), /domain is "other"/);
    } finally {
      other.remove();
    }
    assert.throws(() => loadRateLimitConfig("/nonexistent/config.yaml"), /cannot read RATELIMIT_CONFIG/);
  });

  it("builds keys as prefix + domain + (key_value_)... + window start", () => {
    assert.equal(cacheKey("", "acme", [["remote_address", "1.2.3.4"]], 1, T0), "acme_remote_address_1.2.3.4_1700000005");
    assert.equal(cacheKey("", "acme", [["remote_address", "1.2.3.4"]], 60, T0), "acme_remote_address_1.2.3.4_1699999980");
    assert.equal(
      cacheKey("rl_", "acme", [["rate_class", "auth"], ["remote_address", "::1"]], 3600, T0),
      "rl_acme_rate_class_auth_remote_address_::1_1699999200",
    );
  });
});

for (const kind of ["redis", "memory"] as const) {
  describe(`rate limits: counting (${kind} store)`, () => {
    let kv: KeyValueStore;
    let now = T0;
    before(async () => {
      kv = kind === "redis" ? redisStore(await freshRedisUrl()) : memoryStore(() => now * 1000);
    });
    after(async () => kv?.close());

    const config = parseRateLimitConfig(`
domain: acme
descriptors:
  - key: remote_address
    rate_limit: { unit: minute, requests_per_unit: 3 }
  - key: user_per_second
    rate_limit: { unit: second, requests_per_unit: 2 }
  - key: user_per_minute
    rate_limit: { unit: minute, requests_per_unit: 100 }
  - key: shadow
    shadow_mode: true
    rate_limit: { unit: minute, requests_per_unit: 1 }
  - key: free
    rate_limit: { unlimited: true }
`);
    const limiter = () => createRateLimiter({ config, kv, now: () => now });

    it("allows exactly requests_per_unit per window: request N+1 is the first refused", async () => {
      now = T0;
      const rl = limiter();
      const d: Descriptor[] = [[["remote_address", "10.1.1.1"]]];
      const seen = [];
      for (let i = 0; i < 5; i++) seen.push(await rl.check(d));
      assert.deepEqual(
        seen.map((x) => x.overLimit),
        [false, false, false, true, true],
      );
      assert.deepEqual(
        seen.map((x) => x.headers["x-ratelimit-remaining"]),
        ["2", "1", "0", "0", "0"],
      );
      assert.deepEqual(seen[0].headers, { "x-ratelimit-limit": "3, 3;w=60", "x-ratelimit-remaining": "2", "x-ratelimit-reset": "35" });
      assert.deepEqual(seen[3].headers, {
        "x-ratelimit-limit": "3, 3;w=60",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "35",
        "retry-after": "35",
        "x-envoy-ratelimited": "true",
      });
      const key = "acme_remote_address_10.1.1.1_1699999980";
      assert.equal(await kv.get(key), "5", "every request is counted, refused ones too (INCRBY before the check)");
      const ttl = await kv.pttl(key);
      assert.ok(ttl > 0 && ttl <= 60_000, `ttl ${ttl}`);
      // Another client has its own counter.
      assert.equal((await rl.check([[["remote_address", "10.1.1.2"]]])).overLimit, false);
    });

    it("starts again in the next window", async () => {
      now = T0;
      const rl = limiter();
      const d: Descriptor[] = [[["remote_address", "10.2.2.2"]]];
      for (let i = 0; i < 3; i++) assert.equal((await rl.check(d)).overLimit, false);
      assert.equal((await rl.check(d)).overLimit, true);
      now = 1_700_000_040; // the next minute window
      const next = await rl.check(d);
      assert.equal(next.overLimit, false);
      assert.equal(next.headers["x-ratelimit-reset"], "60");
      assert.equal(await kv.get("acme_remote_address_10.2.2.2_1700000040"), "1");
    });

    it("counts every descriptor and reports the one with the fewest remaining (Envoy's DRAFT_VERSION_03 headers)", async () => {
      now = T0;
      const rl = limiter();
      const d = descriptorsFor("10.3.3.3", "u-3", "default");
      const first = await rl.check(d);
      assert.equal(first.overLimit, false);
      assert.deepEqual(first.headers, {
        "x-ratelimit-limit": "2, 3;w=60, 2;w=1, 100;w=60",
        "x-ratelimit-remaining": "1",
        "x-ratelimit-reset": "1",
      });
      const second = await rl.check(d);
      assert.equal(second.headers["x-ratelimit-remaining"], "0");
      const third = await rl.check(d);
      assert.equal(third.overLimit, true);
      assert.equal(third.headers["retry-after"], "1");
      assert.deepEqual(
        third.statuses.map((s) => [s.descriptor[0][0], s.overLimit, s.remaining]),
        [
          ["remote_address", false, 0],
          ["user_per_second", true, 0],
          ["user_per_minute", false, 97],
        ],
      );
      for (const [key, count] of [
        ["acme_remote_address_10.3.3.3_1699999980", "3"],
        ["acme_user_per_second_u-3_1700000005", "3"],
        ["acme_user_per_minute_u-3_1699999980", "3"],
      ]) {
        assert.equal(await kv.get(key), count, key);
      }
    });

    it("never refuses in shadow mode and does not count unlimited descriptors", async () => {
      now = T0;
      const rl = limiter();
      for (let i = 0; i < 3; i++) assert.equal((await rl.check([[["shadow", "x"]]])).overLimit, false);
      const free = await rl.check([[["free", "x"]]]);
      assert.deepEqual(free.headers, {});
      assert.equal(await kv.get("acme_free_x_1700000005"), null);
    });

    it("sends no headers for descriptors without a limit", async () => {
      const d = await limiter().check([[["rate_class", "none"], ["remote_address", "1.1.1.1"]]]);
      assert.equal(d.overLimit, false);
      assert.deepEqual(d.headers, {});
    });
  });
}

describe("rate limits: failure mode", () => {
  it("allows the request when the store fails (failure_mode_deny: false) and reports the error", async () => {
    const broken = { ...memoryStore(), incrEach: async () => Promise.reject(new Error("redis down")) } as KeyValueStore;
    const errors: unknown[] = [];
    const rl = createRateLimiter({
      config: parseRateLimitConfig("domain: acme\ndescriptors:\n  - key: remote_address\n    rate_limit: { unit: second, requests_per_unit: 0 }\n"),
      kv: broken,
      onError: (e) => errors.push(e),
    });
    const d = await rl.check([[["remote_address", "1.1.1.1"]]]);
    assert.equal(d.overLimit, false);
    assert.equal(errors.length, 1);
  });
});
