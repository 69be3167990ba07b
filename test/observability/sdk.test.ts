// When the preload starts the SDK, what it calls the service, and what it
// records of Redis commands.
import assert from "node:assert/strict";
import { defaultServiceName, redisStatement, telemetryEnabled } from "../../platform/telemetry/sdk.js";

describe("observability: SDK configuration from the environment", () => {
  it("is on only when an exporter is configured, and OTEL_SDK_DISABLED / none win", () => {
    assert.equal(telemetryEnabled({}), false);
    assert.equal(telemetryEnabled({ OTEL_SERVICE_NAME: "x" }), false);
    assert.equal(telemetryEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://jaeger:4318" }), true);
    assert.equal(telemetryEnabled({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://jaeger:4318/v1/traces" }), true);
    assert.equal(telemetryEnabled({ OTEL_TRACES_EXPORTER: "console" }), true);
    assert.equal(telemetryEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://j:4318", OTEL_SDK_DISABLED: "TRUE" }), false);
    assert.equal(telemetryEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://j:4318", OTEL_TRACES_EXPORTER: "none" }), false);
  });

  it("names the service after the command line unless OTEL_SERVICE_NAME or service.name is set", () => {
    const argv = (...a: string[]) => ["/usr/bin/node", "/app/app/main.ts", ...a];
    assert.equal(defaultServiceName({}, argv()), "acme");
    assert.equal(defaultServiceName({}, argv("order")), "acme-order");
    assert.equal(defaultServiceName({ OTEL_SERVICE_NAME: "order" }, argv("order")), undefined);
    assert.equal(defaultServiceName({ OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=prod,service.name=x" }, argv()), undefined);
    assert.equal(defaultServiceName({}, ["/usr/bin/node", "/app/scripts/admin.ts"]), undefined);
  });

  it("records a Redis command with its key namespace only, never ids, hashes, addresses or values", () => {
    assert.equal(redisStatement("get", ["auth:login:fail:9f86d081884c7d65"]), "get auth:login:fail:*");
    assert.equal(redisStatement("set", ["session:5f0c", "eyJhbGciOi...", "PX", 1000]), "set session:*");
    assert.equal(redisStatement("evalsha", ["e0e1f9fabfc9d4800c877a703b823ac0578ff831", 1, "rl:login:1.2.3.4", 1, 0]), "evalsha rl:login:*");
    assert.equal(redisStatement("eval", ["return redis.call('INCRBY', KEYS[1], ARGV[1])", 0]), "eval");
    assert.equal(redisStatement("set", ["ratelimit_acme_remote_address_1.2.3.4_1700000000", "1"]), "set");
    assert.equal(redisStatement("get", ["user:alice@example.com"]), "get user:*");
    assert.equal(redisStatement("ping", []), "ping");
  });
});
